"""Committing exactly the hub's paths, leaving a person's own work alone.

The commit's tree is built in an index of its own (the base tree plus the
given paths as they are in the work tree, written by GitPython) and the
branch moves with a compare-and-swap ``update-ref``, so edits, untracked
files and even changes already staged in the real index stay where they
were, uncommitted. The real index then records our paths as committed
(their stat data included, so each file is read once). Commit hooks do not
run: these are machine commits of generated files.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import git
from git.index import BaseIndexEntry, IndexEntry, IndexFile

from generator.errors import BtfhubError
from generator.gitops.author import author_of
from generator.gitops.paths import check_hub_paths
from generator.gitops.repo import head_sha, move_head, open_repo, read_trees, write_commit


def stage(repo: git.Repo, paths: Sequence[str]) -> dict[str, BaseIndexEntry]:
    """`paths` staged in the real index as in the work tree; their entries (absent: deleted).

    `update-index` hashes each file once and keeps its stat data, so git
    knows them as committed afterwards; a conflicted path is an error.
    """
    with tempfile.TemporaryFile() as listing:  # a path list of any length, NUL-separated
        listing.write("".join(f"{p}\0" for p in paths).encode())
        listing.seek(0)
        repo.git.update_index("--add", "--remove", "-z", "--stdin", istream=listing)
    wanted = set(paths)
    found: dict[str, BaseIndexEntry] = {}
    # Only the hub's own top-level names are listed, not the whole index.
    tops = sorted({p.split("/", 1)[0] for p in wanted})
    for record in repo.git.ls_files("-s", "-z", "--", *tops).split("\0"):
        meta, _, path = record.partition("\t")
        if path not in wanted:
            continue
        mode, sha, stage_number = meta.split()
        if stage_number != "0":
            raise BtfhubError(f"{path} has an unresolved merge conflict; resolve it first")
        found[path] = BaseIndexEntry((int(mode, 8), bytes.fromhex(sha), 0, path))
    return found


def set_entries(index: IndexFile, changes: Mapping[str, BaseIndexEntry | None]) -> None:
    """Each path takes its entry (None: removed), whatever stages it had."""
    for key in [k for k in index.entries if k[0] in changes]:
        del index.entries[key]
    for path, entry in changes.items():
        if entry is not None:
            index.entries[(path, 0)] = IndexEntry.from_base(entry)


def tree_entries(tree: git.Tree, paths: Sequence[str]) -> dict[str, BaseIndexEntry | None]:
    """The entries `paths` have in `tree` (None: not there)."""
    found: dict[str, BaseIndexEntry | None] = {}
    for path in paths:
        try:
            item = tree / path
        except KeyError:
            found[path] = None
            continue
        found[path] = BaseIndexEntry((item.mode, item.binsha, 0, path))
    return found


def commit_work_tree_paths(
    repo: git.Repo,
    paths: Sequence[str],
    base: str | None,
    parents: Sequence[str],
    message: str,
    author: git.Actor,
    committer: git.Actor,
    date: Any = None,
) -> str | None:
    """A commit of `base`'s tree with `paths` as in the work tree; None if it adds nothing.

    The tree is `base`'s plus the entries the real index took for those
    same paths, so nothing else staged in the real index can slip into it.
    """
    staged = stage(repo, paths)
    base_tree = repo.commit(base).tree.hexsha if base else None
    index = read_trees(repo, *([base_tree] if base_tree else []))
    set_entries(index, {p: staged.get(p) for p in paths})
    tree = index.write_tree().hexsha
    if base_tree is not None and tree == base_tree:
        return None
    if base_tree is None and not staged:
        return None
    return write_commit(repo, tree, parents, message, author, committer, date)


def commit_paths(
    root: Path, paths: Sequence[str], message: str, author: str | None = None
) -> str | None:
    """Commit exactly `paths` (added, modified or deleted) as in the work tree.

    Returns the new commit's sha, or None when they match HEAD already.
    `author` ("Name <email>") wins over $BTFHUB_GIT_AUTHOR, which wins over
    git config user.name/user.email; it is used as committer too.
    """
    with open_repo(root) as repo:
        checked = check_hub_paths(paths)
        if not checked:
            return None
        who = author_of(repo, author)
        head = head_sha(repo)
        parents = [head] if head else []
        sha = commit_work_tree_paths(repo, checked, head, parents, message, who, who)
        if sha is not None:
            move_head(repo, sha, head, "btfhub: commit")
        return sha
