"""Committing exactly the hub's paths, leaving a person's own work alone.

The commit's tree is built in an index of its own (the base tree plus the
given paths as they are in the work tree) and the
branch moves with a compare-and-swap ``update-ref``, so edits, untracked
files and even changes already staged in the real index stay where they
were, uncommitted. The real index then records our paths as committed
(their stat data included, so each file is read once). Commit hooks do not
run: these are machine commits of generated files.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import git

from generator.errors import BtfhubError
from generator.gitops.author import author_of
from generator.gitops.paths import check_hub_paths
from generator.gitops.repo import (
    Entry,
    apply_entries,
    head_sha,
    move_head,
    open_repo,
    stdin_of,
    temp_index,
    write_commit,
    write_tree,
)


def stage(repo: git.Repo, paths: Sequence[str]) -> dict[str, Entry]:
    """`paths` staged in the real index as in the work tree; their entries (absent: deleted).

    `update-index` hashes each file once and keeps its stat data, so git
    knows them as committed afterwards; a conflicted path is an error.
    """
    with stdin_of("".join(f"{p}\0" for p in paths).encode()) as stdin:
        repo.git.update_index("--add", "--remove", "-z", "--stdin", istream=stdin)
    wanted = set(paths)
    found: dict[str, Entry] = {}
    # Only the hub's own top-level names are listed, not the whole index.
    tops = sorted({p.split("/", 1)[0] for p in wanted})
    for record in repo.git.ls_files("-s", "-z", "--", *tops).split("\0"):
        meta, _, path = record.partition("\t")
        if path not in wanted:
            continue
        mode, sha, stage_number = meta.split()
        if stage_number != "0":
            raise BtfhubError(f"{path} has an unresolved merge conflict; resolve it first")
        found[path] = Entry(mode, sha)
    return found


def tree_entries(tree: git.Tree, paths: Sequence[str]) -> dict[str, Entry | None]:
    """The entries `paths` have in `tree` (None: not there)."""
    found: dict[str, Entry | None] = {}
    for path in paths:
        try:
            item = tree / path
        except KeyError:
            found[path] = None
            continue
        found[path] = Entry(f"{item.mode:o}", item.hexsha)
    return found


def commit_work_tree_paths(
    repo: git.Repo,
    paths: Sequence[str],
    base: str | None,
    parents: Sequence[str],
    message: str,
    author: git.Actor,
    committer: git.Actor,
    date: datetime | None = None,
) -> str | None:
    """A commit of `base`'s tree with `paths` as in the work tree; None if it adds nothing.

    The tree is `base`'s plus the entries the real index took for those
    same paths, so nothing else staged in the real index can slip into it.
    """
    staged = stage(repo, paths)
    base_tree = repo.commit(base).tree.hexsha if base else None
    with temp_index(repo, *([base_tree] if base_tree else [])) as index:
        apply_entries(repo, index, {p: staged.get(p) for p in paths})
        tree = write_tree(repo, index)
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
