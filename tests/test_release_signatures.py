"""Signed indexes by default: only what a trusted key signed is read, nothing else is built.

Real gpg, gpgv and rpmsign. The shipped catalog is pointed at a local mirror
signed by the session's test key, which the run trusts through
BTFHUB_KEYRINGS (tests/conftest.py) as an operator's private mirror would
be; "stranger" is a key nobody trusts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.demokit.mirror import AptPackage
from generator.demokit.signing import Signer, default_signer
from generator.trust import KEYRINGS_ENV
from tests.kit.hub import (
    Run,
    archive_files,
    btfhub,
    build_ddeb,
    focal_suites,
    load_index,
    make_hub,
    mirror_args,
    write_centos,
    write_ubuntu,
)
from tests.kit.mirror import FaultyMirror
from tests.kit.shelf import build_rpm

UNAME = "5.4.0-42-generic"
FOCAL = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")
CENTOS = ("--distro", "centos7", "--release", "7.9.2009", "--arch", "x86_64")
INRELEASE = "ddebs.ubuntu.com/dists/focal/InRelease"


@pytest.fixture(scope="module")
def ddeb(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> AptPackage:
    return build_ddeb(
        tmp_path_factory.mktemp("ddeb"),
        f"linux-image-unsigned-{UNAME}-dbgsym",
        "5.4.0-42.46",
        UNAME,
        fixture_elf,
    )


def publish_focal(server: FaultyMirror, ddeb: AptPackage) -> list[Path]:
    write_ubuntu(server, focal_suites(updates=[ddeb]))
    return sorted((server.directory / "ubuntu" / "dists").glob("*/Release"))


def reconcile(
    capsys: pytest.CaptureFixture[str], hub: Path, server: FaultyMirror, *args: str
) -> Run:
    return btfhub(capsys, hub, "reconcile", *mirror_args(server), *args)


def plan_json(
    capsys: pytest.CaptureFixture[str], hub: Path, server: FaultyMirror, *args: str
) -> dict[str, object]:
    run = btfhub(capsys, hub, "plan", "--json", *mirror_args(server), *args)
    assert run.code == 0, run.err
    doc: dict[str, object] = json.loads(run.out)
    # plan exits 1 exactly when a discovery failed; the JSON is printed either way.
    assert run.code == (1 if doc["errors"] else 0), run.err
    return doc


def test_inrelease_signed_by_a_trusted_key_builds(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
) -> None:
    hub = make_hub(tmp_path / "hub")
    publish_focal(mirror_server, ddeb)
    run = reconcile(capsys, hub, mirror_server, *FOCAL)
    assert run.code == 0, run.err
    assert list(archive_files(hub)) == [f"archive/ubuntu/20.04/x86_64/{UNAME}.btf.tar.xz"]
    # InRelease is enough: the detached form is not asked for.
    assert mirror_server.requests_for("/ubuntu/dists/focal-updates/InRelease")
    assert not [r for r in mirror_server.log if r.path.endswith("Release.gpg")]


@pytest.mark.parametrize("damage", ["stranger", "tampered", "unsigned", "no-keyring"])
def test_an_index_not_signed_by_a_trusted_key_builds_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
    stranger: Signer,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
) -> None:
    hub = make_hub(tmp_path / "hub")
    for release in publish_focal(mirror_server, ddeb):
        inrelease = release.with_name("InRelease")
        if damage == "stranger":
            stranger.sign_release(release)
        elif damage == "tampered":
            # A package slipped into the signed text after signing.
            text = inrelease.read_bytes().replace(b"Suite:", b"X-Evil: 1\nSuite:", 1)
            inrelease.write_bytes(text)
        elif damage == "unsigned":
            inrelease.unlink()
            release.with_name("Release.gpg").unlink()
    if damage == "no-keyring":
        # The shipped Ubuntu key is the only one trusted: the test key is not.
        monkeypatch.delenv(KEYRINGS_ENV)
    run = reconcile(capsys, hub, mirror_server, *FOCAL)
    assert run.code == 1
    expected = {
        "stranger": "no good signature by a trusted key",
        "tampered": "bad signature",
        "unsigned": "not signed: neither InRelease nor Release.gpg exists",
        "no-keyring": "no good signature by a trusted key",
    }[damage]
    assert expected in run.err, run.err
    assert ("ddebs.ubuntu.com/dists/focal/Release" if damage == "unsigned" else INRELEASE) in (
        run.err
    )
    assert archive_files(hub) == {}
    assert not [r for r in mirror_server.log if r.path.endswith(".ddeb")]  # nothing built


def test_release_and_release_gpg_when_there_is_no_inrelease(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
    stranger: Signer,
) -> None:
    releases = publish_focal(mirror_server, ddeb)
    for release in releases:
        release.with_name("InRelease").unlink()
    hub = make_hub(tmp_path / "good")
    doc = plan_json(capsys, hub, mirror_server, *FOCAL)
    assert doc["errors"] == []
    assert [k["uname"] for k in doc["kernels"]] == [UNAME]  # type: ignore[attr-defined]
    assert mirror_server.requests_for("/ubuntu/dists/focal/Release.gpg")

    # Release changed after it was signed: the detached signature no longer fits.
    for release in releases:
        release.write_bytes(release.read_bytes().replace(b"Suite:", b"X-Evil: 1\nSuite:", 1))
    run = btfhub(capsys, make_hub(tmp_path / "bad"), "plan", *mirror_args(mirror_server), *FOCAL)
    assert "bad signature" in run.out
    assert "ddebs.ubuntu.com/dists/focal/Release" in run.out


def test_keyring_option_trusts_a_key_for_the_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
    stranger: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A private mirror re-signed by its operator's key: --keyring, not a weaker default."""
    for release in publish_focal(mirror_server, ddeb):
        stranger.sign_release(release)
    monkeypatch.delenv(KEYRINGS_ENV)
    hub = make_hub(tmp_path / "hub")
    run = reconcile(capsys, hub, mirror_server, *FOCAL, "--keyring", str(stranger.public_key))
    assert run.code == 0, run.err
    assert len(archive_files(hub)) == 1


def test_unsigned_true_is_the_only_way_and_it_shows(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
) -> None:
    for release in publish_focal(mirror_server, ddeb):
        release.with_name("InRelease").unlink()
        release.with_name("Release.gpg").unlink()
    hub = make_hub(tmp_path / "hub")
    manifest = hub / "catalog" / "ubuntu.yaml"
    text = manifest.read_text()
    signed = "    keyring: catalog/keys/ubuntu-ddebs.asc\n"
    assert signed in text
    manifest.write_text(text.replace(signed, "    unsigned: true\n"))

    run = btfhub(capsys, hub, "plan", *mirror_args(mirror_server), *FOCAL)
    assert run.code == 0, run.err
    assert "unsigned: ubuntu/ddebs (http://ddebs.ubuntu.com/)" in run.out
    doc = plan_json(capsys, hub, mirror_server, *FOCAL)
    # Launchpad, the shipped fallback, is unsigned by nature (its API signs nothing).
    assert doc["unsigned_repositories"] == [
        {"distro": "ubuntu", "repository": "ddebs", "url": "http://ddebs.ubuntu.com/"},
        {
            "distro": "ubuntu",
            "repository": "launchpad",
            "url": "https://api.launchpad.net/1.0/ubuntu/+archive/primary",
        },
    ]
    run = reconcile(capsys, hub, mirror_server, *FOCAL)
    assert run.code == 0, run.err
    unsigned = load_index(hub)["distributions"]["ubuntu"]["unsigned_repositories"]
    assert unsigned == ["ddebs", "launchpad"]
    # The shipped catalog names a keyring for every other repository.
    assert "unsigned_repositories" not in load_index(hub)["distributions"]["centos7"]


# -- rpm-md: repomd.xml.asc where published, the RPM header signature always -------------


def test_rpm_signed_by_an_unknown_key_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    stranger: Signer,
) -> None:
    uname = "3.10.0-1160.el7.x86_64"
    rpms = tmp_path / "rpms"
    rpms.mkdir()
    rpm = build_rpm(
        rpms,
        "kernel-debuginfo",
        "3.10.0",
        "1160.el7",
        "x86_64",
        uname,
        fixture_elf,
        signer=stranger,
    )
    write_centos(mirror_server, "7", [rpm])
    hub = make_hub(tmp_path / "hub")
    run = reconcile(capsys, hub, mirror_server, *CENTOS)
    assert run.code == 1
    assert f"{uname}.rpm (rpm header signature): no good signature by a trusted key" in run.err
    assert "debuginfo.centos.org/7/x86_64/" in run.err
    assert archive_files(hub) == {}


def test_unsigned_rpm_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
) -> None:
    uname = "3.10.0-1160.el7.x86_64"
    rpms = tmp_path / "rpms"
    rpms.mkdir()
    rpm = build_rpm(
        rpms, "kernel-debuginfo", "3.10.0", "1160.el7", "x86_64", uname, fixture_elf, signed=False
    )
    write_centos(mirror_server, "7", [rpm])
    hub = make_hub(tmp_path / "hub")
    run = reconcile(capsys, hub, mirror_server, *CENTOS)
    assert run.code == 1
    assert "carries no header signature (unsigned rpm)" in run.err
    assert archive_files(hub) == {}


def test_repomd_signature_is_checked_where_published(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    stranger: Signer,
) -> None:
    uname = "3.10.0-1160.el7.x86_64"
    rpms = tmp_path / "rpms"
    rpms.mkdir()
    rpm = build_rpm(rpms, "kernel-debuginfo", "3.10.0", "1160.el7", "x86_64", uname, fixture_elf)
    repo = write_centos(mirror_server, "7", [rpm])
    default_signer().sign_detached(repo / "repodata" / "repomd.xml")
    signed = plan_json(capsys, make_hub(tmp_path / "signed"), mirror_server, *CENTOS)
    assert signed["errors"] == []
    assert [k["uname"] for k in signed["kernels"]] == [uname]  # type: ignore[attr-defined]
    assert mirror_server.requests_for("/centos/7/x86_64/repodata/repomd.xml.asc")

    stranger.sign_detached(repo / "repodata" / "repomd.xml")
    run = btfhub(capsys, make_hub(tmp_path / "hub"), "plan", *mirror_args(mirror_server), *CENTOS)
    assert "debuginfo.centos.org/7/x86_64/repodata/repomd.xml.asc" in run.out
    assert "no good signature by a trusted key" in run.out
    assert f"{uname}" not in run.out.split("error:")[0]  # nothing planned from it


def test_keyring_must_exist_inside_the_hub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = make_hub(tmp_path / "hub")
    (hub / "catalog" / "keys" / "ubuntu-ddebs.asc").unlink()
    run = btfhub(capsys, hub, "validate")
    assert run.code == 1
    assert "repositories[0].keyring: no such file: catalog/keys/ubuntu-ddebs.asc" in run.out
    manifest = hub / "catalog" / "ubuntu.yaml"
    manifest.write_text(manifest.read_text().replace("catalog/keys/ubuntu", "../keys/ubuntu"))
    run = btfhub(capsys, hub, "validate")
    assert "repositories[0].keyring: must stay inside the hub (no ..)" in run.out
