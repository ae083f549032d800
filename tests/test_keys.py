"""The shipped archive keys are the ones catalog/keys/README.md lists, fingerprint by fingerprint.

Real gpg (`gpg --show-keys`): a key file edited by mistake, or a key
swapped for another, fails here before any run trusts it.
"""

from __future__ import annotations

import re
from pathlib import Path

from generator.catalog import load_catalog
from generator.openpgp import Keyring, fingerprints

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "catalog" / "keys"
ROW = re.compile(r"^\| (?P<file>[\w.-]+\.asc) \| (?P<fpr>[0-9A-F]{40}) \|")


def listed() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for line in (KEYS / "README.md").read_text().splitlines():
        m = ROW.match(line)
        if m:
            table.setdefault(m["file"], set()).add(m["fpr"])
    return table


def test_every_key_file_holds_exactly_the_listed_fingerprints() -> None:
    table = listed()
    files = sorted(p.name for p in KEYS.glob("*.asc"))
    assert files == sorted(table), "every key file needs its rows, every row its file"
    for name in files:
        assert set(fingerprints(KEYS / name)) == table[name], name


def test_the_ubuntu_key_is_the_one_ubuntu_publishes() -> None:
    assert fingerprints(KEYS / "ubuntu-ddebs.asc") == ["F2EDC64DC5AEE1F6B9C621F0C8CAB6595FDFF622"]


def test_every_signed_repository_names_a_shipped_key_file_gpgv_can_read() -> None:
    catalog = load_catalog(ROOT)
    for dist in catalog.distributions:
        for repo in dist.repositories:
            if repo.kind == "launchpad":
                # Launchpad's API signs nothing (validation holds it to
                # unsigned: true and https); its SHA-256 per package is checked.
                assert repo.unsigned and repo.url.startswith("https://"), repo.id
                continue
            assert not repo.unsigned, f"{dist.id}/{repo.id} is shipped unsigned"
            if repo.signing_key_id is not None:
                # Its key is not shipped: runs must be given it (tests/test_signing_key.py).
                assert (dist.id, repo.id) == ("amzn", "amzn1-debuginfo")
                assert repo.keyring is None
                continue
            assert repo.keyring is not None
            path = Path(repo.keyring)
            assert path.parent == KEYS, f"{dist.id}/{repo.id}: {path}"
            keyring = Keyring((path,))
            try:
                assert keyring.path().stat().st_size > 0  # dearmored for gpgv
            finally:
                keyring.close()
