"""The domain, as frozen dataclasses shared by every part of the generator.

The catalog (what the manifests say), what upstream publishes
(KernelPackage), what the archive holds (ArchiveEntry) and what must be done
about it (Plan) are plain data, so the planning core can be tested with no
I/O at all.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

# The catalog's vocabulary lives in model/catalog.py; re-exported here.
from generator.model.catalog import (
    Catalog,
    Column,
    Distribution,
    FutureRow,
    ModuleSelection,
    Release,
    Repository,
    Source,
)

__all__ = [  # the re-exported names (every name defined here is public too)
    "Catalog",
    "Column",
    "Distribution",
    "FutureRow",
    "ModuleSelection",
    "Release",
    "Repository",
    "Source",
]

# Canonical architecture names, as used in archive/ directories.
ARCHITECTURES = ("x86_64", "arm64")

KERNEL_RE = re.compile(r"^\d+\.\d+(\.\d+)?(-\d+)?$")

# One directory or file name of an archive path: no "/", no "..", no leading
# dot, no control or space characters. Manifests (directories) and upstream
# indexes (uname -r) are checked against it long before; archive_path()
# checks again because it is the one place such names become paths.
PATH_PART_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+~-]*$")


class UnsafeNameError(ValueError):
    """A name that would become part of a file path is not a plain file name.

    Validation (manifests) and discovery (uname -r from an index) refuse such
    names with a clean error long before; reaching this guard is a bug.
    """


# The archive layout: ARCHIVE_DIR/<distro dir>/<release dir>/<arch>/<uname>BTF_SUFFIX.
ARCHIVE_DIR = "archive"
BTF_SUFFIX = ".btf.tar.xz"
# A kernel's modules, beside its BTF file: <uname>MODULES_SUFFIX (generator/btf/modules.py).
MODULES_SUFFIX = ".modules.tar.xz"
MODULE_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")  # as the kernel spells it: dm_mod


@dataclass(frozen=True)
class KernelPackage:
    """A kernel debug package upstream publishes (one kernel build)."""

    uname: str  # uname -r, e.g. "5.4.0-42-generic", "3.10.0-123.el7.x86_64"
    arch: str  # canonical arch
    name: str  # package name
    version: str
    url: str  # absolute URL (after mirror rewriting is applied at fetch)
    # Both None where the index gives none (a flat HTML listing, Oracle's):
    # then the package's own signed RPM header is what verifies it, and the
    # size is whatever the server sends (the transport still checks it).
    size: int | None
    sha256: str | None
    repository: str  # repository id
    filename: str  # path relative to the repository root as the index says
    format: str  # "deb" | "rpm"
    signed_index: SignedIndex | None = None  # None: no signature covers its index


@dataclass(frozen=True)
class SignedIndex:
    """A signed index (InRelease, repomd.xml) by public URL, and its good signers' fingerprints."""

    url: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Provenance:
    """Where an archive file came from and what vouched for it (index.json's provenance)."""

    file_sha256: str  # the archive file it describes: stale once the file changes
    package: KernelPackage  # as built from (public URL; its signed_index, if any)
    header_keys: tuple[str, ...]  # who signed the RPM's header (empty for a .deb)
    pahole_version: str
    pahole_arguments: tuple[str, ...]  # {vmlinux} and {btf} stand for the paths
    btfhub_version: str


class KernelState(enum.StrEnum):
    ARCHIVED = "archived"
    MISSING = "missing"
    FAILED = "failed"
    SHIPS_BTF = "ships-btf"


class ReleaseArch(NamedTuple):
    """One (distribution, release, architecture): what discovery lists, keys of listings.

    A NamedTuple so that it sorts and hashes like the plain tuple it stands for.
    """

    distro: str  # manifest id
    release: str  # release id
    arch: str  # canonical arch

    @property
    def label(self) -> str:
        return f"{self.distro}/{self.release}/{self.arch}"

    def kernel(self, uname: str) -> KernelId:
        return KernelId(self.distro, self.release, self.arch, uname)


class KernelId(NamedTuple):
    """The one identity of a kernel in the hub: the release row it belongs to and its uname."""

    distro: str  # manifest id
    release: str  # release id
    arch: str  # canonical arch
    uname: str  # uname -r

    @property
    def release_arch(self) -> ReleaseArch:
        return ReleaseArch(self.distro, self.release, self.arch)

    @property
    def label(self) -> str:
        return f"{self.distro}/{self.release}/{self.arch} {self.uname}"


# What building a kernel can come to (MISSING is a plan's state, never an outcome).
OUTCOME_STATES = (KernelState.ARCHIVED, KernelState.FAILED, KernelState.SHIPS_BTF)


@dataclass(frozen=True)
class KernelOutcome:
    """What building a kernel came to, now or in an earlier run.

    ARCHIVED: built (recording it clears an earlier failure); FAILED with the
    reason; SHIPS_BTF: its vmlinux has a .BTF section, nothing to build.
    """

    kernel: KernelId
    state: KernelState
    reason: str | None = None
    provenance: Provenance | None = None  # ARCHIVED by this btfhub: how it was built

    def __post_init__(self) -> None:
        if self.state not in OUTCOME_STATES:
            raise ValueError(f"an outcome is built, failed or ships-btf, not {self.state}")


@dataclass(frozen=True)
class DiscoveryFailure:
    """A (release, arch) whose upstream listing could not be read this run.

    cause says in plain words why (e.g. "the host name does not resolve");
    unreachable is True when the host could not be reached at all, which a
    local mirror (--mirror) would get round.
    """

    target: ReleaseArch
    url: str  # the index URL the manifest names ("" when none is known)
    message: str  # the full error, naming the URL
    cause: str = ""
    unreachable: bool = False
    host: str = ""  # the host contacted: the URL's, or its mirror's
    # The repository whose listing failed, when one source's failure is
    # reported on its own (a fallback); "" when the whole release failed.
    repository: str = ""


@dataclass(frozen=True)
class ArchiveEntry:
    """A BTF file present in archive/."""

    distro_dir: str
    release_dir: str
    arch: str
    uname: str
    path: str  # relative to the hub root, POSIX separators
    size: int
    sha256: str
    # git's blob id of the bytes (sha1 of "blob <size>\0" + data): what git
    # knows of a committed file without reading it, so a later run can reuse
    # size and sha256 recorded in index.json instead of hashing the file again.
    blob: str

    @property
    def digest(self) -> FileDigest:
        return FileDigest(self.size, self.sha256, self.blob)


@dataclass(frozen=True)
class FileDigest:
    """A file's bytes: size and SHA-256, and git's blob id where it is known.

    index.json records all three for an archive file; a shard manifest (no
    git there) the first two.
    """

    size: int
    sha256: str
    blob: str | None = None


@dataclass(frozen=True)
class PlannedKernel:
    id: KernelId
    state: KernelState
    package: KernelPackage | None
    archive_path: str  # where its BTF lives / will live
    reason: str | None = None
    # Archived, but its release lists modules its modules file lacks: only
    # that file is built, on the archived BTF, which stays as it is.
    modules_only: bool = False


@dataclass(frozen=True)
class Plan:
    kernels: tuple[PlannedKernel, ...]
    # (release, arch) listings that could not be read: their kernels are not planned.
    failures: tuple[DiscoveryFailure, ...] = ()
    # (release, arch) skipped for what only the operator can give (an
    # OperatorInputMissing): credentials (RHEL, SLES) or a signing key the hub
    # does not ship (signing_key_id): not a failure of the run.
    needs_operator_input: tuple[DiscoveryFailure, ...] = ()
    # (release, arch) planned from their other sources while a fallback
    # source failed: kernels only the fallback has are not planned this time.
    incomplete: tuple[DiscoveryFailure, ...] = ()

    def missing(self) -> tuple[PlannedKernel, ...]:
        return tuple(
            k
            for k in self.kernels
            if k.state in (KernelState.MISSING, KernelState.FAILED) or k.modules_only
        )


@dataclass(frozen=True)
class Selection:
    """The --distro / --release / --arch filters; None selects everything."""

    distro: str | None = None
    release: str | None = None  # a release id, name or archive directory
    arch: str | None = None


_SHARD_RE = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


@dataclass(frozen=True, order=True)
class ShardId:
    """Shard I of N (1-based), written "I/N" on the command line and in manifests."""

    index: int
    total: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.total:
            raise ValueError(f"shard {self.index}/{self.total}: I must be between 1 and N")

    @classmethod
    def parse(cls, text: str) -> ShardId:
        """ "I/N" -> ShardId; ValueError naming the expected form otherwise."""
        m = _SHARD_RE.match(text)
        if m is None:
            raise ValueError(f"a shard is I/N (e.g. 2/5), not {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def label(self) -> str:
        return f"{self.index}/{self.total}"


def series_matches(series: str, uname: str) -> bool:
    """True when uname belongs to the kernel series, on a version boundary.

    "3.10.0-123" covers "3.10.0-123.el7.x86_64" and "3.10.0-123.4.2.el7.x86_64"
    but never "3.10.0-1234.el7.x86_64"; "5.4.0" covers "5.4.0-42-generic".
    """
    if not uname.startswith(series):
        return False
    rest = uname[len(series) :]
    return rest == "" or not rest[0].isdigit()


# Cached: a run spells each kernel's path five or six times (discovery's plan,
# the index, render), 124,000 regex checks at the public hub's scale. Refusals
# raise, and exceptions are never cached.
@functools.lru_cache(maxsize=1 << 16)
def archive_path(distro_dir: str, release_dir: str, arch: str, uname: str) -> str:
    """The one spelling of the archive layout: where a kernel's BTF file lives."""
    for what, part in (
        ("archive directory", distro_dir),
        ("release directory", release_dir),
        ("architecture", arch),
        ("kernel release", uname),
    ):
        if not PATH_PART_RE.fullmatch(part):
            raise UnsafeNameError(f"refusing {what} {part!r}: not a plain file name")
    return f"{ARCHIVE_DIR}/{distro_dir}/{release_dir}/{arch}/{uname}{BTF_SUFFIX}"


def modules_path(btf_path: str) -> str:
    """Where the modules of the kernel whose BTF file is btf_path live: beside it."""
    if not btf_path.endswith(BTF_SUFFIX):
        raise UnsafeNameError(f"{btf_path!r} is not a <uname>{BTF_SUFFIX} path")
    return btf_path[: -len(BTF_SUFFIX)] + MODULES_SUFFIX


def is_archive_path(path: str, suffixes: tuple[str, ...] = (BTF_SUFFIX,)) -> bool:
    """True when path has the archive layout's shape, ending with one of suffixes."""
    parts = path.split("/")
    suffix = next((s for s in suffixes if parts[-1].endswith(s)), None)
    return (
        suffix is not None
        and len(parts) == 5
        and parts[0] == ARCHIVE_DIR
        and parts[3] in ARCHITECTURES
        and all(PATH_PART_RE.fullmatch(p) for p in (*parts[1:4], parts[4][: -len(suffix)]))
    )


@dataclass(frozen=True)
class UpstreamListing:
    """What discovery found upstream this run: kernels per (release, arch), and failures.

    A failed (release, arch) is absent from kernels, so the planner neither
    builds nor forgets its kernels.
    """

    kernels: Mapping[ReleaseArch, tuple[KernelPackage, ...]]
    failures: tuple[DiscoveryFailure, ...] = ()
    # Skipped for want of the operator's credentials or a signing key (absent
    # from kernels too).
    needs_operator_input: tuple[DiscoveryFailure, ...] = ()
    # Listed (present in kernels) without a fallback source that failed, one
    # entry per failed source: the listing may lack kernels only it has, so
    # recording it must not forget what earlier runs listed.
    incomplete: tuple[DiscoveryFailure, ...] = ()
