"""The check that fails a test run leaving a process behind (conftest.no_process_left_behind)."""

from __future__ import annotations

import os
import subprocess
import uuid

from tests.kit.processes import RUN_MARKER, alive, left_behind, marked, wait_gone


def test_a_detached_process_of_the_run_is_found_and_killed() -> None:
    """As gpg-agent does: started by a child that exits, it lives on under init."""
    token = f"probe-{uuid.uuid4().hex}"
    env = {**os.environ, RUN_MARKER: token}
    out = subprocess.run(
        ["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    daemon = int(out.stdout)
    try:
        assert marked(token) == {daemon: "sleep 60"}
        assert left_behind(token, grace=0.2) == {daemon: "sleep 60"}
        assert wait_gone({daemon: "sleep"}) == {}
    finally:
        if alive(daemon):
            os.kill(daemon, 9)
    assert marked(token) == {}


def test_the_run_is_marked_and_this_process_is_not_listed() -> None:
    token = os.environ[RUN_MARKER]
    with subprocess.Popen(["sleep", "60"]) as child:
        try:
            assert child.pid in marked(token)
            assert os.getpid() not in marked(token)
        finally:
            child.kill()
