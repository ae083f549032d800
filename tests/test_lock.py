"""HubLock with real processes: a holder, a dead holder, racing takers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.errors import LockError
from generator.lock import LOCK_NAME, HubLock

REPO = Path(__file__).resolve().parent.parent

HOLDER = """
import sys, time
from pathlib import Path
from generator.lock import HubLock
with HubLock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def start_holder(root: Path, seconds: float = 60.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_lock_names_its_holder(tmp_path: Path) -> None:
    holder = start_holder(tmp_path)
    try:
        with pytest.raises(LockError) as err, HubLock(tmp_path):
            pass
        message = str(err.value)
        assert f"pid {holder.pid}" in message
        assert str(tmp_path / LOCK_NAME) in message
        assert "remove the file if that process is gone" in message
    finally:
        holder.kill()
        holder.wait()


def test_release_removes_the_file_and_frees_the_lock(tmp_path: Path) -> None:
    with HubLock(tmp_path) as lock:
        assert lock.held
        text = (tmp_path / LOCK_NAME).read_text()
        assert f"pid={os.getpid()}\n" in text and "host=" in text and "started=" in text
    assert not (tmp_path / LOCK_NAME).exists()
    with HubLock(tmp_path):  # can be taken again
        pass


def test_a_second_lock_in_the_same_process_fails_too(tmp_path: Path) -> None:
    with HubLock(tmp_path), pytest.raises(LockError, match=f"pid {os.getpid()}"):
        HubLock(tmp_path).acquire()


def test_stale_lock_of_a_dead_pid_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(f"pid={dead.pid}\nhost=here\nstarted=long ago\n")
    with HubLock(tmp_path):
        assert f"pid={os.getpid()}\n" in (tmp_path / LOCK_NAME).read_text()


def test_lock_of_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    holder = start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)  # no chance to clean up: the file stays
    holder.wait()
    assert f"pid={holder.pid}" in (tmp_path / LOCK_NAME).read_text()
    with HubLock(tmp_path):
        assert f"pid={os.getpid()}\n" in (tmp_path / LOCK_NAME).read_text()


def test_timeout_waits_for_the_holder(tmp_path: Path) -> None:
    holder = start_holder(tmp_path, seconds=0.5)
    try:
        started = time.monotonic()
        with HubLock(tmp_path, timeout=30, poll=0.05):
            # Only once the holder's half second was over.
            assert time.monotonic() - started >= 0.4
    finally:
        holder.wait()


RACER = """
import sys, time
from pathlib import Path
from generator.errors import LockError
from generator.lock import HubLock
root, go, done = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
try:
    with HubLock(root):
        print("won", flush=True)
        while not done.exists():  # held until every other racer has lost
            time.sleep(0.01)
except LockError:
    print("lost", flush=True)
"""


def test_racing_takers_of_a_stale_lock_one_wins(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("pid=999999999\nhost=here\nstarted=long ago\n")
    go, done = tmp_path / "go", tmp_path / "done"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path), str(go), str(done)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(8)
    ]
    for p in racers:  # every racer is in its polling loop before the start
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    # The winner holds the lock until each of the others has said it lost.
    results = [p.stdout.readline().strip() for p in racers if p.stdout is not None]
    done.touch()
    for p in racers:
        assert p.communicate(timeout=60)[0] == ""
    assert sorted(results) == ["lost"] * 7 + ["won"]
