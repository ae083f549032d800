"""The one way btfhub runs git: a subprocess per command, output parsed here.

Plain `git` through subprocess rather than GitPython: what the hub needs is
plumbing that GitPython does not model (a temporary index, `commit-tree`, a
compare-and-swap `update-ref`, a two-tree `read-tree -m -u`, porcelain push
results), so GitPython only ever served as a subprocess wrapper. Every call
goes through Repo.run, whose error carries the command, exit code and both
streams; machine-readable output (-z, --format) is parsed here, never with
regular expressions over human text.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from generator.errors import BtfhubError

ZERO_SHA = "0" * 40


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


@dataclass(frozen=True)
class Entry:
    """A tree or index entry: file mode and blob id."""

    mode: str
    sha: str


@dataclass(frozen=True)
class CommitInfo:
    tree: str
    parents: tuple[str, ...]
    author: tuple[str, str, str]  # name, email, date ("<unix> <tz>", git's raw format)
    committer: tuple[str, str]  # name, email
    message: str


# NUL-separated fields of `git show --format`, so no name or message can be misread.
_COMMIT_FORMAT = "%T%x00%P%x00%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%B"


class Repo:
    """A checkout: its top directory, its git directory and the commands btfhub runs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BtfhubError(f"{root} is not a git checkout (no such directory)")
        status, top, _ = self._raw(("rev-parse", "--show-toplevel"), None, None)
        if status != 0:
            raise BtfhubError(f"{root} is not a git checkout")
        top_path = Path(top.strip())
        if top_path.resolve() != self.root.resolve():
            raise BtfhubError(f"{root} must be the top of its git checkout (it is {top_path})")
        self.git_dir = Path(self.out("rev-parse", "--absolute-git-dir"))

    def _raw(
        self, args: Sequence[str], env: Mapping[str, str] | None, stdin: bytes | None
    ) -> tuple[int, str, str]:
        full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=self.root,
                env=full_env,
                input=stdin if stdin is not None else b"",
                capture_output=True,
                check=False,
            )
        except FileNotFoundError:
            raise BtfhubError("git is not installed (run ./scripts/setup.sh)") from None
        return (
            proc.returncode,
            proc.stdout.decode("utf-8", "surrogateescape"),
            proc.stderr.decode("utf-8", "replace"),
        )

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        check: bool = True,
    ) -> tuple[int, str, str]:
        status, out, err = self._raw(args, env, stdin)
        if check and status != 0:
            raise GitError(args, status, out, err)
        return status, out, err

    def out(
        self, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
    ) -> str:
        return self.run(*args, env=env, stdin=stdin)[1].strip()

    def head(self) -> str | None:
        status, out, _ = self.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        return out.strip() if status == 0 else None

    def tree_of(self, commit: str) -> str:
        return self.out("rev-parse", f"{commit}^{{tree}}")

    def commit_info(self, commit: str) -> CommitInfo:
        raw = self.run("show", "-s", "--date=raw", f"--format={_COMMIT_FORMAT}", commit)[1]
        fields = raw.split("\0", 7)
        if len(fields) != 8:
            raise BtfhubError(f"commit {commit}: unexpected `git show` output")
        tree, parents, an, ae, ad, cn, ce, message = fields
        return CommitInfo(tree, tuple(parents.split()), (an, ae, ad), (cn, ce), message)

    def ls_tree(self, treeish: str) -> dict[str, Entry]:
        entries: dict[str, Entry] = {}
        for record in self.run("ls-tree", "-r", "-z", "--full-tree", treeish)[1].split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, _type, sha = meta.split()
            entries[path] = Entry(mode, sha)
        return entries

    def diff_tree(self, old: str, new: str) -> list[tuple[str, Entry | None, Entry | None]]:
        tokens = self.run("diff-tree", "-r", "-z", "--no-renames", old, new)[1].split("\0")
        changes = []
        for meta, path in zip(tokens[0::2], tokens[1::2], strict=False):
            if not meta.startswith(":"):
                continue
            old_mode, new_mode, old_sha, new_sha, _status = meta[1:].split()
            before = None if old_mode == "000000" else Entry(old_mode, old_sha)
            after = None if new_mode == "000000" else Entry(new_mode, new_sha)
            changes.append((path, before, after))
        return changes

    def index_entries(self, paths: Sequence[str]) -> dict[str, Entry]:
        """The real index's stage-0 entries for `paths`; a conflicted path is an error."""
        wanted = set(paths)
        found: dict[str, Entry] = {}
        # Only the hub's own top-level names are listed, not the whole index.
        tops = sorted({p.split("/", 1)[0] for p in wanted})
        for record in self.run("ls-files", "-s", "-z", "--", *tops)[1].split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            if path not in wanted:
                continue
            mode, sha, stage = meta.split()
            if stage != "0":
                raise BtfhubError(f"{path} has an unresolved merge conflict; resolve it first")
            found[path] = Entry(mode, sha)
        return found

    @contextmanager
    def temp_index(self, base_tree: str | None) -> Iterator[dict[str, str]]:
        """An environment whose index is a throwaway copy of `base_tree`."""
        fd, name = tempfile.mkstemp(prefix="btfhub-index.", dir=self.git_dir)
        os.close(fd)
        os.unlink(name)  # git wants to create it; an empty file is not an index
        env = {"GIT_INDEX_FILE": name}
        try:
            if base_tree is None:
                self.run("read-tree", "--empty", env=env)
            else:
                self.run("read-tree", base_tree, env=env)
            yield env
        finally:
            Path(name).unlink(missing_ok=True)

    def apply_entries(self, env: Mapping[str, str], changes: Mapping[str, Entry | None]) -> None:
        if not changes:
            return
        lines = []
        for path, entry in sorted(changes.items()):
            mode, sha = (entry.mode, entry.sha) if entry else ("0", ZERO_SHA)
            lines.append(f"{mode} {sha}\t{path}\0")
        self.run("update-index", "-z", "--index-info", env=env, stdin="".join(lines).encode())

    def commit_tree(
        self, tree: str, parents: Sequence[str], message: str, env: Mapping[str, str]
    ) -> str:
        args = ["commit-tree", tree]
        for p in parents:
            args += ["-p", p]
        return self.out(*args, env=env, stdin=_clean_message(message).encode())

    def move_head(self, new: str, old: str | None, reason: str) -> None:
        # Compare-and-swap: fails instead of losing a commit made meanwhile.
        self.run("update-ref", "-m", reason, "HEAD", new, old or ZERO_SHA)

    def config(self, key: str) -> str:
        """A git config value, "" when unset."""
        return self.run("config", "--get", key, check=False)[1].strip()


def _clean_message(message: str) -> str:
    lines = [line.rstrip() for line in message.strip().splitlines()]
    return "\n".join(lines) + "\n"
