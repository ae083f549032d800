"""The one git layer: GitPython's Repo, its git processes tied to btfhub, its errors plain.

GitPython models most of what the hub does: commits read (`repo.commit`)
and written (`Commit.create_from_tree`: a commit-tree with explicit parents
that leaves HEAD alone), trees written from an index held in memory
(`IndexFile.write_tree`), references, remotes (push and fetch, with a result
per ref) and blob ids. `repo.git.<command>` runs the rest through the same
object and the same launcher:

* the compare-and-swap `update-ref` that moves HEAD;
* everything that reads or writes the person's own index (`update-index`,
  `ls-files`, `diff-files`, `status`, `read-tree -m -u`): GitPython parses
  and rewrites an index file in Python, knows index versions 2 and 3 only
  (`feature.manyFiles` turns on version 4) and drops the extensions of one
  it writes back, and that index is not ours to risk;
* the `read-tree` that fills a temporary index: `IndexFile.from_tree` runs
  the same command but moves the real index aside meanwhile, and a btfhub
  killed in that moment would leave it moved;
* `git config --get`: GitPython's own config parser does not see
  $GIT_CONFIG_GLOBAL, $GIT_CONFIG_NOSYSTEM or `-c`, and the author must be
  the one `git commit` would pick.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import git
from git.exc import GitCommandError, GitCommandNotFound
from git.index import IndexFile

from generator.children import SETPRIV, tied_command
from generator.errors import BtfhubError

ZERO_SHA = "0" * 40
_LAUNCHER = len(tied_command([]))  # the words children.py puts before the git command

# GitPython logs what it also returns (a rejected push's error lines) as warnings;
# btfhub reports through its own Reporter, so they would only be printed twice.
logging.getLogger("git").addHandler(logging.NullHandler())


class GitError(BtfhubError):
    """A git command failed; carries the command, exit code and both streams."""

    def __init__(self, args: Sequence[str], status: int, stdout: str, stderr: str) -> None:
        self.command = ("git", *args)
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        detail = "\n".join(s.strip() for s in (stderr, stdout) if s.strip())
        message = f"`{' '.join(self.command)}` failed (exit {status})"
        super().__init__(message + (f":\n{detail}" if detail else ""))


def _unwrap(field: str, name: str) -> str:
    """GitCommandError's stream as git wrote it (GitPython quotes it as "\\n  name: '...'")."""
    return field.removeprefix(f"\n  {name}: '").removesuffix("'")


def git_error(exc: GitCommandError) -> GitError:
    words = [str(word) for word in exc.command]
    command = words[_LAUNCHER + 1 :] if words[:1] == [SETPRIV] else words[1:]
    status = exc.status if isinstance(exc.status, int) else -1
    return GitError(command, status, _unwrap(exc.stdout, "stdout"), _unwrap(exc.stderr, "stderr"))


class TiedGit(git.Git):
    """GitPython's git command, started like every tool: it dies with btfhub (children.py).

    Its persistent `cat-file --batch` processes included; they end with
    `Repo.close()`, which `open_repo` calls.
    """

    def __init__(self, working_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(working_dir)
        self.update_environment(GIT_TERMINAL_PROMPT="0")  # fail, never ask for a password

    def execute(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        return super().execute(tied_command(command), *args, **kwargs)


class TiedRepo(git.Repo):
    GitCommandWrapperType = TiedGit


@contextmanager
def open_repo(root: Path) -> Iterator[git.Repo]:
    """The checkout whose top is `root`; its git processes end when the block does.

    A git failure inside the block comes out as GitError (command, exit
    code, stderr), a BtfhubError the command line reports.
    """
    if not Path(root).is_dir():
        raise BtfhubError(f"{root} is not a git checkout (no such directory)")
    try:
        repo = TiedRepo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise BtfhubError(f"{root} is not a git checkout") from None
    try:
        top = repo.working_tree_dir
        if top is None:
            raise BtfhubError(f"{root} is not a git checkout (it is a bare repository)")
        if Path(top).resolve() != Path(root).resolve():
            raise BtfhubError(f"{root} must be the top of its git checkout (it is {top})")
        yield repo
    except GitCommandNotFound:
        tool = "git" if shutil.which(SETPRIV) else f"{SETPRIV} (util-linux)"
        raise BtfhubError(f"{tool} is not installed (run ./scripts/setup.sh)") from None
    except GitCommandError as exc:
        raise git_error(exc) from None
    finally:
        repo.close()


def head_sha(repo: git.Repo) -> str | None:
    """HEAD's commit; None on a branch with no commit yet."""
    return repo.head.commit.hexsha if repo.head.is_valid() else None


def move_head(repo: git.Repo, new: str, old: str | None, reason: str) -> None:
    # Compare-and-swap: fails instead of losing a commit made meanwhile.
    repo.git.update_ref("-m", reason, "HEAD", new, old or ZERO_SHA)


def read_trees(repo: git.Repo, *trees: str) -> IndexFile:
    """An index in memory: one tree as it is, or three merged by git (base, ours, theirs).

    The three-way merge is `git read-tree -m --aggressive`: a path one side
    left alone takes the other side's entry, a path both sides changed alike
    takes it, and a path they changed differently stays unmerged (stages 1-3).
    No tree at all: an empty index.
    """
    merge = ["-i", "-m", "--aggressive"] if len(trees) > 1 else []
    with tempfile.TemporaryDirectory(prefix="btfhub-index.", dir=repo.git_dir) as tmp:
        path = os.path.join(tmp, "index")
        # Version 2 whatever index.version says: GitPython reads 2 and 3 only.
        env = {"GIT_INDEX_FILE": path, "GIT_INDEX_VERSION": "2"}
        repo.git.read_tree(*merge, *(trees or ["--empty"]), env=env)
        index = IndexFile(repo, path)
        index.entries  # noqa: B018  (read now: the file goes with the directory)
    return index


def write_commit(
    repo: git.Repo,
    tree: str,
    parents: Sequence[str],
    message: str,
    author: git.Actor,
    committer: git.Actor,
    date: Any = None,
) -> str:
    """A commit of `tree` with exactly `parents`; HEAD does not move. Its sha."""
    commit = git.Commit.create_from_tree(
        repo,
        repo.tree(tree),
        _clean_message(message),
        parent_commits=[repo.commit(p) for p in parents],
        head=False,
        author=author,
        committer=committer,
        author_date=date,
    )
    return commit.hexsha


def message_of(commit: git.Commit) -> str:
    text = commit.message
    return text if isinstance(text, str) else text.decode("utf-8", "replace")


def _clean_message(message: str) -> str:
    lines = [line.rstrip() for line in message.strip().splitlines()]
    return "\n".join(lines) + "\n"
