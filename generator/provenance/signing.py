"""index.json.asc: a detached OpenPGP signature over the exact bytes of index.json.

With BTFHUB_SIGNING_KEY (a secret key file, e.g. written from a CI secret)
every run that renders index.json signs it, and the signature is committed
with it; a consumer given the hub's public key (`--hub-key`) then trusts an
index only when it verifies. An unchanged index keeps its signature (an
OpenPGP signature carries its time: signing again would change the file
every run). When index.json changes and no key is given, the old
signature no longer covers it and is removed rather than left to mislead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from generator.openpgp import SigningKey

SIGNING_KEY_ENV = "BTFHUB_SIGNING_KEY"
INDEX_SIGNATURE = "index.json.asc"


@contextmanager
def signing_key() -> Iterator[SigningKey | None]:
    """The operator's signing key ($BTFHUB_SIGNING_KEY), or None when none is given."""
    path = os.environ.get(SIGNING_KEY_ENV)
    if not path:
        yield None
        return
    with SigningKey(Path(path)) as key:
        yield key


@dataclass(frozen=True)
class SignatureUpdate:
    """What becomes of index.json.asc: a new signature, its removal, or nothing."""

    signature: bytes | None = None  # write this
    remove: bool = False  # delete the stale one

    @property
    def changed(self) -> bool:
        return self.signature is not None or self.remove


def update_signature(
    root: Path, index: bytes, index_changed: bool, key: SigningKey | None, check: bool
) -> SignatureUpdate:
    """What index.json.asc needs for these index bytes (check: never signs, only tells)."""
    try:
        old: bytes | None = (root / INDEX_SIGNATURE).read_bytes()
    except FileNotFoundError:
        old = None
    if key is None:
        return SignatureUpdate(remove=old is not None and index_changed)
    if key.signed(index, old):
        return SignatureUpdate()
    return SignatureUpdate(signature=b"" if check else key.sign(index, "index.json"))
