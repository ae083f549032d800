"""A hub in an OCI store, end to end: real ddebs, real pahole, a real registry (docker-registry).

Reconcile with BTFHUB_STORE pushes every built file and commits none to
archive/; a rerun asks the registry nothing; a push interrupted by the
registry leaves index.json naming nothing it lacks, and the next run
finishes it without rebuilding; a consumer with nothing but index.json
fetches the raw BTF from the registry; `btfhub store migrate` moves a git
hub's files there and back, byte for byte; a release gaining modules gets
them built (by reconcile or a shard) on the archived BTF pulled from the
registry by its digest. The registry sits behind a
recording proxy (tests/kit/registry.py) that can also fail requests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from generator import render as render_module
from generator.demokit.bpftool import dump_c
from generator.demokit.mirror import AptPackage
from generator.hub import earlyscan
from generator.store.hubstore import STAGING
from tests.kit.hub import (
    Run,
    archive_files,
    btfhub,
    build_ddeb,
    focal_suites,
    load_index,
    make_hub,
    mirror_args,
    package_requests,
    write_ubuntu,
)
from tests.kit.hubrepo import git
from tests.kit.mirror import FaultyMirror
from tests.kit.modules import build_ddeb_with_modules, build_module, module_struct
from tests.kit.registry import Registry, RegistryProxy

FOCAL = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")
DIRECTORY = "archive/ubuntu/20.04/x86_64"
K26, K42 = "5.4.0-26-generic", "5.4.0-42-generic"
PATHS = [f"{DIRECTORY}/{K26}.btf.tar.xz", f"{DIRECTORY}/{K42}.btf.tar.xz"]
TAG = "ubuntu_20.04_x86_64"


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> list[AptPackage]:
    base = tmp_path_factory.mktemp("store-ddebs")
    return [
        build_ddeb(base, f"linux-image-unsigned-{uname}-dbgsym", version, uname, fixture_elf)
        for uname, version in ((K26, "5.4.0-26.30"), (K42, "5.4.0-42.46"))
    ]


@pytest.fixture
def proxy(registry: Registry) -> Iterator[RegistryProxy]:
    with RegistryProxy(registry) as server:
        yield server


@pytest.fixture
def store(proxy: RegistryProxy) -> str:
    """A repository of its own in the session's registry, reached through the proxy."""
    return f"oci://{proxy.host}/btfhub/t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def oci_hub(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mirror_server: FaultyMirror,
    store: str,
    debs: list[AptPackage],
) -> Path:
    """A fresh hub whose runs use the test's repository (BTFHUB_STORE); focal's two kernels."""
    write_ubuntu(mirror_server, focal_suites(debs))
    monkeypatch.setenv("BTFHUB_STORE", store)
    return make_hub(tmp_path / "hub")


def _reconcile(capsys: pytest.CaptureFixture[str], hub: Path, server: FaultyMirror) -> Run:
    return btfhub(capsys, hub, "reconcile", *mirror_args(server), *FOCAL)


def _locations(root: Path) -> dict[str, Any]:
    arch = load_index(root)["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]
    found: dict[str, Any] = arch["x86_64"].get("locations", {})
    return found


def _manifest(registry: Registry, store: str) -> dict[str, Any]:
    repository = store.split("/", 3)[3]
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{TAG}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(request) as answer:
        found: dict[str, Any] = json.load(answer)
    return found


def _btf_of(tar_xz: bytes, uname: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar_xz), mode="r:xz") as tar:
        member = tar.extractfile(f"{uname}.btf")
        assert member is not None
        return member.read()


def test_reconcile_puts_every_file_in_the_registry_and_a_rerun_asks_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    registry: Registry,
    proxy: RegistryProxy,
    store: str,
    oci_hub: Path,
) -> None:
    hub = oci_hub

    run = _reconcile(capsys, hub, mirror_server)

    assert run.code == 0, run.err
    assert archive_files(hub) == {}  # nothing for git to commit
    assert not any((hub / STAGING).rglob("*.xz"))
    index = load_index(hub)
    assert index["revision"] == 2
    assert index["store"] == {
        "kind": "oci",
        "registry": proxy.host,
        "repository": store.split("/", 3)[3],
    }
    locations = _locations(hub)
    kernels = index["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"]
    for uname, path in zip((K26, K42), PATHS, strict=True):
        entry = kernels["kernels"][uname]
        assert entry["state"] == "archived" and "blob" not in entry
        assert locations[uname] == {
            path: {"digest": f"sha256:{entry['sha256']}", "size": entry["size"]}
        }
    manifest = _manifest(registry, store)
    titles = {
        layer["annotations"]["org.opencontainers.image.title"]: layer["digest"]
        for layer in manifest["layers"]
    }
    assert titles == {
        p: next(iter(_locations(hub)[u].values()))["digest"]
        for u, p in zip((K26, K42), PATHS, strict=True)
    }
    for digest in titles.values():
        data = registry.blob_data(digest.removeprefix("sha256:")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest.removeprefix("sha256:")

    # A second run: nothing to build, and not one request to the registry. README.md
    # and index.json are composed once, while discovery asks upstream (hub/earlyscan.py).
    proxy.clear()
    before = len(package_requests(mirror_server))
    index_bytes = (hub / "index.json").read_bytes()
    composed: list[int] = []
    real_compose = render_module.compose_hub

    def counted(*args: Any, **kwargs: Any) -> Any:
        composed.append(1)
        return real_compose(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(earlyscan, "compose_hub", counted)
        patch.setattr(render_module, "compose_hub", counted)
        again = _reconcile(capsys, hub, mirror_server)
    assert again.code == 0, again.err
    assert proxy.seen == []
    assert len(package_requests(mirror_server)) == before
    assert (hub / "index.json").read_bytes() == index_bytes
    assert len(composed) == 1
    assert btfhub(capsys, hub, "render", "--check").code == 0
    # That run found both files as composed: the next composes nothing (hub/rendermemo.py).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(earlyscan, "compose_hub", counted)
        patch.setattr(render_module, "compose_hub", counted)
        assert _reconcile(capsys, hub, mirror_server).code == 0
    assert len(composed) == 1
    assert proxy.seen == []
    assert (hub / "index.json").read_bytes() == index_bytes

    # A consumer with only index.json, in an empty directory, gets the raw BTF.
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    shutil.copyfile(hub / "index.json", consumer / "index.json")
    looked = btfhub(capsys, consumer, "lookup", *_machine_args(consumer, K26), "--json")
    assert looked.code == 0, looked.err
    sha = kernels["kernels"][K26]["sha256"]
    assert (
        json.loads(looked.out)["url"]
        == f"http://{proxy.host}/v2/{store.split('/', 3)[3]}/blobs/sha256:{sha}"
    )
    fetched = btfhub(capsys, consumer, *_fetch_args(consumer, K26))
    assert fetched.code == 0, fetched.err
    raw = (consumer / f"{K26}.btf").read_bytes()
    stored = registry.blob_data(kernels["kernels"][K26]["sha256"]).read_bytes()
    assert raw == _btf_of(stored, K26)
    assert raw[:2] == b"\x9f\xeb"  # the BTF magic
    assert sorted(p.name for p in consumer.iterdir()) == sorted(
        ["cache", "index.json", f"{K26}.btf"]
    )


def _file_uploads(proxy: RegistryProxy) -> list[str]:
    """The archive files' blob uploads the registry received (not the manifests' empty config)."""
    empty = hashlib.sha256(b"{}").hexdigest()
    return [
        s.path
        for s in proxy.seen
        if s.method == "PUT" and "/blobs/uploads/" in s.path and empty not in s.path
    ]


def _machine_args(consumer: Path, uname: str) -> list[str]:
    """The hub's index.json (a copy) and the machine to find in it."""
    return [
        "--index",
        str(consumer / "index.json"),
        "--id",
        "ubuntu",
        "--version-id",
        "20.04",
        "--kernel",
        uname,
        "--arch",
        "x86_64",
    ]


def _fetch_args(consumer: Path, uname: str) -> list[str]:
    return [
        "fetch",
        *_machine_args(consumer, uname),
        "--cache-dir",
        str(consumer / "cache"),
        "--output",
        str(consumer / f"{uname}.btf"),
    ]


def test_an_interrupted_push_records_nothing_the_registry_lacks_and_the_rerun_finishes_it(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    proxy: RegistryProxy,
    oci_hub: Path,
) -> None:
    hub = oci_hub
    proxy.fail("PUT", r"/manifests/", status=500, times=None)
    run = _reconcile(capsys, hub, mirror_server)
    assert run.code == 1
    assert "HTTP 500" in run.err and "gave up after 4 attempts" in run.err
    assert "PUT manifest" in run.err or "manifests" in run.err
    assert [s.status for s in proxy.seen if "/manifests/" in s.path] == [500] * 4
    # Blobs may be in the registry; index.json names none of them, and the files stay staged.
    assert _locations(hub) == {}
    assert archive_files(hub) == {}
    staged = sorted(p.relative_to(hub / STAGING).as_posix() for p in (hub / STAGING).rglob("*.xz"))
    assert staged == PATHS
    assert len(_file_uploads(proxy)) == 2

    # The registry is back: the next run builds nothing and sends no blob again.
    proxy.clear()
    before = len(package_requests(mirror_server))
    again = _reconcile(capsys, hub, mirror_server)
    assert again.code == 0, again.err
    assert len(package_requests(mirror_server)) == before
    assert _file_uploads(proxy) == []
    assert sorted(next(iter(v)) for v in _locations(hub).values()) == PATHS
    assert not any((hub / STAGING).rglob("*.xz"))


def test_migrate_a_git_hub_to_the_registry_and_back_gives_the_same_entries_and_bytes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    registry: Registry,
    proxy: RegistryProxy,
    store: str,
    debs: list[AptPackage],
) -> None:
    hub = make_hub(tmp_path / "hub")
    write_ubuntu(mirror_server, focal_suites(debs))
    built = _reconcile(capsys, hub, mirror_server)
    assert built.code == 0, built.err
    files = archive_files(hub)
    assert sorted(files) == PATHS
    git_kernels = load_index(hub)["distributions"]["ubuntu"]["releases"]["focal"]

    to_oci = btfhub(capsys, hub, "store", "migrate", "--to", store)
    assert to_oci.code == 0, to_oci.err
    assert "2 file(s) moved" in to_oci.out
    assert archive_files(hub) == {}
    index = load_index(hub)
    assert index["store"]["kind"] == "oci"
    assert sorted(next(iter(v)) for v in _locations(hub).values()) == PATHS
    for data in files.values():
        assert registry.blob_data(hashlib.sha256(data).hexdigest()).read_bytes() == data
    # A rerun does nothing, and asks the registry nothing.
    proxy.clear()
    rerun = btfhub(capsys, hub, "store", "migrate", "--to", store)
    assert rerun.code == 0 and "0 file(s) moved" in rerun.out
    assert proxy.seen == []

    # A consumer fetches from the registry, then a tampered blob is refused.
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    shutil.copyfile(hub / "index.json", consumer / "index.json")
    good = btfhub(capsys, consumer, *_fetch_args(consumer, K26))
    assert good.code == 0, good.err
    k42 = files[PATHS[1]]
    blob = registry.blob_data(hashlib.sha256(k42).hexdigest())
    verified = btfhub(capsys, hub, "verify")  # every file pulled by digest and checked
    assert verified.code == 0, verified.out + verified.err
    assert "checked 2 file(s): 0 problem(s)" in verified.out
    blob.write_bytes(k42[:-1] + bytes([k42[-1] ^ 1]))
    caught = btfhub(capsys, hub, "verify")
    assert caught.code == 1
    assert f"{PATHS[1]}: cannot be read from the hub's store" in caught.out
    bad = btfhub(capsys, consumer, *_fetch_args(consumer, K42))
    assert bad.code == 1
    assert "sha256" in bad.err
    assert not (consumer / f"{K42}.btf").exists()
    assert not any(
        p.name.startswith(hashlib.sha256(k42).hexdigest()) for p in (consumer / "cache").rglob("*")
    )
    blob.write_bytes(k42)

    back = btfhub(capsys, hub, "store", "migrate", "--to", "git")
    assert back.code == 0, back.err
    assert archive_files(hub) == files
    index = load_index(hub)
    assert "store" not in index
    assert index["distributions"]["ubuntu"]["releases"]["focal"] == git_kernels


def test_a_push_the_registry_keeps_refusing_stops_the_migration_with_nothing_recorded(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    proxy: RegistryProxy,
    store: str,
    debs: list[AptPackage],
) -> None:
    hub = make_hub(tmp_path / "hub")
    write_ubuntu(mirror_server, focal_suites(debs[:1]))
    assert _reconcile(capsys, hub, mirror_server).code == 0
    index_before = (hub / "index.json").read_bytes()
    files = archive_files(hub)
    proxy.fail("POST", r"/blobs/uploads/", status=None, times=None)  # every upload dropped

    run = btfhub(capsys, hub, "store", "migrate", "--to", store)

    assert run.code == 1
    assert "the connection broke off" in run.err and "gave up after 4 attempts" in run.err
    assert (hub / "index.json").read_bytes() == index_before
    assert archive_files(hub) == files


def test_sharded_jobs_push_their_own_blobs_and_publish_commits_only_the_index_and_readme(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    proxy: RegistryProxy,
    oci_hub: Path,
) -> None:
    hub = oci_hub
    git(hub, "init", "-q", "-b", "main")
    git(hub, "add", "-A")
    git(hub, "-c", "user.name=Seed", "-c", "user.email=seed@example.org", "commit", "-qm", "seed")
    mirrors = mirror_args(mirror_server)

    planned = btfhub(capsys, hub, "plan", *mirrors, *FOCAL, "--json", "--shards", "1")
    assert planned.code == 0, planned.err
    (tmp_path / "plan.json").write_text(planned.out)
    out = tmp_path / "out"
    shard = btfhub(
        capsys, hub, "reconcile", "--shard", "1/1", "--plan", str(tmp_path / "plan.json"),
        "--output", str(out), *mirrors,
    )  # fmt: skip
    assert shard.code == 0, shard.err
    assert len(_file_uploads(proxy)) == 2  # the shard sent its own files
    assert not [s for s in proxy.seen if "/manifests/" in s.path]

    proxy.clear()
    merged = btfhub(capsys, hub, "merge", str(out))
    assert merged.code == 0, merged.err
    assert archive_files(hub) == {}  # staged for the push, not in archive/
    synced = btfhub(capsys, hub, "sync", *mirrors, *FOCAL, "--skip-build", "--commit")
    assert synced.code == 0, synced.err
    assert _file_uploads(proxy) == []  # a HEAD for each blob the shard sent
    tagged = [s.path.rsplit("/", 1)[1] for s in proxy.seen if "/manifests/" in s.path]
    assert [s.method for s in proxy.seen if "/manifests/" in s.path] == ["PUT", "PUT"]
    assert re.fullmatch(f"{TAG}-[0-9a-f]{{12}}", tagged[0]) and tagged[1] == TAG  # pinned first
    changed = git(hub, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(changed) == ["README.md", "index.json"]
    assert sorted(next(iter(v)) for v in _locations(hub).values()) == PATHS

    # A file left in archive/ of a hub in an OCI store is never committed.
    head = git(hub, "rev-parse", "HEAD")
    stray = hub / DIRECTORY / "left-behind.btf.tar.xz"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not for git")
    again = btfhub(capsys, hub, "sync", *mirrors, *FOCAL, "--skip-build", "--commit")
    assert again.code == 0, again.err
    assert git(hub, "rev-parse", "HEAD") == head
    assert git(hub, "ls-files", "archive") == ""


def test_oras_pulls_the_files_index_json_names_from_what_btfhub_pushed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    proxy: RegistryProxy,
    store: str,
    oci_hub: Path,
) -> None:
    """The README's `oras pull` and `oras blob fetch`, through the ORAS Python SDK."""
    import oras.client  # a test dependency; imported here: only this test needs requests

    assert _reconcile(capsys, oci_hub, mirror_server).code == 0
    index = load_index(oci_hub)
    kernels = index["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"]
    reference = f"{index['store']['registry']}/{index['store']['repository']}"
    client = oras.client.OrasClient(hostname=proxy.host, insecure=True)

    pulled = tmp_path / "pulled"
    written = client.pull(target=f"{reference}:{TAG}", outdir=str(pulled))
    assert sorted(Path(w).relative_to(pulled).as_posix() for w in written) == PATHS
    for uname, path in zip((K26, K42), PATHS, strict=True):
        data = (pulled / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == kernels["kernels"][uname]["sha256"]
        assert len(data) == kernels["kernels"][uname]["size"]
        assert (
            kernels["locations"][uname][path]["digest"]
            == f"sha256:{kernels['kernels'][uname]['sha256']}"
        )
        assert _btf_of(data, uname)[:2] == b"\x9f\xeb"  # the BTF magic

    one = tmp_path / "k.btf.tar.xz"
    digest = f"sha256:{kernels['kernels'][K42]['sha256']}"
    client.download_blob(reference, digest, str(one))
    assert one.read_bytes() == (pulled / PATHS[1]).read_bytes()


def test_plan_says_where_files_go_and_reads_what_is_archived_from_the_locations(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mirror_server: FaultyMirror,
    proxy: RegistryProxy,
    store: str,
    oci_hub: Path,
) -> None:
    hub = oci_hub
    mirrors = mirror_args(mirror_server)
    before = btfhub(capsys, hub, "plan", *mirrors, *FOCAL, "--json")  # BTFHUB_STORE's store
    assert before.code == 0, before.err
    planned = json.loads(before.out)
    assert planned["store"] == store
    assert {k["archive_path"]: k["state"] for k in planned["kernels"]} == dict.fromkeys(
        PATHS, "missing"
    )
    assert proxy.seen == []

    assert _reconcile(capsys, hub, mirror_server).code == 0
    assert archive_files(hub) == {}
    monkeypatch.delenv("BTFHUB_STORE")  # from now on the store index.json records
    proxy.clear()
    after = btfhub(capsys, hub, "plan", *mirrors, *FOCAL)
    assert after.code == 0, after.err
    assert f"store: {store} (built files are staged in .btfhub-cache/store/staging/" in after.out
    assert len(re.findall(r"\barchived\b", after.out)) >= 2
    again = btfhub(capsys, hub, "plan", *mirrors, *FOCAL, "--json", "--store", store)
    assert {k["state"] for k in json.loads(again.out)["kernels"]} == {"archived"}
    assert proxy.seen == []  # what index.json records is not asked of the registry
    dry = btfhub(capsys, hub, "reconcile", *mirrors, *FOCAL, "--dry-run")
    assert dry.code == 0 and "dry run: 0 kernel(s) to build" in dry.out
    assert f"store: {store} " in dry.out

    # Planning against another store than the one holding the files is refused.
    other = btfhub(capsys, hub, "plan", *mirrors, *FOCAL, "--store", "git")
    assert other.code == 1
    assert f"the hub keeps its files in {store}, not git" in other.err
    fresh = make_hub(hub.parent / "fresh")
    git_plan = btfhub(capsys, fresh, "plan", *mirrors, *FOCAL, "--store", "git")
    assert git_plan.code == 0, git_plan.err
    assert "store: git (built files go into archive/" in git_plan.out


def test_a_store_other_than_the_one_holding_the_files_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_hub(tmp_path / "hub")
    stray = hub / PATHS[0]
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"a file git holds")
    monkeypatch.setenv("BTFHUB_STORE", "oci://127.0.0.1:9/btfhub")

    run = btfhub(capsys, hub, "render")

    assert run.code == 1
    assert "the hub keeps its files in git, not oci://127.0.0.1:9/btfhub" in run.err
    assert "btfhub store migrate --to oci://127.0.0.1:9/btfhub" in run.err
    assert not (hub / "index.json").exists()
    # Credentials never ride in the store's URL (a command line shows it).
    bad = btfhub(capsys, hub, "render", "--store", "oci://user:pw@ghcr.io/o/h")
    assert bad.code == 1 and "no credentials in the store's URL" in bad.err


def test_a_run_killed_mid_push_leaves_index_json_naming_nothing_and_the_next_run_finishes(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    proxy: RegistryProxy,
    oci_hub: Path,
) -> None:
    hub = oci_hub
    held = proxy.hold("PUT", r"/manifests/")  # the blobs are up; the tag never lands
    command = [sys.executable, "-m", "generator", "reconcile", "--root", str(hub)]
    # A killed btfhub cannot remove its temporary files (a keyring's directory):
    # they go below the test's own directory, not the machine's /tmp.
    killed_tmp = hub.parent / "killed-tmp"
    killed_tmp.mkdir(exist_ok=True)
    process = subprocess.Popen(
        [*command, *mirror_args(mirror_server), *FOCAL],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(killed_tmp)},
    )
    try:
        assert held.wait(120), "the run never reached its manifest"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        process.kill()
        proxy.release()

    assert not (hub / "index.json").exists()  # it names nothing, let alone a missing blob
    assert archive_files(hub) == {}
    proxy.clear()
    before = len(package_requests(mirror_server))
    again = _reconcile(capsys, hub, mirror_server)
    assert again.code == 0, again.err
    assert len(package_requests(mirror_server)) == before  # staged: nothing built again
    assert _file_uploads(proxy) == []  # and nothing sent again
    assert sorted(next(iter(v)) for v in _locations(hub).values()) == PATHS


def _consumer_fetches_nf_demo(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hub: Path
) -> None:
    """A consumer with only hub's index.json fetches K26's BTF merged with nf_demo's."""
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    shutil.copyfile(hub / "index.json", consumer / "index.json")
    out = consumer / "merged.btf"
    machine = _machine_args(consumer, K26)
    cache = ("--cache-dir", str(consumer / "cache"))
    fetched = btfhub(capsys, consumer, "fetch", *machine, *cache, "--modules", "nf_demo",
                     "--output", str(out))  # fmt: skip
    assert fetched.code == 0, fetched.err
    assert f"struct {module_struct('nf_demo')} {{" in dump_c(out)


@pytest.fixture
def nf_demo_hub(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mirror_server: FaultyMirror,
    store: str,
    fixture_elf: Path,
) -> Path:
    """A fresh hub in the test's store; the mirror's one kernel, K26, has the module nf_demo."""
    module = build_module(tmp_path / "objects", "nf_demo")
    ddeb = build_ddeb_with_modules(
        tmp_path / "ddeb", K26, fixture_elf, {"net/netfilter/nf_demo.ko": module}, "5.4.0-26.30"
    )
    write_ubuntu(mirror_server, focal_suites([AptPackage.from_deb(ddeb)]))
    monkeypatch.setenv("BTFHUB_STORE", store)
    return make_hub(tmp_path / "hub")


def _ask_for_nf_demo(hub: Path) -> None:
    manifest = hub / "catalog" / "ubuntu.yaml"
    text, n = re.subn(r"(\n  - name: Focal\n)", r"\1    modules: [nf_demo]\n", manifest.read_text())
    assert n == 1
    manifest.write_text(text)


def test_a_kernels_modules_file_is_stored_like_any_other_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    proxy: RegistryProxy,
    store: str,
    nf_demo_hub: Path,
) -> None:
    hub = nf_demo_hub
    _ask_for_nf_demo(hub)

    run = _reconcile(capsys, hub, mirror_server)

    assert run.code == 0, run.err
    assert archive_files(hub) == {}
    modules_file = f"{DIRECTORY}/{K26}.modules.tar.xz"
    assert sorted(_locations(hub)[K26]) == [PATHS[0], modules_file]
    arch = load_index(hub)["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]
    listed = arch["x86_64"]["modules"][K26]
    assert listed["path"] == modules_file and sorted(listed["modules"]) == ["nf_demo"]
    assert "blob" not in listed  # no git blob: the registry holds it
    # The modules' listing survives a render that reads nothing but index.json.
    index_bytes = (hub / "index.json").read_bytes()
    proxy.clear()
    assert btfhub(capsys, hub, "render").code == 0
    assert (hub / "index.json").read_bytes() == index_bytes and proxy.seen == []

    _consumer_fetches_nf_demo(capsys, tmp_path, hub)

    # Both files come back into archive/, the modules' listing unchanged, and go again.
    assert btfhub(capsys, hub, "store", "migrate", "--to", "git").code == 0
    assert sorted(archive_files(hub)) == [PATHS[0], modules_file]
    arch = load_index(hub)["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]
    assert {k: v for k, v in arch["x86_64"]["modules"][K26].items() if k != "blob"} == listed
    assert btfhub(capsys, hub, "store", "migrate", "--to", store).code == 0
    assert (hub / "index.json").read_bytes() == index_bytes


@dataclass(frozen=True)
class AskedForModules:
    hub: Path
    base: dict[str, Any]  # K26's kernel entry, built without modules
    mirror: FaultyMirror
    proxy: RegistryProxy
    store: str


@pytest.fixture
def asked_for_modules(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    proxy: RegistryProxy,
    store: str,
    nf_demo_hub: Path,
) -> AskedForModules:
    """nf_demo_hub with K26 archived without modules, its release then asking for nf_demo."""
    hub = nf_demo_hub
    assert _reconcile(capsys, hub, mirror_server).code == 0
    arch = load_index(hub)["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]
    assert "modules" not in arch["x86_64"]
    _ask_for_nf_demo(hub)
    return AskedForModules(hub, arch["x86_64"]["kernels"][K26], mirror_server, proxy, store)


def _pulled_the_btf_pushed_the_modules(
    proxy: RegistryProxy, store: str, base: dict[str, Any]
) -> None:
    """The archived BTF came from the registry, by its digest; only the modules file went up."""
    pulled = [s.path for s in proxy.seen if s.method == "GET" and "/blobs/" in s.path]
    assert pulled == [f"/v2/{store.split('/', 3)[3]}/blobs/sha256:{base['sha256']}"]
    assert len(_file_uploads(proxy)) == 1


def _modules_recorded_beside(hub: Path, base: dict[str, Any]) -> None:
    """index.json: K26's BTF file as it was (base), its nf_demo modules file beside it."""
    arch = load_index(hub)["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]
    assert arch["x86_64"]["kernels"][K26] == base
    assert sorted(arch["x86_64"]["modules"][K26]["modules"]) == ["nf_demo"]
    assert sorted(_locations(hub)[K26]) == [PATHS[0], f"{DIRECTORY}/{K26}.modules.tar.xz"]


def test_a_release_gaining_modules_builds_them_on_the_btf_pulled_from_the_registry(
    asked_for_modules: AskedForModules,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    registry: Registry,
) -> None:
    asked = asked_for_modules
    hub, base, mirror_server, proxy = asked.hub, asked.base, asked.mirror, asked.proxy

    # The registry's copy of the archived BTF altered: the pull refuses it, nothing recorded.
    stored = registry.blob_data(base["sha256"])
    good = stored.read_bytes()
    stored.write_bytes(b"X" + good[1:])
    index_bytes = (hub / "index.json").read_bytes()
    refused = _reconcile(capsys, hub, mirror_server)
    assert refused.code != 0
    assert base["sha256"] in refused.err and "sha256" in refused.err
    assert (hub / "index.json").read_bytes() == index_bytes
    assert not [p for p in (hub / STAGING).rglob("*") if p.is_file()]
    stored.write_bytes(good)

    proxy.clear()
    run = _reconcile(capsys, hub, mirror_server)

    assert run.code == 0, run.err
    assert "summary: 1 built" in run.out  # the modules_only rebuild
    _pulled_the_btf_pushed_the_modules(proxy, asked.store, base)
    _modules_recorded_beside(hub, base)
    assert archive_files(hub) == {}
    assert not [p for p in (hub / STAGING).rglob("*") if p.is_file()]

    _consumer_fetches_nf_demo(capsys, tmp_path, hub)

    # Nothing left to build: the next run asks the registry nothing.
    proxy.clear()
    assert _reconcile(capsys, hub, mirror_server).code == 0
    assert proxy.seen == []


def test_a_shard_builds_the_modules_of_a_kernel_archived_in_the_registry(
    asked_for_modules: AskedForModules, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub, base, proxy = asked_for_modules.hub, asked_for_modules.base, asked_for_modules.proxy
    mirrors = mirror_args(asked_for_modules.mirror)

    planned = btfhub(capsys, hub, "plan", *mirrors, *FOCAL, "--json", "--shards", "1")
    assert planned.code == 0, planned.err
    assert json.loads(planned.out)["kernels"][0].get("modules_only") is True
    (tmp_path / "plan.json").write_text(planned.out)
    out = tmp_path / "out"
    proxy.clear()
    shard = btfhub(
        capsys, hub, "reconcile", "--shard", "1/1", "--plan", str(tmp_path / "plan.json"),
        "--output", str(out), *mirrors,
    )  # fmt: skip
    assert shard.code == 0, shard.err
    _pulled_the_btf_pushed_the_modules(proxy, asked_for_modules.store, base)

    assert btfhub(capsys, hub, "merge", str(out)).code == 0
    synced = btfhub(capsys, hub, "sync", *mirrors, *FOCAL, "--skip-build")
    assert synced.code == 0, synced.err
    _modules_recorded_beside(hub, base)
