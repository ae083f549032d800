"""index.json: what the hub has, per distribution, release, architecture and kernel.

Pure: built from the catalog, the persisted discovery state and the archive
listing, with no I/O. The document is the published index for consumers
(size and sha256 of every BTF file, the package it came from) and, at the
same time, the discovery state the next run starts from (generator/state.py
reads it back). No timestamps: rendering twice gives the same bytes.

    {"schema_version": 1,
     "generated_by": "...",
     "distributions": {<manifest id>: {
         "title", "archive_dir", "url",
         "unsigned_repositories": [<repository id>],   # only when a manifest says unsigned: true
         "releases": {<release id>: {
             "name", "directory", "kernel", "series", <text fields>,
             "flags": {"bpf", "btf", "hub"},      # the manifest's booleans / null
             "hub": "Y" | "N/M" | "pending" | "-" | "",   # the HUB cell
             "architectures": {<arch>: {
                 "discovered": bool,
                 "kernels": {<uname>: {
                     "state": "archived" | "missing" | "failed" | "ships-btf",
                     "path", "size", "sha256",     # archived only: the BTF file
                     "reason",                     # failed only
                     "package": {"name", "version", "repository",
                                 "filename", "size", "sha256"}}},
                 "provenance": {<uname>: {...}},   # archived only (provenance/record.py)
                 "modules": {<uname>: {"path", "size", "sha256", "blob",   # its modules file
                                       "modules": {<name>: {"size", "sha256"}},
                                       "absent": [<name>],          # btf/modules.py
                                       "failed": {"reason"}}},  # its last modules build failed
                 "locations": {<uname>: {...}}}}}}}},  # an OCI store's (see below)
     "revision": 2,                                # the optional maps may appear
     "store": {"kind": "oci", "registry", "repository"},  # an OCI store only
     "unassigned": [{"path", "size", "sha256", "location"}]}

In an OCI store (generator/store/) each architecture has "locations":
{<uname>: {<archive path>: {"digest": "sha256:...", "size"}}}, the registry
blobs of the kernel's files (an unassigned file has its "location"), and
the registry and repository are the top-level "store"'s.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generator.model import (
    BTF_SUFFIX,
    ArchiveEntry,
    Catalog,
    Distribution,
    KernelState,
    Release,
    ReleaseArch,
    archive_path,
    modules_path,
    series_matches,
)
from generator.provenance.record import legacy_json, provenance_to_json
from generator.state import SCHEMA_VERSION, HubState, KnownKernel
from generator.store.setting import Blob

GENERATED_BY = "btfhub render; do not edit (catalog/*.yaml and the archive are the sources)"
# Absent means 1; 2: per-architecture maps beside "kernels" (provenance,
# locations) and a top-level "store", which readers of schema_version 1 ignore.
REVISION = 2


@dataclass(frozen=True)
class _Slot:
    """One (release, architecture) of the catalog, where kernels are listed."""

    distro: Distribution
    release: Release
    arch: str


def flag_cell(value: bool | None) -> str:
    """A BPF/BTF/HUB flag as the tables show it: Y, - (no) or empty (unknown)."""
    if value is None:
        return ""
    return "Y" if value else "-"


def hub_status(
    release: Release,
    architectures: Mapping[str, Mapping[str, Any]],
    operator_needs: str | None = None,
) -> str:
    """The HUB cell for a release, from its index entries per architecture.

    `pending` until the hub knows a kernel (nothing discovered, nothing
    archived); `Y` once every known kernel has its BTF here or ships its own;
    `N/M` on the way. A discovery that found no kernel at all shows `0/0`
    rather than a `Y` no consumer could use.
    """
    if release.hub is not True:
        return flag_cell(release.hub)
    kernels = [k for a in architectures.values() for k in a["kernels"].values()]
    discovered = any(a["discovered"] for a in architectures.values())
    if not kernels and not discovered:
        # A subscription repository (RHEL, SLES) nobody gave credentials for,
        # or one whose signing key the hub lacks (Amazon Linux 1), would
        # otherwise look like a run that is merely late.
        return operator_needs or "pending"
    done = sum(1 for k in kernels if k["state"] in (KernelState.ARCHIVED, KernelState.SHIPS_BTF))
    if kernels and done == len(kernels):
        return "Y"
    return f"{done}/{len(kernels)}"


def _package(known: KnownKernel) -> dict[str, Any]:
    return {
        "name": known.package_name,
        "version": known.version,
        "repository": known.repository,
        "filename": known.filename,
        "size": known.package_size,
        "sha256": known.package_sha256,
    }


def _kernel(known: KnownKernel | None, file: ArchiveEntry | None) -> dict[str, Any]:
    entry: dict[str, Any]
    if file is not None:
        # The file is what consumers get: it wins over an older outcome.
        entry = {
            "state": KernelState.ARCHIVED.value,
            "path": file.path,
            "size": file.size,
            "sha256": file.sha256,
        }
        if file.blob:  # a file in git; an OCI store's files have no blob id
            entry["blob"] = file.blob
    elif known is not None and known.outcome is not None:
        entry = {"state": known.outcome.state.value}
        if known.outcome.state is KernelState.FAILED:
            entry["reason"] = known.outcome.reason
    else:
        entry = {"state": KernelState.MISSING.value}
    if known is not None:
        entry["package"] = _package(known)
    return entry


def _provenance(
    state: HubState, target: ReleaseArch, kernels: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Each archived kernel's provenance: what its build recorded for these bytes, or legacy."""
    out: dict[str, Any] = {}
    for uname, entry in kernels.items():
        if entry["state"] != KernelState.ARCHIVED.value:
            continue
        prov = state.provenance.get(target.kernel(uname))
        if prov is not None and prov.file_sha256 == entry["sha256"]:
            out[uname] = provenance_to_json(prov)
        else:
            out[uname] = legacy_json(entry["sha256"])
    return out


def _file_entry(file: ArchiveEntry, location: Blob | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": file.path, "size": file.size, "sha256": file.sha256}
    if file.blob:
        entry["blob"] = file.blob
    if location is not None:
        entry["location"] = location.to_json()
    return entry


def _locations(
    stored: Sequence[Blob], kernels: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Where an OCI store holds each kernel's files (stored: its directory's), by uname.

    A file is the kernel's whose name is `<uname>.<suffix>`: its BTF file and
    any other file kept beside it (a modules archive); the longest uname wins
    (5.4.0-1.2's files are not 5.4.0-1's).
    """
    found: dict[str, dict[str, Any]] = {}
    for blob in stored:
        name = posixpath.basename(blob.path)
        btf = name.removesuffix(BTF_SUFFIX)
        owners = [btf] if btf in kernels else [u for u in kernels if name.startswith(u + ".")]
        if owners:
            found.setdefault(max(owners, key=len), {})[blob.path] = blob.to_json()
    return found


def _modules(
    kernels: Mapping[str, Any],
    modules: Mapping[str, tuple[ArchiveEntry, Mapping[str, Any]]],
    failed: Mapping[str, str],
) -> dict[str, Any]:
    """Issue 16: each archived kernel's modules file, and the modules it holds or lacks;
    failed: why the last build of an archived kernel's modules failed, by uname."""
    out: dict[str, Any] = {}
    for uname, kernel in kernels.items():
        if "path" not in kernel:
            continue
        entry: dict[str, Any] = {}
        found = modules.get(modules_path(kernel["path"]))
        if found is not None:
            file, listing = found
            entry = {**_file_entry(file, None), **listing}
        if uname in failed:  # the kernel stays archived: only its modules map says so
            entry["failed"] = {"reason": failed[uname]}
        if entry:
            out[uname] = entry
    return out


def _modules_failed(
    distro: Distribution, release: Release, known: Mapping[str, KnownKernel]
) -> dict[str, str]:
    """A failed outcome of a kernel whose release asks for modules: its modules build's
    (an archived kernel is built again only for them), kept while the release asks."""
    return {
        uname: k.outcome.reason or "failed"
        for uname, k in known.items()
        if k.outcome is not None
        and k.outcome.state is KernelState.FAILED
        and distro.modules(release, k.repository) is not None
    }


def _release_metadata(release: Release) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": release.name,
        "directory": release.directory,
        "kernel": release.kernel,
        "series": list(release.series),
        "flags": {"bpf": release.bpf, "btf": release.btf, "hub": release.hub},
    }
    # Text fields only when the manifest has them, null when it says "none".
    for name, value in release.fields:
        meta[name] = value
    return meta


def _assign_archive_only(
    slots: Sequence[_Slot], files: Sequence[ArchiveEntry], claimed: set[str]
) -> tuple[dict[int, list[ArchiveEntry]], list[ArchiveEntry]]:
    """Give archive files discovery does not list to the release they belong to.

    Upstream pools drop old kernels, yet their BTF stays useful: such a file
    goes to every slot of the same directory and arch whose series matches
    its uname most specifically (longest series; equal ones all get it, as
    two releases can share a kernel). Files matching no slot are returned
    apart so that index.json never loses one.
    """
    by_place: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, slot in enumerate(slots):
        by_place[(slot.distro.archive_dir, slot.release.directory, slot.arch)].append(i)
    assigned: dict[int, list[ArchiveEntry]] = defaultdict(list)
    unassigned: list[ArchiveEntry] = []
    for file in files:
        if file.path in claimed:
            continue
        best: list[int] = []
        best_len = -1
        for i in by_place.get((file.distro_dir, file.release_dir, file.arch), ()):
            for series in slots[i].release.series:
                if series_matches(series, file.uname) and len(series) >= best_len:
                    if len(series) > best_len:
                        best, best_len = [], len(series)
                    if i not in best:
                        best.append(i)
        if best:
            for i in best:
                assigned[i].append(file)
        else:
            unassigned.append(file)
    return assigned, unassigned


def _operator_needs(distro: Distribution, release: Release) -> str | None:
    """What the operator must supply before the release's sources can be read, if anything."""
    repos = {repo.id: repo for repo in distro.repositories}
    used = [repos[s.repository] for s in release.sources if s.repository in repos]
    if any(repo.credentials is not None for repo in used):
        return "needs credentials"
    if any(repo.signing_key_id is not None for repo in used):
        return "needs key"
    return None


def build_index(
    catalog: Catalog,
    state: HubState,
    archive: Sequence[ArchiveEntry],
    modules: Mapping[str, tuple[ArchiveEntry, Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The whole index.json document (see the module docstring).

    modules: each modules file in archive/ by path, with its listing
    ({"modules", "absent"}: generator.archive.ModulesFile).
    """
    modules = modules or {}
    files = {e.path: e for e in archive}
    slots = [
        _Slot(d, r, arch)
        for d in catalog.distributions
        for r in d.releases
        for arch in r.architectures
    ]
    stored: dict[str, list[Blob]] = defaultdict(list)  # an OCI store's files, by directory
    for blob in state.locations.values():
        stored[posixpath.dirname(blob.path)].append(blob)
    # Files of kernels discovery knows belong to those releases; find them first
    # so that the series fallback only handles the rest.
    claimed: set[str] = set()
    for slot in slots:
        listed = state.known(ReleaseArch(slot.distro.id, slot.release.id, slot.arch)) or {}
        for uname in listed:
            path = archive_path(slot.distro.archive_dir, slot.release.directory, slot.arch, uname)
            if path in files:
                claimed.add(path)
    assigned, unassigned = _assign_archive_only(slots, archive, claimed)

    distributions: dict[str, Any] = {}
    for d in catalog.distributions:
        distributions[d.id] = {
            "title": d.title,
            "archive_dir": d.archive_dir,
            "url": d.url,
            "releases": {},
        }
        unsigned = sorted(r.id for r in d.repositories if r.unsigned)
        if unsigned:  # consumers see which files no signature vouches for
            distributions[d.id]["unsigned_repositories"] = unsigned
    releases_arches: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for i, slot in enumerate(slots):
        d, r, arch = slot.distro, slot.release, slot.arch
        known_list = state.known(ReleaseArch(d.id, r.id, arch))
        kernels: dict[str, Any] = {}
        for uname, known in (known_list or {}).items():
            path = archive_path(d.archive_dir, r.directory, arch, uname)
            kernels[uname] = _kernel(known, files.get(path))
        for file in assigned.get(i, ()):
            kernels[file.uname] = _kernel(None, file)
        arch_entry: dict[str, Any] = {"discovered": known_list is not None, "kernels": kernels}
        provenance = _provenance(state, ReleaseArch(d.id, r.id, arch), kernels)
        if provenance:  # an architecture with nothing archived has none to give
            arch_entry["provenance"] = provenance
        built_modules = _modules(kernels, modules, _modules_failed(d, r, known_list or {}))
        if built_modules:
            arch_entry["modules"] = built_modules
        directory = posixpath.dirname(archive_path(d.archive_dir, r.directory, arch, "x"))
        locations = _locations(stored.get(directory, ()), kernels)
        if locations:
            arch_entry["locations"] = locations
        releases_arches[(d.id, r.id)][arch] = arch_entry
    for d in catalog.distributions:
        for r in d.releases:
            arches = releases_arches[(d.id, r.id)]
            distributions[d.id]["releases"][r.id] = {
                **_release_metadata(r),
                "hub": hub_status(r, arches, _operator_needs(d, r)),
                "architectures": arches,
            }
    index: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "revision": REVISION,
        "generated_by": GENERATED_BY,
        "distributions": distributions,
        "unassigned": [
            _file_entry(f, state.locations.get(f.path))
            for f in sorted(unassigned, key=lambda f: f.path)
        ],
    }
    if state.store is not None:
        index["store"] = state.store.to_json()
    return index
