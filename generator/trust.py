"""Which keys a run trusts, per repository.

A repository's manifest entry names its keyring (`keyring:
catalog/keys/ubuntu-ddebs.asc`) or says `unsigned: true`; or, for a
publisher whose key the hub cannot ship yet (Amazon Linux 1's), it names
the key's ID (`signing_key_id:`) and the run must be given that key:
until then its releases are skipped as needing it, like those needing
credentials, and only the given files holding that key are trusted for
it. A run may add keys for every repository with `--keyring FILE`
(repeatable) or `BTFHUB_KEYRINGS="FILE FILE"`: a private mirror that
re-signs the indexes with its own key, or a test mirror. Added keys widen
trust, they never lift the requirement of a signature.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from generator.errors import BtfhubError, OperatorInputMissing
from generator.model import Repository
from generator.openpgp import Keyring, fingerprints

KEYRINGS_ENV = "BTFHUB_KEYRINGS"


class SigningKeyMissing(OperatorInputMissing):
    """The run was given no key file holding a repository's `signing_key_id`."""

    cause = "needs its signing key"


class TrustPolicy:
    """The run's trusted keys; one Keyring per distinct set of key files, built on demand."""

    def __init__(self, extra_keyrings: Sequence[Path] = ()) -> None:
        for path in extra_keyrings:
            if not path.is_file():
                raise BtfhubError(f"keyring {path}: no such file (--keyring / {KEYRINGS_ENV})")
        self.extra_keyrings = tuple(path.resolve() for path in extra_keyrings)
        self._keyrings: dict[tuple[tuple[Path, ...], bool], Keyring] = {}
        self._holding: dict[str, tuple[Path, ...]] = {}  # key ID -> the extra files with it
        self._lock = threading.Lock()

    @classmethod
    def from_sources(
        cls, options: Iterable[Path] = (), environ: dict[str, str] | None = None
    ) -> TrustPolicy:
        """--keyring files first, then those BTFHUB_KEYRINGS lists (space-separated)."""
        env = os.environ if environ is None else environ
        files = [*options, *(Path(p) for p in env.get(KEYRINGS_ENV, "").split())]
        return cls(files)

    def keyring(self, repo: Repository) -> Keyring | None:
        """The keys that must sign what `repo` publishes; None for an `unsigned: true` one."""
        if repo.unsigned:
            return None
        if repo.signing_key_id is not None:
            return self._keyring(self._files_holding(repo), repo.sha1_signatures)
        files = tuple(
            dict.fromkeys([*([Path(repo.keyring)] if repo.keyring else []), *self.extra_keyrings])
        )
        if not files:
            raise BtfhubError(
                f"repository {repo.id}: no keyring to check its signatures against "
                f"(name one in its manifest entry, pass --keyring FILE or {KEYRINGS_ENV}, "
                "or mark it `unsigned: true` if it truly publishes no signature)"
            )
        return self._keyring(files, repo.sha1_signatures)

    def _files_holding(self, repo: Repository) -> tuple[Path, ...]:
        key_id = (repo.signing_key_id or "").upper()
        with self._lock:
            if key_id not in self._holding:
                self._holding[key_id] = tuple(
                    path
                    for path in self.extra_keyrings
                    if any(fp.upper().endswith(key_id) for fp in fingerprints(path))
                )
            files = self._holding[key_id]
        if not files:
            raise SigningKeyMissing(
                f"{SigningKeyMissing.cause}: repository {repo.id} is signed with key {key_id}, "
                f"which the hub does not ship; give a file holding it with --keyring FILE "
                f"or {KEYRINGS_ENV}"
            )
        return files

    def _keyring(self, files: tuple[Path, ...], sha1: bool) -> Keyring:
        with self._lock:
            if (files, sha1) not in self._keyrings:
                self._keyrings[files, sha1] = Keyring(files, sha1=sha1)
            return self._keyrings[files, sha1]

    def close(self) -> None:
        with self._lock:
            for keyring in self._keyrings.values():
                keyring.close()
            self._keyrings.clear()
