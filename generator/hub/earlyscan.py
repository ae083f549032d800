"""archive/ as render reads it, and render's output, made while worker processes ask upstream.

A no-op at the public hub's scale spends a few seconds waiting on the
workers that confirm its kept listings (upstream/confirm.py), and its render
then spent half a second asking git which files are unchanged and walking
the 20,000 files of archive/, and another half building index.json and the
README's tables, one core working while the other stood idle. Both are made
in the wait instead, from the state as loaded, and render uses them when
they still hold: a scan is a function of archive/ (the same when nothing was
built: the run holds the hub's lock) and of the digests the state records
(compared in full before use); the composed README.md and index.json are a
function of the catalog, the state and the scan, so they hold when nothing
was built, no listing changed the state (hub/run.record says) and the state
still records the same files (a push to an OCI store records more).
Render still compares them with the files and writes what differs, as
always. When the memo (hub/rendermemo.py) vouches that README.md and
index.json already are what composing these inputs gives, they are taken as
they are, composed from nothing; a run that composed and found them so keeps
that in the memo for the next.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import gitops
from generator.archive import ArchiveScan
from generator.errors import BtfhubError
from generator.hub import rendermemo
from generator.model import Catalog, FileDigest
from generator.render import README_FILE, Composed, RenderResult, compose_hub
from generator.state import INDEX_FILE, HubState
from generator.store import hubstore
from generator.store.setting import Blob


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
    locations: dict[str, Blob]  # state.locations when scanned (an OCI store's files)
    scan: ArchiveScan | None  # None in an OCI store (render reads no file there)
    composed: Composed | None = None  # render's output for the state as loaded
    inputs: str | None = None  # the digest of what composed was composed from (rendermemo)

    @classmethod
    def take(cls, root: Path, state: HubState, catalog: Catalog | None = None) -> EarlyScan:
        """The scan render would make now; with catalog, what render would write too."""
        files, modules = dict(state.files), copy.deepcopy(state.module_files)
        scan = render_scan(root, state) if state.store is None else None
        composed, inputs = None, None
        # A hub render refuses (no README.md, a stray file) is refused by render in
        # its place, after the run's own work.
        with contextlib.suppress(BtfhubError):
            if catalog is not None:
                # An OCI hub's files are its state's locations: the state is an input already.
                inputs = rendermemo.inputs_digest(catalog, state.store, scan)
                found = rendermemo.found(root, inputs)
                if found is not None:
                    composed = Composed(found.outputs, found.unassigned)
                else:
                    composed = compose_hub(root, catalog, state, scan or render_scan(root, state))
        return cls(files, modules, dict(state.locations), scan, composed, inputs)

    def scan_only(self) -> EarlyScan:
        """Without the composed output: the state changed since (a listing did)."""
        return EarlyScan(self.files, self.module_files, self.locations, self.scan)

    def settled(self, root: Path, result: RenderResult) -> None:
        """Render used what was composed and found both files holding it: a fixed point,
        kept in the memo for the next run (hub/rendermemo.py)."""
        if self.composed is None or self.inputs is None:
            return
        if README_FILE in result.changed or INDEX_FILE in result.changed:
            return
        rendermemo.remember(root, self.inputs, self.composed.outputs, self.composed.unassigned)

    def _recorded(self, state: HubState) -> bool:
        """Whether state records the files it recorded when taken (a push records more)."""
        return (
            state.files == self.files
            and state.module_files == self.module_files
            and state.locations == self.locations
        )

    def still(self, state: HubState) -> ArchiveScan | None:
        """The scan, when state records what it was scanned with; else None (scan again).

        The caller vouches that archive/ did not change (nothing was built).
        """
        unchanged = state.store is None and self.scan is not None and self._recorded(state)
        return self.scan if unchanged else None

    def composed_for(self, state: HubState) -> Composed | None:
        """What render would write, when state records the files it was composed with.

        The caller vouches that nothing was built and no listing changed the
        state since (scan_only() otherwise).
        """
        return self.composed if self.composed is not None and self._recorded(state) else None
