"""`btfhub plan` and `btfhub reconcile` end to end: shipped catalog, local upstream, real tools.

Every test runs the CLI in process against a temporary hub (a copy of
catalog/ and README.md) whose manifests' public URLs are pointed at a
FaultyMirror on 127.0.0.1. The packages are real: .ddeb files built with
dpkg-deb and .rpm files built with rpmbuild around a gcc -g ELF (built once
per session), read by the real package readers and encoded by the real
pahole; bpftool reads the results back.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from generator import render as render_module
from generator.btf.encode import PAHOLE_ENV, PAHOLE_VERSION, pahole
from generator.demokit.bpftool import dump_c
from generator.demokit.elf import STRUCT_NAMES
from generator.demokit.mirror import AptPackage, RpmPackage, write_release
from generator.hub import earlyscan, run
from generator.hub.rendermemo import MEMO
from generator.lock import LOCK_NAME
from generator.render import BEGIN_MARKER
from generator.store import hubstore
from tests.kit.hub import (
    FEDORA_LINUX,
    Run,
    archive_files,
    btfhub,
    build_ddeb,
    closed_port,
    focal_suites,
    hub_cell,
    kernels,
    make_hub,
    meta_only,
    mirror_args,
    mirror_pairs,
    package_requests,
    pool_path,
    states,
    tree_digest,
    write_centos,
    write_fedora,
    write_ubuntu,
)
from tests.kit.mirror import FaultyMirror
from tests.kit.shelf import build_rpm

FOCAL = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")
UBUNTU_2004 = "archive/ubuntu/20.04/x86_64"
K26, K42, K48, K77, K99 = (f"5.4.0-{n}-generic" for n in (26, 42, 48, 77, 99))
HWE = "5.8.0-43-generic"


@pytest.fixture(scope="session")
def debs(
    tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path, fixture_elf_with_btf: Path
) -> dict[str, AptPackage]:
    """Ubuntu ddebs, built once: unsigned images with vmlinux, signed-flavour stubs without."""
    base = tmp_path_factory.mktemp("e2e-ddebs")

    def unsigned(
        uname: str, version: str, compression: str, *, source: str = "linux", btf: bool = False
    ) -> AptPackage:
        name = f"linux-image-unsigned-{uname}-dbgsym"
        elf = fixture_elf_with_btf if btf else fixture_elf
        return build_ddeb(base, name, version, uname, elf, compression, source)

    def stub(uname: str, version: str, compression: str = "xz") -> AptPackage:
        name = f"linux-image-{uname}-dbgsym"
        return build_ddeb(base, name, version, uname, None, compression)

    return {
        "u26": unsigned(K26, "5.4.0-26.30", "xz"),
        "s26": stub(K26, "5.4.0-26.30", "xz"),
        "u42": unsigned(K42, "5.4.0-42.46", "zst"),
        "s42": stub(K42, "5.4.0-42.46", "zst"),
        "u48": unsigned(K48, "5.4.0-48.52", "xz"),
        "u77": unsigned(K77, "5.4.0-77.86", "xz", btf=True),
        # Only the stub was published for this one: there is no vmlinux to be had.
        "s99": stub(K99, "5.4.0-99.112", "xz"),
        "hwe": unsigned(HWE, "5.8.0-43.49~20.04.9", "zst", source="linux-hwe-5.8"),
        "bionic": unsigned(K42, "5.4.0-42.46~18.04.1", "xz", source="linux-hwe-5.4"),
    }


# (version, release, payload) of kernel-debuginfo packages, all x86_64.
RPMS = {
    "c7_1160": ("3.10.0", "1160.el7", "xz"),
    "c7_1160_2": ("3.10.0", "1160.2.1.el7", "xz"),
    "c7_1062": ("3.10.0", "1062.el7", "xz"),
    # 3.10.0-123 (7.0.1406) is a prefix of it, but not on a version boundary.
    "c7_1234": ("3.10.0", "1234.el7", "xz"),
    "c8_193": ("4.18.0", "193.el8", "zstd"),
    "f31_ga": ("5.3.7", "301.fc31", "zstd"),
    "f31_upd": ("5.8.18", "100.fc31", "zstd"),
}


def rpm_uname(key: str) -> str:
    version, release, _ = RPMS[key]
    return f"{version}-{release}.x86_64"


@pytest.fixture(scope="session")
def rpms(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("e2e-rpms")
    return {
        key: build_rpm(
            base / key,
            "kernel-debuginfo",
            version,
            release,
            "x86_64",
            rpm_uname(key),
            fixture_elf,
            payload,
        )
        for key, (version, release, payload) in RPMS.items()
    }


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    return make_hub(tmp_path / "hub")


def reconcile(
    capsys: pytest.CaptureFixture[str], root: Path, server: FaultyMirror, *args: str
) -> Run:
    return btfhub(capsys, root, "reconcile", *mirror_args(server), *args)


def btf_as_c(tmp_path: Path, tar_xz: bytes, uname: str) -> str:
    """bpftool's C dump of the BTF inside an archive file (checks the tarball form too)."""
    with tarfile.open(fileobj=io.BytesIO(tar_xz), mode="r:xz") as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.isreg(), member.mode, member.mtime) == (
            f"{uname}.btf",
            True,
            0o444,
            0,
        )
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "root", "root")
        body = tar.extractfile(member)
        assert body is not None
        raw = tmp_path / f"{uname}.btf"
        raw.write_bytes(body.read())
    return dump_c(raw)


def payload_compressor(rpm: Path) -> str:
    return subprocess.run(
        ["rpm", "-qp", "--nosignature", "--qf", "%{PAYLOADCOMPRESSOR}", str(rpm)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def assert_fixture_types(c_source: str) -> None:
    for name in STRUCT_NAMES:
        assert f"struct {name} {{" in c_source


# -- 1. Ubuntu: xz and zstd ddebs, signed stub next to the unsigned image -----------


def test_focal_builds_only_the_unsigned_ddebs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    # One kernel's data.tar is xz, the other's zstd (as Ubuntu switched to).
    assert b"data.tar.xz" in debs["u26"].path.read_bytes()[:512]
    assert b"data.tar.zst" in debs["u42"].path.read_bytes()[:512]
    write_ubuntu(
        mirror_server,
        focal_suites([debs["u26"], debs["s26"]], [debs["u42"], debs["s42"]]),
    )

    run = reconcile(capsys, hub, mirror_server, *FOCAL)

    assert run.code == 0, run.err
    assert "summary: 2 built, 0 already there, 0 ship their own BTF, 0 failed" in run.out
    # The stubs are never downloaded: the unsigned package is preferred by name.
    assert sorted(package_requests(mirror_server)) == sorted(
        [pool_path(debs["u26"]), pool_path(debs["u42"])]
    )
    files = archive_files(hub)
    assert sorted(files) == [f"{UBUNTU_2004}/{K26}.btf.tar.xz", f"{UBUNTU_2004}/{K42}.btf.tar.xz"]
    for uname in (K26, K42):
        assert_fixture_types(btf_as_c(tmp_path, files[f"{UBUNTU_2004}/{uname}.btf.tar.xz"], uname))
    listed = kernels(hub, "ubuntu", "focal")
    assert {u: k["state"] for u, k in listed.items()} == {K26: "archived", K42: "archived"}
    assert listed[K26]["package"]["name"] == f"linux-image-unsigned-{K26}-dbgsym"
    assert listed[K42]["path"] == f"{UBUNTU_2004}/{K42}.btf.tar.xz"
    assert hub_cell(hub, "Focal") == "Y"
    assert hub_cell(hub, "Focal HWE") == "pending"  # not selected, so not discovered


# -- 2. a uname with only the stub: failed, the others still build ------------------


def test_stub_only_kernel_fails_and_the_others_build(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    write_ubuntu(
        mirror_server,
        focal_suites([debs["u26"], debs["s26"]], [debs["u42"], debs["s42"]], [debs["s99"]]),
    )

    run = reconcile(capsys, hub, mirror_server, *FOCAL)

    assert run.code == 1
    assert f"FAILED ubuntu/focal/x86_64 {K99}:" in run.err
    assert "no vmlinux" in run.err
    assert "summary: 2 built, 0 already there, 0 ship their own BTF, 1 failed" in run.out
    assert sorted(archive_files(hub)) == [
        f"{UBUNTU_2004}/{K26}.btf.tar.xz",
        f"{UBUNTU_2004}/{K42}.btf.tar.xz",
    ]
    failed = kernels(hub, "ubuntu", "focal")[K99]
    assert failed["state"] == "failed"
    assert "no vmlinux" in failed["reason"]
    assert failed["package"]["name"] == f"linux-image-{K99}-dbgsym"
    assert hub_cell(hub, "Focal") == "2/3"


def test_a_pahole_of_another_version_stops_the_run_and_fails_no_kernel(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    """Debian's pahole 1.24 instead of the pinned 1.30: an error, not 2 failed kernels."""
    system = shutil.which("pahole")
    assert system is not None
    if subprocess.run([system, "--version"], capture_output=True, text=True).stdout.strip() == (
        PAHOLE_VERSION
    ):
        pytest.skip(f"the system's pahole is {PAHOLE_VERSION} too")
    write_ubuntu(mirror_server, focal_suites([debs["u26"]], [debs["u42"]]))
    monkeypatch.setenv(PAHOLE_ENV, system)
    pahole.cache_clear()
    try:
        run = reconcile(capsys, hub, mirror_server, *FOCAL)
    finally:
        pahole.cache_clear()  # the next test finds the pinned one again

    assert run.code == 1
    assert f"btfhub encodes with pahole {PAHOLE_VERSION}" in run.err
    assert "FAILED" not in run.err
    assert archive_files(hub) == {}
    assert not (hub / "index.json").exists() or not kernels(hub, "ubuntu", "focal")


# -- 3. CentOS 7: one flat repository, releases by kernel series ---------------------


def test_centos7_kernels_land_in_their_releases(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    rpms: dict[str, Path],
) -> None:
    assert {payload_compressor(rpms[k]) for k in RPMS if k.startswith("c7_")} == {"xz"}
    decoys = tmp_path / "decoys"
    write_centos(
        mirror_server,
        "7",
        [
            rpms["c7_1160"],
            rpms["c7_1160_2"],
            rpms["c7_1062"],
            rpms["c7_1234"],
            meta_only(decoys, "kernel-debuginfo-common-x86_64", "3.10.0", "1160.el7", "x86_64"),
        ],
        codec="gz",
    )

    run = reconcile(capsys, hub, mirror_server, "--distro", "centos7", "--arch", "x86_64")

    assert run.code == 0, run.err
    built = [rpm_uname(k) for k in ("c7_1062", "c7_1160", "c7_1160_2")]
    assert sorted(archive_files(hub)) == sorted(
        f"archive/centos/7/x86_64/{u}.btf.tar.xz" for u in built
    )
    assert sorted(package_requests(mirror_server)) == sorted(
        f"/centos/7/x86_64/kernel-debuginfo-{u}.rpm" for u in built
    )
    assert states(hub, "centos7", "7.9.2009") == {
        rpm_uname("c7_1160"): "archived",
        rpm_uname("c7_1160_2"): "archived",
    }
    assert states(hub, "centos7", "7.7.1908") == {rpm_uname("c7_1062"): "archived"}
    # The decoy belongs to no release: never listed, never downloaded, never built.
    assert "1234.el7" not in (hub / "index.json").read_text()
    assert states(hub, "centos7", "7.0.1406") == {}
    assert hub_cell(hub, "7.9.2009") == "Y"
    assert hub_cell(hub, "7.7.1908") == "Y"
    assert hub_cell(hub, "7.0.1406") == "0/0"
    assert hub_cell(hub, "7.8.2003") == "0/0"


# -- 4. CentOS 8 and Fedora 31: zstd payloads, Packages/ layouts ----------------------


def test_centos8_and_fedora31_zstd_rpms(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    rpms: dict[str, Path],
) -> None:
    for key in ("c8_193", "f31_ga", "f31_upd"):
        assert payload_compressor(rpms[key]) == "zstd"
    decoys = tmp_path / "decoys"

    def common_decoy(key: str) -> RpmPackage:
        version, release, _ = RPMS[key]
        return meta_only(decoys, "kernel-debuginfo-common-x86_64", version, release, "x86_64")

    write_centos(mirror_server, "8", [rpms["c8_193"], common_decoy("c8_193")], codec="xz")
    write_fedora(
        mirror_server,
        "31",
        ga=[rpms["f31_ga"], common_decoy("f31_ga")],
        updates=[rpms["f31_upd"], common_decoy("f31_upd")],
    )

    centos = reconcile(capsys, hub, mirror_server, "--distro", "centos8", "--arch", "x86_64")
    assert centos.code == 0, centos.err
    fedora = reconcile(
        capsys, hub, mirror_server, "--distro", "fedora", "--release", "31", "--arch", "x86_64"
    )
    assert fedora.code == 0, fedora.err

    c8, ga, upd = rpm_uname("c8_193"), rpm_uname("f31_ga"), rpm_uname("f31_upd")
    files = archive_files(hub)
    assert sorted(files) == [
        f"archive/centos/8/x86_64/{c8}.btf.tar.xz",
        f"archive/fedora/31/x86_64/{ga}.btf.tar.xz",
        f"archive/fedora/31/x86_64/{upd}.btf.tar.xz",
    ]
    assert sorted(package_requests(mirror_server)) == [
        f"/centos/8/x86_64/Packages/kernel-debuginfo-{c8}.rpm",
        f"/{FEDORA_LINUX}/releases/31/Everything/x86_64/debug/tree/Packages/k/"
        f"kernel-debuginfo-{ga}.rpm",
        f"/{FEDORA_LINUX}/updates/31/Everything/x86_64/debug/Packages/k/kernel-debuginfo-{upd}.rpm",
    ]
    assert states(hub, "centos8", "8.2.2004") == {c8: "archived"}
    assert states(hub, "fedora", "31") == {ga: "archived", upd: "archived"}
    assert hub_cell(hub, "8.2.2004") == "Y"
    assert_fixture_types(
        btf_as_c(tmp_path, files[f"archive/fedora/31/x86_64/{upd}.btf.tar.xz"], upd)
    )


# -- 5. a failed download, then a successful rerun -----------------------------------


@pytest.mark.parametrize(
    ("fault", "symptom"),
    [("status", "HTTP 500"), ("truncated", "connection failed after"), ("drop", "gave up after")],
)
def test_failed_download_is_recorded_then_retried(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
    fault: str,
    symptom: str,
) -> None:
    write_ubuntu(mirror_server, focal_suites([debs["u26"], debs["s26"]]))
    path = pool_path(debs["u26"])
    if fault == "status":
        mirror_server.fail(path, 500, times=None)
    elif fault == "truncated":  # the full Content-Length announced, a third of the body sent
        mirror_server.truncate(path, keep=debs["u26"].path.stat().st_size // 3, times=None)
    else:
        mirror_server.drop(path, times=None)

    first = reconcile(capsys, hub, mirror_server, *FOCAL)

    assert first.code == 1
    assert f"FAILED ubuntu/focal/x86_64 {K26}:" in first.err
    assert archive_files(hub) == {}
    entry = kernels(hub, "ubuntu", "focal")[K26]
    assert entry["state"] == "failed"
    assert symptom in entry["reason"]
    # The reason names the package's public URL; index.json is committed and
    # must not change (or leak an address) with the mirror a run happened to use.
    public = f"http://ddebs.ubuntu.com{pool_path(debs['u26']).removeprefix('/ubuntu')}"
    assert public in entry["reason"]
    assert mirror_server.url not in (hub / "index.json").read_text()
    assert hub_cell(hub, "Focal") == "0/1"

    mirror_server.clear_faults()
    second = reconcile(capsys, hub, mirror_server, *FOCAL)

    assert second.code == 0, second.err
    assert sorted(archive_files(hub)) == [f"{UBUNTU_2004}/{K26}.btf.tar.xz"]
    entry = kernels(hub, "ubuntu", "focal")[K26]
    assert entry["state"] == "archived"
    assert "reason" not in entry
    assert hub_cell(hub, "Focal") == "Y"


# -- 6. idempotency: a rerun downloads nothing and changes nothing ------------------

RENDER_MEMO = MEMO.as_posix()


def assert_quiet_reruns(
    capsys: pytest.CaptureFixture[str],
    hub: Path,
    server: FaultyMirror,
    args: tuple[str, ...],
    summary: str,
    index_paths: set[str],
    absent: frozenset[str] = frozenset(),
) -> None:
    """The second and third runs download no package and no index byte, and write nothing.

    absent: optional files asked for and answered 404 (repomd.xml.asc where
    the upstream publishes none).
    """
    # The index cache counts here: a rerun must not rewrite it either. The first
    # no-op keeps that README.md and index.json are settled (hub/rendermemo.py),
    # and the next one writes nothing at all.
    before = tree_digest(hub, skip=(LOCK_NAME,))
    before.pop(RENDER_MEMO, None)
    settled: dict[str, str] | None = None  # the tree after the first no-op
    for _ in range(2):
        server.clear_log()
        again = reconcile(capsys, hub, server, *args)
        assert again.code == 0, again.err
        assert summary in again.out
        assert package_requests(server) == []
        after = tree_digest(hub, skip=(LOCK_NAME,))
        assert {k: v for k, v in after.items() if k != RENDER_MEMO} == before
        assert RENDER_MEMO in after
        assert settled is None or after == settled
        settled = after
        # The top indexes (InRelease, repomd.xml) are revalidated and answered
        # 304; the ones they list come from the cache by their checksum.
        assert {r.path for r in server.log} == index_paths | absent
        assert {r.status for r in server.log if r.path not in absent} == {304}
        assert {r.status for r in server.log if r.path in absent} <= {404}
        server.wait_done()
        assert server.bytes_sent == 0


def test_rerun_downloads_nothing_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    write_ubuntu(
        mirror_server,
        focal_suites([debs["u26"], debs["s26"]], [debs["u42"], debs["s42"]], [debs["u77"]]),
    )
    first = reconcile(capsys, hub, mirror_server, *FOCAL)
    assert first.code == 0, first.err
    assert len(archive_files(hub)) == 2

    assert_quiet_reruns(
        capsys,
        hub,
        mirror_server,
        FOCAL,
        "summary: 0 built, 2 already there, 1 ship their own BTF, 0 failed",
        {f"/ubuntu/dists/{s}/InRelease" for s in ("focal", "focal-updates", "focal-proposed")}
        # Launchpad, the fallback: its (empty) publication list, revalidated.
        | {"/launchpad/api/1.0/ubuntu/+archive/primary"},
    )
    # With nothing built, render uses the scan of archive/ taken with the
    # state (hub/earlyscan.py), before the plan, and scans nothing again.
    settled = tree_digest(hub, skip=(LOCK_NAME,))
    steps: list[str] = []

    def spied(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            steps.append(name)
            return real(*args, **kwargs)

        return step

    # README.md and index.json were found settled by the last rerun (hub/rendermemo.py):
    # nothing is composed. Without the memo they are composed then too
    # (earlyscan.py), and not again, and the memo is kept as it was.
    monkeypatch.setattr(hubstore, "hub_files", spied("scan", hubstore.hub_files))
    monkeypatch.setattr(earlyscan, "compose_hub", spied("compose", earlyscan.compose_hub))
    monkeypatch.setattr(render_module, "compose_hub", spied("compose", render_module.compose_hub))
    monkeypatch.setattr(run, "plan", spied("plan", run.plan))
    assert reconcile(capsys, hub, mirror_server, *FOCAL).code == 0
    assert steps == ["scan", "plan"]
    assert tree_digest(hub, skip=(LOCK_NAME,)) == settled
    (hub / RENDER_MEMO).unlink()
    steps.clear()
    assert reconcile(capsys, hub, mirror_server, *FOCAL).code == 0
    assert steps == ["scan", "compose", "plan"]
    assert tree_digest(hub, skip=(LOCK_NAME,)) == settled


def test_a_settled_readme_edited_by_hand_is_rendered_again(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    """With README.md and index.json found settled (hub/rendermemo.py), a hand edit
    of a table is another input: the next no-op composes and restores it."""
    write_ubuntu(mirror_server, focal_suites([debs["u26"], debs["s26"]], [], []))
    for _ in range(2):
        assert reconcile(capsys, hub, mirror_server, *FOCAL).code == 0
    assert (hub / RENDER_MEMO).is_file()
    rendered = (hub / "README.md").read_text()
    edited = rendered.replace(BEGIN_MARKER, f"{BEGIN_MARKER}\n| a hand edit |", 1)
    (hub / "README.md").write_text(edited)
    again = reconcile(capsys, hub, mirror_server, *FOCAL)
    assert again.code == 0, again.err
    assert (hub / "README.md").read_text() == rendered
    assert btfhub(capsys, hub, "render", "--check").code == 0


def test_a_listing_that_changed_with_nothing_to_build_is_rendered_afresh(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    """What a run composes early (hub/earlyscan.py) is the state as loaded: a listing
    that changed it, with nothing built (upstream dropped a kernel), renders again."""
    write_ubuntu(
        mirror_server,
        focal_suites([debs["u26"], debs["s26"]], [debs["u42"], debs["s42"]], [debs["u77"]]),
    )
    assert reconcile(capsys, hub, mirror_server, *FOCAL).code == 0
    before = json.loads((hub / "index.json").read_text())
    write_ubuntu(mirror_server, focal_suites([debs["u26"], debs["s26"]], [], [debs["u77"]]))
    again = reconcile(capsys, hub, mirror_server, *FOCAL)
    assert again.code == 0, again.err
    assert "0 built" in again.out
    after = json.loads((hub / "index.json").read_text())
    assert after != before
    # What a render from scratch makes, byte for byte.
    assert btfhub(capsys, hub, "render", "--check").code == 0


def test_rpmmd_rerun_downloads_nothing_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    rpms: dict[str, Path],
) -> None:
    write_centos(mirror_server, "7", [rpms["c7_1160"], rpms["c7_1062"]])
    args = ("--distro", "centos7", "--arch", "x86_64")
    first = reconcile(capsys, hub, mirror_server, *args)
    assert first.code == 0, first.err
    assert len(archive_files(hub)) == 2

    assert_quiet_reruns(
        capsys,
        hub,
        mirror_server,
        args,
        "summary: 0 built, 2 already there, 0 ship their own BTF, 0 failed",
        {"/centos/7/x86_64/repodata/repomd.xml"},
        frozenset({"/centos/7/x86_64/repodata/repomd.xml.asc"}),
    )


# -- 7. byte-identical output from two separate hubs ---------------------------------


def test_same_kernel_in_two_hubs_gives_identical_bytes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    rpms: dict[str, Path],
) -> None:
    write_fedora(mirror_server, "31", ga=[rpms["f31_ga"]], updates=[])
    args = ("--distro", "fedora", "--release", "31", "--arch", "x86_64")
    one, two = make_hub(tmp_path / "one"), make_hub(tmp_path / "two")

    assert reconcile(capsys, one, mirror_server, *args).code == 0
    assert reconcile(capsys, two, mirror_server, *args).code == 0

    # Both hubs downloaded and built it: nothing was shared between them.
    assert len(package_requests(mirror_server)) == 2
    files = archive_files(one)
    assert list(files) == [f"archive/fedora/31/x86_64/{rpm_uname('f31_ga')}.btf.tar.xz"]
    assert files == archive_files(two)
    assert tree_digest(one) == tree_digest(two)  # index.json and README.md too


# -- 8. kernels that ship their own BTF ----------------------------------------------


def test_ships_btf_is_recorded_skipped_and_built_when_forced(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    write_ubuntu(mirror_server, focal_suites([debs["u26"], debs["s26"]], [], [debs["u77"]]))

    first = reconcile(capsys, hub, mirror_server, *FOCAL)

    assert first.code == 0, first.err
    assert "summary: 1 built, 0 already there, 1 ship their own BTF, 0 failed" in first.out
    assert sorted(archive_files(hub)) == [f"{UBUNTU_2004}/{K26}.btf.tar.xz"]
    assert states(hub, "ubuntu", "focal") == {K26: "archived", K77: "ships-btf"}
    assert hub_cell(hub, "Focal") == "Y"

    mirror_server.clear_log()
    second = reconcile(capsys, hub, mirror_server, *FOCAL)
    assert second.code == 0, second.err
    assert package_requests(mirror_server) == []  # not even downloaded to look again
    assert states(hub, "ubuntu", "focal") == {K26: "archived", K77: "ships-btf"}

    mirror_server.clear_log()
    forced = reconcile(
        capsys, hub, mirror_server, "--force", "--distro", "ubuntu", "--release", "focal",
        "--arch", "x86_64",
    )  # fmt: skip
    assert forced.code == 0, forced.err
    assert package_requests(mirror_server) == [pool_path(debs["u77"])]
    files = archive_files(hub)
    assert sorted(files) == [f"{UBUNTU_2004}/{K26}.btf.tar.xz", f"{UBUNTU_2004}/{K77}.btf.tar.xz"]
    assert_fixture_types(btf_as_c(tmp_path, files[f"{UBUNTU_2004}/{K77}.btf.tar.xz"], K77))
    assert states(hub, "ubuntu", "focal") == {K26: "archived", K77: "archived"}


# -- 9. broken repositories fail only the releases they serve ------------------------


def _bionic_missing(server: FaultyMirror, debs: dict[str, AptPackage]) -> list[str]:
    return []  # no dists/bionic*/ at all: Release is a 404


def _bionic_truncated_packages(server: FaultyMirror, debs: dict[str, AptPackage]) -> list[str]:
    write_ubuntu(server, {"bionic": [debs["bionic"]], "bionic-updates": [], "bionic-proposed": []})
    suite = server.directory / "ubuntu/dists/bionic"
    packages = suite / "main/binary-amd64/Packages.xz"
    packages.write_bytes(packages.read_bytes()[:-40])
    write_release(suite, "bionic")  # Release lists the truncated file as it is
    return []


def _fedora_broken(server: FaultyMirror, debs: dict[str, AptPackage]) -> list[str]:
    base = server.directory / FEDORA_LINUX
    bad = base / "releases/30/Everything/x86_64/debug/tree/repodata/repomd.xml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        '<?xml version="1.0"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo"><data'
    )
    dead = f"http://127.0.0.1:{closed_port()}/fedora/"
    return [
        "--mirror",
        f"https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/29/={dead}",
    ]


FEDORA_REPOMD = (
    "https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/{}/"
    "Everything/x86_64/debug/tree/repodata/repomd.xml"
)

# A layout writes the broken repository and returns extra reconcile arguments.
Layout = Callable[[FaultyMirror, dict[str, AptPackage]], list[str]]

# Bionic's GA and HWE rows read the same suites: a broken one fails both.
BIONIC_TARGETS = ("ubuntu/bionic/x86_64", "ubuntu/bionic-hwe/x86_64")

BROKEN: dict[str, tuple[Layout, tuple[str, ...], dict[str, tuple[str, ...]], dict[str, str]]] = {
    # name: (layout, reconcile filters, {failed target: texts its FAILED line holds},
    #        {failed target: the URL plan --json names})
    "release-404": (
        _bionic_missing,
        ("--distro", "ubuntu", "--arch", "x86_64"),
        {t: ("http://ddebs.ubuntu.com/dists/bionic/Release", "404") for t in BIONIC_TARGETS},
        {t: "http://ddebs.ubuntu.com/dists/bionic/Release" for t in BIONIC_TARGETS},
    ),
    "truncated-packages-xz": (
        _bionic_truncated_packages,
        ("--distro", "ubuntu", "--arch", "x86_64"),
        {
            t: (
                "http://ddebs.ubuntu.com/dists/bionic/main/binary-amd64/Packages.xz",
                "bad xz stream",
            )
            for t in BIONIC_TARGETS
        },
        {
            t: "http://ddebs.ubuntu.com/dists/bionic/main/binary-amd64/Packages.xz"
            for t in BIONIC_TARGETS
        },
    ),
    "unreachable-and-bad-repomd": (
        _fedora_broken,
        ("--distro", "fedora", "--arch", "x86_64"),
        {
            # The closed port: one line for its host, naming the release it blocks.
            "fedora/29/x86_64": ("cannot be reached (the connection was refused)",),
            "fedora/30/x86_64": (FEDORA_REPOMD.format(30), "bad XML"),
        },
        {
            "fedora/29/x86_64": FEDORA_REPOMD.format(29),
            "fedora/30/x86_64": FEDORA_REPOMD.format(30),
        },
    ),
}


@pytest.mark.parametrize("scenario", list(BROKEN))
def test_broken_repository_fails_only_its_releases(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
    rpms: dict[str, Path],
    scenario: str,
) -> None:
    layout, filters, expected, urls = BROKEN[scenario]
    # The healthy releases of the same run: Focal (and an empty Xenial), or
    # Fedora 31 (and empty 24-28).
    write_ubuntu(mirror_server, focal_suites([debs["u26"], debs["s26"]]))
    write_ubuntu(mirror_server, {s: [] for s in ("xenial", "xenial-updates", "xenial-proposed")})
    write_fedora(mirror_server, "31", ga=[rpms["f31_ga"]], updates=[])
    for release in ("24", "25", "26", "27", "28"):
        write_fedora(mirror_server, release, ga=[], updates=[])
    extra = layout(mirror_server, debs)

    plan = btfhub(capsys, hub, "plan", *mirror_args(mirror_server), *extra, *filters, "--json")
    assert plan.code == 1, plan.err  # a discovery failed; the JSON is printed all the same
    errors = json.loads(plan.out)["errors"]
    assert {f"{e['distro']}/{e['release']}/{e['arch']}": e["url"] for e in errors} == urls

    run = reconcile(capsys, hub, mirror_server, *extra, *filters)

    assert run.code == 1
    failed_lines = [line for line in run.err.splitlines() if line.startswith("FAILED ")]
    assert len(failed_lines) == len(expected), run.err
    for target, texts in expected.items():
        (line,) = [line for line in failed_lines if target in line]
        for text in texts:
            assert text in line
    assert f"{len(expected)} release/arch could not be discovered" in run.out
    assert "summary: 1 built" in run.out
    healthy = (
        f"{UBUNTU_2004}/{K26}.btf.tar.xz"
        if filters[1] == "ubuntu"
        else f"archive/fedora/31/x86_64/{rpm_uname('f31_ga')}.btf.tar.xz"
    )
    assert list(archive_files(hub)) == [healthy]
    # A release whose discovery failed keeps what the hub knew: nothing yet.
    for target in expected:
        _, release, _ = target.split("/")
        name = {"bionic": "Bionic", "bionic-hwe": "Bionic HWE"}.get(release, release)
        assert hub_cell(hub, name) == "pending"


# -- 10. plan --json and reconcile --dry-run --------------------------------------------


def test_plan_json_and_dry_run(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    write_ubuntu(
        mirror_server,
        focal_suites(
            [debs["u26"], debs["s26"]], [debs["u42"], debs["s42"]], [debs["s99"], debs["u77"]]
        ),
    )
    before = tree_digest(hub)
    dry = reconcile(capsys, hub, mirror_server, *FOCAL, "--dry-run")
    assert dry.code == 1
    assert "dry run: 4 kernel(s) to build" in dry.out
    assert tree_digest(hub) == before
    assert package_requests(mirror_server) == []

    assert reconcile(capsys, hub, mirror_server, *FOCAL).code == 1  # K99 fails
    # Upstream publishes a new kernel.
    write_ubuntu(mirror_server, {"focal-updates": [debs["u42"], debs["s42"], debs["u48"]]})
    mirror_server.clear_log()
    before = tree_digest(hub)

    plan = btfhub(capsys, hub, "plan", *mirror_args(mirror_server), *FOCAL, "--json")

    assert plan.code == 0, plan.err
    data = json.loads(plan.out)
    by_uname = {k["uname"]: k for k in data["kernels"]}
    assert {u: k["state"] for u, k in by_uname.items()} == {
        K26: "archived",
        K42: "archived",
        K48: "missing",
        K77: "ships-btf",
        K99: "failed",
    }
    assert "no vmlinux" in by_uname[K99]["reason"]
    assert by_uname[K48]["archive_path"] == f"{UBUNTU_2004}/{K48}.btf.tar.xz"
    assert by_uname[K48]["package"]["name"] == f"linux-image-unsigned-{K48}-dbgsym"
    assert by_uname[K48]["package"]["url"] == "http://ddebs.ubuntu.com" + pool_path(
        debs["u48"]
    ).removeprefix("/ubuntu")
    assert data["summary"] == {
        "archived": 2,
        "missing": 1,
        "failed": 1,
        "ships-btf": 1,
        "errors": 0,
        "warnings": 0,
    }
    assert data["errors"] == []

    dry = reconcile(capsys, hub, mirror_server, *FOCAL, "--dry-run")
    assert dry.code == 1
    assert "dry run: 2 kernel(s) to build" in dry.out  # the new one, and the failed retried
    assert tree_digest(hub) == before
    assert package_requests(mirror_server) == []

    # The stub-only upload is withdrawn; the new kernel gets built: no drift left.
    write_ubuntu(mirror_server, {"focal-proposed": [debs["u77"]]})
    assert reconcile(capsys, hub, mirror_server, *FOCAL).code == 0
    before = tree_digest(hub)
    mirror_server.clear_log()
    dry = reconcile(capsys, hub, mirror_server, *FOCAL, "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert "dry run: 0 kernel(s) to build" in dry.out
    assert tree_digest(hub) == before
    assert package_requests(mirror_server) == []


# -- 11. --jobs 2, and 13. shards merged, give what one run gives ---------------------


def test_parallel_jobs_and_merged_shards_give_the_bytes_of_one_serial_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    debs: dict[str, AptPackage],
) -> None:
    """One serial run is the reference for both: --jobs 2, and two shards merged."""
    write_ubuntu(
        mirror_server,
        focal_suites([debs["u26"], debs["s26"]], [debs["u42"], debs["s42"], debs["hwe"]]),
    )
    # "20.04" selects Focal and Focal HWE: three kernels into one directory.
    args = ("--distro", "ubuntu", "--release", "20.04", "--arch", "x86_64")
    serial, parallel = make_hub(tmp_path / "serial"), make_hub(tmp_path / "parallel")

    assert reconcile(capsys, serial, mirror_server, *args, "--jobs", "1").code == 0
    run = reconcile(capsys, parallel, mirror_server, *args, "--jobs", "2")

    assert run.code == 0, run.err
    assert "summary: 3 built" in run.out
    files = archive_files(parallel)
    assert sorted(files) == [f"{UBUNTU_2004}/{u}.btf.tar.xz" for u in sorted((K26, K42, HWE))]
    assert files == archive_files(serial)
    assert tree_digest(parallel) == tree_digest(serial)
    assert states(parallel, "ubuntu", "focal-hwe") == {HWE: "archived"}

    # Two shards merged give the same files too.
    sharded = make_hub(tmp_path / "sharded")
    outputs = [tmp_path / "shard-1", tmp_path / "shard-2"]
    for i, out in enumerate(outputs, 1):
        run = reconcile(
            capsys, sharded, mirror_server, *args, "--shard", f"{i}/2", "--output", str(out)
        )
        assert run.code == 0, run.err
    assert not (sharded / "archive").exists()  # a shard writes only into its output
    assert all(archive_files(out) for out in outputs)  # the work was split

    merged = btfhub(capsys, sharded, "merge", *(str(out) for out in outputs))

    assert merged.code == 0, merged.err
    assert archive_files(sharded) == archive_files(serial)


# -- 12. mirrors from the environment --------------------------------------------------


def test_mirrors_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    write_ubuntu(mirror_server, focal_suites([debs["u26"], debs["s26"]]))
    monkeypatch.setenv("BTFHUB_MIRRORS", " ".join(mirror_pairs(mirror_server)))

    run = btfhub(capsys, hub, "reconcile", *FOCAL)  # no --mirror

    assert run.code == 0, run.err
    assert package_requests(mirror_server) == [pool_path(debs["u26"])]
    assert list(archive_files(hub)) == [f"{UBUNTU_2004}/{K26}.btf.tar.xz"]


# -- 13. shards: an output needs a shard --------------------------------------------


def test_output_without_shard_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    write_ubuntu(mirror_server, focal_suites([debs["u26"], debs["s26"]]))
    before = tree_digest(hub)

    run = reconcile(capsys, hub, mirror_server, *FOCAL, "--output", str(tmp_path / "out"))

    assert run.code == 1
    assert "--output DIR goes with --shard" in run.err
    assert not (tmp_path / "out").exists()
    assert tree_digest(hub) == before
    assert mirror_server.log == []  # refused before asking upstream anything


# -- 14. every package verified in full, by default ------------------------------------


def test_a_package_whose_bytes_differ_from_the_index_is_never_published(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    tmp_path: Path,
    debs: dict[str, AptPackage],
) -> None:
    write_ubuntu(mirror_server, focal_suites(updates=[debs["u26"]]))
    # The mirror's copy went bad after the index was signed: same size, its
    # last byte (past the vmlinux, in the xz footer) changed, so the reader
    # that stops at vmlinux never sees the damage: only the full hash does.
    served = mirror_server.directory / pool_path(debs["u26"]).lstrip("/")
    good = hashlib.sha256(served.read_bytes()).hexdigest()
    data = bytearray(served.read_bytes())
    data[-1] ^= 0xFF
    served.write_bytes(bytes(data))
    bad = hashlib.sha256(data).hexdigest()
    select = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")

    hub = make_hub(tmp_path / "hub")
    run = reconcile(capsys, hub, mirror_server, *select)
    assert run.code == 1
    assert f"sha256 {bad} does not match {good} from the index" in run.err
    assert K26 in run.err
    assert archive_files(hub) == {}
    assert states(hub, "ubuntu", "focal") == {K26: "failed"}
    # The whole package was read (the rest drained through the hash).
    mirror_server.wait_done()
    (request,) = [r for r in mirror_server.log if r.path.endswith(".ddeb")]
    assert request.sent == len(data)


def test_a_download_cut_short_after_the_vmlinux_is_never_published(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    tmp_path: Path,
    debs: dict[str, AptPackage],
) -> None:
    """The body ends a few bytes early, past vmlinux: only reading to the end notices."""
    write_ubuntu(mirror_server, focal_suites(updates=[debs["u26"]]))
    path = pool_path(debs["u26"])
    size = (mirror_server.directory / path.lstrip("/")).stat().st_size
    mirror_server.truncate(path, keep=size - 8)
    hub = make_hub(tmp_path / "hub")
    run = reconcile(capsys, hub, mirror_server, "--distro", "ubuntu", "--release", "focal")
    assert run.code == 1
    assert K26 in run.err and debs["u26"].path.name in run.err
    assert (
        f"after {size - 8} bytes" in run.err or f"{size - 8} bytes, but the index says" in run.err
    )
    assert archive_files(hub) == {}
    assert states(hub, "ubuntu", "focal") == {K26: "failed"}


def test_build_timings_are_recorded_in_order(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mirror_server: FaultyMirror,
    hub: Path,
    debs: dict[str, AptPackage],
) -> None:
    """BTFHUB_TIMINGS: each kernel's phases, in the order the build reaches them."""
    timings = tmp_path / "timings.json"
    monkeypatch.setenv("BTFHUB_TIMINGS", str(timings))
    write_ubuntu(
        mirror_server,
        focal_suites([debs["u26"], debs["s26"]], [debs["u42"], debs["s42"]]),
    )

    run = reconcile(capsys, hub, mirror_server, *FOCAL)

    assert run.code == 0, run.err
    doc = json.loads(timings.read_text())
    assert sorted(doc["kernels"]) == sorted(f"ubuntu/focal/x86_64 {uname}" for uname in (K26, K42))
    for record in doc["kernels"].values():
        marks = record["marks"]
        order = ["started", "first byte", "vmlinux out", "built", "verified", "stored"]
        assert list(sorted(marks, key=marks.__getitem__)) == order
        assert marks["started"] >= doc["build_started"]
        steps = record["steps"]
        assert set(steps) == {
            "extract",
            "pahole",
            "tar.xz",
            "check",
            "verification thread",
            "waited for verification",
        }
        assert all(seconds >= 0 for seconds in steps.values())
        # pahole ran between vmlinux out and built, so its time fits in there.
        assert steps["pahole"] <= marks["built"] - marks["vmlinux out"]
