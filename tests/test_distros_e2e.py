"""`btfhub plan`, `reconcile` and `lookup` end to end for the distributions no public hub covers.

The shipped manifests (Photon OS, openSUSE Leap, openEuler, Ubuntu's added
flavours) run against local copies of the real repositories on 127.0.0.1,
laid out as upstream lays them out (tests/kit/distros.py), reached through
--mirror from the public URLs. The packages are real RPMs and a real .ddeb
around a gcc -g ELF, signed as the real ones are (Photon 3.0 and openEuler
over SHA-1) by keys made for the test and passed with --keyring; the BTF
is encoded by the real pahole.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.demokit.mirror import sha256_file
from generator.demokit.signing import Signer
from tests.kit.distros import (
    build_leap_debuginfo,
    build_openeuler_debuginfo,
    build_photon_debuginfo,
    write_leap_tree,
    write_openeuler_tree,
    write_photon_tree,
)
from tests.kit.hub import (
    HOSTS,
    Run,
    archive_files,
    assert_fixture_btf,
    btfhub,
    build_ddeb,
    focal_suites,
    hub_cell,
    kernels,
    make_hub,
    meta_only,
    mirror_args,
    package_requests,
    states,
    write_ubuntu,
)
from tests.kit.mirror import FaultyMirror

OS_RELEASES = Path(__file__).resolve().parent / "data" / "os-release"


@pytest.fixture
def sha1_signer(gpg_home: Callable[[], Path]) -> Signer:
    """The publisher's key of Photon 3.0 and openEuler: RSA, signing over SHA-1 only."""
    signer = Signer(gpg_home(), "sha1 publisher", algorithm="rsa2048", digest="SHA1")
    yield signer
    signer.close()


def assert_refused(run: Run, hub: Path, failed: str, why: str) -> None:
    """The run failed, naming what and why, and nothing entered archive/."""
    assert run.code == 1
    assert failed in run.err and why in run.err, run.err
    assert archive_files(hub) == {}


def lookup(capsys: pytest.CaptureFixture[str], hub: Path, os_release: str, uname: str) -> dict:
    run = btfhub(
        capsys, hub, "lookup", "--json", "--os-release", str(OS_RELEASES / os_release),
        "--kernel", uname, "--arch", "x86_64",
    )  # fmt: skip
    assert run.code == 0, run.out + run.err
    answer: dict = json.loads(run.out)
    return answer


# -- Photon OS ---------------------------------------------------------------------------

PH3_ESX = "4.19.283-1.ph3-esx"
PH3 = "4.19.283-1.ph3"
PH5 = "6.1.41-4.ph5"
BROADCOM = "https://packages.broadcom.com/"


def test_photon_builds_esx_and_linux_and_records_what_ships_btf(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    fixture_elf_with_btf: Path,
    sha1_signer: Signer,
) -> None:
    rpms = tmp_path / "rpms"
    esx = build_photon_debuginfo(rpms, "esx", "4.19.283", "1.ph3", fixture_elf, sha1_signer)
    linux = build_photon_debuginfo(rpms, "linux", "4.19.283", "1.ph3", fixture_elf, sha1_signer)
    # 5.0's linux from 6.1.41-4 is built with CONFIG_DEBUG_INFO_BTF: its vmlinux has .BTF.
    ph5 = build_photon_debuginfo(
        rpms, "linux", "6.1.41", "4.ph5", fixture_elf_with_btf, sha1_signer
    )
    host = mirror_server.directory / "broadcom"
    decoy = meta_only(tmp_path / "decoys", "linux-esx-devel", "4.19.283", "1.ph3", "x86_64")
    write_photon_tree(host, "3.0", "x86_64", [esx, linux, decoy])
    write_photon_tree(host, "4.0", "x86_64", [])
    write_photon_tree(host, "5.0", "x86_64", [ph5])
    write_photon_tree(host, "5.0", "arm64", [])
    hub = make_hub(tmp_path / "hub")
    args = ("--mirror", f"{BROADCOM}={mirror_server.url}broadcom/")
    args += ("--keyring", str(sha1_signer.public_key), "--distro", "photon")

    plan = btfhub(capsys, hub, "plan", "--json", *args)
    assert plan.code == 0, plan.err
    planned = {(k["release"], k["arch"], k["uname"]) for k in json.loads(plan.out)["kernels"]}
    assert planned == {
        ("3.0-esx", "x86_64", PH3_ESX),
        ("3.0-linux", "x86_64", PH3),
        ("5.0-linux", "x86_64", PH5),
    }
    text = btfhub(capsys, hub, "plan", *args).out
    assert "sha1 signatures: photon/photon-esx (https://packages.broadcom.com/photon/)" in text

    run = btfhub(capsys, hub, "reconcile", *args)

    assert run.code == 0, run.err
    assert "summary: 2 built, 0 already there, 1 ship their own BTF, 0 failed" in run.out
    files = archive_files(hub)
    assert sorted(files) == [
        f"archive/photon/3.0/x86_64/{PH3_ESX}.btf.tar.xz",
        f"archive/photon/3.0/x86_64/{PH3}.btf.tar.xz",
    ]
    assert_fixture_btf(tmp_path, files[f"archive/photon/3.0/x86_64/{PH3_ESX}.btf.tar.xz"], PH3_ESX)
    assert_fixture_btf(tmp_path, files[f"archive/photon/3.0/x86_64/{PH3}.btf.tar.xz"], PH3)
    assert states(hub, "photon", "3.0-esx") == {PH3_ESX: "archived"}
    assert states(hub, "photon", "5.0-linux") == {PH5: "ships-btf"}
    package = kernels(hub, "photon", "3.0-esx")[PH3_ESX]["package"]
    assert (package["name"], package["sha256"]) == ("linux-esx-debuginfo", sha256_file(esx))
    assert package["filename"] == f"x86_64/{esx.name}"
    downloads = package_requests(mirror_server)
    assert (
        downloads.count(f"/broadcom/photon/3.0/photon_debuginfo_3.0_x86_64/x86_64/{esx.name}") == 1
    )
    assert hub_cell(hub, "3.0 linux-esx") == "Y"
    assert hub_cell(hub, "4.0 linux") == "0/0"
    assert hub_cell(hub, "4.0 linux-esx") == "-"  # no BPF syscall: not built
    answer = lookup(capsys, hub, "photon-3.0", PH3_ESX)
    assert answer["path"] == f"archive/photon/3.0/x86_64/{PH3_ESX}.btf.tar.xz"
    assert answer["catalog"]["release"] == "3.0-esx"


def test_photon_package_signed_by_another_key_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    sha1_signer: Signer,
    gpg_home: Callable[[], Path],
) -> None:
    stranger = Signer(gpg_home(), "stranger", algorithm="rsa2048", digest="SHA1")
    try:
        esx = build_photon_debuginfo(
            tmp_path / "rpms", "esx", "4.19.283", "1.ph3", fixture_elf, stranger
        )
    finally:
        stranger.close()
    write_photon_tree(mirror_server.directory / "broadcom", "3.0", "x86_64", [esx])
    hub = make_hub(tmp_path / "hub")

    run = btfhub(
        capsys, hub, "reconcile", "--mirror", f"{BROADCOM}={mirror_server.url}broadcom/",
        "--keyring", str(sha1_signer.public_key), "--distro", "photon", "--release", "3.0-esx",
    )  # fmt: skip

    assert_refused(run, hub, f"FAILED photon/3.0-esx/x86_64 {PH3_ESX}:", "rpm header signature")


# -- openSUSE Leap -----------------------------------------------------------------------

LEAP_UNAME = "5.3.18-lp152.106-default"
LEAP_GA = "5.3.18-lp152.19-default"
OPENSUSE = "https://download.opensuse.org/"


def test_leap_builds_from_its_signed_debug_and_update_trees(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    gpg_home: Callable[[], Path],
) -> None:
    # openSUSE signs repomd.xml and its RPMs with one key, over SHA-256.
    opensuse = Signer(gpg_home(), "opensuse", algorithm="rsa2048")
    try:
        rpms = tmp_path / "rpms"
        update = build_leap_debuginfo(
            rpms, "default", "5.3.18", "lp152.106.1", fixture_elf, opensuse
        )
        ga = build_leap_debuginfo(rpms, "default", "5.3.18", "lp152.19.2", fixture_elf, opensuse)
        host = mirror_server.directory / "opensuse"
        write_leap_tree(host, "debug/distribution/leap/15.2/repo/oss", [ga], opensuse)
        write_leap_tree(host, "debug/update/leap/15.2/oss", [update], opensuse)
        hub = make_hub(tmp_path / "hub")
        args = ("--mirror", f"{OPENSUSE}={mirror_server.url}opensuse/")
        args += ("--keyring", str(opensuse.public_key))
        args += ("--distro", "opensuse-leap", "--release", "15.2", "--arch", "x86_64")

        plan = btfhub(capsys, hub, "plan", "--json", *args)
        assert plan.code == 0, plan.err
        assert sorted(k["uname"] for k in json.loads(plan.out)["kernels"]) == [
            LEAP_UNAME,
            LEAP_GA,
        ]
        run = btfhub(capsys, hub, "reconcile", *args)
    finally:
        opensuse.close()

    assert run.code == 0, run.err
    assert "summary: 2 built" in run.out
    path = f"archive/opensuse-leap/15.2/x86_64/{LEAP_UNAME}.btf.tar.xz"
    files = archive_files(hub)
    assert sorted(files) == [path, f"archive/opensuse-leap/15.2/x86_64/{LEAP_GA}.btf.tar.xz"]
    assert_fixture_btf(tmp_path, files[path], LEAP_UNAME)
    downloads = package_requests(mirror_server)
    assert f"/opensuse/debug/update/leap/15.2/oss/x86_64/{update.name}" in downloads
    assert mirror_server.requests_for(
        "/opensuse/debug/update/leap/15.2/oss/repodata/repomd.xml.asc"
    )
    assert hub_cell(hub, "15.2") == "Y"
    assert lookup(capsys, hub, "opensuse-leap-15.2", LEAP_UNAME)["path"] == path


def test_leap_repomd_signed_by_a_stranger_fails_the_release(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    sha1_signer: Signer,
) -> None:
    """And a SHA-1 signature is no signature for a repository without sha1_signatures."""
    update = build_leap_debuginfo(
        tmp_path / "rpms", "default", "5.3.18", "lp152.106.1", fixture_elf, sha1_signer
    )
    host = mirror_server.directory / "opensuse"
    write_leap_tree(host, "debug/distribution/leap/15.2/repo/oss", [], sha1_signer)
    write_leap_tree(host, "debug/update/leap/15.2/oss", [update], sha1_signer)
    hub = make_hub(tmp_path / "hub")

    run = btfhub(
        capsys, hub, "reconcile", "--mirror", f"{OPENSUSE}={mirror_server.url}opensuse/",
        "--keyring", str(sha1_signer.public_key),
        "--distro", "opensuse-leap", "--release", "15.2", "--arch", "x86_64",
    )  # fmt: skip

    assert_refused(run, hub, "FAILED opensuse-leap/15.2/x86_64:", "weak digest SHA-1")


# -- openEuler ---------------------------------------------------------------------------

OE_UNAME = "4.19.90-2112.8.0.0131.oe1.x86_64"
OE_GA = "4.19.90-2112.8.0.0130.oe1.x86_64"
OPENEULER = "https://repo.openeuler.org/"


def test_openeuler_builds_from_the_update_tree_once_for_all_service_packs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    sha1_signer: Signer,
) -> None:
    rpms = tmp_path / "rpms"
    ga = build_openeuler_debuginfo(rpms, "2112.8.0.0130.oe1", fixture_elf, sha1_signer)
    update = build_openeuler_debuginfo(rpms, "2112.8.0.0131.oe1", fixture_elf, sha1_signer)
    common = meta_only(
        tmp_path / "decoys", "kernel-debuginfo-common-x86_64", "4.19.90", "2112.8.0.0131.oe1",
        "x86_64",
    )  # fmt: skip
    host = mirror_server.directory / "openeuler"
    for sp in ("", "-SP1", "-SP2", "-SP3", "-SP4"):
        release = f"openEuler-20.03-LTS{sp}"
        write_openeuler_tree(host, release, "debuginfo", "x86_64", [ga] if sp == "-SP3" else [])
        # SP4's update tree republishes SP3's last kernel, as a later pack may.
        listed = [update, common] if sp in ("-SP3", "-SP4") else []
        write_openeuler_tree(host, release, "update", "x86_64", listed)
    hub = make_hub(tmp_path / "hub")
    args = ("--mirror", f"{OPENEULER}={mirror_server.url}openeuler/")
    args += ("--keyring", str(sha1_signer.public_key), "--distro", "openeuler", "--arch", "x86_64")

    plan = btfhub(capsys, hub, "plan", "--json", *args)
    assert plan.code == 0, plan.err
    planned = {(k["release"], k["uname"]) for k in json.loads(plan.out)["kernels"]}
    assert planned == {("20.03-lts-sp3", OE_GA), ("20.03-lts-sp3", OE_UNAME)}

    run = btfhub(capsys, hub, "reconcile", *args)

    assert run.code == 0, run.err
    assert "summary: 2 built" in run.out
    path = f"archive/openEuler/20.03/x86_64/{OE_UNAME}.btf.tar.xz"
    files = archive_files(hub)
    assert sorted(files) == [f"archive/openEuler/20.03/x86_64/{OE_GA}.btf.tar.xz", path]
    assert_fixture_btf(tmp_path, files[path], OE_UNAME)
    assert (
        package_requests(mirror_server).count(
            f"/openeuler/openEuler-20.03-LTS-SP3/update/x86_64/Packages/{update.name}"
        )
        == 1
    )
    assert hub_cell(hub, "20.03 LTS SP3") == "Y"
    answer = lookup(capsys, hub, "openeuler-20.03-sp3", OE_UNAME)
    assert (answer["path"], answer["catalog"]["release"]) == (path, "20.03-lts-sp3")


# -- Ubuntu: a flavour the public hub skips ---------------------------------------------

LOWLATENCY = "5.4.0-42-lowlatency"


def test_ubuntu_focal_lowlatency_is_built(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
) -> None:
    ddeb = build_ddeb(
        tmp_path / "ddebs", f"linux-image-unsigned-{LOWLATENCY}-dbgsym", "5.4.0-42.46",
        LOWLATENCY, fixture_elf,
    )  # fmt: skip
    write_ubuntu(mirror_server, focal_suites(updates=[ddeb]))
    hub = make_hub(tmp_path / "hub")

    run = btfhub(
        capsys, hub, "reconcile", *mirror_args(mirror_server, HOSTS),
        "--distro", "ubuntu", "--release", "focal", "--arch", "x86_64",
    )  # fmt: skip

    assert run.code == 0, run.err
    assert "summary: 1 built" in run.out
    path = f"archive/ubuntu/20.04/x86_64/{LOWLATENCY}.btf.tar.xz"
    files = archive_files(hub)
    assert sorted(files) == [path]
    assert_fixture_btf(tmp_path, files[path], LOWLATENCY)
