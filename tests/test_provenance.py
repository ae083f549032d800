"""Issue 18: provenance in index.json, `btfhub verify [--rebuild]`, and a signed index.json.

One hub is built per module from a local mirror (a real .ddeb and a real
.rpm around the fixture ELF, real pahole) with a hub signing key made at
test time (gpg, GNUPGHOME in tmp; its agent is stopped at teardown, and the
test checks btfhub's own signing left none). Each test works on its own
copy of that hub; the mirror keeps serving for the rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.btf.encode import encode_btf
from generator.btf.tarball import reproducible_tar_xz
from generator.cli import main
from generator.demokit.mirror import AptPackage
from generator.demokit.rpmpkg import build_rpm
from generator.demokit.signing import Signer, default_signer
from tests.kit import processes
from tests.kit.hub import (
    archive_files,
    btfhub,
    build_ddeb,
    focal_suites,
    make_hub,
    mirror_args,
    quick_upstream,
    write_centos,
    write_ubuntu,
)
from tests.kit.mirror import FaultyMirror

K26 = "5.4.0-26-generic"
C7 = "3.10.0-1160.el7.x86_64"
DEB_FILE = f"archive/ubuntu/20.04/x86_64/{K26}.btf.tar.xz"
RPM_FILE = f"archive/centos/7/x86_64/{C7}.btf.tar.xz"
SELECT = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")


def agents_of(home_prefix: str, grace: float = 3.0) -> list[str]:
    """Command lines of this run's gpg-agents naming a GnuPG home that starts with home_prefix,
    still running `grace` seconds later.

    This run's only (processes.marked): other runs on the machine sign too.
    `gpgconf --kill` asks an agent to stop and returns; the agent ends a moment
    later (under load, after the next check: a run failed so).
    """
    agents = {
        pid: cmdline
        for pid, cmdline in processes.marked(os.environ[processes.RUN_MARKER]).items()
        if "gpg-agent" in cmdline and home_prefix in cmdline
    }
    return sorted(processes.wait_gone(agents, grace).values())


class Built:
    """The module's hub, its mirror and the hub's signing key."""

    def __init__(self, root: Path, server: FaultyMirror, key: Signer, secret: Path) -> None:
        self.root, self.server, self.key, self.secret = root, server, key, secret


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> Iterator[Built]:
    base = tmp_path_factory.mktemp("provenance")
    ddeb: AptPackage = build_ddeb(
        base / "debs", f"linux-image-unsigned-{K26}-dbgsym", "5.4.0-26.30", K26, fixture_elf
    )
    rpm = build_rpm(
        base / "rpm", "kernel-debuginfo", "3.10.0", "1160.el7", "x86_64", C7, fixture_elf, "xz"
    )
    key = Signer(base / "hub-gnupg", "btfhub test hub")
    secret = base / "hub-secret.asc"
    secret.write_bytes(key.gpg("--armor", "--export-secret-keys"))
    with FaultyMirror(base / "mirror") as server:
        write_ubuntu(server, focal_suites([ddeb]))
        write_centos(server, "7", [rpm])
        root = make_hub(base / "hub")
        before = os.environ.get("BTFHUB_SIGNING_KEY")
        os.environ["BTFHUB_SIGNING_KEY"] = str(secret)
        try:
            for selection in (SELECT, ("--distro", "centos7", "--arch", "x86_64")):
                code = main(
                    ["reconcile", "--root", str(root), *mirror_args(server), *selection],
                    upstream=quick_upstream,
                )
                assert code == 0
        finally:
            if before is None:
                os.environ.pop("BTFHUB_SIGNING_KEY", None)
            else:
                os.environ["BTFHUB_SIGNING_KEY"] = before
        yield Built(root, server, key, secret)
    key.close()


@pytest.fixture
def hub(built: Built, tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    shutil.copytree(built.root, root, ignore=shutil.ignore_patterns(".btfhub-cache"))
    return root


def index(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "index.json").read_bytes())
    return data


def arch_entry(root: Path, distro: str, release: str) -> dict[str, Any]:
    """The x86_64 entry of a release (for CentOS 7: the one listing C7)."""
    releases = index(root)["distributions"][distro]["releases"]
    if distro == "centos7":
        release = next(
            r for r, e in releases.items() if C7 in e["architectures"]["x86_64"]["kernels"]
        )
    entry: dict[str, Any] = releases[release]["architectures"]["x86_64"]
    return entry


def edit_index(root: Path, change: Any) -> None:
    """Change index.json (after signing): change(document) edits it in place."""
    doc = index(root)
    change(doc)
    (root / "index.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def fetch(capsys: pytest.CaptureFixture[str], root: Path, out: Path, *keys: Path) -> Any:
    hub_keys = [arg for k in keys for arg in ("--hub-key", str(k))]
    return btfhub(
        capsys, root, "fetch", "--index", str(root / "index.json"), "--id", "ubuntu",
        "--version-id", "20.04", "--kernel", K26, "--arch", "x86_64", "--output", str(out),
        "--cache-dir", str(out.parent / "cache"), *hub_keys,
    )  # fmt: skip


# -- provenance in index.json ---------------------------------------------------------


def test_every_archived_file_names_its_package_key_and_pahole(built: Built) -> None:
    test_key = default_signer().fingerprint()
    deb = arch_entry(built.root, "ubuntu", "focal")
    prov = deb["provenance"][K26]
    kernel = deb["kernels"][K26]
    assert prov["file_sha256"] == kernel["sha256"]
    assert prov["package"]["url"].startswith("http://ddebs.ubuntu.com/pool/main/l/linux/")
    assert prov["package"]["sha256"] == kernel["package"]["sha256"]
    assert prov["package"]["size"] == kernel["package"]["size"]
    assert prov["vouched_by"] == {
        "signed_index": {
            "url": "http://ddebs.ubuntu.com/dists/focal/InRelease",
            "keys": [test_key],
        }
    }
    assert prov["pahole"]["version"] == "v1.30"
    assert "--btf_gen_floats" in prov["pahole"]["arguments"]
    assert prov["pahole"]["arguments"][-2:] == ["--btf_encode_detached={btf}", "{vmlinux}"]
    assert prov["btfhub"] == "0.1.0"
    # An RPM's header signature is what vouched for it (CentOS publishes no repomd.xml.asc).
    rpm = arch_entry(built.root, "centos7", "")["provenance"][C7]
    assert rpm["vouched_by"]["rpm_header"] == {"keys": [test_key]}
    assert rpm["package"]["url"].endswith("/7/x86_64/kernel-debuginfo-3.10.0-1160.el7.x86_64.rpm")
    assert index(built.root)["revision"] == 2


def test_a_file_built_before_provenance_is_legacy_and_render_keeps_it_so(
    hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def forget(doc: dict[str, Any]) -> None:
        arch = doc["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"]
        del arch["provenance"]

    edit_index(hub, forget)  # an index.json written by an older btfhub
    assert btfhub(capsys, hub, "render").code == 0
    sha = arch_entry(hub, "ubuntu", "focal")["kernels"][K26]["sha256"]
    assert arch_entry(hub, "ubuntu", "focal")["provenance"] == {
        K26: {"legacy": True, "file_sha256": sha}
    }
    # A file whose bytes changed is no longer described by what its build recorded.
    path = hub / RPM_FILE
    path.write_bytes(path.read_bytes() + b"\0")
    assert btfhub(capsys, hub, "render").code == 0
    rpm = arch_entry(hub, "centos7", "")
    assert rpm["provenance"][C7] == {"legacy": True, "file_sha256": rpm["kernels"][C7]["sha256"]}
    run = btfhub(capsys, hub, "verify", "--rebuild")
    assert f"skipped {DEB_FILE}: no recorded provenance" in run.out


# -- the signed index -----------------------------------------------------------------


def test_the_signing_left_no_agent_and_a_signed_hub_verifies(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert agents_of("/btfhub-sign-") == []
    assert (built.root / "index.json.asc").read_bytes().startswith(b"-----BEGIN PGP SIGNATURE")
    out = tmp_path / "out" / "vmlinux.btf"
    run = fetch(capsys, built.root, out, built.key.public_key)
    assert run.code == 0, run.err
    assert out.is_file()
    lookup = btfhub(
        capsys, built.root, "lookup", "--index", str(built.root / "index.json"), "--json",
        "--id", "ubuntu", "--version-id", "20.04", "--kernel", K26, "--arch", "x86_64",
        "--hub-key", str(built.key.public_key),
    )  # fmt: skip
    answer = json.loads(lookup.out)
    assert (answer["index_signed"], answer["index_signers"]) == (True, [built.key.fingerprint()])
    run = btfhub(capsys, built.root, "verify", "--hub-key", str(built.key.public_key))
    assert run.code == 0, run.out + run.err
    assert "checked 2 file(s): 0 problem(s)" in run.out


def test_without_hub_keys_the_index_is_read_as_before_and_said_unsigned(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    lookup = btfhub(
        capsys, built.root, "lookup", "--index", str(built.root / "index.json"), "--json",
        "--id", "ubuntu", "--version-id", "20.04", "--kernel", K26, "--arch", "x86_64",
    )  # fmt: skip
    assert lookup.code == 0
    answer = json.loads(lookup.out)
    assert (answer["found"], answer["index_signed"], answer["index_signers"]) == (True, False, [])


def test_an_unchanged_index_keeps_its_signature_and_a_changed_one_without_key_loses_it(
    hub: Path, built: Built, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    signature = (hub / "index.json.asc").read_bytes()
    monkeypatch.setenv("BTFHUB_SIGNING_KEY", str(built.secret))
    run = btfhub(capsys, hub, "render")
    assert run.code == 0 and "already up to date" in run.out
    assert (hub / "index.json.asc").read_bytes() == signature
    monkeypatch.delenv("BTFHUB_SIGNING_KEY")
    (hub / DEB_FILE).unlink()
    assert btfhub(capsys, hub, "render").code == 0
    assert not (hub / "index.json.asc").exists()
    assert agents_of("/btfhub-sign-") == []


@pytest.mark.parametrize("damage", ["edited", "other key", "missing"])
def test_fetch_with_the_hub_key_refuses_an_index_it_cannot_trust(
    hub: Path,
    built: Built,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    gpg_home: Callable[[], Path],
) -> None:
    if damage == "edited":

        def more_types(doc: dict[str, Any]) -> None:
            doc["generated_by"] += " "

        edit_index(hub, more_types)
    elif damage == "other key":
        stranger = Signer(gpg_home(), "a stranger")
        try:
            stranger.sign_detached(hub / "index.json")
        finally:
            stranger.close()
    else:
        (hub / "index.json.asc").unlink()
    out = tmp_path / "out" / "vmlinux.btf"
    run = fetch(capsys, hub, out, built.key.public_key)
    assert run.code == 1
    assert "refusing the index" in run.err
    assert not out.parent.exists()  # nothing written, not even the cache
    assert btfhub(capsys, hub, "verify", "--hub-key", str(built.key.public_key)).code == 1


def test_a_swapped_file_with_its_sha256_updated_is_refused_and_reported(
    hub: Path, built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Another kernel's file in its place, index.json updated to match it.
    (hub / DEB_FILE).write_bytes((hub / RPM_FILE).read_bytes())
    digest = hashlib.sha256((hub / DEB_FILE).read_bytes()).hexdigest()

    def swap(doc: dict[str, Any]) -> None:
        entry = doc["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"]
        entry["kernels"][K26].update(sha256=digest, size=(hub / DEB_FILE).stat().st_size)

    edit_index(hub, swap)
    out = tmp_path / "out" / "vmlinux.btf"
    assert fetch(capsys, hub, out, built.key.public_key).code == 1
    run = btfhub(capsys, hub, "verify")
    assert run.code == 1
    assert f"{DEB_FILE}: holds regular file '{C7}.btf', expected only {K26}.btf" in run.out
    assert f"{DEB_FILE}: its provenance describes sha256" in run.out


# -- btfhub verify ---------------------------------------------------------------------


def test_verify_names_a_file_with_one_byte_changed(
    hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert btfhub(capsys, hub, "verify", *SELECT).code == 0
    data = bytearray((hub / DEB_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (hub / DEB_FILE).write_bytes(bytes(data))
    run = btfhub(capsys, hub, "verify")
    assert run.code == 1
    lines = [line for line in run.out.splitlines() if line.startswith("archive/")]
    assert lines and all(line.startswith(f"{DEB_FILE}: ") for line in lines)
    assert "index.json lists" in run.out
    assert "checked 2 file(s)" in run.out
    # Selectors narrow the check: the CentOS file alone is fine.
    assert btfhub(capsys, hub, "verify", "--distro", "centos").code == 0


def test_verify_rebuild_reproduces_every_file_byte_for_byte(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    run = btfhub(capsys, built.root, "verify", "--rebuild", *mirror_args(built.server))
    assert run.code == 0, run.out + run.err
    assert "rebuilt 2 of 2 sampled file(s)" in run.out
    assert "2 identical, 0 differ" in run.out


def test_verify_rebuild_samples_reproducibly(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    picked = []
    for _ in range(2):
        run = btfhub(
            capsys, built.root, "verify", "--rebuild", "--sample", "1", "--seed", "7",
            *mirror_args(built.server),
        )  # fmt: skip
        assert run.code == 0, run.out + run.err
        assert "rebuilt 1 of 1 sampled file(s) (seed 7)" in run.out
        picked.append([r.path for r in built.server.log if r.path.endswith((".ddeb", ".rpm"))])
    assert picked[1][len(picked[0]) :] == picked[0][-1:]


def test_verify_rebuild_names_a_file_built_with_other_pahole_arguments(
    hub: Path, built: Built, fixture_elf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = arch_entry(hub, "ubuntu", "focal")["provenance"][K26]["pahole"]["arguments"]
    other = tuple(a for a in recorded if a != "--btf_gen_floats")  # the double is dropped
    raw = tmp_path / "other.btf"
    encode_btf(fixture_elf, raw, arguments=other)
    data = reproducible_tar_xz(f"{K26}.btf", raw.read_bytes())
    (hub / DEB_FILE).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    def record(doc: dict[str, Any]) -> None:  # index.json and provenance match the file
        entry = doc["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"]
        entry["kernels"][K26].update(sha256=digest, size=len(data))
        entry["provenance"][K26]["file_sha256"] = digest

    edit_index(hub, record)
    assert btfhub(capsys, hub, "verify").code == 0  # size, sha256, member, BTF: all fine
    run = btfhub(capsys, hub, "verify", "--rebuild", *mirror_args(built.server))
    assert run.code == 1
    (line,) = [x for x in run.out.splitlines() if x.startswith("archive/")]
    assert line.startswith(f"{DEB_FILE}: rebuilt bytes differ: archive file {len(data)} bytes")
    assert "types, rebuilt" in line
    assert "1 identical, 1 differ" in run.out
    assert sorted(archive_files(hub)) == [RPM_FILE, DEB_FILE]  # verify writes nothing
