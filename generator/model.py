"""The domain, as frozen dataclasses shared by every part of the generator.

The catalog (what the manifests say), what upstream publishes
(KernelPackage), what the archive holds (ArchiveEntry) and what must be done
about it (Plan) are plain data, so the planning core can be tested with no
I/O at all.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from generator.errors import BtfhubError

# Canonical architecture names, as used in archive/ directories.
ARCHITECTURES = ("x86_64", "arm64")

# How each repository kind spells an architecture upstream.
UPSTREAM_ARCH = {
    "apt": {"x86_64": "amd64", "arm64": "arm64"},
    "rpm-md": {"x86_64": "x86_64", "arm64": "aarch64"},
}

KERNEL_RE = re.compile(r"^\d+\.\d+(\.\d+)?(-\d+)?$")

# One directory or file name of an archive path: no "/", no "..", no leading
# dot, no control or space characters. Manifests (directories) and upstream
# indexes (uname -r) are checked against it long before; archive_path()
# checks again because it is the one place such names become paths.
PATH_PART_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+~-]*$")


class UnsafeNameError(BtfhubError):
    """A name that would become part of a file path is not a plain file name."""


@dataclass(frozen=True)
class Position:
    """Where a value sits in a manifest, for diagnostics (1-based)."""

    file: str
    line: int
    col: int


@dataclass(frozen=True)
class Repository:
    """A debug-symbol repository a manifest names (kind apt or rpm-md)."""

    id: str
    kind: str  # "apt" | "rpm-md"
    url: str  # base URL; may hold {arch} (upstream spelling)
    components: tuple[str, ...] = ("main",)  # apt only
    # Package-name patterns holding {uname}, most preferred first. For a
    # kernel matched by several patterns the first one wins (Ubuntu:
    # linux-image-unsigned-{uname}-dbgsym before linux-image-{uname}-dbgsym).
    packages: tuple[str, ...] = ()
    # apt only: flavours to keep (suffix of uname), {arch} = upstream arch.
    flavours: tuple[str, ...] = ()
    # apt only: OpenPGP public keys (absolute path once loaded) that must sign
    # each suite's Release (Release.gpg); None: the signature is not checked.
    keyring: str | None = None

    def upstream_arch(self, arch: str) -> str:
        return UPSTREAM_ARCH[self.kind][arch]


@dataclass(frozen=True)
class Source:
    """One release's use of a repository: apt suites or rpm-md paths."""

    repository: str
    suites: tuple[str, ...] = ()  # apt: dists/<suite>
    paths: tuple[str, ...] = ()  # rpm-md: repo roots relative to the repo URL


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
    size: int
    sha256: str
    repository: str  # repository id
    filename: str  # path relative to the repository root as the index says
    format: str  # "deb" | "rpm"


class KernelState(enum.StrEnum):
    ARCHIVED = "archived"
    MISSING = "missing"
    FAILED = "failed"
    SHIPS_BTF = "ships-btf"


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


@dataclass(frozen=True)
class Outcome:
    """What an earlier run learnt about a kernel (persisted in index.json)."""

    state: KernelState  # FAILED or SHIPS_BTF
    reason: str | None = None


@dataclass(frozen=True)
class PlannedKernel:
    distro: str  # manifest id
    release: str  # release id
    arch: str
    uname: str
    state: KernelState
    package: KernelPackage | None
    archive_path: str  # where its BTF lives / will live
    reason: str | None = None


@dataclass(frozen=True)
class Plan:
    kernels: tuple[PlannedKernel, ...]
    # (distro, release, arch, url, message) for repositories/indexes that failed
    errors: tuple[tuple[str, str, str, str, str], ...] = field(default=())

    def missing(self) -> tuple[PlannedKernel, ...]:
        return tuple(
            k for k in self.kernels if k.state in (KernelState.MISSING, KernelState.FAILED)
        )


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
    for what, part in (
        ("archive directory", distro_dir),
        ("release directory", release_dir),
        ("architecture", arch),
        ("kernel release", uname),
    ):
        if not PATH_PART_RE.fullmatch(part):
            raise UnsafeNameError(f"refusing {what} {part!r}: not a plain file name")
    return f"archive/{distro_dir}/{release_dir}/{arch}/{uname}.btf.tar.xz"


def is_archive_path(path: str) -> bool:
    """True when path has the archive layout's shape (what archive_path() makes)."""
    parts = path.split("/")
    suffix = ".btf.tar.xz"
    return (
        len(parts) == 5
        and parts[0] == "archive"
        and parts[3] in ARCHITECTURES
        and parts[4].endswith(suffix)
        and all(PATH_PART_RE.fullmatch(p) for p in (*parts[1:4], parts[4][: -len(suffix)]))
    )
