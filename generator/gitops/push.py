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

import git
from git.exc import GitCommandError
from git.remote import PushInfo, RemoteProgress

from generator.errors import BtfhubError
from generator.gitops.commit import commit_work_tree_paths, tree_entries
from generator.gitops.paths import GENERATED_FILES, check_hub_paths
from generator.gitops.repo import (
    apply_entries,
    git_error,
    head_sha,
    message_of,
    move_head,
    open_repo,
    temp_index,
    unmerged_paths,
    write_commit,
    write_tree,
)

# regenerate(root) rewrites README.md/index.json in the work tree from the
# catalog and archive/ as they are on disk, and returns the paths (relative to
# root, POSIX) it changed; extra unchanged paths in that list are harmless.
Regenerate = Callable[[Path], Sequence[str]]

_BEHIND = ("non-fast-forward", "fetch first", "stale info")


def _push(repo: git.Repo, remote: str, branch: str) -> tuple[str, str]:
    """("ok" | "behind" | "retry", message); raises when the remote refused for good."""
    progress = RemoteProgress()  # keeps what git said on stderr, the remote's words included
    try:
        results = git.Remote(repo, remote).push(f"HEAD:refs/heads/{branch}", progress=progress)
    except GitCommandError as exc:  # no ref was even tried: unreachable, no such remote...
        failure = git_error(exc)
        return "retry", (failure.stderr.strip() or str(failure))
    said = "\n".join(progress.other_lines + progress.error_lines).strip()
    for result in results:
        if result.flags & PushInfo.ERROR:
            summary = result.summary.strip()
            if result.flags & PushInfo.REJECTED and any(word in summary for word in _BEHIND):
                return "behind", summary
            # [remote rejected] (a protected branch, a hook): retrying cannot help.
            raise BtfhubError(f"{remote} refused the push to {branch}: {summary}\n{said}")
    if results and results.error is None:
        return "ok", ""
    return "retry", said or "git push failed"


def _fetch(repo: git.Repo, remote: str, branch: str) -> str:
    fetched = git.Remote(repo, remote).fetch(f"refs/heads/{branch}", no_tags=True)
    return fetched[0].commit.hexsha


def _switch_work_tree(repo: git.Repo, old: str, new: str, reason: str) -> None:
    """Move HEAD, index and work tree from `old` to `new`, carrying local changes."""
    repo.git.update_index("-q", "--refresh", with_exceptions=False)
    status, out, err = repo.git.read_tree(
        "-m", "-u", old, new, with_extended_output=True, with_exceptions=False
    )
    if status != 0:
        raise BtfhubError(
            "cannot bring in the remote's changes without overwriting local changes "
            f"(commit or stash them, then run again):\n{(err or out).strip()}"
        )
    move_head(repo, new, old, reason)


def _replay(repo: git.Repo, upstream: str, head: str, where: str) -> str:
    """Our commits (upstream..head) rebuilt on `upstream`, file by file; the new tip.

    Each commit is merged path by path (git's three-way read-tree, base =
    its parent, ours = it, theirs = the tip so far); a path both sides
    changed differently is a conflict. Generated files are taken from the
    tip (they are regenerated later); commits left empty (the remote
    already has their files) are dropped.
    """
    tip = repo.commit(upstream)
    for commit in repo.iter_commits(f"{upstream}..{head}", reverse=True):
        if len(commit.parents) != 1:
            raise BtfhubError(
                f"commit {commit.hexsha[:12]} is a merge: rebase onto {where} by hand"
            )
        trees = (commit.parents[0].tree.hexsha, commit.tree.hexsha, tip.tree.hexsha)
        with temp_index(repo, *trees) as merged:
            conflicts = sorted(unmerged_paths(repo, merged) - set(GENERATED_FILES))
            if conflicts:
                raise BtfhubError(
                    f"commit {commit.hexsha[:12]} and {where} both changed, differently: "
                    + ", ".join(conflicts)
                    + " (for an archive file: two runs built different bytes; "
                    "keep one and rebuild)"
                )
            apply_entries(repo, merged, tree_entries(tip.tree, GENERATED_FILES))
            tree = write_tree(repo, merged)
        if tree == tip.tree.hexsha:
            continue
        sha = write_commit(
            repo,
            tree,
            [tip.hexsha],
            message_of(commit),
            commit.author,
            commit.committer,
            commit.authored_datetime,
        )
        tip = repo.commit(sha)
    return tip.hexsha


def _rebuild(repo: git.Repo, upstream: str, regenerate: Regenerate, where: str) -> bool:
    """Put our commits on top of `upstream` and regenerate; False if nothing is left to push."""
    head = head_sha(repo)
    if head is None:
        raise BtfhubError("nothing to push: this checkout has no commit")
    last = repo.commit(head)
    new_tip = _replay(repo, upstream, head, where)
    _switch_work_tree(repo, head, new_tip, f"btfhub: rebuild on {where}")
    changed = check_hub_paths(list(regenerate(Path(repo.working_dir))))
    if changed:
        if new_tip != upstream:
            # Amend the regenerated files into our (rebuilt) last commit.
            info = repo.commit(new_tip)
            amended = commit_work_tree_paths(
                repo,
                changed,
                new_tip,
                [p.hexsha for p in info.parents],
                message_of(info),
                info.author,
                info.committer,
                info.authored_datetime,
            )
        else:
            # Only the generated files differ from the remote: a commit of their own.
            amended = commit_work_tree_paths(
                repo,
                changed,
                new_tip,
                [new_tip],
                "btfhub: regenerate README.md and index.json",
                last.author,
                last.committer,
            )
        if amended is not None:
            move_head(repo, amended, new_tip, "btfhub: regenerate")
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
    with open_repo(root) as repo:
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
    with open_repo(root) as repo:
        if repo.head.is_detached:
            raise BtfhubError(f"{root}: HEAD is detached; check out the branch to publish to")
        return repo.active_branch.name
