"""The one way btfhub runs a tool (pahole, llvm-objcopy, xz, gpg, git): it dies with btfhub.

A tool outliving a killed btfhub keeps a core busy and its files open:
pahole on a real 600 MB vmlinux runs for 15 s with 400 MB resident, and
a run killed by CI's timeout or `kill -9` cannot clean up after it.
PR_SET_PDEATHSIG has the kernel kill the child when its parent dies,
however the parent dies. Setting it from Python would take a preexec_fn,
which the subprocess documentation calls unsafe in a process with threads
(the build workers are threads), so util-linux's `setpriv --pdeathsig`
sets it right before the exec. A parent that died before that instant is
caught by the child itself: a two-line sh guard compares its parent pid
with ours and gives up when they differ, so no window is left open.

The signal goes when the parent *thread* ends; each tool is waited for by
the thread that started it, so it never outlives that thread while wanted.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence

from generator.errors import BtfhubError

SETPRIV = "setpriv"
# $1 is the pid the child must still have as its parent; then the tool runs
# in the same process (exec), so it keeps the death signal setpriv gave it.
GUARD = 'test "$PPID" = "$1" || exit 125; shift; exec "$@"'
PARENT_GONE = 125


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which a container or
    taskset narrows, not the machine's count): what tools' threads are sized by."""
    return len(os.sched_getaffinity(0))


# The cores a build running in this thread may use, when builds run side by
# side (hub/build.py sets it, as it sizes pahole's -j): the threads of the
# tools it starts without an explicit count. None: every usable core.
_BUILD_CORES: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "btfhub_build_cores", default=None
)


@contextlib.contextmanager
def build_cores(cores: int) -> Iterator[None]:
    """Tools started in this context (this thread) size their threads for `cores`."""
    token = _BUILD_CORES.set(cores)
    try:
        yield
    finally:
        _BUILD_CORES.reset(token)


def tool_threads() -> int:
    """Threads for a tool started here: this build's share of the cores, else every usable one.

    Two builds on two cores each decoding with two xz threads would only take
    turns on the cores, and pay for the switching (bench/README.md, session 7).
    """
    return _BUILD_CORES.get() or usable_cores()


def tied_command(cmd: Sequence[str]) -> list[str]:
    """cmd wrapped so that the kernel kills it when this process dies."""
    return [
        SETPRIV,
        "--pdeathsig",
        "KILL",
        "--",
        "/bin/sh",
        "-c",
        GUARD,
        "sh",
        str(os.getpid()),
        *cmd,
    ]


def _check_installed(cmd: Sequence[str], env: Mapping[str, str] | None) -> None:
    """FileNotFoundError when cmd[0] is not installed (as subprocess would raise it:
    through the wrapper it would be an exit code instead)."""
    path = (env if env is not None else os.environ).get("PATH")
    if shutil.which(cmd[0], path=path) is None:
        raise FileNotFoundError(cmd[0])
    if shutil.which(SETPRIV) is None:
        raise BtfhubError(f"{SETPRIV} is not installed (util-linux; run scripts/setup.sh)")


def start_child(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout_size: int | None = None,
    stdin: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start cmd tied to this process, its stdin, stdout and stderr pipes (unbuffered).

    For a tool that streams (xz decoding a package as it downloads). The
    caller waits for it from the thread that started it (see above) and
    kills it when it wants no more. stdout_size: what its stdout pipe holds
    (Linux's default is 64 KiB), where the system allows. stdin: a file
    descriptor the tool reads itself, instead of a pipe.
    """
    _check_installed(cmd, env)
    proc = subprocess.Popen(
        tied_command(cmd),
        stdin=subprocess.PIPE if stdin is None else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        env=dict(env) if env is not None else None,
    )
    if stdout_size is not None and proc.stdout is not None:
        with contextlib.suppress(OSError):  # a cap below it is fine
            fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, stdout_size)
    return proc


def run_child(
    cmd: Sequence[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run cmd tied to this process, capturing both outputs; never raises on its exit code.

    FileNotFoundError when cmd[0] is not installed; subprocess.TimeoutExpired
    (the child killed) when it ran over timeout seconds.
    """
    _check_installed(cmd, env)
    return subprocess.run(
        tied_command(cmd),
        input=input,
        capture_output=True,
        check=False,
        env=dict(env) if env is not None else None,
        timeout=timeout,
    )
