"""The benches stop cleanly on SIGTERM: their work directory and the processes they run go.

Python's default for SIGTERM is to die at once, which left a fleet bench's
gigabytes of packages in /tmp and its btfhub running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# What a bench does: a work directory removed in `finally`, a child watched until it ends.
BENCH = """
import shutil, subprocess, sys, tempfile
from pathlib import Path
sys.path[:0] = [{bench!r}, {repo!r}]
from real_kernel_bench import exit_on_sigterm, watch
exit_on_sigterm()
work = Path(tempfile.mkdtemp(dir={tmp!r}))
try:
    child = subprocess.Popen(["sleep", "60"])
    Path({pidfile!r}).write_text(str(child.pid))
    watch(child, [work], 0)
finally:
    shutil.rmtree(work)
"""


def test_a_sigterm_removes_the_work_directory_and_stops_the_watched_child(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "child.pid"
    work = tmp_path / "work"
    work.mkdir()
    script = BENCH.format(
        bench=str(REPO / "bench"), repo=str(REPO), tmp=str(work), pidfile=str(pidfile)
    )
    bench = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not any(work.iterdir()):
        assert bench.poll() is None, bench.stderr.read() if bench.stderr else ""
        assert time.monotonic() < deadline, "the bench never started its child"
        time.sleep(0.05)
    child = int(pidfile.read_text())
    bench.send_signal(signal.SIGTERM)
    assert bench.wait(timeout=20) == 128 + signal.SIGTERM
    assert bench.stderr is not None
    bench.stderr.close()
    assert list(work.iterdir()) == []  # its work directory is gone
    try:
        os.kill(child, 0)
    except ProcessLookupError:
        pass  # gone, reaped by the bench
    else:
        raise AssertionError(f"the watched child {child} outlived the bench")
