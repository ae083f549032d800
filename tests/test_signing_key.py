"""A publisher whose key the hub does not ship (Amazon Linux 1): `signing_key_id`.

The shipped manifest names the key's ID instead of a keyring. A run given a
file holding that key builds the release, trusting only such files; a run
without it skips the release as needing its key (no request is made, the
run stays green), like a subscription repository without credentials.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.demokit.mirror import write_rpmmd_repo
from generator.demokit.signing import Signer, default_signer
from generator.errors import BtfhubError
from generator.model import Repository
from generator.openpgp import SignatureError, fingerprints
from generator.trust import KEYRINGS_ENV, SigningKeyMissing, TrustPolicy
from tests.kit.hub import archive_files, btfhub, hub_cell, kernels, make_hub, states
from tests.kit.mirror import FaultyMirror
from tests.kit.shelf import build_rpm

AL1_KEY_ID = "BCB4A85B21C0F39F"  # RPM-GPG-KEY-amazon-ga, as catalog/amzn.yaml names it
UNAME = "4.14.281-144.502.amzn1.x86_64"
LISTS = "http://repo.us-east-1.amazonaws.com/"
PACKAGES = "http://packages.us-east-1.amazonaws.com/"
AL1 = ("--distro", "amzn", "--release", "1", "--arch", "x86_64")


def key_id(signer: Signer) -> str:
    return fingerprints(signer.public_key)[0][-16:]


def repo(signing_key_id: str) -> Repository:
    return Repository(
        id="al1", kind="rpm-md", url=LISTS, packages=("kernel-debuginfo",),
        signing_key_id=signing_key_id,
    )  # fmt: skip


def test_only_the_given_files_holding_the_key_are_trusted(stranger: Signer, tmp_path: Path) -> None:
    ours = default_signer()
    trust = TrustPolicy([stranger.public_key, ours.public_key])
    keyring = trust.keyring(repo(key_id(ours)))
    assert keyring is not None
    data = tmp_path / "data"
    data.write_bytes(b"repomd")
    keyring.verify_detached(b"repomd", ours.sign_detached(data, ".ours").read_bytes(), "ours")
    # The stranger's key was given to the run, but it is not the repository's.
    theirs = stranger.sign_detached(data, ".theirs").read_bytes()
    with pytest.raises(SignatureError):
        keyring.verify_detached(b"repomd", theirs, "stranger's")
    trust.close()


def test_without_the_key_the_repository_needs_it(stranger: Signer) -> None:
    trust = TrustPolicy([stranger.public_key])
    with pytest.raises(SigningKeyMissing, match=f"needs its signing key: .*{AL1_KEY_ID}"):
        trust.keyring(repo(AL1_KEY_ID))
    with pytest.raises(SigningKeyMissing):
        TrustPolicy([]).keyring(repo(AL1_KEY_ID.lower()))
    assert isinstance(SigningKeyMissing("x"), BtfhubError)


def al1_upstream(server: FaultyMirror, rpms: Path, fixture_elf: Path) -> Path:
    """mirror.list on repo.*, naming the tree on packages.* for $basearch, as Amazon's do."""
    rpm = build_rpm(
        rpms, "kernel-debuginfo", "4.14.281", "144.502.amzn1", "x86_64", UNAME, fixture_elf
    )
    real = "2018.03/updates/7f0ea8a5b7c3/debuginfo/x86_64/"
    write_rpmmd_repo(server.directory / "packages" / real, [rpm], flat=False)
    for path, packages in (("main/debuginfo", []), ("updates/debuginfo", [rpm])):
        lists = server.directory / "lists/2018.03" / path
        lists.mkdir(parents=True)
        tree = real if packages else "2018.03/main/5a1b2c3d/debuginfo/x86_64/"
        if not packages:
            write_rpmmd_repo(server.directory / "packages" / tree, [], flat=False)
        (lists / "mirror.list").write_text(f"{PACKAGES}{tree.replace('x86_64', '$basearch')}\n")
    return rpm


def mirrors(server: FaultyMirror) -> list[str]:
    return [
        "--mirror",
        f"{LISTS}={server.url}lists/",
        "--mirror",
        f"{PACKAGES}={server.url}packages/",
    ]


def test_amazon_linux_1_needs_its_key_then_builds_with_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    stranger: Signer,
) -> None:
    al1_upstream(mirror_server, tmp_path / "rpms", fixture_elf)
    hub = make_hub(tmp_path / "hub")
    manifest = hub / "catalog/amzn.yaml"
    # The test signer stands in for Amazon's key: the shipped entry names it instead.
    text = manifest.read_text()
    assert f"signing_key_id: {AL1_KEY_ID}" in text
    manifest.write_text(text.replace(AL1_KEY_ID, key_id(default_signer())))

    # 1. The run is given some key, not that one: skipped, green, nothing fetched.
    monkeypatch.setenv(KEYRINGS_ENV, str(stranger.public_key))
    skipped = btfhub(capsys, hub, "reconcile", *mirrors(mirror_server), *AL1)
    assert skipped.code == 0, skipped.err
    assert "skipped: amzn/1/x86_64: needs its signing key: repository amzn1-debuginfo" in (
        skipped.out + skipped.err
    )
    assert ", 1 release/arch need its signing key" in skipped.out + skipped.err  # the summary
    assert mirror_server.log == []
    assert archive_files(hub) == {}
    assert hub_cell(hub, "1") == "needs key"

    # 2. Given the key: listed through both mirror.lists and built.
    monkeypatch.setenv(KEYRINGS_ENV, str(default_signer().public_key))
    built = btfhub(capsys, hub, "reconcile", *mirrors(mirror_server), *AL1)
    assert built.code == 0, built.err
    assert sorted(archive_files(hub)) == [f"archive/amzn/1/x86_64/{UNAME}.btf.tar.xz"]
    assert states(hub, "amzn", "1") == {UNAME: "archived"}
    assert hub_cell(hub, "1") == "Y"


def test_a_package_signed_by_another_key_is_not_built(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    stranger: Signer,
) -> None:
    """Both keys given: the RPM (signed with the test key) must match the named one."""
    al1_upstream(mirror_server, tmp_path / "rpms", fixture_elf)
    hub = make_hub(tmp_path / "hub")
    manifest = hub / "catalog/amzn.yaml"
    manifest.write_text(manifest.read_text().replace(AL1_KEY_ID, key_id(stranger)))
    keyrings = f"{stranger.public_key} {default_signer().public_key}"
    monkeypatch.setenv(KEYRINGS_ENV, keyrings)
    run = btfhub(capsys, hub, "reconcile", *mirrors(mirror_server), *AL1)
    assert run.code != 0
    assert archive_files(hub) == {}
    assert states(hub, "amzn", "1") == {UNAME: "failed"}
    reason = kernels(hub, "amzn", "1")[UNAME]["reason"]
    assert "signature" in reason.lower(), reason


def test_validation_keeps_signing_key_id_apart_from_keyring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from generator.cli import main

    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog/x.yaml").write_text(
        "title: X\narchive_dir: x\ndirectory: '1'\ncolumns:\n  - {header: X, field: name}\n"
        "repositories:\n"
        "  - {id: a, kind: rpm-md, url: 'http://a.example/', packages: [k],"
        " keyring: k.asc, signing_key_id: BCB4A85B21C0F39F}\n"
        "  - {id: b, kind: rpm-md, url: 'http://b.example/', packages: [k],"
        " signing_key_id: 21C0F39F}\n"
        "releases:\n  - {name: A, kernel: '4.14', hub: false}\n"
    )
    assert main(["validate", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "repositories[0].signing_key_id: signing_key_id is for a repository whose key" in out
    assert "repositories[1].signing_key_id:" in out  # 8 hex digits: a short ID is not enough
