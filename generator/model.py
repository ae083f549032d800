"""The domain, as frozen dataclasses shared by every part of the generator.

The catalog (what the manifests say), what upstream publishes
(KernelPackage), what the archive holds (ArchiveEntry) and what must be done
about it (Plan) are plain data, so the planning core can be tested with no
I/O at all.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

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


@dataclass(frozen=True)
class Repository:
    """A debug-symbol repository a manifest names, of a kind generator/kinds/ registers."""

    id: str
    kind: str  # "apt" | "rpm-md" | "launchpad" | "html-listing" (kinds.registry.KINDS)
    url: str  # base URL; may hold {arch} (upstream spelling, kinds.registry.upstream_arch)
    components: tuple[str, ...] = ("main",)  # apt only
    # Package-name patterns holding {uname}, most preferred first. For a
    # kernel matched by several patterns the first one wins (Ubuntu:
    # linux-image-unsigned-{uname}-dbgsym before linux-image-{uname}-dbgsym).
    packages: tuple[str, ...] = ()
    # apt only: flavours to keep (suffix of uname), {arch} = upstream arch.
    flavours: tuple[str, ...] = ()
    # OpenPGP public keys (absolute path once loaded) that must sign what the
    # repository publishes: apt InRelease/Release.gpg, rpm-md repomd.xml.asc
    # and each RPM's header. The run's --keyring files are trusted too.
    keyring: str | None = None
    # True only for a repository that truly publishes no signature: its
    # indexes are still checked down the chain, but nothing anchors them.
    unsigned: bool = False
    # rpm-md only: each path holds a mirror.list naming the real repo root (Amazon Linux).
    mirrorlist: bool = False
    # Where upstream moves the tree when the release ends (archive.debian.org,
    # vault-like archives): read when url answers 404/410 for a source's index.
    moved_to: str | None = None
    # The publisher's key ID when its key is not shipped (no keyring): the run
    # must be given it (--keyring), else the repository's releases are skipped.
    signing_key_id: str | None = None
    # Operator credentials the repository needs (a key of upstream.credentials.KINDS,
    # e.g. "rhel-cdn"); None: public.
    credentials: str | None = None
    # rpm-md only: how uname -r follows from a package: "rpm" ({ver}-{rel}.{arch},
    # Red Hat family) or "suse" ({ver}-{rel minus its last number}-{flavour} of
    # kernel-<flavour>-debuginfo, e.g. 5.3.18-59.5-default).
    kernel_release: str = "rpm"
    # The keys of its kind that have no field above, as (key, value) sorted by
    # key, lists made tuples: a kind added as one module reads its own keys here.
    options: tuple[tuple[str, object], ...] = ()

    def option(self, key: str, default: object = None) -> object:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class Source:
    """One release's use of a repository: apt suites or rpm-md paths."""

    repository: str
    suites: tuple[str, ...] = ()  # apt: dists/<suite>; launchpad: distro series (focal)
    paths: tuple[str, ...] = ()  # rpm-md, html-listing: relative to the repo URL
    # A fallback completes the sources before it (Ubuntu: Launchpad after
    # ddebs). When it fails the release is still listed from the others and
    # the failure is a warning (UpstreamListing.incomplete), not a lost release.
    fallback: bool = False


@dataclass(frozen=True)
class Release:
    """One row of a distribution's support table."""

    distro: str  # manifest id (file stem)
    id: str  # unique within the manifest (slug of name unless given)
    name: str  # first column, e.g. "7.0.1406", "Focal HWE"
    directory: str  # archive release dir, e.g. "20.04", "7"
    kernel: str  # e.g. "3.10.0-123", "5.4.0"
    series: tuple[str, ...]  # kernel series covered; default (kernel,)
    bpf: bool | None
    btf: bool | None
    hub: bool | None  # True: the hub builds BTF for it
    architectures: tuple[str, ...]
    sources: tuple[Source, ...]
    # Table cells beyond the flags, by field name (rhel, version, codename,
    # release_date, rhel_date ...); None renders as "-".
    fields: tuple[tuple[str, str | None], ...] = ()

    def field(self, name: str) -> str | None:
        return dict(self.fields).get(name)


@dataclass(frozen=True)
class Column:
    header: str
    field: str


@dataclass(frozen=True)
class FutureRow:
    """The trailing "..." row: what releases not yet listed will have."""

    bpf: bool | None
    btf: bool | None
    hub: bool | None
    placeholder: str = "..."  # text of non-flag cells after the first


@dataclass(frozen=True)
class Distribution:
    """One manifest: a support table, its repositories and releases."""

    id: str  # file stem, e.g. "centos7"
    title: str  # table heading, e.g. "CentOS 7"
    archive_dir: str  # archive/<archive_dir>/..., e.g. "centos"
    columns: tuple[Column, ...]
    releases: tuple[Release, ...]
    repositories: tuple[Repository, ...]
    note: str | None = None
    future: FutureRow | None = None
    url: str | None = None  # link for the heading (e.g. Wikipedia)

    def repository(self, repo_id: str) -> Repository:
        for repo in self.repositories:
            if repo.id == repo_id:
                return repo
        raise KeyError(repo_id)


@dataclass(frozen=True)
class Catalog:
    distributions: tuple[Distribution, ...]

    def distribution(self, distro_id: str) -> Distribution:
        for d in self.distributions:
            if d.id == distro_id:
                return d
        raise KeyError(distro_id)


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


@dataclass(frozen=True)
class Plan:
    kernels: tuple[PlannedKernel, ...]
    # (release, arch) listings that could not be read: their kernels are not planned.
    failures: tuple[DiscoveryFailure, ...] = ()
    # (release, arch) skipped because their repositories need credentials the
    # operator did not give (RHEL, SLES): not a failure of the run.
    needs_credentials: tuple[DiscoveryFailure, ...] = ()
    # (release, arch) planned from their other sources while a fallback
    # source failed: kernels only the fallback has are not planned this time.
    incomplete: tuple[DiscoveryFailure, ...] = ()

    def missing(self) -> tuple[PlannedKernel, ...]:
        return tuple(
            k for k in self.kernels if k.state in (KernelState.MISSING, KernelState.FAILED)
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


def is_archive_path(path: str) -> bool:
    """True when path has the archive layout's shape (what archive_path() makes)."""
    parts = path.split("/")
    suffix = BTF_SUFFIX
    return (
        len(parts) == 5
        and parts[0] == ARCHIVE_DIR
        and parts[3] in ARCHITECTURES
        and parts[4].endswith(suffix)
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
    # Skipped for want of the operator's credentials (absent from kernels too).
    needs_credentials: tuple[DiscoveryFailure, ...] = ()
    # Listed (present in kernels) without a fallback source that failed, one
    # entry per failed source: the listing may lack kernels only it has, so
    # recording it must not forget what earlier runs listed.
    incomplete: tuple[DiscoveryFailure, ...] = ()
