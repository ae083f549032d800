"""Processes seen through Linux /proc: whether one still runs, a process's descendants.

Tests that must leave no process behind (a browser's, a tool outliving its
parent) check by process id, never by name: other work runs on the machine.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from pathlib import Path


def _children() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc)."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry)] = int(fields[1])
    return found


def descendants(pid: int) -> set[int]:
    parents = _children()
    tree, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    return tree


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_gone(pids: set[int], timeout: float = 10.0, reaped: float = 3.0) -> set[int]:
    """The pids still running after timeout; those are killed (SIGKILL), by pid.

    Once none runs, waits up to `reaped` seconds more for their zombies to be
    reaped (a daemonized helper, such as chromium's crash handler, is init's
    child): then not even a `<defunct>` entry is left in ps.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {p for p in pids if alive(p)}
        if not left:
            _wait_reaped(pids, reaped)
            return set()
        time.sleep(0.1)
    left = {p for p in pids if alive(p)}
    for pid in left:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def _wait_reaped(pids: set[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.05)
