"""One btfhub at a time per checkout: the `<root>/.btfhub.lock` file.

Design: the lock file is only a *record* (PID, host, start time) for the error
message; the mutex is ``fcntl.flock`` on that file. The kernel drops a flock
when its holder exits, however it exits (kill -9 included), so a lock file left
behind by a dead process is simply taken over, and two processes racing to
take over the same stale file cannot both win: flock lets one through. PID
checks alone cannot give that (two takers both see a dead PID, both rewrite
the file) and they are fooled by PID reuse.

The holder unlinks the file on release while still holding the flock. A
waiter that opened the old inode gets the flock after that, notices the path
now names another inode (or none) and starts over, so two holders can never
each hold a flock on a different inode of the same path.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from generator.errors import LockError

LOCK_NAME = ".btfhub.lock"


def _holder_text() -> str:
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"pid={os.getpid()}\nhost={socket.gethostname()}\nstarted={started}\n"


def _describe_holder(text: str, path: Path) -> str:
    """The error message for a lock held by someone else, from the file's record."""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    pid, host, started = fields.get("pid"), fields.get("host"), fields.get("started")
    if pid is None:
        # Between the holder's open and its write: nothing to name yet.
        who = "another btfhub (just starting)"
    else:
        where = "" if host in (None, socket.gethostname()) else f" on {host}"
        who = f"another btfhub (pid {pid}{where}, started {started or 'at an unknown time'})"
    return f"{who} holds {path}; wait for it to finish, or remove the file if that process is gone"


class HubLock:
    """Context manager holding the checkout's lock; LockError when it is taken.

    ``timeout`` (seconds) makes the acquirer poll instead of failing at once.
    """

    def __init__(self, root: Path, timeout: float = 0.0, poll: float = 0.2) -> None:
        self.path = Path(root) / LOCK_NAME
        self.timeout = timeout
        self.poll = poll
        self._fd: int | None = None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            # O_CLOEXEC: a pahole child outliving us must not keep the flock.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                os.close(fd)
                if time.monotonic() < deadline:
                    time.sleep(self.poll)
                    continue
                raise LockError(_describe_holder(text, self.path)) from None
            # We hold a flock, but maybe on an inode the previous holder has
            # just unlinked: only the inode the path names now counts.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            # Ours. Whatever the file says (a dead process's record) is stale.
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text().encode(), 0)
            os.fsync(fd)
            self._fd = fd
            return

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            # Unlink before unlocking: see the module docstring.
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> HubLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


# -- liveness of other runs -----------------------------------------------------------
# The same flock trick tells whether the run that made a work directory is
# still alive: it holds a flock on a file inside for as long as it lives,
# and the kernel drops it when the process dies, kill -9 included. Unlike a
# PID check this is not fooled by a PID reused since.


def claim(path: Path) -> int:
    """Create `path` and flock it for the rest of this process's life; returns the fd.

    Close the fd to give it up. O_CLOEXEC keeps the claim from passing to a
    child that could outlive us.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(fd, _holder_text().encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def is_claimed(path: Path) -> bool:
    """True while a live process holds `path` through claim()."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)  # also drops the shared lock just taken
    return False


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (for a directory made before its claim file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
