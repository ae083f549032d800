"""Pushing, and rebuilding our commits on the remote when it moved on.

``push_with_retry`` pushes; when the remote moved on (another runner pushed
first) it rebuilds our commits on top of the remote branch at the level of
whole files, never text:

* every path our commits changed is replayed with a three-way rule per path
  (base = the commit's parent, ours, theirs = the remote): if the remote left
  it alone we take ours, if both agree nothing happens, otherwise it is a real
  conflict (e.g. two runners built the same archive file with different
  bytes) and we stop with a clear error instead of guessing;
* README.md and index.json are generated: for them we take the remote's
  version, move the work tree to the rebuilt commit with a two-tree
  ``read-tree -m -u`` (git's own "switch commits, carry local changes"
  rule: unrelated dirty and untracked files survive, and a local edit the
  switch would overwrite is refused, not lost), then call ``regenerate(root)``
  which re-renders them from the catalog and the now-merged archive, and
  amend them into our last commit.

Retries are bounded, with jittered exponential backoff so racing runners
fall out of step.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from generator.errors import BtfhubError
from generator.gitops.author import ident_env
from generator.gitops.commit import commit_work_tree_paths
from generator.gitops.paths import GENERATED_FILES, check_hub_paths
from generator.gitops.runner import Entry, Repo

# regenerate(root) rewrites README.md/index.json in the work tree from the
# catalog and archive/ as they are on disk, and returns the paths (relative to
# root, POSIX) it changed; extra unchanged paths in that list are harmless.
Regenerate = Callable[[Path], Sequence[str]]

_BEHIND = ("non-fast-forward", "fetch first", "stale info")


def _push(repo: Repo, remote: str, branch: str) -> tuple[str, str]:
    """("ok" | "behind" | "retry", message); raises when the remote refused for good."""
    status, out, err = repo.run(
        "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", check=False
    )
    for line in out.splitlines():
        if line.startswith("!\t"):
            if "[rejected]" in line and any(word in line for word in _BEHIND):
                return "behind", line.split("\t")[-1]
            # [remote rejected] (a protected branch, a hook): retrying cannot help.
            raise BtfhubError(
                f"{remote} refused the push to {branch}: {line.split(chr(9))[-1]}\n{err.strip()}"
            )
    if status == 0:
        return "ok", ""
    return "retry", (err.strip() or out.strip() or f"git push exited {status}")


def _fetch(repo: Repo, remote: str, branch: str) -> str:
    repo.run("fetch", "--no-tags", "--quiet", remote, f"refs/heads/{branch}")
    return repo.out("rev-parse", "--verify", "FETCH_HEAD^{commit}")


def _switch_work_tree(repo: Repo, old: str, new: str, reason: str) -> None:
    """Move HEAD, index and work tree from `old` to `new`, carrying local changes."""
    repo.run("update-index", "-q", "--refresh", check=False)
    status, out, err = repo.run("read-tree", "-m", "-u", old, new, check=False)
    if status != 0:
        raise BtfhubError(
            "cannot bring in the remote's changes without overwriting local changes "
            f"(commit or stash them, then run again):\n{(err or out).strip()}"
        )
    repo.move_head(new, old, reason)


def _replay(repo: Repo, upstream: str, head: str, where: str) -> str:
    """Our commits (upstream..head) rebuilt on `upstream`, file by file; the new tip.

    Generated files are taken from upstream (they are regenerated later);
    commits left empty (the remote already has their files) are dropped.
    """
    ours = repo.out("rev-list", "--reverse", f"{upstream}..{head}").split()
    running = repo.ls_tree(upstream)
    tip = upstream
    for commit in ours:
        info = repo.commit_info(commit)
        if len(info.parents) != 1:
            raise BtfhubError(f"commit {commit[:12]} is a merge: rebase onto {where} by hand")
        updates: dict[str, Entry | None] = {}
        conflicts = []
        for path, base, mine in repo.diff_tree(info.parents[0], commit):
            if path in GENERATED_FILES:
                continue
            theirs = running.get(path)
            if theirs == base:
                updates[path] = mine
            elif theirs != mine:
                conflicts.append(path)
        if conflicts:
            raise BtfhubError(
                f"commit {commit[:12]} and {where} both changed, differently: "
                + ", ".join(conflicts)
                + " (for an archive file: two runs built different bytes; "
                "keep one and rebuild)"
            )
        with repo.temp_index(repo.tree_of(tip)) as index_env:
            repo.apply_entries(index_env, updates)
            tree = repo.out("write-tree", env=index_env)
        for path, entry in updates.items():
            if entry is None:
                running.pop(path, None)
            else:
                running[path] = entry
        if tree == repo.tree_of(tip):
            continue
        env = ident_env(info.author[:2], info.committer, info.author[2])
        tip = repo.commit_tree(tree, [tip], info.message, env)
    return tip


def _rebuild(repo: Repo, upstream: str, regenerate: Regenerate, where: str) -> bool:
    """Put our commits on top of `upstream` and regenerate; False if nothing is left to push."""
    head = repo.head()
    if head is None:
        raise BtfhubError("nothing to push: this checkout has no commit")
    last = repo.commit_info(head)
    new_tip = _replay(repo, upstream, head, where)
    _switch_work_tree(repo, head, new_tip, f"btfhub: rebuild on {where}")
    changed = check_hub_paths(list(regenerate(repo.root)))
    if changed:
        if new_tip != upstream:
            # Amend the regenerated files into our (rebuilt) last commit.
            info = repo.commit_info(new_tip)
            env = ident_env(info.author[:2], info.committer, info.author[2])
            amended = commit_work_tree_paths(
                repo, changed, new_tip, info.parents, info.message, env
            )
        else:
            # Only the generated files differ from the remote: a commit of their own.
            env = ident_env(last.author[:2], last.committer)
            amended = commit_work_tree_paths(
                repo,
                changed,
                new_tip,
                [new_tip],
                "btfhub: regenerate README.md and index.json",
                env,
            )
        if amended is not None:
            repo.move_head(amended, new_tip, "btfhub: regenerate")
            new_tip = amended
    return new_tip != upstream


def push_with_retry(
    root: Path,
    remote: str,
    branch: str,
    regenerate: Regenerate,
    attempts: int = 5,
    backoff: float = 2.0,
) -> None:
    """Push HEAD to `remote`'s `branch`, rebuilding on top of it when it moved on.

    `regenerate(root)` is called after the work tree holds the remote's
    README.md/index.json and the union of both sides' archive files; it must
    rewrite the generated files from what is on disk (merging the remote's
    recorded state with this run's) and return the paths it changed.
    Raises BtfhubError naming the remote and branch once `attempts` pushes
    have failed, or at once when the remote refuses for good (a hook, a
    protected branch) or both sides changed the same file differently.
    """
    repo = Repo(root)
    where = f"{remote}/{branch}"
    rng = random.Random()
    last_problem = ""
    for attempt in range(1, attempts + 1):
        outcome, last_problem = _push(repo, remote, branch)
        if outcome == "ok":
            return
        if attempt == attempts:
            break
        # Jitter so that runners rejected together do not retry together.
        time.sleep(min(60.0, backoff * 2 ** (attempt - 1)) * rng.uniform(0.5, 1.5))
        if outcome == "behind":
            upstream = _fetch(repo, remote, branch)
            if not _rebuild(repo, upstream, regenerate, where):
                return  # the remote already has everything we had
    raise BtfhubError(
        f"could not push to {remote} (branch {branch}) after {attempts} attempts: {last_problem}"
    )


def current_branch(root: Path) -> str:
    """The checked-out branch's name; BtfhubError on a detached HEAD."""
    repo = Repo(root)
    status, out, _ = repo.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    if status != 0:
        raise BtfhubError(f"{root}: HEAD is detached; check out the branch to publish to")
    return out.strip()
