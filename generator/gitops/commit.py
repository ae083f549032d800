"""Committing exactly the hub's paths, leaving a person's own work alone.

The commit is built in a *temporary index* (the base tree plus the given
paths as they are in the work tree) and the branch moves with a
compare-and-swap ``update-ref``, so edits, untracked files and even changes
already staged in the real index stay where they were, uncommitted. The real
index then records our paths as committed (their stat data included, so each
file is read once). Commit hooks do not run: these are machine commits of
generated files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from generator.gitops.author import author_of, ident_env
from generator.gitops.paths import check_hub_paths
from generator.gitops.runner import Repo


def commit_work_tree_paths(
    repo: Repo,
    paths: Sequence[str],
    base: str | None,
    parents: Sequence[str],
    message: str,
    env: Mapping[str, str],
) -> str | None:
    """A commit of `base`'s tree with `paths` as in the work tree; None if it adds nothing.

    The real index takes the paths first (`update-index` hashes each file
    once and keeps its stat data); the commit's tree is then built in a
    temporary index from `base` plus those same index entries, so nothing
    else staged in the real index can slip into it.
    """
    nul_paths = "".join(f"{p}\0" for p in paths).encode()
    repo.run("update-index", "--add", "--remove", "-z", "--stdin", stdin=nul_paths)
    staged = repo.index_entries(paths)
    base_tree = repo.tree_of(base) if base else None
    with repo.temp_index(base_tree) as index_env:
        repo.apply_entries(index_env, {p: staged.get(p) for p in paths})
        tree = repo.out("write-tree", env=index_env)
    if base_tree is not None and tree == base_tree:
        return None
    if base_tree is None and not staged:
        return None
    return repo.commit_tree(tree, parents, message, env)


def commit_paths(
    root: Path, paths: Sequence[str], message: str, author: str | None = None
) -> str | None:
    """Commit exactly `paths` (added, modified or deleted) as in the work tree.

    Returns the new commit's sha, or None when they match HEAD already.
    `author` ("Name <email>") wins over $BTFHUB_GIT_AUTHOR, which wins over
    git config user.name/user.email; it is used as committer too.
    """
    repo = Repo(root)
    checked = check_hub_paths(paths)
    if not checked:
        return None
    env = ident_env(author_of(repo, author))
    head = repo.head()
    sha = commit_work_tree_paths(repo, checked, head, [head] if head else [], message, env)
    if sha is not None:
        repo.move_head(sha, head, "btfhub: commit")
    return sha
