"""What the repository kinds' listers share, written once.

A uname -r and a SHA-256 as indexes spell them, a repository's root URL for
one architecture, the manifest's package patterns ({uname}) and flavours, and
the ranking among packages that give one uname: the earliest matching
pattern, then the highest version.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urljoin

from debian.debian_support import Version

from generator.errors import BtfhubError
from generator.kinds.registry import upstream_arch
from generator.model import Repository

# A uname -r starts with a digit. Requiring it keeps "linux-image-{uname}-dbgsym"
# from matching linux-image-unsigned-5.4.0-42-generic-dbgsym with uname
# "unsigned-..."; and it ends up in archive paths, so nothing that could climb
# out of them is admitted.
UNAME = r"[0-9][A-Za-z0-9.+~_-]*"
UNAME_RE = re.compile(f"^{UNAME}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def repo_root(repo: Repository, arch: str, path: str = "") -> str:
    """URL of one repository root, '/'-terminated so urljoin appends.

    {arch} (the upstream spelling) may appear in the URL and in the path.
    """
    uarch = upstream_arch(repo, arch)
    url = repo.url.replace("{arch}", uarch)
    root = urljoin(url if url.endswith("/") else url + "/", path.replace("{arch}", uarch))
    return root if root.endswith("/") else root + "/"


def package_matchers(repo: Repository, uarch: str) -> list[re.Pattern[str]]:
    """The repository's package patterns as regexes capturing the uname, in order."""
    matchers = []
    for pattern in repo.packages:
        if "{uname}" not in pattern:
            raise BtfhubError(f"repository {repo.id}: package pattern {pattern!r} lacks {{uname}}")
        pieces = [re.escape(p.replace("{arch}", uarch)) for p in pattern.split("{uname}")]
        matchers.append(re.compile(f"(?P<uname>{UNAME})".join(pieces)))
    return matchers


def match_package(matchers: Sequence[re.Pattern[str]], name: str) -> tuple[int, str] | None:
    """(rank of the first pattern matching name, the uname it captured), or None."""
    for rank, matcher in enumerate(matchers):
        m = matcher.fullmatch(name)
        if m:
            return rank, m.group("uname")
    return None


def flavours(repo: Repository, uarch: str) -> frozenset[str]:
    return frozenset(f.replace("{arch}", uarch) for f in repo.flavours)


def flavour_of(uname: str) -> str:
    """What follows <version>-<abi>-: "generic" in 5.4.0-42-generic, "cloud-amd64"
    in 4.19.0-20-cloud-amd64, "rt-amd64" in 5.10.0-0.bpo.15-rt-amd64.

    Compared whole, not as a suffix: flavour "amd64" must not let rt-amd64 in.
    """
    parts = uname.split("-", 2)
    return parts[2] if len(parts) == 3 else ""


@dataclass(frozen=True)
class KernelNames:
    """Which package names are the repository's kernels: its patterns, then its flavours."""

    matchers: tuple[re.Pattern[str], ...]
    flavours: frozenset[str]  # empty: every flavour

    @classmethod
    def of(cls, repo: Repository, uarch: str) -> KernelNames:
        """BtfhubError for a pattern without {uname}: before any request is made."""
        return cls(tuple(package_matchers(repo, uarch)), flavours(repo, uarch))

    def match(self, name: str) -> tuple[int, str] | None:
        """(rank of the first pattern matching name, its uname); None when none does or
        the uname's flavour is not kept."""
        hit = match_package(self.matchers, name)
        if hit is None or (self.flavours and flavour_of(hit[1]) not in self.flavours):
            return None
        return hit


T = TypeVar("T")


@dataclass(frozen=True)
class Ranked(Generic[T]):
    """A package candidate for a uname: what it is (item) and how it ranks."""

    rank: int  # index of the package pattern that matched; lower is preferred
    version: Version
    item: T

    def beats(self, other: Ranked[T]) -> bool:
        if self.rank != other.rank:
            return self.rank < other.rank
        return bool(self.version > other.version)


def keep_best(best: dict[str, Ranked[T]], uname: str, candidate: Ranked[T]) -> None:
    """Keep candidate for uname unless the one kept already beats it."""
    if uname not in best or candidate.beats(best[uname]):
        best[uname] = candidate
