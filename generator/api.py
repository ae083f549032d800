"""The hub for eBPF tools written in Python: find, fetch and minimize BTF files.

    from generator import api

    host = api.detect_host()                      # /etc/os-release, uname -r, uname -m
    found = api.lookup(index="https://example.org/hub/index.json")
    if found.hub_needed and found.found:
        api.fetch("vmlinux.btf", index="https://example.org/hub/index.json")

Every function takes the hub's ``index`` (a path or an http(s) URL of its
index.json; default ``$BTFHUB_INDEX``, else ``<root>/index.json``) and an
optional ``base_url`` the files are downloaded from (default
``$BTFHUB_BASE_URL``, else beside a URL index; beside a local index, files
are read from that checkout). Downloads are verified against
the index's size and sha256 and cached by sha256 under ``cache_dir``
(default ``$XDG_CACHE_HOME/btfhub``), so fetching a file again makes no
request. With ``hub_keys`` (the hub's public key files; default
``$BTFHUB_HUB_KEYS``, space-separated) an index is used only when its
detached signature ``index.json.asc`` verifies by one of them
(``UntrustedIndex`` otherwise). The `btfhub lookup`, `fetch` and `min-core`
commands are thin wrappers over these functions. Errors are ``BtfhubError`` subclasses:
``HostInputError`` for bad input, ``KernelNotFound`` when a fetch finds no
file (its ``result`` says why).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.consumer.bundle import pack
from generator.consumer.download import FileCache, HubClient
from generator.consumer.fetch import Fetched, FileSource, parse_modules
from generator.consumer.hostmap import (
    ArchiveLocation,
    NotMapped,
    load_host_rules,
    locate,
    rules_path,
)
from generator.consumer.hubindex import (
    Availability,
    HubFile,
    HubIndex,
    Selector,
    find_kernel,
    read_index,
    select_files,
)
from generator.consumer.mincore import MinCoreReport, MinimizedKernel, check_objects
from generator.consumer.mincore import min_core as _min_core
from generator.consumer.osrelease import (
    KERNEL_BTF,
    Host,
    HostInputError,
    OsRelease,
    find_os_release,
    read_os_release,
)
from generator.consumer.osrelease import detect_host as _detect_host
from generator.consumer.signedindex import UntrustedIndex
from generator.errors import BtfhubError

__all__ = [
    "Availability",
    "Fetched",
    "Host",
    "HostInputError",
    "HubFile",
    "HubIndex",
    "KernelNotFound",
    "LookupResult",
    "MinCoreReport",
    "OsRelease",
    "Selector",
    "UntrustedIndex",
    "detect_host",
    "fetch",
    "fetch_selected",
    "lookup",
    "min_core",
    "open_index",
]

IndexLocation = str | Path | None
HubKeys = Sequence[str | Path] | None

# A tool configures its hub once: where index.json is, where files are served.
ENV_INDEX = "BTFHUB_INDEX"
ENV_BASE_URL = "BTFHUB_BASE_URL"
ENV_HUB_KEYS = "BTFHUB_HUB_KEYS"


class KernelNotFound(BtfhubError):
    """fetch found no file for the machine; `result` says why."""

    def __init__(self, result: LookupResult) -> None:
        super().__init__(result.reason)
        self.result = result


@dataclass(frozen=True)
class LookupResult:
    """What the hub holds for one machine, and where to get it."""

    os_release: OsRelease
    uname: str  # uname -r
    machine: str
    location: ArchiveLocation | None  # None: the rules know no directory for it
    availability: Availability
    reason: str
    file: HubFile | None  # set when found
    url: str | None  # where to download it (None: read from the local checkout)
    local_path: Path | None
    host_btf: bool  # the machine has /sys/kernel/btf/vmlinux
    index_signers: tuple[str, ...] | None = None  # None: no hub keys, the index is unsigned

    @property
    def found(self) -> bool:
        return self.file is not None

    @property
    def hub_needed(self) -> bool:
        return not self.host_btf and self.availability is not Availability.SHIPS_BTF

    def to_json(self) -> dict[str, Any]:
        loc = self.location
        return {
            "found": self.found,
            "hub_needed": self.hub_needed,
            "host_btf": self.host_btf,
            "state": self.availability.value,
            "reason": self.reason,
            "match": loc.match.value if loc else None,
            "host": {
                "id": self.os_release.id,
                "version_id": self.os_release.version_id,
                "kernel": self.uname,
                "machine": self.machine,
            },
            "path": loc.path if loc else None,
            "archive": (
                {"distro": loc.distro_dir, "release": loc.release_dir, "arch": loc.arch}
                if loc
                else None
            ),
            "url": self.url,
            "index_signed": self.index_signers is not None,
            "index_signers": list(self.index_signers or ()),
            "local_path": str(self.local_path) if self.local_path else None,
            "size": self.file.size if self.file else None,
            "sha256": self.file.sha256 if self.file else None,
            "catalog": (
                {"distribution": self.file.distro, "release": self.file.release}
                if self.file
                else None
            ),
        }


def detect_host(host_root: str | Path = "/") -> Host:
    """This machine (or the one mounted at host_root): os-release, uname, own BTF."""
    return _detect_host(Path(host_root))


@contextmanager
def _client(client: HubClient | None) -> Iterator[HubClient]:
    """The caller's client, or one of our own that is closed afterwards."""
    if client is not None:
        yield client
        return
    with HubClient() as own:
        yield own


def _index_location(index: IndexLocation, root: Path) -> str:
    if index is not None:
        return str(index)
    return os.environ.get(ENV_INDEX) or str(root / "index.json")


def _open(
    index: IndexLocation,
    base_url: str | None,
    root: Path,
    client: HubClient,
    hub_keys: HubKeys,
    store: str | None = None,
) -> HubIndex:
    """The hub's index (its signature checked against hub_keys, else $BTFHUB_HUB_KEYS);
    its files from store (git or oci://...), else BTFHUB_STORE, else the store
    index.json names (files beside the index when it names none)."""
    base = base_url if base_url is not None else os.environ.get(ENV_BASE_URL) or None
    keys = os.environ.get(ENV_HUB_KEYS, "").split() if hub_keys is None else hub_keys
    return read_index(_index_location(index, root), client, base, [Path(k) for k in keys], store)


def _describe(
    os_release: str | Path | None,
    host_root: str | Path | None,
    id: str | None,
    version_id: str | None,
    kernel: str | None,
    arch: str | None,
) -> tuple[OsRelease, str, str, bool]:
    """The machine to look up: given fields first, else files, else this machine."""
    root = Path(host_root) if host_root is not None else Path("/")
    if id is not None:
        if not id.strip():
            raise HostInputError("--id is empty")
        facts = OsRelease(id=id, version_id=version_id)
    else:
        path = Path(os_release) if os_release is not None else find_os_release(root)
        facts = read_os_release(path)
        if version_id is not None:
            facts = OsRelease(facts.id, version_id, facts.version_codename, facts.name)
    uname = os.uname()
    # The host's own BTF only matters when describing the running kernel.
    describes_host = kernel is None and id is None and os_release is None
    host_btf = describes_host and (root / KERNEL_BTF).exists()
    return facts, kernel or uname.release, arch or uname.machine, host_btf


def open_index(
    index: IndexLocation = None,
    *,
    base_url: str | None = None,
    root: str | Path = ".",
    client: HubClient | None = None,
    hub_keys: HubKeys = None,
    store: str | None = None,
) -> HubIndex:
    """The hub's index.json, checked against its schema (and, with hub keys, its
    signature), and where its files are (store: see _open)."""
    with _client(client) as http:
        return _open(index, base_url, Path(root), http, hub_keys, store)


def lookup(
    *,
    os_release: str | Path | None = None,
    host_root: str | Path | None = None,
    id: str | None = None,
    version_id: str | None = None,
    kernel: str | None = None,
    arch: str | None = None,
    index: IndexLocation = None,
    base_url: str | None = None,
    hub_keys: HubKeys = None,
    store: str | None = None,
    root: str | Path = ".",
    client: HubClient | None = None,
) -> LookupResult:
    """Find the machine's BTF file in the hub's index; never matches another uname -r.

    Defaults describe this machine. HostInputError on bad input; a machine
    the hub has no file for is a result with found False and the reason.
    """
    root = Path(root)
    described = _describe(os_release, host_root, id, version_id, kernel, arch)
    with _client(client) as http:
        hub = _open(index, base_url, root, http, hub_keys, store)
    return _lookup_in(hub, root, described)


def _lookup_in(
    hub: HubIndex, root: Path, described: tuple[OsRelease, str, str, bool]
) -> LookupResult:
    facts, uname, machine, host_btf = described
    rules = load_host_rules(rules_path(root))
    try:
        where = locate(rules, facts, uname, machine)
    except NotMapped as exc:
        state = (
            Availability.RELEASE_NOT_COVERED
            if exc.distribution_known
            else Availability.NOT_IN_CATALOG
        )
        return LookupResult(
            os_release=facts,
            uname=uname,
            machine=machine,
            location=None,
            availability=state,
            reason=str(exc),
            file=None,
            url=None,
            local_path=None,
            host_btf=host_btf,
            index_signers=hub.signers,
        )
    answer = find_kernel(hub.document, where)
    file = answer.file
    return LookupResult(
        os_release=facts,
        uname=uname,
        machine=machine,
        location=where,
        availability=answer.availability,
        reason=answer.reason,
        file=file,
        url=hub.url_for(file) if file else None,
        local_path=hub.local_path(file) if file else None,
        host_btf=host_btf,
        index_signers=hub.signers,
    )


def fetch(
    output: str | Path,
    *,
    os_release: str | Path | None = None,
    host_root: str | Path | None = None,
    id: str | None = None,
    version_id: str | None = None,
    kernel: str | None = None,
    arch: str | None = None,
    index: IndexLocation = None,
    base_url: str | None = None,
    hub_keys: HubKeys = None,
    store: str | None = None,
    root: str | Path = ".",
    cache_dir: str | Path | None = None,
    client: HubClient | None = None,
    modules: str | None = None,
) -> Fetched:
    """Look the machine up and write its raw BTF to output (atomically, verified).

    modules: "nf_conntrack,overlay" or "all": the file also holds those
    kernel modules' types (one raw BTF for btf_custom_path).
    KernelNotFound when the hub has no file for it.
    """
    wanted = parse_modules(modules)
    root = Path(root)
    described = _describe(os_release, host_root, id, version_id, kernel, arch)
    with _client(client) as http:
        hub = _open(index, base_url, root, http, hub_keys, store)
        result = _lookup_in(hub, root, described)
        if result.file is None:
            raise KernelNotFound(result)
        source = FileSource(hub, http, FileCache(Path(cache_dir) if cache_dir else None))
        return source.raw_btf(result.file, Path(output), wanted)


def fetch_selected(
    selectors: Sequence[Selector | str],
    output_dir: str | Path,
    *,
    index: IndexLocation = None,
    base_url: str | None = None,
    hub_keys: HubKeys = None,
    store: str | None = None,
    root: str | Path = ".",
    cache_dir: str | Path | None = None,
    client: HubClient | None = None,
    modules: str | None = None,
) -> list[Fetched]:
    """Every archived file the selectors match, as raw BTF in the archive's layout:
    output_dir/<distro>/<release>/<arch>/<uname -r>.btf (with modules: as fetch())."""
    wanted = parse_modules(modules)
    chosen = [s if isinstance(s, Selector) else Selector.parse(s) for s in selectors]
    with _client(client) as http:
        hub = _open(index, base_url, Path(root), http, hub_keys, store)
        source = FileSource(hub, http, FileCache(Path(cache_dir) if cache_dir else None))
        out = Path(output_dir)
        files = select_files(hub.document, chosen)
        return [source.raw_btf(f, out / f.btf_name, wanted) for f in files]


def min_core(
    objects: Sequence[str | Path],
    output_dir: str | Path,
    *,
    selectors: Sequence[Selector | str] = (),
    jobs: int = 1,
    pack_file: str | Path | None = None,
    dot_prefix: bool = False,
    index: IndexLocation = None,
    base_url: str | None = None,
    hub_keys: HubKeys = None,
    store: str | None = None,
    root: str | Path = ".",
    cache_dir: str | Path | None = None,
    client: HubClient | None = None,
    progress: Callable[[MinimizedKernel], None] | None = None,
) -> MinCoreReport:
    """BTFGen: every selected archived kernel minimized for the objects' CO-RE relocations.

    Writes output_dir/<distro>/<release>/<arch>/<uname -r>.btf and
    output_dir/manifest.json; with pack_file also one reproducible .tar.gz
    of them in that layout. A rerun with the same index and objects does no
    work. Objects without .BTF.ext are reported in the result, not used.
    A kernel whose modules the hub built is minimized with those of its
    modules that define a type the objects look for and vmlinux lacks
    (each MinimizedKernel's ``modules`` names them).
    """
    chosen = [s if isinstance(s, Selector) else Selector.parse(s) for s in selectors]
    usable, rejected = check_objects([Path(o) for o in objects])
    with _client(client) as http:
        hub = _open(index, base_url, Path(root), http, hub_keys, store)
        source = FileSource(hub, http, FileCache(Path(cache_dir) if cache_dir else None))
        out = Path(output_dir)
        report = _min_core(
            source,
            select_files(hub.document, chosen),
            usable,
            rejected,
            out,
            jobs=jobs,
            progress=progress,
        )
    if pack_file is not None:
        names = [k.file.btf_name for k in report.kernels if k.size is not None]
        pack(out, names, Path(pack_file), dot_prefix=dot_prefix)
    return report
