"""archive/ as render reads it, scanned while worker processes ask upstream.

A no-op at the public hub's scale spends a few seconds waiting on the
workers that confirm its kept listings (upstream/confirm.py), and its render
then spends half a second asking git which files are unchanged and walking
the 20,000 files of archive/. The scan is taken in the wait instead, and
render uses it when it still holds: a scan is a function of archive/ (the
same when nothing was built: the run holds the hub's lock) and of the
digests the state records (compared in full before use).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import gitops
from generator.archive import ArchiveScan
from generator.model import FileDigest
from generator.state import HubState
from generator.store import hubstore


def render_scan(root: Path, state: HubState, verify: bool = False) -> ArchiveScan:
    """The hub's files as render lists them: archive/, where files git reports unchanged
    keep their recorded digests (verify: every file hashed again), or an OCI store's
    recorded locations (nothing read)."""
    blobs = {} if verify or state.store is not None else gitops.clean_blobs(root)
    return hubstore.hub_files(root, state.store, state, blobs)


@dataclass(frozen=True)
class EarlyScan:
    files: dict[str, FileDigest]  # state.files when scanned
    module_files: dict[str, dict[str, Any]]  # state.module_files when scanned
    scan: ArchiveScan

    @classmethod
    def take(cls, root: Path, state: HubState) -> EarlyScan | None:
        """The scan render would make now; None in an OCI store (render reads no file there)."""
        if state.store is not None:
            return None
        files, modules = dict(state.files), copy.deepcopy(state.module_files)
        return cls(files, modules, render_scan(root, state))

    def still(self, state: HubState) -> ArchiveScan | None:
        """The scan, when state records what it was scanned with; else None (scan again).

        The caller vouches that archive/ did not change (nothing was built).
        """
        unchanged = (
            state.store is None
            and state.files == self.files
            and state.module_files == self.module_files
        )
        return self.scan if unchanged else None
