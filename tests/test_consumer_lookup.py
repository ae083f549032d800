"""`btfhub lookup` and the host rules, with real os-release files against a rendered hub."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from generator import api
from generator.catalog import read_documents
from generator.consumer.hostmap import (
    HOST_RULES_FILE,
    MatchKind,
    NotMapped,
    load_host_rules,
    locate,
)
from generator.consumer.osrelease import HostInputError, OsRelease, parse_os_release
from generator.demokit.mirror import sha256_file
from tests.kit.consumer import EXTRA_DISTRIBUTIONS, OS_RELEASES, copy_consumer_hub
from tests.kit.hub import btfhub

REPO = Path(__file__).resolve().parent.parent
RULES = load_host_rules(REPO / HOST_RULES_FILE)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, consumer_template: Path) -> Path:
    return copy_consumer_hub(consumer_template, tmp_path_factory.mktemp("consumer-hub"))


def lookup_json(capsys: pytest.CaptureFixture[str], hub: Path, *argv: str) -> tuple[int, Any]:
    run = btfhub(capsys, hub, "lookup", "--json", *argv)
    return run.code, json.loads(run.out) if run.out else None


# --- os-release parsing -----------------------------------------------------------


def test_parse_strips_quotes_both_ways() -> None:
    fedora = parse_os_release((OS_RELEASES / "fedora-31").read_text())
    centos = parse_os_release((OS_RELEASES / "centos-7").read_text())
    assert (fedora.id, fedora.version_id, fedora.version_codename) == ("fedora", "31", None)
    assert (centos.id, centos.version_id, centos.name) == ("centos", "7", "CentOS Linux")
    single = parse_os_release("# a comment\nID='ol'\nVERSION_ID='7.9'\nVERSION_CODENAME=\n")
    assert (single.id, single.version_id, single.version_codename) == ("ol", "7.9", None)
    escaped = parse_os_release('ID=rhel\nNAME="Red \\"Hat\\""\n')
    assert escaped.name == 'Red "Hat"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NAME=Foo\nVERSION_ID=1\n", "no ID= line"),
        ("ID=ubuntu\nthis is not os-release\n", "not a KEY=value line"),
        ('ID="ubuntu\n', "No closing quotation"),
        ("ID=ubuntu\nVERSION=20.04 LTS\n", "value must be quoted"),
    ],
)
def test_parse_rejects_bad_files(text: str, message: str) -> None:
    with pytest.raises(HostInputError, match=message):
        parse_os_release(text)


# --- the mapping rules (pure) --------------------------------------------------------


@pytest.mark.parametrize(
    ("os_release", "machine", "expected", "match"),
    [
        (OsRelease("ubuntu", "20.04"), "x86_64", "ubuntu/20.04/x86_64", MatchKind.EXACT),
        (OsRelease("rhel", "8.4"), "x86_64", "rhel/8/x86_64", MatchKind.EXACT),
        (OsRelease("ol", "7.9"), "aarch64", "ol/7/arm64", MatchKind.EXACT),
        (OsRelease("centos", "8.2"), "amd64", "centos/8/x86_64", MatchKind.EXACT),
        (OsRelease("amzn", "2018.03"), "x86_64", "amzn/1/x86_64", MatchKind.EXACT),
        (OsRelease("amzn", "2"), "arm64", "amzn/2/arm64", MatchKind.EXACT),
        (OsRelease("debian", "10"), "x86_64", "debian/10/x86_64", MatchKind.EXACT),
        (OsRelease("fedora", "31"), "x86_64", "fedora/31/x86_64", MatchKind.EXACT),
        (OsRelease('"RHEL"', '"8.4"'), "X86_64", "rhel/8/x86_64", MatchKind.EXACT),
        (OsRelease("redhat", "8.4"), "x86_64", "rhel/8/x86_64", MatchKind.ALIAS),
        (OsRelease("oracle", "7.9"), "x86_64", "ol/7/x86_64", MatchKind.ALIAS),
        (OsRelease("ubuntu", "focal"), "x86_64", "ubuntu/20.04/x86_64", MatchKind.EXACT),
        (OsRelease("debian", None, "buster"), "x86_64", "debian/10/x86_64", MatchKind.EXACT),
        (OsRelease("photon", "4.0"), "x86_64", "photon/4.0/x86_64", MatchKind.EXACT),
        (
            OsRelease("opensuse-leap", "15.3"),
            "aarch64",
            "opensuse-leap/15.3/arm64",
            MatchKind.EXACT,
        ),
        (OsRelease('"openEuler"', '"20.03"'), "x86_64", "openEuler/20.03/x86_64", MatchKind.EXACT),
        (
            OsRelease("centos", "8", name="CentOS Stream"),
            "x86_64",
            "centos-stream/8/x86_64",
            MatchKind.ALIAS,
        ),
    ],
)
def test_locate_rules(os_release: OsRelease, machine: str, expected: str, match: MatchKind) -> None:
    where = locate(RULES, os_release, "5.4.0-42-generic", machine)
    assert f"{where.distro_dir}/{where.release_dir}/{where.arch}" == expected
    assert where.match is match
    assert where.path == f"archive/{expected}/5.4.0-42-generic.btf.tar.xz"


@pytest.mark.parametrize(
    ("os_release", "machine", "message", "known"),
    [
        (OsRelease("arch"), "x86_64", "'arch' is not in the hub", False),
        (OsRelease("ubuntu", "20.04"), "s390x", "architecture 's390x' is not in the hub", True),
        (OsRelease("amzn", "2023"), "x86_64", "amzn 2023 is not covered", True),
        (OsRelease("debian", None, "trixie"), "x86_64", "unknown codename 'trixie'", True),
        (OsRelease("debian"), "x86_64", "no VERSION_ID or VERSION_CODENAME", True),
    ],
)
def test_locate_not_mapped(os_release: OsRelease, machine: str, message: str, known: bool) -> None:
    with pytest.raises(NotMapped, match=message) as info:
        locate(RULES, os_release, "5.4.0-42-generic", machine)
    assert info.value.distribution_known is known


@pytest.mark.parametrize(
    ("os_release", "kernel", "message"),
    [
        (OsRelease("debian", "10.7"), "4.19.0-6-amd64", "not a whole number"),
        (OsRelease("ubuntu", "20.04"), "../../etc/passwd", "not a kernel release"),
        (OsRelease("ubuntu", "20.04"), "", "not a kernel release"),
    ],
)
def test_locate_bad_input(os_release: OsRelease, kernel: str, message: str) -> None:
    with pytest.raises(HostInputError, match=message):
        locate(RULES, os_release, kernel, "x86_64")


# --- lookup against the hub, with real os-release files ------------------------------


@pytest.mark.parametrize(
    ("os_release", "kernel", "machine", "path", "match", "release"),
    [
        ("ubuntu-20.04", "5.4.0-42-generic", "x86_64", "ubuntu/20.04/x86_64", "exact", "focal"),
        # HWE kernels under their base release; amd64 and aarch64 are aliases.
        ("ubuntu-20.04", "5.8.0-63-generic", "amd64", "ubuntu/20.04/x86_64", "exact", "focal-hwe"),
        (
            "ubuntu-18.04",
            "5.4.0-150-generic",
            "aarch64",
            "ubuntu/18.04/arm64",
            "exact",
            "bionic-hwe",
        ),
        ("debian-10", "4.19.0-6-amd64", "x86_64", "debian/10/x86_64", "exact", "buster"),
        ("centos-7", "3.10.0-1160.el7.x86_64", "x86_64", "centos/7/x86_64", "exact", "7.9.2009"),
        ("centos-8", "4.18.0-305.3.1.el8.x86_64", "x86_64", "centos/8/x86_64", "exact", "8.4.2105"),
        ("rhel-8.4", "4.18.0-305.el8.x86_64", "x86_64", "rhel/8/x86_64", "exact", "8.4"),
        ("ol-7.9", "3.10.0-1160.119.1.0.1.el7.x86_64", "x86_64", "ol/7/x86_64", "exact", "7.9"),
        ("amzn-2", "4.14.336-257.562.amzn2.x86_64", "x86_64", "amzn/2/x86_64", "exact", "2"),
        (
            "amzn-2018.03",
            "4.14.355-196.768.amzn1.x86_64",
            "x86_64",
            "amzn/1/x86_64",
            "exact",
            "2018.03",
        ),
        ("fedora-31", "5.3.7-301.fc31.x86_64", "x86_64", "fedora/31/x86_64", "exact", "31"),
        # Photon: ID=photon, VERSION_ID=3.0 unquoted; a flavour suffix, no arch in uname.
        ("photon-3.0", "4.19.283-1.ph3-esx", "x86_64", "photon/3.0/x86_64", "exact", "3.0-esx"),
        ("photon-5.0", "6.1.130-1.ph5-esx", "aarch64", "photon/5.0/arm64", "exact", "5.0-esx"),
        (
            "opensuse-leap-15.2",
            "5.3.18-lp152.106-default",
            "x86_64",
            "opensuse-leap/15.2/x86_64",
            "exact",
            "15.2",
        ),
        # openEuler: ID="openEuler" (mixed case), every SP says VERSION_ID="20.03".
        (
            "openeuler-20.03-sp3",
            "4.19.90-2112.8.0.0131.oe1.x86_64",
            "x86_64",
            "openEuler/20.03/x86_64",
            "exact",
            "20.03-lts",
        ),
    ],
)
def test_lookup_finds_every_os_release(
    capsys: pytest.CaptureFixture[str],
    hub: Path,
    os_release: str,
    kernel: str,
    machine: str,
    path: str,
    match: str,
    release: str,
) -> None:
    code, answer = lookup_json(
        capsys, hub, "--os-release", str(OS_RELEASES / os_release), "--kernel", kernel,
        "--arch", machine,
    )  # fmt: skip
    expected = f"archive/{path}/{kernel}.btf.tar.xz"
    assert code == 0, answer
    assert answer["found"] is True and answer["state"] == "found"
    assert answer["path"] == expected
    assert answer["match"] == match
    assert answer["catalog"]["release"] == release
    assert answer["sha256"] == sha256_file(hub / expected)
    assert answer["size"] == (hub / expected).stat().st_size
    assert answer["local_path"] == str((hub / expected).resolve())
    assert answer["host_btf"] is False and answer["hub_needed"] is True


def test_lookup_finds_a_file_in_no_catalog_release(
    capsys: pytest.CaptureFixture[str], hub: Path
) -> None:
    code, answer = lookup_json(
        capsys, hub, "--os-release", str(OS_RELEASES / "fedora-31"), "--kernel",
        "6.5.0-1.fc31.x86_64", "--arch", "x86_64",
    )  # fmt: skip
    assert code == 0 and answer["reason"] == "archived (in no catalog release)"
    assert answer["catalog"] == {"distribution": None, "release": None}


def test_lookup_by_fields_with_quotes_aliases_and_codenames(
    capsys: pytest.CaptureFixture[str], hub: Path
) -> None:
    code, answer = lookup_json(
        capsys, hub, "--id", '"rhel"', "--version-id", '"8.4"', "--kernel",
        "4.18.0-305.el8.x86_64", "--arch", "x86_64",
    )  # fmt: skip
    assert (code, answer["path"], answer["match"]) == (
        0, "archive/rhel/8/x86_64/4.18.0-305.el8.x86_64.btf.tar.xz", "exact",
    )  # fmt: skip
    code, answer = lookup_json(
        capsys, hub, "--id", "oracle", "--version-id", "7.9", "--kernel",
        "3.10.0-1160.119.1.0.1.el7.x86_64", "--arch", "x86_64",
    )  # fmt: skip
    assert (code, answer["match"]) == (0, "alias")
    code, answer = lookup_json(
        capsys, hub, "--id", "ubuntu", "--version-id", "focal", "--kernel", "5.4.0-42-generic",
        "--arch", "x86_64",
    )  # fmt: skip
    assert (code, answer["archive"]["release"]) == (0, "20.04")


def test_lookup_with_base_url_gives_download_url(
    capsys: pytest.CaptureFixture[str], hub: Path
) -> None:
    run = btfhub(
        capsys, hub, "lookup", "--os-release", str(OS_RELEASES / "rhel-8.4"), "--kernel",
        "4.18.0-305.el8.x86_64", "--arch", "x86_64", "--base-url", "https://hub.example/main",
    )  # fmt: skip
    assert run.code == 0
    assert (
        "url: https://hub.example/main/archive/rhel/8/x86_64/4.18.0-305.el8.x86_64.btf.tar.xz"
        in run.out.splitlines()
    )
    assert "match: exact (rhel 8.4 -> rhel/8, catalog rhel/8.4)" in run.out


@pytest.mark.parametrize(
    ("argv", "state", "reason"),
    [
        (
            ["--os-release", "ubuntu-20.04", "--kernel", "5.4.0-99-generic"],
            "failed",
            "the hub failed to build it: package holds no vmlinux for 5.4.0-99-generic",
        ),
        (
            ["--os-release", "ubuntu-20.04", "--kernel", "5.4.0-100-generic"],
            "not-archived",
            "published upstream but not archived yet",
        ),
        (
            ["--os-release", "ubuntu-20.04", "--kernel", "5.13.0-52-generic"],
            "ships-btf",
            "the kernel ships its own BTF",
        ),
        (
            ["--os-release", "ubuntu-20.10", "--kernel", "5.8.0-25-generic"],
            "ships-btf",
            "ubuntu 20.10 (Groovy, Groovy HWE) kernels ship their own BTF",
        ),
        (
            ["--os-release", "centos-stream-8", "--kernel", "4.18.0-305.3.1.el8.x86_64"],
            "ships-btf",
            "centos-stream 8",
        ),
        # Never guesses across uname -r: the archived 5.4.0-42-generic is not 5.4.0-42.
        (
            ["--os-release", "ubuntu-20.04", "--kernel", "5.4.0-42"],
            "not-archived",
            "kernel 5.4.0-42 is not archived for ubuntu/20.04/x86_64",
        ),
        (
            ["--id", "ubuntu", "--version-id", "22.04", "--kernel", "5.15.0-1-generic"],
            "release-not-covered",
            "ubuntu 22.04 is not covered by the hub (it covers: 16.04, 18.04, 20.04, 20.10, 21.04)",
        ),
        # A Photon 4.0 -esx kernel: no BPF syscall, so its row is not built.
        (
            ["--id", "photon", "--version-id", "4.0", "--kernel", "5.10.237-1.ph4-esx"],
            "not-archived",
            "kernel 5.10.237-1.ph4-esx is not archived for photon/4.0/x86_64",
        ),
        (
            ["--id", "alpine", "--version-id", "3.13.0", "--kernel", "5.10.7-0-virt"],
            "distribution-not-in-catalog",
            "distribution 'alpine' is not in the hub's catalog",
        ),
        (
            ["--os-release", "debian-sid", "--kernel", "6.5.0-1-amd64"],
            "release-not-covered",
            "unknown codename 'trixie'",
        ),
        (
            ["--os-release", "ubuntu-20.04", "--kernel", "5.4.0-42-generic", "--arch", "ppc64le"],
            "release-not-covered",
            "architecture 'ppc64le' is not in the hub",
        ),
    ],
)
def test_lookup_not_found_says_why(
    capsys: pytest.CaptureFixture[str], hub: Path, argv: list[str], state: str, reason: str
) -> None:
    argv = [
        str(OS_RELEASES / a) if i and argv[i - 1] == "--os-release" else a
        for i, a in enumerate(argv)
    ]
    if "--arch" not in argv:
        argv += ["--arch", "x86_64"]
    code, answer = lookup_json(capsys, hub, *argv)
    assert code == 1
    assert answer["found"] is False and answer["state"] == state
    assert reason in answer["reason"]
    text = btfhub(capsys, hub, "lookup", *argv)
    assert text.code == 1 and text.out.startswith("not found") and reason in text.out


def test_lookup_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path
) -> None:
    no_id = tmp_path / "os-release"
    no_id.write_text('NAME="Nothing"\n')
    for argv in (
        ["--os-release", str(no_id)],
        ["--os-release", str(tmp_path / "missing")],
        ["--id", "ubuntu", "--version-id", "20.04", "--kernel", "a/b"],
        ["--id", "debian", "--version-id", "10.x", "--kernel", "4.19.0-6-amd64"],
    ):
        run = btfhub(capsys, hub, "lookup", "--arch", "x86_64", *argv)
        assert run.code == 2, argv
        assert run.err.startswith("btfhub: error: ") and run.out == ""


def test_lookup_host_with_own_btf_needs_no_hub(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path
) -> None:
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/os-release").write_bytes((OS_RELEASES / "ubuntu-20.04").read_bytes())
    code, answer = lookup_json(capsys, hub, "--host-root", str(host))
    # This machine's kernel is not in the fixture hub, and the host has no BTF.
    assert code == 1 and answer["host_btf"] is False and answer["hub_needed"] is True
    (host / "sys/kernel/btf").mkdir(parents=True)
    (host / "sys/kernel/btf/vmlinux").write_bytes(b"\x9f\xeb")
    code, answer = lookup_json(capsys, hub, "--host-root", str(host))
    assert code == 0
    assert answer["host_btf"] is True and answer["hub_needed"] is False
    run = btfhub(capsys, hub, "lookup", "--host-root", str(host))
    assert "the hub is not needed" in run.out.splitlines()[0]


def test_detect_host_reads_a_mounted_root(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_bytes((OS_RELEASES / "ol-7.9").read_bytes())
    host = api.detect_host(tmp_path)
    assert (host.os_release.id, host.os_release.version_id) == ("ol", "7.9")
    assert host.uname == os.uname().release and host.machine == os.uname().machine
    assert host.has_kernel_btf is False
    with pytest.raises(HostInputError, match="no os-release file"):
        api.detect_host(tmp_path / "empty")


def test_api_lookup_matches_cli(hub: Path) -> None:
    result = api.lookup(
        os_release=OS_RELEASES / "amzn-2018.03",
        kernel="4.14.355-196.768.amzn1.x86_64",
        arch="x86_64",
        root=hub,
    )
    assert result.found and result.file is not None
    assert result.file.path == "archive/amzn/1/x86_64/4.14.355-196.768.amzn1.x86_64.btf.tar.xz"
    assert result.availability is api.Availability.FOUND


# --- the rules file: validated, and never taken for a manifest ----------------------


def test_rules_file_is_not_a_manifest(capsys: pytest.CaptureFixture[str], hub: Path) -> None:
    assert (hub / HOST_RULES_FILE).is_file()
    assert "os-release" not in {d.id for d in read_documents(hub)}
    run = btfhub(capsys, hub, "validate")
    assert run.code == 0, run.out
    # The shipped manifests and the kit's three (which replace shipped ones of the
    # same name), and nothing from catalog/hosts/.
    stems = {p.stem for p in (REPO / "catalog").glob("*.yaml")}
    manifests = len(stems | {stem for stem, *_ in EXTRA_DISTRIBUTIONS})
    assert run.out.startswith(f"{manifests} manifests, ") and run.out.endswith(": valid\n")


def test_validate_reports_bad_rules_with_positions(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "hub"
    shutil.copytree(hub / "catalog", copy / "catalog")
    rules = copy / HOST_RULES_FILE
    text = rules.read_text()
    text = text.replace(
        "    version: major\n    aliases: [redhat]", "    version: minor\n    aliases: [redhat]"
    )
    text = text.replace("  aarch64: arm64", "  aarch64: armv8")
    rules.write_text(text)
    run = btfhub(capsys, copy, "validate")
    assert run.code == 1
    lines = run.out.splitlines()
    at = next(n for n, line in enumerate(text.splitlines(), 1) if "aarch64: armv8" in line)
    where = f"catalog/hosts/os-release.yaml:{at}:12: architectures.aarch64: "
    assert f"{where}unknown architecture 'armv8' (expected one of: x86_64, arm64)" in lines
    assert any(
        line.startswith("catalog/hosts/os-release.yaml:")
        and "distributions.rhel.version: unknown version rule 'minor'" in line
        for line in lines
    ), lines
    # lookup refuses to run on rules that do not validate
    run = btfhub(
        capsys,
        copy,
        "lookup",
        "--id",
        "ubuntu",
        "--version-id",
        "20.04",
        "--kernel",
        "5.4.0-1-generic",
        "--index",
        str(hub / "index.json"),
    )
    assert run.code == 1 and "the host rules are invalid" in run.err
