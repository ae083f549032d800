"""`btfhub store migrate`: a hub's files moved between git (archive/) and an OCI registry.

Every file's bytes are checked on the way: a file read from archive/ must
have the sha256 index.json records for it (the registry checks the digest of
each upload again); a blob pulled from a registry is verified by its stream
(size and sha256) before it lands in archive/. Files the destination already
has are not sent again, so a rerun after an interruption picks up where it
stopped, and a rerun after success finds nothing to do. The caller renders
index.json from the state this leaves and only then removes what the old
store held locally (archive/ of a hub that moved to OCI).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from generator.errors import BtfhubError
from generator.progress import Reporter
from generator.state import HubState
from generator.store.hubstore import PushReport, file_blob, files_under, pull_blob, push_files
from generator.store.oci import RegistryClient, directory_tag
from generator.store.setting import Blob, OciStore, Store, store_label
from generator.upstream.http import UpstreamClient


@dataclass
class MigrateReport:
    moved: list[str] = field(default_factory=list)  # files the destination did not have
    present: list[str] = field(default_factory=list)  # files it had already
    manifests: list[str] = field(default_factory=list)


def _tag_directories(client: RegistryClient, blobs: dict[str, Blob], report: MigrateReport) -> None:
    by_dir: dict[str, list[Blob]] = {}
    for blob in blobs.values():
        by_dir.setdefault(posixpath.dirname(blob.path), []).append(blob)
    for directory, members in sorted(by_dir.items()):
        tag = directory_tag(directory)
        client.put_manifest(tag, members)
        report.manifests.append(tag)


def _from_git(root: Path, state: HubState, client: RegistryClient, report: MigrateReport) -> None:
    def as_recorded(blob: Blob, file: Path) -> None:
        recorded = state.files.get(blob.path)
        if recorded is not None and (recorded.size, recorded.sha256) != (blob.size, blob.sha256):
            raise BtfhubError(
                f"{file}: sha256 {blob.sha256}, but index.json records {recorded.sha256}; "
                "run `btfhub render --verify` first if the file is right"
            )

    pushed = PushReport()
    blobs = push_files(client, list(files_under(root)), pushed, as_recorded)
    report.moved += pushed.uploaded
    report.present += pushed.present
    _tag_directories(client, blobs, report)
    state.locations = blobs


def _to_git(root: Path, state: HubState, client: RegistryClient, report: MigrateReport) -> None:
    for path, blob in sorted(state.locations.items()):
        dest = root / path
        if dest.is_file() and file_blob(path, dest)[0] == blob:
            report.present.append(path)
            continue
        pull_blob(client, blob, dest)
        report.moved.append(path)
    state.locations = {}


def _between_registries(
    state: HubState, source: RegistryClient, target: RegistryClient, report: MigrateReport
) -> None:
    for path, blob in sorted(state.locations.items()):
        if target.has_blob(blob, "push"):
            report.present.append(path)
            continue
        with source.open_blob(blob) as stream:
            data = stream.read()  # the read reaching the end checks size and sha256
        target.push_blob(blob, data)
        report.moved.append(path)
    _tag_directories(target, state.locations, report)


def migrate(
    root: Path, state: HubState, target: Store, http: UpstreamClient, reporter: Reporter
) -> MigrateReport:
    """Move state's files into target and make it state's store (see the module doc)."""
    report = MigrateReport()
    source = state.store
    if (source is None and target is None) or (
        source is not None and target is not None and source.url == target.url
    ):
        reporter.info(f"store: the hub's files are already in {store_label(target)}")
        return report
    if isinstance(target, OciStore):
        to = RegistryClient(http, target)
        if source is None:
            _from_git(root, state, to, report)
        else:
            _between_registries(state, RegistryClient(http, source), to, report)
    else:
        assert source is not None
        _to_git(root, state, RegistryClient(http, source), report)
    state.store = target
    reporter.info(
        f"store: {len(report.moved)} file(s) moved from {store_label(source)} to "
        f"{store_label(target)}, {len(report.present)} already there"
    )
    return report


def drop_local_archive(root: Path, state: HubState) -> int:
    """Remove archive/ files the OCI store holds with the same bytes (after index.json says so)."""
    removed = 0
    for path, file in files_under(root):
        blob = state.locations.get(path)
        if blob is not None and hashlib.sha256(file.read_bytes()).hexdigest() == blob.sha256:
            file.unlink()
            removed += 1
    for directory, _, _ in sorted(os.walk(root / "archive"), reverse=True):
        if directory != str(root / "archive") and not os.listdir(directory):
            os.rmdir(directory)
    return removed
