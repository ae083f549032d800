"""The one registry of repository kinds, in the order messages and the schema name them.

A new kind is a module holding its RepositoryKind and a line in KINDS.
Readers look KINDS up when they run (not at import), so a test may register
a kind of its own for the length of a test.
"""

from __future__ import annotations

from generator.errors import BtfhubError
from generator.kinds import apt, htmllisting, launchpad, rpmmd
from generator.kinds.base import RepositoryKind
from generator.model import Repository

KINDS: tuple[RepositoryKind, ...] = (
    apt.KIND,
    rpmmd.KIND,
    launchpad.KIND,
    htmllisting.KIND,
)


def find_kind(name: object) -> RepositoryKind | None:
    """The registered kind of that name, None for any other value."""
    return next((k for k in KINDS if k.name == name), None)


def kind_of(repo: Repository) -> RepositoryKind:
    kind = find_kind(repo.kind)
    if kind is None:
        raise BtfhubError(f"repository {repo.id}: unknown kind {repo.kind!r}")
    return kind


def upstream_arch(repo: Repository, arch: str) -> str:
    """How the repository's kind spells a canonical architecture (amd64, aarch64 ...)."""
    return kind_of(repo).arches[arch]
