"""`btfhub plan` and `reconcile` end to end for the new repository kinds.

Each upstream is a local copy of its real layout on 127.0.0.1, reached
through --mirror from the public URL the shipped manifest names: Oracle's
flat HTML listing, Amazon's mirror.list in front of an rpm-md tree on another
host, Launchpad's API (a stand-in answering its JSON shapes, with a
test-only manifest: catalog/ubuntu.yaml is not this test's), and Red Hat's
CDN as an HTTPS server that requires a client certificate. The packages are
real RPMs and a real .ddeb around a gcc -g ELF, encoded by the real pahole.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from generator.demokit.mirror import AptPackage, sha256_file, write_rpmmd_repo
from generator.demokit.signing import Signer
from tests.kit.hub import (
    HOSTS,
    REPO,
    archive_files,
    assert_fixture_btf,
    btfhub,
    build_ddeb,
    hub_cell,
    kernels,
    make_hub,
    meta_only,
    mirror_args,
    package_requests,
    states,
    write_ubuntu,
)
from tests.kit.launchpad import LaunchpadStandIn
from tests.kit.listing import write_html_listing
from tests.kit.mirror import LAUNCHPAD_API, FaultyMirror
from tests.kit.shelf import build_rpm
from tests.kit.tls import ClientCertMirrorServer, make_pki

CREDENTIAL_VARS = ("BTFHUB_RHEL_CERT", "BTFHUB_RHEL_KEY", "BTFHUB_RHEL_CA")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No mirrors or credentials from the environment (btfhub() injects a quick client)."""
    for name in ("BTFHUB_MIRRORS", *CREDENTIAL_VARS):
        monkeypatch.delenv(name, raising=False)


# -- Oracle Linux: html-listing ---------------------------------------------------------

OL_UNAME = "5.4.17-2102.206.1.el8uek.x86_64"
OL8 = ("--distro", "ol", "--release", "8-uek-r6", "--arch", "x86_64")


def oracle_listing(
    server: FaultyMirror, rpms: Path, fixture_elf: Path, signer: Signer | None = None
) -> Path:
    """ol8/debuginfo/ with a signed UEK kernel-debuginfo, its -common- twin and an aarch64 one."""
    rpm = build_rpm(
        rpms, "kernel-uek-debuginfo", "5.4.17", "2102.206.1.el8uek", "x86_64", OL_UNAME,
        fixture_elf, signer=signer,
    )  # fmt: skip
    common_rpm = build_rpm(
        rpms, "kernel-uek-debuginfo-common", "5.4.17", "2102.206.1.el8uek", "x86_64", OL_UNAME,
        None,
    )  # fmt: skip
    listing = server.directory / "oracle/ol8/debuginfo"
    listing.mkdir(parents=True)
    for path in (rpm, common_rpm):
        shutil.copyfile(path, listing / path.name)
    meta_only(listing, "kernel-uek-debuginfo", "5.4.17", "2102.206.1.el8uek", "aarch64")
    write_html_listing(listing, "/ol8/debuginfo")
    return rpm


def test_oracle_listing_builds_what_the_rpm_signature_verifies(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
) -> None:
    rpm = oracle_listing(mirror_server, tmp_path / "rpms", fixture_elf)
    hub = make_hub(tmp_path / "hub")
    mirror = ("--mirror", f"https://oss.oracle.com/={mirror_server.url}oracle/")

    plan = btfhub(capsys, hub, "plan", *mirror, *OL8, "--json")

    assert plan.code == 0, plan.err
    doc = json.loads(plan.out)
    assert doc["errors"] == []
    (kernel,) = doc["kernels"]
    assert (kernel["uname"], kernel["state"], kernel["archive_path"]) == (
        OL_UNAME,
        "missing",
        f"archive/ol/8/x86_64/{OL_UNAME}.btf.tar.xz",
    )
    package = kernel["package"]
    # No index checksum exists: the record says so, and the RPM's header signature verifies it.
    assert (package["sha256"], package["size"]) == (None, None)
    assert package["url"] == f"https://oss.oracle.com/ol8/debuginfo/{rpm.name}"

    run = btfhub(capsys, hub, "reconcile", *mirror, *OL8)

    assert run.code == 0, run.err
    assert "summary: 1 built" in run.out
    path = f"archive/ol/8/x86_64/{OL_UNAME}.btf.tar.xz"
    files = archive_files(hub)
    assert sorted(files) == [path]
    assert package_requests(mirror_server) == [f"/oracle/ol8/debuginfo/{rpm.name}"]
    assert kernels(hub, "ol", "8-uek-r6")[OL_UNAME]["package"]["sha256"] is None
    assert hub_cell(hub, "8 UEK R6") == "Y"
    assert_fixture_btf(tmp_path, files[path], OL_UNAME)


def test_oracle_rpm_signed_by_a_stranger_is_never_published(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    stranger: Signer,
) -> None:
    oracle_listing(mirror_server, tmp_path / "rpms", fixture_elf, signer=stranger)
    hub = make_hub(tmp_path / "hub")
    mirror = ("--mirror", f"https://oss.oracle.com/={mirror_server.url}oracle/")

    run = btfhub(capsys, hub, "reconcile", *mirror, *OL8)

    assert run.code == 1
    assert f"FAILED ol/8-uek-r6/x86_64 {OL_UNAME}:" in run.err
    assert "rpm header signature" in run.err
    assert archive_files(hub) == {}
    assert states(hub, "ol", "8-uek-r6") == {OL_UNAME: "failed"}
    # A build job working from the plan file refuses it the same way.
    plan = btfhub(capsys, hub, "plan", *mirror, *OL8, "--json")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.out)
    shard = btfhub(
        capsys, hub, "reconcile", *mirror, *OL8,
        "--shard", "1/1", "--plan", str(plan_file), "--output", str(tmp_path / "shard"),
    )  # fmt: skip
    assert shard.code == 1
    assert "rpm header signature" in shard.err
    assert not list((tmp_path / "shard").rglob("*.btf.tar.xz"))


# -- Amazon Linux: rpm-md behind mirror.list --------------------------------------------

AMZN2_UNAME = "4.14.355-275.570.amzn2.x86_64"
S3 = "https://amazonlinux-2-repos-us-east-1.s3.dualstack.us-east-1.amazonaws.com/"


def amazon_mirrors(server: FaultyMirror) -> list[str]:
    pairs = {
        "http://amazonlinux.us-east-1.amazonaws.com/": "amzn2-lists/",
        S3: "s3/",
    }
    return [
        a for public, local in pairs.items() for a in ("--mirror", f"{public}={server.url}{local}")
    ]


def test_amazon_linux_2_builds_through_its_mirror_list(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
) -> None:
    rpm = build_rpm(
        tmp_path / "rpms", "kernel-debuginfo", "4.14.355", "275.570.amzn2", "x86_64", AMZN2_UNAME,
        fixture_elf,
    )  # fmt: skip
    decoy = meta_only(
        tmp_path / "decoys", "kernel-debuginfo-common-x86_64", "4.14.355", "275.570.amzn2", "x86_64"
    )
    # Each topic's mirror.list names its real root on another host, as Amazon's do.
    for topic, packages in (
        ("core", [rpm, decoy]),
        ("extras/kernel-5.4", []),
        ("extras/kernel-5.10", []),
        ("extras/kernel-5.15", []),
    ):
        real = f"2/{topic}/2.0.20241014.1/debuginfo/x86_64/"
        write_rpmmd_repo(mirror_server.directory / "s3" / real, packages, flat=False)
        lists = mirror_server.directory / f"amzn2-lists/2/{topic}/latest/debuginfo/x86_64"
        lists.mkdir(parents=True)
        (lists / "mirror.list").write_text(f"{S3}{real}\n")
    hub = make_hub(tmp_path / "hub")

    run = btfhub(
        capsys, hub, "reconcile", *amazon_mirrors(mirror_server),
        "--distro", "amzn", "--release", "2", "--arch", "x86_64",
    )  # fmt: skip

    assert run.code == 0, run.err
    assert "summary: 1 built, 0 already there, 0 ship their own BTF, 0 failed" in run.out
    path = f"archive/amzn/2/x86_64/{AMZN2_UNAME}.btf.tar.xz"
    files = archive_files(hub)
    assert sorted(files) == [path]
    assert package_requests(mirror_server) == [
        f"/s3/2/core/2.0.20241014.1/debuginfo/x86_64/Packages/k/{rpm.name}"
    ]
    assert (
        len(mirror_server.requests_for("/amzn2-lists/2/core/latest/debuginfo/x86_64/mirror.list"))
        == 1
    )
    assert states(hub, "amzn", "2") == {AMZN2_UNAME: "archived"}
    assert kernels(hub, "amzn", "2")[AMZN2_UNAME]["package"]["sha256"] == sha256_file(rpm)
    assert hub_cell(hub, "2 (kernel-5.10)") == "0/0"
    assert_fixture_btf(tmp_path, files[path], AMZN2_UNAME)


# -- Launchpad: a test-only manifest ----------------------------------------------------

LP_MANIFEST = """\
# yaml-language-server: $schema=../schemas/manifest.schema.json
title: Ubuntu from Launchpad
archive_dir: ubuntu
directory: "20.04"
architectures: [x86_64]
columns:
  - {header: Ubuntu, field: name}
  - {header: Kernel, field: kernel}
  - {header: HUB, field: hub}
repositories:
  - id: launchpad
    kind: launchpad
    url: https://api.launchpad.net/1.0/ubuntu/+archive/primary
    unsigned: true  # Launchpad's API answers carry no signature (HTTPS only)
    packages: ["linux-image-unsigned-{uname}-dbgsym", "linux-image-{uname}-dbgsym"]
    flavours: [generic]
releases:
  - name: Focal
    kernel: "5.4.0"
    hub: true
    sources:
      - repository: launchpad
        suites: [focal]
"""
K42 = "5.4.0-42-generic"


def lp_hub(path: Path) -> Path:
    (path / "catalog").mkdir(parents=True)
    (path / "catalog/ubuntu-launchpad.yaml").write_text(LP_MANIFEST)
    shutil.copyfile(REPO / "README.md", path / "README.md")
    return path


def lp_args(stand_in: LaunchpadStandIn) -> list[str]:
    return [a for pair in stand_in.mirror_pairs() for a in ("--mirror", pair)]


def test_launchpad_ddeb_is_built_with_its_size_and_sha256(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fixture_elf: Path
) -> None:
    ddebs = tmp_path / "ddebs"
    unsigned = build_ddeb(
        ddebs, f"linux-image-unsigned-{K42}-dbgsym", "5.4.0-42.46", K42, fixture_elf, "zst"
    )
    stub = build_ddeb(ddebs, f"linux-image-{K42}-dbgsym", "5.4.0-42.46", K42, None)
    hub = lp_hub(tmp_path / "hub")
    with LaunchpadStandIn() as lp:
        for pkg in (unsigned, stub):
            lp.publish(pkg.path, pkg.package, pkg.version, "focal", status="Superseded")

        run = btfhub(capsys, hub, "reconcile", *lp_args(lp))

        assert run.code == 0, run.err
        assert "summary: 1 built, 0 already there, 0 ship their own BTF, 0 failed" in run.out
        # Through the +files URL and its redirect to the librarian; the stub never.
        assert lp.requests_for(f"/+files/{unsigned.path.name}")
        assert lp.requests_for("/librarian/1/")
        assert not lp.requests_for(stub.path.name)
    path = f"archive/ubuntu/20.04/x86_64/{K42}.btf.tar.xz"
    files = archive_files(hub)
    assert sorted(files) == [path]
    package = kernels(hub, "ubuntu-launchpad", "focal")[K42]["package"]
    assert (package["sha256"], package["size"]) == (
        sha256_file(unsigned.path),
        unsigned.path.stat().st_size,
    )
    assert hub_cell(hub, "Focal") == "Y"
    assert_fixture_btf(tmp_path, files[path], K42)


def test_launchpad_size_that_disagrees_fails_the_kernel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fixture_elf: Path
) -> None:
    ddeb = build_ddeb(
        tmp_path / "ddebs", f"linux-image-unsigned-{K42}-dbgsym", "5.4.0-42.46", K42, fixture_elf
    )
    hub = lp_hub(tmp_path / "hub")
    with LaunchpadStandIn() as lp:
        pub = lp.publish(ddeb.path, ddeb.package, ddeb.version, "focal")
        pub.size = ddeb.path.stat().st_size + 1

        run = btfhub(capsys, hub, "reconcile", *lp_args(lp))

    assert run.code == 1
    assert f"but the index says {pub.size}" in run.err
    assert archive_files(hub) == {}


# -- RHEL: a CDN that wants the entitlement certificate ---------------------------------

RHEL_UNAME = "4.18.0-80.el8.x86_64"
RHEL8 = ("--distro", "rhel", "--release", "8", "--arch", "x86_64")


def test_rhel_needs_credentials_then_builds_with_the_entitlement_certificate(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fixture_elf: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    rpm = build_rpm(
        tmp_path / "rpms", "kernel-debuginfo", "4.18.0", "80.el8", "x86_64", RHEL_UNAME, fixture_elf
    )
    hub = make_hub(tmp_path / "hub")
    with ClientCertMirrorServer(tmp_path / "cdn", pki) as cdn:
        write_rpmmd_repo(cdn.directory / "rhel8/8/x86_64/baseos/debug", [rpm], flat=False)
        mirror = ("--mirror", f"https://cdn.redhat.com/content/dist/={cdn.url}")

        # 1. No credentials: every RHEL release is skipped, said so, and no failure.
        plan = btfhub(capsys, hub, "plan", *mirror, "--distro", "rhel")
        assert plan.code == 0, plan.err
        assert "skipped: rhel/8/x86_64: needs credentials: repository rhel-cdn needs " in plan.out
        assert "set BTFHUB_RHEL_CERT and BTFHUB_RHEL_KEY" in plan.out
        assert "4 release/arch need credentials" in plan.out
        doc = json.loads(btfhub(capsys, hub, "plan", *mirror, "--distro", "rhel", "--json").out)
        assert [(e["release"], e["arch"]) for e in doc["needs_operator_input"]] == [
            ("7", "x86_64"), ("7-alt", "arm64"), ("8", "arm64"), ("8", "x86_64"),
        ]  # fmt: skip
        assert doc["errors"] == []
        run = btfhub(capsys, hub, "reconcile", *mirror, "--distro", "rhel")
        assert run.code == 0, run.err
        assert "4 release/arch need credentials" in run.out
        assert hub_cell(hub, "7 (ARM)") == "needs credentials"
        assert cdn.log == []  # nothing was even asked

        # 2. A certificate the CDN does not trust: the release fails, naming the URL.
        monkeypatch.setenv("BTFHUB_RHEL_CERT", str(pki.rogue_cert))
        monkeypatch.setenv("BTFHUB_RHEL_KEY", str(pki.rogue_key))
        monkeypatch.setenv("BTFHUB_RHEL_CA", str(pki.ca))
        run = btfhub(capsys, hub, "reconcile", *mirror, *RHEL8)
        assert run.code == 1
        assert "FAILED rhel/8/x86_64:" in run.err
        assert "rhel8/8/x86_64/baseos/debug/repodata/repomd.xml" in run.err
        assert archive_files(hub) == {}

        # 3. The entitlement certificate: discovered, downloaded and built.
        monkeypatch.setenv("BTFHUB_RHEL_CERT", str(pki.client_cert))
        monkeypatch.setenv("BTFHUB_RHEL_KEY", str(pki.client_key))
        run = btfhub(capsys, hub, "reconcile", *mirror, *RHEL8)
        assert run.code == 0, run.err
        assert package_requests(cdn) == [f"/rhel8/8/x86_64/baseos/debug/Packages/k/{rpm.name}"]
    path = f"archive/rhel/8/x86_64/{RHEL_UNAME}.btf.tar.xz"
    files = archive_files(hub)
    assert sorted(files) == [path]
    assert states(hub, "rhel", "8") == {RHEL_UNAME: "archived"}
    assert_fixture_btf(tmp_path, files[path], RHEL_UNAME)


# -- SLES: registration credentials as basic auth, SUSE's names and layout -------------

SLES_UNAME = "5.3.18-59.5-default"
SLES_USER = ("SCC_0123456789", "s3cret-registration")


def test_sles_needs_credentials_then_builds_suse_kernel_names(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fixture_elf: Path,
) -> None:
    # SUSE keeps vmlinux at /usr/lib/debug/boot/vmlinux-<uname>.debug, and the
    # package release's last number (.2) is not part of uname -r.
    rpm = build_rpm(
        tmp_path / "rpms", "kernel-default-debuginfo", "5.3.18", "59.5.2", "x86_64", SLES_UNAME,
        None, extra={f"/usr/lib/debug/boot/vmlinux-{SLES_UNAME}.debug": fixture_elf.read_bytes()},
    )  # fmt: skip
    hub = make_hub(tmp_path / "hub")
    monkeypatch.delenv("BTFHUB_SUSE_USER", raising=False)
    monkeypatch.delenv("BTFHUB_SUSE_PASSWORD_FILE", raising=False)
    with FaultyMirror(tmp_path / "scc", basic_auth=SLES_USER) as scc:
        base = "SLE-Module-Basesystem/15-SP3/x86_64"
        write_rpmmd_repo(scc.directory / f"Products/{base}/product_debug", [], flat=False)
        write_rpmmd_repo(scc.directory / f"Updates/{base}/update_debug", [rpm], flat=False)
        mirror = ("--mirror", f"https://updates.suse.com/SUSE/={scc.url}")
        sles = ("--distro", "sles", "--release", "15.3")

        plan = btfhub(capsys, hub, "plan", *mirror, *sles)
        assert plan.code == 0, plan.err
        assert "skipped: sles/15.3/x86_64: needs credentials" in plan.out
        assert scc.log == []

        password = tmp_path / "password"
        password.write_text("wrong\n")
        monkeypatch.setenv("BTFHUB_SUSE_USER", SLES_USER[0])
        monkeypatch.setenv("BTFHUB_SUSE_PASSWORD_FILE", str(password))
        run = btfhub(capsys, hub, "reconcile", *mirror, *sles)
        assert run.code == 1
        assert "HTTP 401" in run.err
        assert "https://updates.suse.com/SUSE/Products/" in run.err

        password.write_text(SLES_USER[1] + "\n")
        run = btfhub(capsys, hub, "reconcile", *mirror, *sles)
        assert run.code == 0, run.err
        assert "summary: 1 built" in run.out
    path = f"archive/sles/15.3/x86_64/{SLES_UNAME}.btf.tar.xz"
    files = archive_files(hub)
    assert sorted(files) == [path]
    assert states(hub, "sles", "15.3") == {SLES_UNAME: "archived"}
    assert_fixture_btf(tmp_path, files[path], SLES_UNAME)


# -- Launchpad as the fallback of ddebs.ubuntu.com (how catalog/ubuntu.yaml can use it) --

FALLBACK_MANIFEST = """\
# yaml-language-server: $schema=../schemas/manifest.schema.json
title: Ubuntu with a Launchpad fallback
archive_dir: ubuntu
directory: "20.04"
architectures: [x86_64]
columns:
  - {header: Ubuntu, field: name}
  - {header: HUB, field: hub}
repositories:
  - id: ddebs
    kind: apt
    url: http://ddebs.ubuntu.com/
    packages: ["linux-image-unsigned-{uname}-dbgsym", "linux-image-{uname}-dbgsym"]
    flavours: [generic]
  - id: launchpad
    kind: launchpad
    url: https://api.launchpad.net/1.0/ubuntu/+archive/primary
    unsigned: true  # Launchpad's API answers carry no signature (HTTPS only)
    packages: ["linux-image-unsigned-{uname}-dbgsym", "linux-image-{uname}-dbgsym"]
    flavours: [generic]
releases:
  - name: Focal
    kernel: "5.4.0"
    hub: true
    sources:
      - repository: ddebs
        suites: [focal, focal-updates]
      - repository: launchpad
        suites: [focal]
"""


def test_launchpad_fills_in_what_ddebs_no_longer_indexes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mirror_server: FaultyMirror
) -> None:
    k26 = "5.4.0-26-generic"
    decoys = tmp_path / "decoys"
    decoys.mkdir()

    def ddeb(uname: str, version: str) -> AptPackage:
        name = f"linux-image-unsigned-{uname}-dbgsym"
        path = decoys / f"{name}_{version}_amd64.ddeb"
        path.write_bytes(f"{name} {version}\n".encode())
        return AptPackage(path, name, version, "amd64", "linux")

    current, old = ddeb(K42, "5.4.0-42.46"), ddeb(k26, "5.4.0-26.30")
    write_ubuntu(mirror_server, {"focal": [], "focal-updates": [current]})
    hub = tmp_path / "hub"
    (hub / "catalog").mkdir(parents=True)
    (hub / "catalog/ubuntu.yaml").write_text(FALLBACK_MANIFEST)
    shutil.copyfile(REPO / "README.md", hub / "README.md")
    with LaunchpadStandIn() as lp:
        for pkg in (current, old):  # Launchpad has both; ddebs only the current one
            lp.publish(pkg.path, pkg.package, pkg.version, "focal", status="Superseded")
        ddebs_only = {k: v for k, v in HOSTS.items() if k != LAUNCHPAD_API}
        mirrors = mirror_args(mirror_server, ddebs_only)
        plan = btfhub(capsys, hub, "plan", "--json", *lp_args(lp), *mirrors)
    assert plan.code == 0, plan.err
    doc = json.loads(plan.out)
    assert doc["errors"] == []
    sources = {
        k["uname"]: (k["package"]["repository"], k["package"]["url"]) for k in doc["kernels"]
    }
    assert sources == {
        K42: ("ddebs", f"http://ddebs.ubuntu.com/pool/main/l/linux/{current.path.name}"),
        k26: (
            "launchpad",
            f"https://launchpad.net/ubuntu/+archive/primary/+files/{old.path.name}",
        ),
    }
