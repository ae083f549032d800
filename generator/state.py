"""What discovery learnt upstream, persisted in index.json between runs.

`btfhub render` never touches the network: the kernels each release has
upstream, their packages and the outcome of earlier builds (a failure and its
reason, or a kernel that ships its own BTF) are kept in the committed
index.json. A run records what it learnt in a HubState and render writes it back,
so a render after a discovery run shows exactly what that run found.

On disk (index.json; generator/index.py describes the whole document):

    distributions.<distro>.releases.<release>.architectures.<arch> =
        {"discovered": bool,
         "kernels": {uname: {"state": ..., "package": {...}, "reason": ...}}}

An architecture marked discovered holds the list discovery found; only
kernels carrying a "package" come from discovery (the others are archive
files discovery no longer sees upstream).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from generator import jsonschemas
from generator.errors import BtfhubError
from generator.model import (
    FileDigest,
    KernelId,
    KernelOutcome,
    KernelPackage,
    KernelState,
    Provenance,
    ReleaseArch,
)
from generator.provenance.record import provenance_from_json
from generator.store.setting import Blob, Store, store_from_json

INDEX_FILE = "index.json"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class KnownKernel:
    """One kernel discovery found upstream for a (distro, release, arch)."""

    uname: str
    package_name: str
    version: str
    repository: str  # repository id in the manifest
    # Relative to the repository root as the index says; never a mirror URL,
    # so that index.json does not change when a mirror does.
    filename: str
    package_size: int | None  # None: the index gives none (Oracle's HTML listings)
    package_sha256: str | None  # None: the index lists none (the signed RPM header verifies)
    # What an earlier build learnt (FAILED with reason, or SHIPS_BTF); None
    # when nothing was learnt yet or the kernel got built.
    outcome: KernelOutcome | None = None

    @classmethod
    def from_package(cls, pkg: KernelPackage, outcome: KernelOutcome | None = None) -> KnownKernel:
        return cls(
            uname=pkg.uname,
            package_name=pkg.name,
            version=pkg.version,
            repository=pkg.repository,
            filename=pkg.filename,
            package_size=pkg.size,
            package_sha256=pkg.sha256,
            outcome=outcome,
        )


@dataclass
class HubState:
    """What the hub knows between runs: every listing discovery made, with outcomes.

    A key being present means discovery ran for it (an empty dict is "upstream
    has no kernel"), which is what tells HUB `pending` from `0/0`.
    """

    lists: dict[ReleaseArch, dict[str, KnownKernel]] = field(default_factory=dict)
    # What index.json recorded of each archive file's bytes, by path: lets the
    # archive listing skip hashing files git reports unchanged (see archive.py).
    files: dict[str, FileDigest] = field(default_factory=dict)
    # How each archive file was built, as the build recorded it (index.json's
    # provenance); render shows an entry only while the file has those bytes.
    provenance: dict[KernelId, Provenance] = field(default_factory=dict)
    # What index.json lists of each modules file, by path (its "modules" map's
    # entries): a file whose sha256 is the same is not read again.
    module_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The store the hub keeps its files in (None: git, archive/), and, in an
    # OCI store, every file the registry holds, by archive path: recorded only
    # once the registry confirmed the blob and a manifest referencing it.
    store: Store = None
    locations: dict[str, Blob] = field(default_factory=dict)

    def record_listing(
        self, target: ReleaseArch, packages: Sequence[KernelPackage], complete: bool = True
    ) -> bool:
        """Replace the list for (distro, release, arch), keeping known outcomes; True when
        that changed what state holds (order included: index.json lists kernels in it).

        The caller lists preferred packages first: when two packages carry
        the same uname the first one is kept (see Repository.packages).
        An incomplete listing (a fallback source failed) adds and updates but
        forgets nothing: a kernel it lacks may be one only the fallback has.
        """
        old = self.lists.get(target, {})
        new: dict[str, KnownKernel] = {} if complete else dict(old)
        seen: set[str] = set()
        for pkg in packages:
            if pkg.arch != target.arch:
                raise ValueError(f"package {pkg.name} is {pkg.arch}, listed for {target.arch}")
            if pkg.uname in seen:
                continue
            seen.add(pkg.uname)
            previous = old.get(pkg.uname)
            new[pkg.uname] = KnownKernel.from_package(
                pkg, previous.outcome if previous is not None else None
            )
        changed = target not in self.lists or list(new.items()) != list(old.items())
        self.lists[target] = new
        return changed

    def record_outcome(self, outcome: KernelOutcome) -> None:
        """Remember what building a kernel taught us; a build (ARCHIVED) clears it.

        KeyError when discovery does not list the kernel: outcomes belong to
        listed kernels, one for a kernel never listed would be lost at the
        next render anyway.
        """
        k = outcome.kernel
        if outcome.provenance is not None:  # kept even when unlisted: the file is archived
            self.provenance[k] = outcome.provenance
        kernels = self.lists.get(k.release_arch)
        if kernels is None or k.uname not in kernels:
            raise KeyError(f"{k.release_arch.label}: {k.uname} was not discovered")
        kept: KernelOutcome | None = None
        if outcome.state is KernelState.FAILED:
            kept = outcome
        elif outcome.state is KernelState.SHIPS_BTF:
            # index.json keeps no reason for it: the same in memory as read back.
            kept = KernelOutcome(k, outcome.state)
        kernels[k.uname] = replace(kernels[k.uname], outcome=kept)

    def outcomes(self) -> dict[KernelId, KernelOutcome]:
        return {
            known.outcome.kernel: known.outcome
            for kernels in self.lists.values()
            for known in kernels.values()
            if known.outcome is not None
        }

    def known(self, target: ReleaseArch) -> dict[str, KnownKernel] | None:
        """The list for (distro, release, arch), or None when never discovered."""
        return self.lists.get(target)


# --- reading index.json --------------------------------------------------------


def _known_kernel(target: ReleaseArch, uname: str, raw: Mapping[str, Any]) -> KnownKernel:
    """The KnownKernel of a schema-checked index entry that carries a package."""
    pkg = raw["package"]
    state = KernelState(raw["state"])
    outcome: KernelOutcome | None = None
    if state is KernelState.FAILED:
        outcome = KernelOutcome(target.kernel(uname), state, raw.get("reason"))
    elif state is KernelState.SHIPS_BTF:
        outcome = KernelOutcome(target.kernel(uname), state)
    return KnownKernel(
        uname=uname,
        package_name=pkg["name"],
        version=pkg["version"],
        repository=pkg["repository"],
        filename=pkg["filename"],
        package_size=pkg["size"],
        package_sha256=pkg["sha256"],
        outcome=outcome,
    )


def _record_file(state: HubState, raw: Mapping[str, Any]) -> None:
    """Remember a file entry's digest; entries written before blobs were recorded have none."""
    if "path" in raw and "blob" in raw:
        state.files[raw["path"]] = FileDigest(raw["size"], raw["sha256"], raw["blob"])
    if "path" in raw and "location" in raw:  # an unassigned file in an OCI store
        _record_location(state, raw["path"], raw["location"])


def _record_location(state: HubState, path: str, raw: Mapping[str, Any]) -> None:
    state.locations[path] = Blob(path, raw["size"], raw["digest"].removeprefix("sha256:"))


def hub_state_from_index(index: Any, source: str = INDEX_FILE) -> HubState:
    """The HubState an index.json document holds; DocumentInvalid names every problem.

    Only architectures marked discovered hold a listing, and only their
    kernels that carry a "package" come from discovery (the others are
    archive files discovery no longer sees upstream).
    """
    if isinstance(index, dict) and index.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise BtfhubError(
            f"{source}: schema_version: {index['schema_version']!r} is not supported "
            f"(this btfhub reads {SCHEMA_VERSION})"
        )
    jsonschemas.check(index, jsonschemas.INDEX_SCHEMA, source)
    state = HubState(store=store_from_json(index.get("store")))
    for raw_file in index.get("unassigned", []):
        _record_file(state, raw_file)
    for distro, raw_distro in index.get("distributions", {}).items():
        for release, raw_release in raw_distro.get("releases", {}).items():
            for arch, raw_arch in raw_release.get("architectures", {}).items():
                for raw_kernel in raw_arch["kernels"].values():
                    _record_file(state, raw_kernel)
                for raw_modules in raw_arch.get("modules", {}).values():
                    if "path" in raw_modules:  # not a failure alone (no file)
                        _record_file(state, raw_modules)
                        state.module_files[raw_modules["path"]] = raw_modules
                for uname, raw_prov in raw_arch.get("provenance", {}).items():
                    kernel = KernelId(distro, release, arch, uname)
                    prov = provenance_from_json(kernel, raw_prov)
                    if prov is not None:
                        state.provenance[kernel] = prov
                for files in raw_arch.get("locations", {}).values():
                    for path, raw_location in files.items():
                        _record_location(state, path, raw_location)
                if not raw_arch["discovered"]:
                    continue
                target = ReleaseArch(distro, release, arch)
                known = {
                    uname: _known_kernel(target, uname, raw)
                    for uname, raw in raw_arch["kernels"].items()
                    if "package" in raw
                }
                # An archived kernel whose modules build failed: the outcome index.py wrote there.
                for uname, raw_modules in raw_arch.get("modules", {}).items():
                    if "failed" in raw_modules and uname in known:
                        why = raw_modules["failed"]["reason"]
                        failed = KernelOutcome(target.kernel(uname), KernelState.FAILED, why)
                        known[uname] = replace(known[uname], outcome=failed)
                state.lists[target] = known
    return state


def load_hub_state(root: Path) -> HubState:
    """The hub state kept in root/index.json; empty when there is no file yet."""
    path = root / INDEX_FILE
    try:
        raw = path.read_bytes()  # orjson checks the UTF-8 itself: no decoding pass of our own
    except FileNotFoundError:
        return HubState()
    except OSError as exc:
        raise BtfhubError(f"{path}: cannot read the hub state: {exc}") from exc
    try:
        data = orjson.loads(raw)  # a 20 MB index.json: 0.3 s where json takes 0.5 s
    except orjson.JSONDecodeError as exc:
        raise BtfhubError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
            "restore it from git or delete it to start discovery afresh"
        ) from exc
    try:
        return hub_state_from_index(data, str(path))
    except jsonschemas.DocumentInvalid as exc:
        raise BtfhubError(
            f"{exc}\nrestore it from git, or delete it to start discovery afresh"
        ) from None
