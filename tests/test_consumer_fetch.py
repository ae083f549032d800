"""`btfhub fetch`: verified downloads from a real HTTP server, the sha256 cache, extraction."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import api
from generator.btf.tarball import xz_compress
from generator.catalog import load_catalog
from generator.demokit.bpftool import dump_c
from generator.demokit.elf import STRUCT_NAMES
from generator.render import render_hub
from generator.state import load_hub_state
from tests.kit.consumer import FIXTURE_BTF, OS_RELEASES, copy_consumer_hub
from tests.kit.hub import btfhub
from tests.kit.mirror import FaultyMirror

RHEL_KERNEL = "4.18.0-305.el8.x86_64"
RHEL_PATH = f"archive/rhel/8/x86_64/{RHEL_KERNEL}.btf.tar.xz"
RHEL = ["--os-release", str(OS_RELEASES / "rhel-8.4"), "--kernel", RHEL_KERNEL, "--arch", "x86_64"]


@pytest.fixture(scope="module")
def fixture_btf(consumer_template: Path) -> bytes:
    return (consumer_template / FIXTURE_BTF).read_bytes()


@pytest.fixture
def hub(tmp_path: Path, consumer_template: Path) -> Path:
    return copy_consumer_hub(consumer_template, tmp_path)


@pytest.fixture
def served(hub: Path) -> Iterator[FaultyMirror]:
    """The hub's checkout served over HTTP as a static site (raw.githubusercontent-like)."""
    with FaultyMirror(hub) as server:
        yield server


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache"


def file_requests(server: FaultyMirror) -> list[str]:
    return [r.path for r in list(server.log) if r.path.endswith(".btf.tar.xz")]


def test_fetch_from_checkout_writes_btf_bpftool_reads(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path, fixture_btf: bytes
) -> None:
    out = tmp_path / "out" / "vmlinux.btf"
    run = btfhub(capsys, hub, "fetch", *RHEL, "--output", str(out))
    assert run.code == 0, run.err
    assert out.read_bytes() == fixture_btf
    assert f"{RHEL_PATH} (local," in run.out
    c_dump = dump_c(out)
    assert all(f"struct {name} {{" in c_dump for name in STRUCT_NAMES)


def test_fetch_over_http_verifies_and_caches(
    capsys: pytest.CaptureFixture[str],
    hub: Path,
    served: FaultyMirror,
    tmp_path: Path,
    cache_home: Path,
    fixture_btf: bytes,
) -> None:
    base = ["--index", str(hub / "index.json"), "--base-url", served.url]
    first = tmp_path / "first.btf"
    run = btfhub(capsys, hub, "fetch", *RHEL, *base, "--output", str(first))
    assert run.code == 0, run.err
    assert "(download," in run.out
    assert file_requests(served) == [f"/{RHEL_PATH}"]
    assert first.read_bytes() == fixture_btf
    cached = list((cache_home / "btfhub" / "files").rglob("*.btf.tar.xz"))
    assert [p.read_bytes() for p in cached] == [(hub / RHEL_PATH).read_bytes()]

    # A second fetch (another output) makes no request at all.
    before = len(served.log)
    second = tmp_path / "second.btf"
    run = btfhub(capsys, hub, "fetch", *RHEL, *base, "--output", str(second))
    assert run.code == 0 and "(cache," in run.out
    assert len(served.log) == before
    assert second.read_bytes() == fixture_btf


def test_fetch_with_index_url_downloads_beside_it(
    hub: Path, served: FaultyMirror, tmp_path: Path, fixture_btf: bytes
) -> None:
    out = tmp_path / "v.btf"
    fetched = api.fetch(
        out,
        os_release=OS_RELEASES / "rhel-8.4",
        kernel=RHEL_KERNEL,
        arch="x86_64",
        index=f"{served.url}index.json",
    )
    assert fetched.source == "download" and out.read_bytes() == fixture_btf
    assert [r.path for r in served.log] == ["/index.json", f"/{RHEL_PATH}"]
    api.fetch(out, os_release=OS_RELEASES / "rhel-8.4", kernel=RHEL_KERNEL, arch="x86_64",
              index=f"{served.url}index.json")  # fmt: skip
    # Only the index again: the file comes from the cache.
    assert [r.path for r in served.log][2:] == ["/index.json"]


def test_fetch_refuses_a_file_that_does_not_match_the_index(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path, cache_home: Path
) -> None:
    site = tmp_path / "site"
    shutil.copytree(hub / "archive", site / "archive")
    tampered = site / RHEL_PATH
    tampered.write_bytes(tampered.read_bytes()[:-1] + b"\x00")  # same size, other bytes
    out = tmp_path / "v.btf"
    with FaultyMirror(site) as server:
        run = btfhub(capsys, hub, "fetch", *RHEL, "--index", str(hub / "index.json"),
                     "--base-url", server.url, "--output", str(out))  # fmt: skip
        assert run.code == 1
        assert f"{RHEL_PATH}: sha256 " in run.err and " does not match " in run.err
        server.truncate(f"/{RHEL_PATH}", keep=100)
        shutil.copyfile(hub / RHEL_PATH, tampered)
        run = btfhub(capsys, hub, "fetch", *RHEL, "--index", str(hub / "index.json"),
                     "--base-url", server.url, "--output", str(out))  # fmt: skip
        assert run.code == 1
        assert "connection failed after 100 bytes" in run.err or "but the index says" in run.err
    assert not out.exists()
    assert not list(cache_home.rglob("*.btf.tar.xz"))
    assert not [p for p in cache_home.rglob("*") if p.is_file()]


def test_fetch_refuses_a_stale_checkout_file(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path
) -> None:
    (hub / RHEL_PATH).write_bytes(b"not what the index lists")
    run = btfhub(capsys, hub, "fetch", *RHEL, "--output", str(tmp_path / "v.btf"))
    assert run.code == 1 and "index.json says" in run.err
    assert not (tmp_path / "v.btf").exists()


def _tar_xz(members: list[tarfile.TarInfo], data: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info in members:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return xz_compress(raw.getvalue())


def _member(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    return info


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([_member(f"{RHEL_KERNEL}.btf"), _member("extra.btf")], "a second member 'extra.btf'"),
        (
            [_member("other-kernel.btf")],
            f"holds regular file 'other-kernel.btf', expected only {RHEL_KERNEL}.btf",
        ),
        ([_member(f"../{RHEL_KERNEL}.btf")], "expected only"),
        ([_member(f"{RHEL_KERNEL}.btf", tarfile.SYMTYPE)], "non-regular member"),
        ([], "empty archive"),
    ],
)
def test_fetch_refuses_archives_the_hub_does_not_write(
    capsys: pytest.CaptureFixture[str],
    hub: Path,
    tmp_path: Path,
    fixture_btf: bytes,
    members: list[tarfile.TarInfo],
    message: str,
) -> None:
    # The file is listed with its real size and sha256: only its content is wrong.
    (hub / RHEL_PATH).write_bytes(_tar_xz(members, fixture_btf))
    render_hub(hub, load_catalog(hub), load_hub_state(hub))
    out = tmp_path / "v.btf"
    run = btfhub(capsys, hub, "fetch", *RHEL, "--output", str(out))
    assert run.code == 1
    assert message in run.err
    assert not out.exists() and not list(tmp_path.glob(".v.btf*"))


def test_fetch_refuses_invalid_btf(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path
) -> None:
    (hub / RHEL_PATH).write_bytes(_tar_xz([_member(f"{RHEL_KERNEL}.btf")], b"\x9f\xeb\x01\x00junk"))
    render_hub(hub, load_catalog(hub), load_hub_state(hub))
    run = btfhub(capsys, hub, "fetch", *RHEL, "--output", str(tmp_path / "v.btf"))
    assert run.code == 1 and "malformed BTF" in run.err


def test_fetch_not_found_exits_1_with_reason(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path
) -> None:
    out = tmp_path / "v.btf"
    focal = str(OS_RELEASES / "ubuntu-20.04")
    run = btfhub(capsys, hub, "fetch", "--os-release", focal, "--kernel", "5.4.0-99-generic",
                 "--arch", "x86_64", "--output", str(out))  # fmt: skip
    assert run.code == 1
    assert "the hub failed to build it: package holds no vmlinux" in run.err
    assert not out.exists()
    with pytest.raises(api.KernelNotFound) as info:
        api.fetch(out, id="ubuntu", version_id="20.04", kernel="5.4.0-100-generic",
                  arch="x86_64", root=hub)  # fmt: skip
    assert info.value.result.availability is api.Availability.NOT_ARCHIVED


def test_fetch_select_gets_many_in_the_archive_layout(
    capsys: pytest.CaptureFixture[str],
    hub: Path,
    served: FaultyMirror,
    tmp_path: Path,
    fixture_btf: bytes,
) -> None:
    out = tmp_path / "btfs"
    run = btfhub(
        capsys, hub, "fetch", "--index", str(hub / "index.json"), "--base-url", served.url,
        "--select", "distro=ubuntu,arch=x86_64,kernel=5.*-generic",
        "--select", "distro=centos7", "--select", "distro=amzn,release=1",
        "--select", "distro=fedora,kernel=6.*",
        "--output", str(out),
    )  # fmt: skip
    assert run.code == 0, run.err
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == [
        "amzn/1/x86_64/4.14.355-196.768.amzn1.x86_64.btf",
        "centos/7/x86_64/3.10.0-1160.el7.x86_64.btf",
        "fedora/31/x86_64/6.5.0-1.fc31.x86_64.btf",
        "ubuntu/20.04/x86_64/5.4.0-42-generic.btf",
        "ubuntu/20.04/x86_64/5.8.0-63-generic.btf",
    ]
    assert all(p.read_bytes() == fixture_btf for p in out.rglob("*.btf"))
    assert len(file_requests(served)) == 5
    assert run.out.splitlines()[-1] == f"fetched 5 file(s) into {out}: 5 download"
    # Again: everything from the cache, nothing downloaded.
    run = btfhub(capsys, hub, "fetch", "--index", str(hub / "index.json"), "--base-url",
                 served.url, "--select", "release=focal-hwe", "--output", str(out))  # fmt: skip
    assert run.out.splitlines()[-1] == f"fetched 1 file(s) into {out}: 1 cache"
    assert len(file_requests(served)) == 5


def test_fetch_select_rejects_bad_filters(capsys: pytest.CaptureFixture[str], hub: Path) -> None:
    run = btfhub(capsys, hub, "fetch", "--select", "os=ubuntu", "--output", "x")
    assert run.code == 1 and "expected distro=..,release=..,arch=..,kernel=GLOB" in run.err


def test_environment_configures_the_hub(
    capsys: pytest.CaptureFixture[str],
    hub: Path,
    served: FaultyMirror,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fixture_btf: bytes,
) -> None:
    # A tool sets BTFHUB_INDEX once; lookup prints the URL, fetch downloads from beside it.
    monkeypatch.setenv("BTFHUB_INDEX", f"{served.url}index.json")
    elsewhere = tmp_path / "not-a-hub"
    elsewhere.mkdir()
    run = btfhub(capsys, elsewhere, "lookup", *RHEL)
    assert run.code == 0, run.err
    assert f"url: {served.url}{RHEL_PATH}" in run.out.splitlines()
    out = tmp_path / "v.btf"
    assert btfhub(capsys, elsewhere, "fetch", *RHEL, "--output", str(out)).code == 0
    assert out.read_bytes() == fixture_btf
    monkeypatch.setenv("BTFHUB_INDEX", str(hub / "index.json"))
    monkeypatch.setenv("BTFHUB_BASE_URL", "https://mirror.example/hub")
    run = btfhub(capsys, elsewhere, "lookup", *RHEL)
    assert f"url: https://mirror.example/hub/{RHEL_PATH}" in run.out.splitlines()


def test_an_index_that_breaks_its_schema_is_refused(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "index.json"
    bad.write_text('{"schema_version": 1, "distributions": {"u": {"releases": []}}}\n')
    run = btfhub(capsys, hub, "lookup", *RHEL, "--index", str(bad))
    assert run.code == 1
    assert f"{bad}: 1 problem(s) with its contents:" in run.err
    assert "$.distributions.u.releases" in run.err
