"""Processes as /proc shows them: a test's children, and what a test run left behind.

A test run marks its environment (RUN_MARKER, set by conftest before any test
starts); every process it starts inherits the mark, daemons included
(gpg-agent detaches from its parent, but keeps the environment it was started
with). left_behind() lists the marked processes still alive, so the run can
fail when one outlives it. Tests that must leave no process behind (a
browser's, a tool outliving its parent) check by process id, never by name:
other work runs on the machine. And a limit on the files a process writes
(file_size_limit), which is how a test runs out of disk without mounting one.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RUN_MARKER = "BTFHUB_TEST_RUN"


def stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of a process, None when it is gone.

    Plain open() and os.listdir() (_pids): the kill-safety tests scan every
    process every few milliseconds while a build runs beside them, and
    pathlib doubled the cost of each scan.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    close = text.rindex(")")
    state, ppid = text[close + 2 :].split(maxsplit=2)[:2]
    return text[text.index("(") + 1 : close], state, int(ppid)


def alive(pid: int) -> bool:
    info = stat(pid)
    return info is not None and info[1] != "Z"  # a zombie is dead, only not reaped


def comm(pid: int) -> str:
    info = stat(pid)
    return info[0] if info is not None else ""


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children(pid: int) -> list[int]:
    """The live direct children of pid."""
    return [
        child
        for child in _pids()
        if (info := stat(child)) is not None and info[2] == pid and info[1] != "Z"
    ]


def descendants(pid: int) -> dict[int, str]:
    """{pid: comm} of every live descendant of pid."""
    kids: dict[int, list[int]] = {}
    comms: dict[int, str] = {}
    for child in _pids():
        info = stat(child)
        if info is None or info[1] == "Z":
            continue
        comms[child] = info[0]
        kids.setdefault(info[2], []).append(child)
    found: dict[int, str] = {}
    todo = list(kids.get(pid, []))
    while todo:
        child = todo.pop()
        found[child] = comms[child]
        todo.extend(kids.get(child, []))
    return found


def wait_gone(pids: dict[int, str], timeout: float = 1.5) -> dict[int, str]:
    """The pids still alive after `timeout` seconds (empty: all gone)."""
    deadline = time.monotonic() + timeout
    left = dict(pids)
    while left and time.monotonic() < deadline:
        left = {p: c for p, c in left.items() if alive(p)}
        time.sleep(0.05)
    return left


def marked(token: str) -> dict[int, str]:
    """{pid: command line} of the live processes whose environment carries RUN_MARKER=token."""
    mark = f"{RUN_MARKER}={token}".encode()
    found: dict[int, str] = {}
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if mark in environ.split(b"\0") and alive(pid):
            found[pid] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def left_behind(token: str, grace: float = 3.0) -> dict[int, str]:
    """The marked processes still alive after `grace` seconds, then killed (SIGKILL)."""
    left = wait_gone(marked(token), grace)
    still = {pid: line for pid, line in marked(token).items() if pid in left}
    for pid in still:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return still


def end_all(pids: set[int], timeout: float = 10.0) -> set[int]:
    """The pids still running after timeout; those are killed (SIGKILL), by pid.

    An ended process not yet reaped counts as ended (alive()): a daemonized
    helper, such as a chromium zygote, is init's child, and only init can reap
    it. Waiting for that took 1.4-1.9 s on a machine whose init reaps every
    second or so, and proved nothing more.
    """
    left = set(wait_gone(dict.fromkeys(pids, ""), timeout))
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """This process may write no file beyond limit bytes (a full disk, as writes see it:
    EFBIG, as Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
