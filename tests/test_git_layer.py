"""generator/gitops/repo.py, the one git layer: what GitPython adds must not cost the hub.

Its git processes (GitPython's persistent `cat-file --batch` ones included)
end with each operation and die with btfhub; a git failure is a GitError
naming the command, its exit code and stderr; an index of version 4
(`feature.manyFiles`), which GitPython cannot read, still commits and pushes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.gitops import clean_blobs, commit_paths, hub_changes, push_with_retry
from generator.gitops.repo import GitError, open_repo
from tests.kit.hubrepo import clone, git, make_remote


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return make_remote(tmp_path)


def add_archive(root: Path, name: str) -> str:
    """A new archive file named `name`, holding its own name; its path."""
    path = root / "archive" / "centos" / "7" / "x86_64" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(name)
    return path.relative_to(root).as_posix()


def nothing_to_regenerate(root: Path) -> list[str]:
    return []


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_index_version_4_commits_pushes_and_lists_blobs(remote: Path) -> None:
    a, b = clone(remote, "a"), clone(remote, "b")
    for root in (a, b):
        git(root, "config", "index.version", "4")
        git(root, "update-index", "--index-version", "4")
    a_file = add_archive(a, "a.btf.tar.xz")
    assert commit_paths(a, [a_file], "a") is not None
    push_with_retry(a, "origin", "main", nothing_to_regenerate, backoff=0)
    b_file = add_archive(b, "b.btf.tar.xz")
    assert commit_paths(b, [b_file], "b") is not None

    push_with_retry(b, "origin", "main", nothing_to_regenerate, backoff=0)  # rebuilt on a's

    files = git(remote, "ls-tree", "-r", "--name-only", "main").splitlines()
    assert a_file in files and b_file in files
    assert git(b, "status", "--porcelain") == "" and hub_changes(b) == []
    blobs = clean_blobs(b)
    assert blobs[b_file] == git(b, "rev-parse", f"HEAD:{b_file}")
    assert set(blobs) == {f for f in files if f.startswith("archive/")}


def test_no_git_process_outlives_an_operation(remote: Path) -> None:
    a, b = clone(remote, "a"), clone(remote, "b")
    commit_paths(a, [add_archive(a, "a.btf.tar.xz")], "a")
    push_with_retry(a, "origin", "main", nothing_to_regenerate, backoff=0)
    commit_paths(b, [add_archive(b, "b.btf.tar.xz")], "b")
    push_with_retry(b, "origin", "main", nothing_to_regenerate, backoff=0)  # reads objects
    assert clean_blobs(b)
    assert [cmd for cmd in children(os.getpid()).values() if "git" in cmd] == []


def test_a_git_failure_names_the_command_exit_code_and_stderr(remote: Path) -> None:
    a = clone(remote, "a")
    with pytest.raises(GitError) as err, open_repo(a) as repo:
        repo.git.rev_parse("--verify", "no-such-revision")
    assert err.value.command == ("git", "rev-parse", "--verify", "no-such-revision")
    assert err.value.status == 128
    assert err.value.stderr == "fatal: Needed a single revision"
    assert str(err.value) == (
        "`git rev-parse --verify no-such-revision` failed (exit 128):\n"
        "fatal: Needed a single revision"
    )


PUSH = """
import sys
from pathlib import Path
from generator.gitops import push_with_retry
push_with_retry(Path(sys.argv[1]), "origin", "main", lambda root: [], attempts=1)
"""


def test_git_dies_with_btfhub(remote: Path, tmp_path: Path) -> None:
    """A push hanging on the remote's hook is killed with the btfhub that started it."""
    started, hook_pid = tmp_path / "hook-started", tmp_path / "hook.pid"
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho $$ > {hook_pid}\ntouch {started}\nexec sleep 60\n")
    hook.chmod(0o755)
    a = clone(remote, "a")
    commit_paths(a, [add_archive(a, "a.btf.tar.xz")], "a")
    btfhub = subprocess.Popen([sys.executable, "-c", PUSH, str(a)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert btfhub.poll() is None, btfhub.communicate()[1].decode()
            assert time.monotonic() < deadline, "the push never reached the remote's hook"
            time.sleep(0.05)
        pushes = [pid for pid, cmd in children(btfhub.pid).items() if " push " in f" {cmd} "]
        assert pushes, children(btfhub.pid)
        btfhub.send_signal(signal.SIGKILL)
        btfhub.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pushes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in pushes), "git push outlived btfhub"
    finally:
        if btfhub.poll() is None:
            btfhub.kill()
            btfhub.wait()
        if hook_pid.exists():  # the remote's side is not ours to tie: end its sleep
            os.kill(int(hook_pid.read_text()), signal.SIGKILL)
        if btfhub.stderr is not None:
            btfhub.stderr.close()
