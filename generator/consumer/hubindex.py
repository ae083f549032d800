"""Finding kernels in the hub's index.json (generator/index.py writes it).

``find_kernel`` answers one machine's question: is its file archived, and if
not, why (distribution or release not in the catalog, kernel not archived
yet, failed to build and why, ships its own BTF). ``select_files`` lists the
archived files a `--select` filter names. Both are pure functions of the
index document; ``read_index`` is the one step with I/O.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from generator import jsonschemas
from generator.consumer.download import HubClient
from generator.consumer.hostmap import ArchiveLocation
from generator.consumer.signedindex import check_signature, read_index_bytes
from generator.errors import BtfhubError
from generator.model import (
    ARCHIVE_DIR,
    BTF_SUFFIX,
    MODULES_SUFFIX,
    ArchiveEntry,
    KernelId,
    KernelState,
)
from generator.store.setting import Store, choose_store, store_from_json

# What a person reads for a listed kernel's state (lookup, and the coverage site).
FAILED_REASON = "the hub failed to build it: {reason}"
NO_REASON = "no reason recorded"
SHIPS_BTF_REASON = "the kernel ships its own BTF (/sys/kernel/btf/vmlinux): the hub is not needed"
NOT_ARCHIVED_REASON = "published upstream but not archived yet (the next reconcile builds it)"


class HubIndexError(BtfhubError):
    """index.json could not be read or does not have the expected shape."""


class Availability(enum.StrEnum):
    """The answer to "is this machine's BTF file in the hub?"."""

    FOUND = "found"
    NOT_IN_CATALOG = "distribution-not-in-catalog"
    RELEASE_NOT_COVERED = "release-not-covered"
    NOT_ARCHIVED = "not-archived"
    FAILED = "failed"
    SHIPS_BTF = "ships-btf"


@dataclass(frozen=True)
class HubFile:
    """An archived BTF file as index.json lists it, and the catalog kernel it belongs to."""

    entry: ArchiveEntry
    id: KernelId | None  # None: a file index.json lists as unassigned

    @property
    def path(self) -> str:
        return self.entry.path

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def sha256(self) -> str:
        return self.entry.sha256

    @property
    def uname(self) -> str:
        return self.entry.uname

    @property
    def distro(self) -> str | None:
        """The manifest id (None when unassigned)."""
        return self.id.distro if self.id else None

    @property
    def release(self) -> str | None:
        return self.id.release if self.id else None

    @property
    def btf_name(self) -> str:
        """<distro>/<release>/<arch>/<uname>.btf: where consumers keep the raw file."""
        e = self.entry
        return f"{e.distro_dir}/{e.release_dir}/{e.arch}/{e.uname}.btf"


@dataclass(frozen=True)
class KernelAnswer:
    availability: Availability
    reason: str  # what a person reads: why it is (not) there
    file: HubFile | None = None
    distro: str | None = None  # manifest id of the release that lists it
    release: str | None = None


@dataclass(frozen=True)
class HubIndex:
    """An index.json document and where its files are found."""

    document: Mapping[str, Any]
    source: str  # the path or URL it was read from
    base_url: str | None  # files are at base_url + path
    local_root: Path | None  # or at local_root / path
    # Who signed it, as verified against the hub keys; None: no hub keys, unchecked.
    signers: tuple[str, ...] | None = None
    store: Store = None  # or in an OCI registry, by digest (index.json's "store")

    def url_for(self, file: HubFile) -> str | None:
        if self.store is not None:
            return f"{self.store.base_url}/blobs/sha256:{file.sha256}"
        return urljoin(self.base_url, file.path) if self.base_url else None

    def local_path(self, file: HubFile) -> Path | None:
        if self.store is not None:
            return None
        return self.local_root / file.path if self.local_root is not None else None


def is_url(location: str) -> bool:
    return urlparse(location).scheme in ("http", "https")


def read_index(
    location: str,
    client: HubClient,
    base_url: str | None = None,
    hub_keys: Sequence[Path] = (),
    store: str | None = None,
) -> HubIndex:
    """index.json from a path or URL; files come from base_url, else from beside it.

    With hub_keys its signature (index.json.asc) must verify by one of them
    (UntrustedIndex otherwise, see signedindex.py). An OCI store (store:
    --store; else BTFHUB_STORE; else the store index.json names) has the
    files instead, pulled by digest.
    """
    if base_url is not None and not base_url.endswith("/"):
        base_url += "/"
    base: str | None
    local: Path | None = None
    if is_url(location):
        base = base_url or urljoin(location, ".")
        local_root = None
    else:
        local = Path(location)
        base = base_url
        local_root = None if base_url else local.resolve().parent
    try:
        data = read_index_bytes(location, client, local)
    except FileNotFoundError:
        raise HubIndexError(f"{location}: no such index (give --index PATH_OR_URL)") from None
    except OSError as exc:
        raise HubIndexError(f"cannot read {location}: {exc}") from None
    signers = check_signature(location, data, hub_keys, client, local)
    try:
        document = json.loads(data)
    except ValueError as exc:  # a JSONDecodeError, or bytes that are not UTF-8
        raise HubIndexError(f"{location} is not JSON: {exc}") from None
    # Checked like the hub checks its own (schemas/index.schema.json): a damaged
    # or foreign index is refused, every problem named, before a field is used.
    jsonschemas.check(document, jsonschemas.INDEX_SCHEMA, location)
    chosen = choose_store(store, os.environ, store_from_json(document.get("store")))
    return HubIndex(document, location, base, local_root, signers, chosen)


# --- walking the document ---------------------------------------------------------------


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class _Slot:
    distro: str
    archive_dir: str
    release: str
    release_entry: Mapping[str, Any]
    arch: str
    kernels: Mapping[str, Any]


def _slots(index: Mapping[str, Any]) -> Iterator[_Slot]:
    for distro, d in sorted(_obj(index.get("distributions")).items()):
        for release, r in sorted(_obj(_obj(d).get("releases")).items()):
            for arch, a in sorted(_obj(_obj(r).get("architectures")).items()):
                yield _Slot(
                    distro,
                    str(_obj(d).get("archive_dir")),
                    release,
                    _obj(r),
                    arch,
                    _obj(_obj(a).get("kernels")),
                )


def _file(slot: _Slot | None, entry: Mapping[str, Any], uname: str) -> HubFile:
    path = str(entry["path"])
    parts = path.split("/")
    if len(parts) != 5 or parts[0] != ARCHIVE_DIR or parts[4] != uname + BTF_SUFFIX:
        raise HubIndexError(f"index.json: {path!r} is not the archive path of {uname}")
    size, sha256 = entry.get("size"), entry.get("sha256")
    if not isinstance(size, int) or not isinstance(sha256, str):
        raise HubIndexError(f"index.json: {path} has no size and sha256")
    # The blob id is the hub's own shortcut (render); a consumer checks sha256.
    blob = str(entry.get("blob") or "")
    archived = ArchiveEntry(parts[1], parts[2], parts[3], uname, path, size, sha256, blob)
    kernel = KernelId(slot.distro, slot.release, slot.arch, uname) if slot else None
    return HubFile(archived, kernel)


def _unassigned(index: Mapping[str, Any]) -> Iterator[HubFile]:
    for entry in index.get("unassigned") or ():
        path = str(_obj(entry).get("path", ""))
        name = path.rsplit("/", 1)[-1]
        if name.endswith(BTF_SUFFIX):
            yield _file(None, _obj(entry), name[: -len(BTF_SUFFIX)])


def _state(entry: Mapping[str, Any]) -> KernelState:
    """A kernel's state; one this btfhub does not know (a newer index) counts as missing."""
    try:
        return KernelState(str(entry.get("state")))
    except ValueError:
        return KernelState.MISSING


def find_kernel(index: Mapping[str, Any], where: ArchiveLocation) -> KernelAnswer:
    """What the index says about one machine's file; never matches another uname."""
    slots = [s for s in _slots(index) if s.archive_dir == where.distro_dir]
    for file in _unassigned(index):
        if file.path == where.path:
            return KernelAnswer(Availability.FOUND, "archived (in no catalog release)", file)
    if not slots:
        return KernelAnswer(
            Availability.NOT_IN_CATALOG,
            f"distribution {where.distro_dir!r} is not in the hub's catalog",
        )
    in_release = [s for s in slots if str(s.release_entry.get("directory")) == where.release_dir]
    if not in_release:
        covered = sorted({str(s.release_entry.get("directory")) for s in slots})
        return KernelAnswer(
            Availability.RELEASE_NOT_COVERED,
            f"{where.distro_dir} {where.release_dir} is not covered by the hub "
            f"(it covers: {', '.join(covered)})",
        )
    in_arch = [s for s in in_release if s.arch == where.arch]
    listed = [(s, _obj(s.kernels[where.uname])) for s in in_arch if where.uname in s.kernels]
    order = (KernelState.ARCHIVED, KernelState.FAILED, KernelState.SHIPS_BTF, KernelState.MISSING)
    listed.sort(key=lambda se: order.index(_state(se[1])))
    if listed:
        slot, entry = listed[0]
        state = _state(entry)
        answer = {
            KernelState.ARCHIVED: (Availability.FOUND, "archived"),
            KernelState.FAILED: (
                Availability.FAILED,
                FAILED_REASON.format(reason=entry.get("reason") or NO_REASON),
            ),
            KernelState.SHIPS_BTF: (Availability.SHIPS_BTF, SHIPS_BTF_REASON),
            KernelState.MISSING: (Availability.NOT_ARCHIVED, NOT_ARCHIVED_REASON),
        }[state]
        found = _file(slot, entry, where.uname) if state is KernelState.ARCHIVED else None
        return KernelAnswer(*answer, file=found, distro=slot.distro, release=slot.release)
    names = ", ".join(sorted({s.release_entry.get("name", s.release) for s in in_release}))
    flags = [_obj(s.release_entry.get("flags")) for s in in_release]
    if all(f.get("btf") is True and f.get("hub") is not True for f in flags):
        return KernelAnswer(
            Availability.SHIPS_BTF,
            f"{where.distro_dir} {where.release_dir} ({names}) kernels ship their own BTF: "
            "the hub is not needed",
        )
    if not in_arch:
        return KernelAnswer(
            Availability.RELEASE_NOT_COVERED,
            f"{where.distro_dir} {where.release_dir} is not covered on {where.arch}",
        )
    return KernelAnswer(
        Availability.NOT_ARCHIVED,
        f"kernel {where.uname} is not archived for {where.distro_dir}/{where.release_dir}/"
        f"{where.arch} ({names}): not among the kernels the hub knows",
    )


# --- --select ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """One --select filter; every given field must match (kernel is a glob)."""

    distro: str | None = None  # archive dir or manifest id: ubuntu, centos, centos7
    release: str | None = None  # release dir, id or name: 20.04, focal, "Focal HWE"
    arch: str | None = None
    kernel: str | None = None  # glob on uname -r, e.g. "5.4.0-*-generic"

    @classmethod
    def parse(cls, text: str) -> Selector:
        fields: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in ("distro", "release", "arch", "kernel") or not value:
                raise BtfhubError(
                    f"--select {text!r}: expected distro=..,release=..,arch=..,kernel=GLOB"
                )
            if key in fields:
                raise BtfhubError(f"--select {text!r}: {key} given twice")
            fields[key] = value
        return cls(**fields)

    def _matches(self, slot: _Slot | None, file: HubFile) -> bool:
        """slot None: a file index.json lists as unassigned (no catalog release)."""
        e = file.entry
        distro_names = (e.distro_dir, slot.distro) if slot else (e.distro_dir,)
        if self.distro and self.distro not in distro_names:
            return False
        release_names = (
            (e.release_dir, slot.release, str(slot.release_entry.get("name", "")))
            if slot
            else (e.release_dir,)
        )
        if self.release and self.release not in release_names:
            return False
        if self.arch and self.arch != e.arch:
            return False
        return not self.kernel or fnmatch.fnmatchcase(e.uname, self.kernel)


def select_files(index: Mapping[str, Any], selectors: Sequence[Selector]) -> list[HubFile]:
    """Every archived file some selector matches (all with none), once, sorted by path."""
    chosen: dict[str, HubFile] = {}
    for slot in _slots(index):
        for uname, raw in sorted(slot.kernels.items()):
            entry = _obj(raw)
            if entry.get("state") != KernelState.ARCHIVED.value:
                continue
            file = _file(slot, entry, uname)
            if not selectors or any(s._matches(slot, file) for s in selectors):
                chosen.setdefault(file.path, file)
    for file in _unassigned(index):
        if not selectors or any(s._matches(None, file) for s in selectors):
            chosen.setdefault(file.path, file)
    return [chosen[p] for p in sorted(chosen)]


@dataclass(frozen=True)
class ModulesAnswer:
    """A kernel's modules file as index.json lists it (issue 16)."""

    file: HubFile  # <uname>.modules.tar.xz, to verify like any archive file
    modules: Mapping[str, tuple[int, str]]  # name -> (size, sha256) of its <name>.btf
    absent: tuple[str, ...]  # asked for by the catalog, not in the kernel's package


def _modules_entry(index: Mapping[str, Any], file: HubFile) -> Mapping[str, Any]:
    """The kernel's entry in its architecture's modules map ({} when there is none)."""
    if file.id is None:
        return {}
    arch = _obj(
        _obj(
            _obj(_obj(_obj(index.get("distributions")).get(file.id.distro)).get("releases")).get(
                file.id.release
            )
        ).get("architectures")
    ).get(file.id.arch)
    return _obj(_obj(_obj(arch).get("modules")).get(file.uname))


def modules_failure(index: Mapping[str, Any], file: HubFile) -> str | None:
    """Why the hub's last build of the kernel's modules failed, or None."""
    reason = _obj(_modules_entry(index, file).get("failed")).get("reason")
    return str(reason) if reason is not None else None


def find_modules(index: Mapping[str, Any], file: HubFile) -> ModulesAnswer | None:
    """The modules file of an archived kernel, or None when the hub has none for it
    (built none, or only failed to: modules_failure says why)."""
    entry = _modules_entry(index, file)
    if "path" not in entry:
        return None
    path = str(entry.get("path", ""))
    if path != file.path[: -len(BTF_SUFFIX)] + MODULES_SUFFIX:
        raise HubIndexError(f"index.json: {path!r} is not the modules file of {file.uname}")
    size, sha256 = entry.get("size"), entry.get("sha256")
    if not isinstance(size, int) or not isinstance(sha256, str):
        raise HubIndexError(f"index.json: {path} has no size and sha256")
    parts = path.split("/")
    archived = ArchiveEntry(parts[1], parts[2], parts[3], file.uname, path, size, sha256, "")
    modules = {
        str(name): (int(_obj(m).get("size", -1)), str(_obj(m).get("sha256", "")))
        for name, m in _obj(entry.get("modules")).items()
    }
    absent = tuple(str(n) for n in entry.get("absent") or ())
    return ModulesAnswer(HubFile(archived, file.id), modules, absent)
