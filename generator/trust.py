"""Which keys a run trusts, per repository.

A repository's manifest entry names its keyring (`keyring:
catalog/keys/ubuntu-ddebs.asc`) or says `unsigned: true`; there is no third
way. A run may add keys for every repository with `--keyring FILE`
(repeatable) or `BTFHUB_KEYRINGS="FILE FILE"`: a private mirror that
re-signs the indexes with its own key, or a test mirror. Added keys widen
trust, they never lift the requirement of a signature.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from generator.errors import BtfhubError
from generator.model import Repository
from generator.openpgp import Keyring

KEYRINGS_ENV = "BTFHUB_KEYRINGS"


class TrustPolicy:
    """The run's trusted keys; one Keyring per distinct set of key files, built on demand."""

    def __init__(self, extra_keyrings: Sequence[Path] = ()) -> None:
        for path in extra_keyrings:
            if not path.is_file():
                raise BtfhubError(f"keyring {path}: no such file (--keyring / {KEYRINGS_ENV})")
        self.extra_keyrings = tuple(path.resolve() for path in extra_keyrings)
        self._keyrings: dict[tuple[Path, ...], Keyring] = {}
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
        files = tuple(
            dict.fromkeys([*([Path(repo.keyring)] if repo.keyring else []), *self.extra_keyrings])
        )
        if not files:
            raise BtfhubError(
                f"repository {repo.id}: no keyring to check its signatures against "
                f"(name one in its manifest entry, pass --keyring FILE or {KEYRINGS_ENV}, "
                "or mark it `unsigned: true` if it truly publishes no signature)"
            )
        with self._lock:
            if files not in self._keyrings:
                self._keyrings[files] = Keyring(files)
            return self._keyrings[files]

    def close(self) -> None:
        with self._lock:
            for keyring in self._keyrings.values():
                keyring.close()
            self._keyrings.clear()
