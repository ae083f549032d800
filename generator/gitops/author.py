"""Who btfhub's commits are by: an explicit author, $BTFHUB_GIT_AUTHOR, or git config."""

from __future__ import annotations

import os
import re
from pathlib import Path

import git

from generator.errors import BtfhubError
from generator.gitops.repo import open_repo

AUTHOR_ENV = "BTFHUB_GIT_AUTHOR"
_AUTHOR_RE = re.compile(r"^\s*([^<>]*?)\s*<([^<>\s]+@[^<>\s]+)>\s*$")

Ident = tuple[str, str]  # (name, email)


def parse_author(text: str, source: str) -> Ident:
    """("Name", "email") from "Name <email@host>"; BtfhubError naming `source` otherwise."""
    m = _AUTHOR_RE.match(text)
    if m is None or not m.group(1):
        raise BtfhubError(f"{source}: {text!r} is not of the form 'Name <email@host>'")
    return m.group(1), m.group(2)


def resolve_author(root: Path, author: str | None = None) -> git.Actor:
    """Who commits are by (author and committer alike); BtfhubError when no one is.

    Lets a caller fail before hours of building rather than at the commit.
    """
    with open_repo(root) as repo:
        return author_of(repo, author)


def author_of(repo: git.Repo, author: str | None) -> git.Actor:
    if author is not None:
        return git.Actor(*parse_author(author, "git author"))
    from_env = os.environ.get(AUTHOR_ENV)
    if from_env:
        return git.Actor(*parse_author(from_env, AUTHOR_ENV))
    name, email = _config(repo, "user.name"), _config(repo, "user.email")
    if not name or not email:
        raise BtfhubError(
            f"no git author: set {AUTHOR_ENV}='Name <email>' or git config user.name and user.email"
        )
    return git.Actor(name, email)


def _config(repo: git.Repo, key: str) -> str:
    """git's own answer ("" when unset): GitPython's parser misses $GIT_CONFIG_GLOBAL and -c."""
    value: str = repo.git.config("--get", key, with_exceptions=False)
    return value.strip()
