"""Work directories, run liveness, tools tied to their parent, and writes on a full disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from generator.children import run_child
from generator.errors import StorageError
from generator.fsutil import atomic_write
from generator.lock import claim, is_claimed
from generator.workdir import OWNER, WORK_DIR, WorkArea, sweep
from tests.kit.processes import alive, children, comm, file_size_limit

# A child process that takes a work area (printing its path) and then waits to be killed.
HOLDER = """
import sys, time
from pathlib import Path
from generator.workdir import WorkArea
with WorkArea(Path(sys.argv[1])) as work:
    (work.path / "vmlinux-partial").write_bytes(b"x" * 1000)
    print(work.path, flush=True)
    time.sleep(60)
"""


@contextmanager
def holder(root: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield proc, Path(proc.stdout.readline().strip())
    finally:
        proc.kill()
        proc.wait()


def test_work_area_lives_under_the_hub_and_goes_away(tmp_path: Path) -> None:
    with WorkArea(tmp_path) as work:
        assert work.path.parent == tmp_path / WORK_DIR
        assert work.path.name.startswith(f"{os.getpid()}-")
        assert is_claimed(work.path / OWNER)
        with work.kernel_dir() as kernel:
            (kernel / "vmlinux").write_bytes(b"x")
        assert not kernel.exists()
    assert list((tmp_path / WORK_DIR).iterdir()) == []


def test_a_killed_runs_directory_is_swept_a_live_one_is_kept(tmp_path: Path) -> None:
    with holder(tmp_path) as (live, live_dir):
        with holder(tmp_path) as (dead, dead_dir):
            assert is_claimed(dead_dir / OWNER)
            dead.send_signal(signal.SIGKILL)
            dead.wait()
        assert (dead_dir / "vmlinux-partial").exists()  # kill -9 cleaned nothing
        assert not is_claimed(dead_dir / OWNER)
        with WorkArea(tmp_path) as work:
            assert work.swept == [dead_dir]
            assert not dead_dir.exists()
            assert live_dir.exists() and live.poll() is None


def test_a_directory_without_its_owner_file_is_judged_by_its_pid(tmp_path: Path) -> None:
    base = tmp_path / WORK_DIR
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    gone = base / f"{dead.stdout.strip()}-abc"
    ours = base / f"{os.getpid()}-def"
    gone.mkdir(parents=True)
    ours.mkdir()
    (base / "junk").write_bytes(b"")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_bytes(b"x")
    (base / "link").symlink_to(elsewhere)
    assert sweep(base) == [gone, base / "junk", base / "link"]
    assert ours.exists()
    assert (elsewhere / "keep").exists()  # a link is removed, never followed


def test_claim_is_exclusive_and_dropped_on_close(tmp_path: Path) -> None:
    path = tmp_path / "owner"
    assert not is_claimed(path)
    fd = claim(path)
    assert is_claimed(path)
    with pytest.raises(BlockingIOError):
        claim(path)
    os.close(fd)
    assert not is_claimed(path)


# A parent that starts a long tool from a worker thread (as the build does) and waits.
PARENT = """
import threading, time
from generator.children import run_child
threading.Thread(target=run_child, args=(["sleep", "60"],), daemon=True).start()
time.sleep(60)
"""


def test_a_tool_dies_with_its_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    try:
        deadline = time.monotonic() + 30
        while not (kids := children(parent.pid)) or comm(kids[0]) != "sleep":
            assert time.monotonic() < deadline, "the tool never started"
            time.sleep(0.01)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    (tool,) = kids
    deadline = time.monotonic() + 2
    while alive(tool) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(tool), "sleep outlived its parent"


def test_run_child_reports_like_subprocess() -> None:
    done = run_child(["sh", "-c", "printf out; printf err >&2; exit 3"])
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out", b"err")
    assert run_child(["cat"], input=b"through stdin").stdout == b"through stdin"
    with pytest.raises(FileNotFoundError):
        run_child(["btfhub-no-such-tool"])


def test_atomic_write_on_a_full_disk_is_a_storage_error(tmp_path: Path) -> None:
    target = tmp_path / "archive" / "x.btf.tar.xz"
    with (
        file_size_limit(4096),
        pytest.raises(StorageError, match=r"cannot write .*x\.btf\.tar\.xz"),
    ):
        atomic_write(target, b"x" * 100_000)
    assert list(tmp_path.rglob("*.tmp")) == []
    assert not target.exists()


def test_atomic_write_keeps_its_temporary_file_in_tmp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    target = tmp_path / "archive" / "x"
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: Path) -> None:
        seen.append(str(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write(target, b"data", tmp_dir=work)
    assert target.read_bytes() == b"data"
    assert Path(seen[0]).parent == work


def test_writes_a_killed_run_left_unfinished_are_swept(tmp_path: Path) -> None:
    arch = tmp_path / "archive" / "ubuntu" / "20.04" / "x86_64"
    arch.mkdir(parents=True)
    stale = [
        arch / ".5.4.0-42-generic.btf.tar.xz.k2j4_x9a.tmp",
        tmp_path / ".index.json.abcd1234.tmp",
        tmp_path / ".README.md.zz9_zz9z.tmp",
    ]
    kept = [
        arch / "5.4.0-42-generic.btf.tar.xz",
        tmp_path / "archive" / ".gitkeep",
        tmp_path / ".other.abcd1234.tmp",  # not a file btfhub writes at the top
        tmp_path / "index.json",
    ]
    hidden = tmp_path / "archive" / ".cache"  # any depth, hidden directories too
    hidden.mkdir()
    stale.append(hidden / ".5.4.0-26-generic.btf.tar.xz.abcd1234.tmp")
    for path in stale + kept:
        path.write_bytes(b"x")
    link = arch / ".5.4.0-26-generic.btf.tar.xz.zz9_zz9z.tmp"
    link.symlink_to(kept[0])  # a link is never a write of ours: left alone
    with WorkArea(tmp_path) as work:
        assert sorted(work.swept) == sorted(stale)
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept) and link.is_symlink()
