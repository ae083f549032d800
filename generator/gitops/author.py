"""Who btfhub's commits are by: an explicit author, $BTFHUB_GIT_AUTHOR, or git config."""

from __future__ import annotations

import os
import re
from pathlib import Path

from generator.errors import BtfhubError
from generator.gitops.runner import Repo

AUTHOR_ENV = "BTFHUB_GIT_AUTHOR"
_AUTHOR_RE = re.compile(r"^\s*([^<>]*?)\s*<([^<>\s]+@[^<>\s]+)>\s*$")

Ident = tuple[str, str]  # (name, email)


def parse_author(text: str, source: str) -> Ident:
    """("Name", "email") from "Name <email@host>"; BtfhubError naming `source` otherwise."""
    m = _AUTHOR_RE.match(text)
    if m is None or not m.group(1):
        raise BtfhubError(f"{source}: {text!r} is not of the form 'Name <email@host>'")
    return m.group(1), m.group(2)


def resolve_author(root: Path, author: str | None = None) -> Ident:
    """The (name, email) commits use; BtfhubError when there is none.

    Lets a caller fail before hours of building rather than at the commit.
    """
    return author_of(Repo(root), author)


def author_of(repo: Repo, author: str | None) -> Ident:
    if author is not None:
        return parse_author(author, "git author")
    from_env = os.environ.get(AUTHOR_ENV)
    if from_env:
        return parse_author(from_env, AUTHOR_ENV)
    name, email = repo.config("user.name"), repo.config("user.email")
    if not name or not email:
        raise BtfhubError(
            f"no git author: set {AUTHOR_ENV}='Name <email>' or git config user.name and user.email"
        )
    return name, email


def ident_env(
    author: Ident, committer: Ident | None = None, date: str | None = None
) -> dict[str, str]:
    """The environment that makes git record `author` (and `committer`, default the author)."""
    committer = committer or author
    env = {
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": committer[0],
        "GIT_COMMITTER_EMAIL": committer[1],
    }
    if date is not None:
        env["GIT_AUTHOR_DATE"] = date
    return env
