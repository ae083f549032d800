"""Release signatures: a repository with a keyring only trusts a Release its keys signed.

Real gpg and gpgv: a throwaway key signs the test mirror's Release files
(detached, armored, as Release.gpg on ddebs.ubuntu.com and Debian mirrors).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.mirrorkit.mirror import AptPackage, MirrorServer
from tests.hubkit import btfhub, focal_suites, make_hub, mirror_args, write_ubuntu

UNAME = "5.4.0-42-generic"


class Signer:
    """A gpg home with one passphrase-less signing key."""

    def __init__(self, home: Path, name: str) -> None:
        home.mkdir(mode=0o700)
        self.env = {**os.environ, "GNUPGHOME": str(home)}
        self.gpg("--quick-gen-key", f"{name} <{name}@example.invalid>", "ed25519", "sign", "never")

    def gpg(self, *args: str) -> bytes:
        cmd = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, check=True).stdout

    def export(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.gpg("--export"))
        return path

    def sign(self, release: Path) -> None:
        self.gpg("--yes", "--armor", "--detach-sign", "-o", f"{release}.gpg", str(release))

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self.env, check=False)


@pytest.fixture(scope="module")
def signers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Signer]]:
    base = tmp_path_factory.mktemp("gpg")
    made = {name: Signer(base / name, name) for name in ("archive", "stranger")}
    yield made
    for signer in made.values():
        signer.close()


def signed_hub(tmp_path: Path, signers: dict[str, Signer]) -> Path:
    """A hub whose ddebs repository names the archive key's keyring."""
    hub = make_hub(tmp_path / "hub")
    signers["archive"].export(hub / "keys" / "ubuntu-dbgsym.gpg")
    manifest = hub / "catalog" / "ubuntu.yaml"
    text = manifest.read_text()
    anchor = "    url: http://ddebs.ubuntu.com/\n"
    assert anchor in text
    manifest.write_text(text.replace(anchor, anchor + "    keyring: keys/ubuntu-dbgsym.gpg\n"))
    return hub


def publish_focal(tmp_path: Path, server: MirrorServer) -> list[Path]:
    deb = tmp_path / f"linux-image-unsigned-{UNAME}-dbgsym_5.4.0-42.46_amd64.ddeb"
    deb.write_bytes(b"discovery never opens the package")
    pkg = AptPackage(deb, f"linux-image-unsigned-{UNAME}-dbgsym", "5.4.0-42.46", "amd64", "linux")
    write_ubuntu(server, focal_suites(updates=[pkg]))
    return sorted((server.directory / "ubuntu" / "dists").glob("*/Release"))


def plan(capsys: pytest.CaptureFixture[str], hub: Path, server: MirrorServer) -> dict[str, object]:
    select = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")
    run = btfhub(capsys, hub, "plan", "--json", *mirror_args(server), *select)
    doc: dict[str, object] = json.loads(run.out)
    # plan exits 1 exactly when a discovery failed; the JSON is printed either way.
    assert run.code == (1 if doc["errors"] else 0), run.err
    return doc


def test_release_signed_by_the_keyring_is_trusted(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: MirrorServer,
    signers: dict[str, Signer],
) -> None:
    hub = signed_hub(tmp_path, signers)
    for release in publish_focal(tmp_path, mirror_server):
        signers["archive"].sign(release)
    doc = plan(capsys, hub, mirror_server)
    assert doc["errors"] == []
    assert [k["uname"] for k in doc["kernels"]] == [UNAME]  # type: ignore[attr-defined]
    assert mirror_server.requests_for("/ubuntu/dists/focal-updates/Release.gpg")


@pytest.mark.parametrize("damage", ["tampered", "stranger", "unsigned"])
def test_release_not_signed_by_the_keyring_fails_its_release(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: MirrorServer,
    signers: dict[str, Signer],
    damage: str,
) -> None:
    hub = signed_hub(tmp_path, signers)
    releases = publish_focal(tmp_path, mirror_server)
    for release in releases:
        if damage == "stranger":
            signers["stranger"].sign(release)
        elif damage == "tampered":
            signers["archive"].sign(release)
            # A package added to the index after signing: Release no longer matches.
            release.write_bytes(release.read_bytes().replace(b"Suite:", b"Suite: evil\nX:"))
    doc = plan(capsys, hub, mirror_server)
    assert doc["kernels"] == []
    errors = doc["errors"]
    assert isinstance(errors, list) and len(errors) == 1
    message = errors[0]["message"]
    expected = "404" if damage == "unsigned" else "bad or missing signature"
    assert expected in message, message
    assert "ddebs.ubuntu.com/dists/focal" in message


def test_repository_without_keyring_fetches_no_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mirror_server: MirrorServer
) -> None:
    hub = make_hub(tmp_path / "hub")
    publish_focal(tmp_path, mirror_server)
    doc = plan(capsys, hub, mirror_server)
    assert [k["uname"] for k in doc["kernels"]] == [UNAME]  # type: ignore[attr-defined]
    assert not [r for r in mirror_server.log if r.path.endswith(".gpg")]


def test_keyring_must_exist_inside_the_hub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signers: dict[str, Signer]
) -> None:
    hub = signed_hub(tmp_path, signers)
    (hub / "keys" / "ubuntu-dbgsym.gpg").unlink()
    run = btfhub(capsys, hub, "validate")
    assert run.code == 1
    assert "repositories[0].keyring: no such file: keys/ubuntu-dbgsym.gpg" in run.out
    manifest = hub / "catalog" / "ubuntu.yaml"
    manifest.write_text(manifest.read_text().replace("keys/ubuntu", "../keys/ubuntu"))
    run = btfhub(capsys, hub, "validate")
    assert "repositories[0].keyring: must stay inside the hub (no ..)" in run.out
