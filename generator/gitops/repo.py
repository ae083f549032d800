"""The one git layer: GitPython's Repo, its git processes tied to btfhub, its errors plain.

GitPython models what the hub does with objects and refs: commits read
(`repo.commit`, `iter_commits`) and written (`Commit.create_from_tree`: a
commit-tree with explicit parents that leaves HEAD alone), trees and blob
ids, references, remotes (push and fetch, with a result per ref).
`repo.git.<command>` runs the rest through the same object and launcher:

* the compare-and-swap `update-ref` that moves HEAD;
* the indexes. GitPython's `IndexFile` parses and writes an index in
  Python: at the public hub's 20,000 files a commit built with it took
  7.5 s where git takes 0.5 s (bench/git_bench.py); it knows index versions
  2 and 3 only (`feature.manyFiles` turns on 4) and drops the extensions of
  an index it writes back. So the person's index (`update-index`,
  `ls-files`, `diff-files`, `status`, `read-tree -m -u`) and the throwaway
  one a commit's tree is built in (`read-tree`, `update-index --index-info`,
  `write-tree`) are git's; `IndexFile.from_tree` would also move the real
  index aside while it runs, and a btfhub killed then would leave it moved;
* `git config --get`: GitPython's own config parser does not see
  $GIT_CONFIG_GLOBAL, $GIT_CONFIG_NOSYSTEM or `-c`, and the author must be
  the one `git commit` would pick.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import git
from git.exc import GitCommandError, GitCommandNotFound

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


@dataclass(frozen=True)
class Entry:
    """A tree or index entry: file mode (octal, as git prints it) and blob id."""

    mode: str
    sha: str


@contextmanager
def stdin_of(data: bytes) -> Iterator[BinaryIO]:
    """`data` as a git command's stdin (GitPython passes on a file, not bytes)."""
    with tempfile.TemporaryFile() as stream:
        stream.write(data)
        stream.seek(0)
        yield stream


@contextmanager
def temp_index(repo: git.Repo, *trees: str) -> Iterator[dict[str, str]]:
    """The environment of a throwaway index holding one tree, or three merged by git.

    Three trees are base, ours and theirs, merged by `read-tree -m
    --aggressive`: a path one side left alone takes the other side's entry,
    a path both changed alike takes it, and a path they changed differently
    stays unmerged (`unmerged_paths`). No tree at all: an empty index.
    """
    merge = ["-i", "-m", "--aggressive"] if len(trees) > 1 else []
    with tempfile.TemporaryDirectory(prefix="btfhub-index.", dir=repo.git_dir) as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        repo.git.read_tree(*merge, *(trees or ["--empty"]), env=env)
        yield env


def apply_entries(
    repo: git.Repo, index: Mapping[str, str], changes: Mapping[str, Entry | None]
) -> None:
    """Each path takes its entry in the index (None: removed), whatever stages it had."""
    if not changes:
        return
    lines = []
    for path, entry in sorted(changes.items()):
        mode, sha = (entry.mode, entry.sha) if entry else ("0", ZERO_SHA)
        lines.append(f"{mode} {sha}\t{path}\0")
    with stdin_of("".join(lines).encode()) as stdin:
        repo.git.update_index("-z", "--index-info", istream=stdin, env=index)


def unmerged_paths(repo: git.Repo, index: Mapping[str, str]) -> set[str]:
    listed: str = repo.git.ls_files("-u", "-z", env=index)
    return {record.partition("\t")[2] for record in listed.split("\0") if record}


def write_tree(repo: git.Repo, index: Mapping[str, str]) -> str:
    tree: str = repo.git.write_tree(env=index)
    return tree


def write_commit(
    repo: git.Repo,
    tree: str,
    parents: Sequence[str],
    message: str,
    author: git.Actor,
    committer: git.Actor,
    date: datetime | None = None,
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
