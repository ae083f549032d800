"""Everything btfhub does with git: the only module that runs it (via GitPython).

Two jobs, both careful to leave a person's own work alone:

``commit_paths`` commits exactly the hub's paths it is given (archive files,
README.md, index.json) as they are in the work tree, and nothing else. It
builds the commit in a *temporary index* (HEAD's tree plus those paths) and
moves the branch with a compare-and-swap ``update-ref``, so edits, untracked
files and even changes already staged in the real index stay where they were,
uncommitted. The real index then records our paths as committed (their stat
data included, so each file is read once). It does not run commit hooks: these
are machine commits of generated files.

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

import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from generator.errors import BtfhubError

GENERATED_FILES = ("README.md", "index.json")
ARCHIVE_DIR = "archive"
AUTHOR_ENV = "BTFHUB_GIT_AUTHOR"
ZERO_SHA = "0" * 40

# regenerate(root) rewrites README.md/index.json in the work tree from the
# catalog and archive/ as they are on disk, and returns the paths (relative to
# root, POSIX) it changed; extra unchanged paths in that list are harmless.
Regenerate = Callable[[Path], Sequence[str]]

_AUTHOR_RE = re.compile(r"^\s*([^<>]*?)\s*<([^<>\s]+@[^<>\s]+)>\s*$")


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
class _Entry:
    mode: str
    sha: str


@dataclass(frozen=True)
class _CommitInfo:
    tree: str
    parents: tuple[str, ...]
    author: tuple[str, str, str]  # name, email, date ("<unix> <tz>")
    committer: tuple[str, str]  # name, email
    message: str


class _Repo:
    """A checkout plus the one helper every git command goes through."""

    def __init__(self, root: Path) -> None:
        try:
            self.repo = git.Repo(root)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise BtfhubError(f"{root} is not a git checkout") from None
        top = self.repo.working_tree_dir
        if top is None or Path(top).resolve() != Path(root).resolve():
            raise BtfhubError(f"{root} must be the top of its git checkout (it is {top})")
        self.root = Path(top)
        self.git_dir = Path(self.repo.git_dir)

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        check: bool = True,
    ) -> tuple[int, str, str]:
        full_env = {"GIT_TERMINAL_PROMPT": "0", **(env or {})}
        with tempfile.TemporaryFile() as f:
            if stdin is not None:
                f.write(stdin)
                f.seek(0)
            kwargs: dict[str, Any] = {"istream": f if stdin is not None else None}
            status, out, err = self.repo.git.execute(
                ["git", *args],
                with_extended_output=True,
                with_exceptions=False,
                env=full_env,
                strip_newline_in_stdout=False,
                **kwargs,
            )
        if check and status != 0:
            raise GitError(args, status, out, err)
        return status, out, err

    def out(self, *args: str, **kwargs: Any) -> str:
        return self.run(*args, **kwargs)[1].strip()

    def head(self) -> str | None:
        status, out, _ = self.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        return out.strip() if status == 0 else None

    def tree_of(self, commit: str) -> str:
        return self.out("rev-parse", f"{commit}^{{tree}}")

    def commit_info(self, commit: str) -> _CommitInfo:
        raw = self.run("cat-file", "commit", commit)[1]
        header, _, message = raw.partition("\n\n")
        tree, parents = "", []
        author = ("", "", "")
        committer = ("", "")
        for line in header.split("\n"):
            key, _, value = line.partition(" ")
            if key == "tree":
                tree = value
            elif key == "parent":
                parents.append(value)
            elif key in ("author", "committer"):
                m = re.match(r"^(.*?) <(.*)> (\d+ [+-]\d{4})$", value)
                if m is None:
                    raise BtfhubError(f"commit {commit}: cannot read the {key} line {value!r}")
                if key == "author":
                    author = (m.group(1), m.group(2), m.group(3))
                else:
                    committer = (m.group(1), m.group(2))
        return _CommitInfo(tree, tuple(parents), author, committer, message)

    def ls_tree(self, treeish: str) -> dict[str, _Entry]:
        entries: dict[str, _Entry] = {}
        for record in self.run("ls-tree", "-r", "-z", "--full-tree", treeish)[1].split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, _type, sha = meta.split()
            entries[path] = _Entry(mode, sha)
        return entries

    def diff_tree(self, old: str, new: str) -> list[tuple[str, _Entry | None, _Entry | None]]:
        tokens = self.run("diff-tree", "-r", "-z", "--no-renames", old, new)[1].split("\0")
        changes = []
        for meta, path in zip(tokens[0::2], tokens[1::2], strict=False):
            if not meta.startswith(":"):
                continue
            old_mode, new_mode, old_sha, new_sha, _status = meta[1:].split()
            before = None if old_mode == "000000" else _Entry(old_mode, old_sha)
            after = None if new_mode == "000000" else _Entry(new_mode, new_sha)
            changes.append((path, before, after))
        return changes

    def index_entries(self, paths: Sequence[str]) -> dict[str, _Entry]:
        """The real index's stage-0 entries for `paths`; a conflicted path is an error."""
        wanted = set(paths)
        found: dict[str, _Entry] = {}
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
            found[path] = _Entry(mode, sha)
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

    def apply_entries(self, env: Mapping[str, str], changes: Mapping[str, _Entry | None]) -> None:
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


def _clean_message(message: str) -> str:
    lines = [line.rstrip() for line in message.strip().splitlines()]
    return "\n".join(lines) + "\n"


def check_hub_paths(paths: Sequence[str]) -> list[str]:
    """The paths btfhub may commit, normalised; BtfhubError naming every bad one."""
    bad = []
    good: list[str] = []
    for p in paths:
        parts = p.split("/")
        ok = (
            bool(p)
            and "\\" not in p
            and "\0" not in p
            and not p.startswith("/")
            and all(part not in ("", ".", "..") for part in parts)
            and (p in GENERATED_FILES or (parts[0] == ARCHIVE_DIR and len(parts) > 1))
        )
        if ok:
            if p not in good:
                good.append(p)
        else:
            bad.append(p)
    if bad:
        raise BtfhubError(
            "btfhub only commits files under archive/, README.md and index.json; refusing: "
            + ", ".join(repr(b) for b in bad)
        )
    return sorted(good)


def parse_author(text: str, source: str) -> tuple[str, str]:
    m = _AUTHOR_RE.match(text)
    if m is None or not m.group(1):
        raise BtfhubError(f"{source}: {text!r} is not of the form 'Name <email@host>'")
    return m.group(1), m.group(2)


def _resolve_author(repo: _Repo, author: str | None) -> tuple[str, str]:
    if author is not None:
        return parse_author(author, "git author")
    from_env = os.environ.get(AUTHOR_ENV)
    if from_env:
        return parse_author(from_env, AUTHOR_ENV)
    name = repo.run("config", "--get", "user.name", check=False)[1].strip()
    email = repo.run("config", "--get", "user.email", check=False)[1].strip()
    if not name or not email:
        raise BtfhubError(
            f"no git author: set {AUTHOR_ENV}='Name <email>' or git config user.name and user.email"
        )
    return name, email


def resolve_author(root: Path, author: str | None = None) -> tuple[str, str]:
    """The (name, email) commit_paths would use; BtfhubError when there is none.

    Lets a caller fail before hours of building rather than at the commit.
    """
    return _resolve_author(_Repo(root), author)


def _ident_env(
    author: tuple[str, str], committer: tuple[str, str] | None = None, date: str | None = None
) -> dict[str, str]:
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


def _commit_work_tree_paths(
    repo: _Repo,
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
    repo = _Repo(root)
    checked = check_hub_paths(paths)
    if not checked:
        return None
    env = _ident_env(_resolve_author(repo, author))
    head = repo.head()
    sha = _commit_work_tree_paths(repo, checked, head, [head] if head else [], message, env)
    if sha is not None:
        repo.move_head(sha, head, "btfhub: commit")
    return sha


def hub_changes(root: Path) -> list[str]:
    """Paths btfhub owns (archive/, README.md, index.json) that differ from HEAD."""
    repo = _Repo(root)
    out = repo.run(
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        "--",
        ARCHIVE_DIR,
        *GENERATED_FILES,
    )[1]
    paths = {record[3:] for record in out.split("\0") if len(record) > 3}
    return sorted(paths)


def commit_message(
    added: Mapping[str, Sequence[str]], failed: Mapping[str, Sequence[tuple[str, str]]]
) -> str:
    """Summary line plus, per distribution, the kernels added and those that failed (why)."""
    n_added = sum(len(v) for v in added.values())
    n_failed = sum(len(v) for v in failed.values())
    if n_added:
        summary = f"btfhub: add {n_added} BTF file{'' if n_added == 1 else 's'}"
        if n_failed:
            summary += f" ({n_failed} failed)"
    elif n_failed:
        summary = f"btfhub: record {n_failed} failed kernel{'' if n_failed == 1 else 's'}"
    else:
        summary = "btfhub: regenerate README.md and index.json"
    lines = [summary]
    if n_added:
        lines += ["", "Added:"]
        for distro in sorted(added):
            if added[distro]:
                lines.append(f"  {distro}:")
                lines += [f"    {k}" for k in sorted(added[distro])]
    if n_failed:
        lines += ["", "Failed:"]
        for distro in sorted(failed):
            if failed[distro]:
                lines.append(f"  {distro}:")
                for kernel, reason in sorted(failed[distro]):
                    # One line per kernel, whatever the tool's error looked like.
                    short = " ".join(reason.split())
                    if len(short) > 200:
                        short = short[:197] + "..."
                    lines.append(f"    {kernel}: {short}")
    return "\n".join(lines) + "\n"


# --- pushing ---------------------------------------------------------------

_BEHIND = ("non-fast-forward", "fetch first", "stale info")


def _push(repo: _Repo, remote: str, branch: str) -> tuple[str, str]:
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


def _fetch(repo: _Repo, remote: str, branch: str) -> str:
    repo.run("fetch", "--no-tags", "--quiet", remote, f"refs/heads/{branch}")
    return repo.out("rev-parse", "--verify", "FETCH_HEAD^{commit}")


def _switch_work_tree(repo: _Repo, old: str, new: str, reason: str) -> None:
    """Move HEAD, index and work tree from `old` to `new`, carrying local changes."""
    repo.run("update-index", "-q", "--refresh", check=False)
    status, out, err = repo.run("read-tree", "-m", "-u", old, new, check=False)
    if status != 0:
        raise BtfhubError(
            "cannot bring in the remote's changes without overwriting local changes "
            f"(commit or stash them, then run again):\n{(err or out).strip()}"
        )
    repo.move_head(new, old, reason)


def _replay(repo: _Repo, upstream: str, head: str, where: str) -> str:
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
        updates: dict[str, _Entry | None] = {}
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
        env = _ident_env(info.author[:2], info.committer, info.author[2])
        tip = repo.commit_tree(tree, [tip], info.message, env)
    return tip


def _rebuild(repo: _Repo, upstream: str, regenerate: Regenerate, where: str) -> bool:
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
            env = _ident_env(info.author[:2], info.committer, info.author[2])
            amended = _commit_work_tree_paths(
                repo, changed, new_tip, info.parents, info.message, env
            )
        else:
            # Only the generated files differ from the remote: a commit of their own.
            env = _ident_env(last.author[:2], last.committer)
            amended = _commit_work_tree_paths(
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
    repo = _Repo(root)
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
    repo = _Repo(root)
    status, out, _ = repo.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    if status != 0:
        raise BtfhubError(f"{root}: HEAD is detached; check out the branch to publish to")
    return out.strip()
