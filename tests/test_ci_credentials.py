"""scripts/ci-credentials.sh: repository secrets -> owner-only files and BTFHUB_* variables."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from generator.upstream.credentials import KINDS, load_credentials

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ci-credentials.sh"


def run(tmp_path: Path, **secrets: str) -> dict[str, str]:
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    env = {"PATH": os.environ["PATH"], "RUNNER_TEMP": str(tmp_path), "GITHUB_ENV": str(github_env)}
    subprocess.run([str(SCRIPT)], env={**env, **secrets}, check=True, capture_output=True)
    pairs = (line.split("=", 1) for line in github_env.read_text().splitlines())
    return dict(pairs)


def test_nothing_configured_exports_nothing(tmp_path: Path) -> None:
    assert run(tmp_path) == {}


def test_secrets_become_owner_only_files(tmp_path: Path) -> None:
    exported = run(
        tmp_path,
        RHEL_ENTITLEMENT_CERT="-----BEGIN CERTIFICATE-----\nx\n",
        RHEL_ENTITLEMENT_KEY="-----BEGIN PRIVATE KEY-----\ny\n",
        SUSE_USER="SCC_123",
        SUSE_PASSWORD="s3cret",
    )
    assert set(exported) == {
        "BTFHUB_RHEL_CERT",
        "BTFHUB_RHEL_KEY",
        "BTFHUB_SUSE_USER",
        "BTFHUB_SUSE_PASSWORD_FILE",
    }
    assert exported["BTFHUB_SUSE_USER"] == "SCC_123"
    assert Path(exported["BTFHUB_SUSE_PASSWORD_FILE"]).read_text().strip() == "s3cret"
    assert "BEGIN PRIVATE KEY" in Path(exported["BTFHUB_RHEL_KEY"]).read_text()
    for name in ("BTFHUB_RHEL_CERT", "BTFHUB_RHEL_KEY", "BTFHUB_SUSE_PASSWORD_FILE"):
        mode = stat.S_IMODE(Path(exported[name]).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))


def test_the_hub_signing_key_becomes_an_owner_only_file(tmp_path: Path) -> None:
    key = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nz\n-----END PGP PRIVATE KEY BLOCK-----"
    exported = run(tmp_path, HUB_SIGNING_KEY=key)
    assert set(exported) == {"BTFHUB_SIGNING_KEY"}
    path = Path(exported["BTFHUB_SIGNING_KEY"])
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("missing", ["RHEL_ENTITLEMENT_KEY", "RHEL_ENTITLEMENT_CERT"])
def test_half_an_entitlement_is_not_configured(tmp_path: Path, missing: str) -> None:
    secrets = {"RHEL_ENTITLEMENT_CERT": "c", "RHEL_ENTITLEMENT_KEY": "k"}
    del secrets[missing]
    assert run(tmp_path, **secrets) == {}


def test_what_it_exports_is_what_btfhub_loads(tmp_path: Path) -> None:
    exported = run(
        tmp_path,
        RHEL_ENTITLEMENT_CERT="cert",
        RHEL_ENTITLEMENT_KEY="key",
        RHEL_CDN_CA="ca",
        SUSE_USER="SCC_123",
        SUSE_PASSWORD="s3cret",
    )
    names = {v for kind in KINDS.values() for v in (*kind.required, *kind.optional)}
    assert set(exported) == names
    rhel = load_credentials("rhel-cdn", "rhel8-debug", exported)
    assert rhel.cert == (exported["BTFHUB_RHEL_CERT"], exported["BTFHUB_RHEL_KEY"])
    assert rhel.ca == exported["BTFHUB_RHEL_CA"]
    assert load_credentials("suse", "sles-debug", exported).auth == ("SCC_123", "s3cret")
