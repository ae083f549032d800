"""A hub's files in its store: which are archived, the listing render shows, the push.

Git (the default, and the demo's): the files are archive/ in the hub's own
repository, as they always were. OCI: builds write into a staging directory
(ROOT/.btfhub-cache/store/staging/archive/...), outside anything git
commits; the run that records them pushes each staged file as a blob, tags
one manifest per archive directory referencing every file index.json keeps
there, and only then records the files' locations in the state that
index.json is rendered from. So index.json never names a blob the registry
lacks: an interrupted push leaves the unpushed files staged (the next run
pushes them, a HEAD for each blob already there) and index.json as it was
for them. A no-op run has nothing staged and sends the registry nothing.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from generator.archive import ArchiveLayoutError, ArchiveScan, ModulesFile, scan_archive
from generator.errors import BtfhubError
from generator.fsutil import atomic_write
from generator.model import ARCHIVE_DIR, BTF_SUFFIX, MODULES_SUFFIX, ArchiveEntry
from generator.progress import Reporter
from generator.state import HubState
from generator.store.oci import RegistryClient, directory_tag
from generator.store.setting import STAGING, Blob, Store, same_store, store_label


def output_root(root: Path, store: Store) -> Path:
    """Where a build writes archive/...: the hub itself (git) or the staging directory."""
    return root if store is None else root / STAGING


def archived(root: Path, store: Store, state: HubState, candidates: Iterable[str]) -> set[str]:
    """The candidate archive paths the hub has (in its store, or staged for it)."""
    # os.path on strings: a third of pathlib's cost over 20,000 candidates.
    base = str(output_root(root, store))
    return {
        p
        for p in candidates
        if (store is not None and p in state.locations) or os.path.isfile(os.path.join(base, p))
    }


def entry_of(blob: Blob, suffix: str = BTF_SUFFIX) -> ArchiveEntry | None:
    """The kernel file (BTF, or modules with MODULES_SUFFIX) a stored blob is, or None."""
    parts = blob.path.split("/")
    if len(parts) != 5 or parts[0] != ARCHIVE_DIR or not parts[4].endswith(suffix):
        return None
    uname = parts[4][: -len(suffix)]
    return ArchiveEntry(parts[1], parts[2], parts[3], uname, blob.path, blob.size, blob.sha256, "")


def hub_files(
    root: Path, store: Store, state: HubState, clean_blobs: dict[str, str] | None = None
) -> ArchiveScan:
    """The files index.json lists: archive/ (git), or the recorded locations (OCI).

    In an OCI store a modules file is listed with what index.json recorded of
    its modules (push_staged records it before the file leaves the machine).
    """
    if store is None:
        return scan_archive(root, state.files, clean_blobs, state.module_files)
    # One pass over the locations (20,000 at the public hub's scale), the
    # suffix tested before a path is split: no-op runs pay this every time.
    entries, modules = [], []
    for blob in state.locations.values():
        if blob.path.endswith(BTF_SUFFIX):
            entry = entry_of(blob)
            if entry is not None:
                entries.append(entry)
        elif blob.path.endswith(MODULES_SUFFIX):
            entry = entry_of(blob, MODULES_SUFFIX)
            listing = state.module_files.get(blob.path)
            if entry is not None and listing is not None and listing["sha256"] == blob.sha256:
                kept = {"modules": listing["modules"], "absent": listing["absent"]}
                modules.append(ModulesFile(entry, kept))
    return ArchiveScan(
        tuple(sorted(entries, key=lambda e: e.path)),
        (),
        tuple(sorted(modules, key=lambda m: m.entry.path)),
    )


def _record_modules(staging: Path, state: HubState) -> None:
    """What each staged modules file holds, into state (read now: the push removes the file)."""
    scan = scan_archive(staging, {}, {}, state.module_files)
    if scan.problems:
        raise ArchiveLayoutError(scan.problems)
    for m in scan.modules:
        entry = m.entry
        state.module_files[entry.path] = {
            "path": entry.path,
            "size": entry.size,
            "sha256": entry.sha256,
            **m.listing,
        }


def _holds_files(root: Path) -> bool:
    for _, _, names in os.walk(root / ARCHIVE_DIR):
        if any(not n.startswith(".") for n in names):
            return True
    return False


def adopt_store(root: Path, state: HubState, chosen: Store) -> None:
    """Make chosen the state's store; refused when the hub's files are in another one."""
    if same_store(state.store, chosen):
        state.store = chosen
        return
    holds = bool(state.locations) if state.store is not None else _holds_files(root)
    if holds:
        raise BtfhubError(
            f"{root}: the hub keeps its files in {store_label(state.store)}, not "
            f"{store_label(chosen)}; move them first: btfhub store migrate --to "
            f"{store_label(chosen)}"
        )
    state.store, state.locations = chosen, {}


# -- staged files and the push ------------------------------------------------------


def file_blob(path: str, file: Path) -> tuple[Blob, bytes]:
    data = file.read_bytes()
    return Blob(path, len(data), hashlib.sha256(data).hexdigest()), data


def files_under(top: Path) -> Iterator[tuple[str, Path]]:
    """(archive path, file) of every regular file under top/archive, any name, sorted."""
    base = top / ARCHIVE_DIR
    found = []
    for directory, dirs, names in os.walk(base):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            file = Path(directory, name)
            if name.startswith(".") or file.is_symlink() or not file.is_file():
                continue  # fsutil's temporary files; nothing a build writes is a link
            found.append((file.relative_to(top).as_posix(), file))
    yield from sorted(found)


@dataclass
class PushReport:
    uploaded: list[str] = field(default_factory=list)  # blobs sent
    present: list[str] = field(default_factory=list)  # blobs the registry had already
    manifests: list[str] = field(default_factory=list)  # tags written
    bytes: int = 0


# Uploads at once: a registry answers each call in tens of milliseconds, mostly
# waiting (docker-registry on this machine: HEAD 7, POST 17, PUT 34 ms for a
# 100 kB blob), so one at a time would leave the link idle.
PUSH_WORKERS = 8


def push_files(
    client: RegistryClient,
    files: Sequence[tuple[str, Path]],
    report: PushReport,
    check: Callable[[Blob, Path], None] | None = None,
) -> dict[str, Blob]:
    """Push each (archive path, file) as a blob, PUSH_WORKERS at once; their blobs by path.

    check(blob, file) may refuse a file before it is sent (raising). The first
    failure is raised once the uploads under way have ended.
    """

    def one(item: tuple[str, Path]) -> tuple[Blob, bool]:
        blob, data = file_blob(*item)
        if check is not None:
            check(blob, item[1])
        return blob, client.push_blob(blob, data)

    with ThreadPoolExecutor(PUSH_WORKERS) as pool:
        results = list(pool.map(one, files))
    for blob, uploaded in results:
        if uploaded:
            report.uploaded.append(blob.path)
            report.bytes += blob.size
        else:
            report.present.append(blob.path)
    return {blob.path: blob for blob, _ in results}


def push_blobs(client: RegistryClient, top: Path) -> PushReport:
    """Push every file under top/archive as a blob, no manifest (a shard's build job).

    The job that records them (merge, then sync) tags their manifests; until
    then only a registry's garbage collection could take them.
    """
    report = PushReport()
    push_files(client, list(files_under(top)), report)
    return report


def push_staged(
    root: Path, state: HubState, client: RegistryClient, reporter: Reporter
) -> PushReport:
    """Push the staged files, directory by directory, recording each directory once tagged.

    A failure stops the push (RegistryError): the directories already tagged
    are recorded in state, the rest stay staged.
    """
    report = PushReport()
    staging = root / STAGING
    _record_modules(staging, state)
    by_dir: dict[str, list[tuple[str, Path]]] = {}
    for path, file in files_under(staging):
        by_dir.setdefault(posixpath.dirname(path), []).append((path, file))
    for directory, files in sorted(by_dir.items()):
        new = push_files(client, files, report)
        kept = {p: b for p, b in state.locations.items() if posixpath.dirname(p) == directory}
        tag = directory_tag(directory)
        client.put_manifest(tag, list({**kept, **new}.values()))
        report.manifests.append(tag)
        state.locations.update(new)
        reporter.info(f"store: {directory}: {len(new)} file(s) in {client.store.url}:{tag}")
    return report


def pull_blob(client: RegistryClient, blob: Blob, dest: Path) -> None:
    """blob's bytes into dest, written only once their size and sha256 are blob's."""
    with client.open_blob(blob) as stream:
        data = stream.read()  # the read reaching the end checks size and sha256
    atomic_write(dest, data)


def pull_archived(
    root: Path, state: HubState, client: RegistryClient, paths: Iterable[str], top: Path
) -> None:
    """The archived files at paths into top/<path>: staged, else pulled by their recorded digest.

    What a build reads of a kernel already stored (the BTF its modules are
    encoded on); a path index.json does not record is a clear error.
    """
    for path in paths:
        staged = root / STAGING / path
        if staged.is_file():  # built by a run whose push did not finish: not in the registry
            atomic_write(top / path, staged.read_bytes())
            continue
        blob = state.locations.get(path)
        if blob is None:
            raise BtfhubError(f"{path}: not in {client.store.url} by index.json, nor staged")
        pull_blob(client, blob, top / path)


def drop_recorded_staged(root: Path, state: HubState) -> None:
    """Remove staged files index.json now records (after it was written)."""
    staging = root / STAGING
    for path, file in files_under(staging):
        recorded = state.locations.get(path)
        if recorded is not None and file_blob(path, file)[0] == recorded:
            file.unlink()
