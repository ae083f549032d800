"""Kept listings' roots confirmed by forked workers (upstream/confirm.py, fanout.py).

`btfhub plan` runs as a process of its own (workers are only forked from a
process with one thread; pytest's has the mirror's), over a hub of 64
rpm-md sources served by the real mirror server on 127.0.0.1, each
answer slowed a little so that the test sees the workers while they work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from generator.children import usable_cores
from generator.demokit.mirror import write_rpmmd_repo
from generator.upstream import confirm
from generator.upstream.fanout import run_probed
from generator.upstream.http import UpstreamClient
from generator.upstream.sourcememo import IndexRead
from tests.kit.hub import meta_only
from tests.kit.mirror import SlowMirror
from tests.kit.processes import descendants, wait_gone

UPSTREAM = "http://debuginfo.example.org/"
RELEASES = 32  # x 2 arches: 64 sources, confirm.MIN_ROOTS
ARCHES = {"x86_64": "x86_64", "arm64": "aarch64"}
REPO = Path(__file__).resolve().parent.parent
# confirm.processes_for: one core forks no worker, and these tests would prove nothing.
needs_two_cores = pytest.mark.skipif(usable_cores() < 2, reason="workers need 2 cores or more")


def _manifest() -> str:
    lines = [
        "# yaml-language-server: $schema=../schemas/manifest.schema.json",
        "title: Many",
        "archive_dir: many",
        "architectures: [x86_64, arm64]",
        "columns:",
        "  - {header: Kernel, field: kernel}",
        "repositories:",
        "  - id: debug",
        "    kind: rpm-md",
        f"    url: {UPSTREAM}many/{{arch}}/",
        "    packages: [kernel-debuginfo]",
        "    unsigned: true",
        "releases:",
    ]
    for r in range(RELEASES):
        lines += [
            f'  - name: "{r}"',
            f'    kernel: "5.{r}.0"',
            f'    directory: "{r}"',
            "    bpf: true",
            "    btf: false",
            "    hub: true",
            "    sources:",
            "      - repository: debug",
            f'        paths: ["{r}/"]',
        ]
    return "\n".join(lines) + "\n"


def _publish(server: SlowMirror, r: int, arch: str, builds: int = 1) -> None:
    rpm_arch = ARCHES[arch]
    repo = server.directory / "many" / rpm_arch / str(r)
    rpms = [
        meta_only(repo, "kernel-debuginfo", f"5.{r}.0", f"{b}.el8", rpm_arch) for b in range(builds)
    ]
    write_rpmmd_repo(repo, rpms)


def _repomd(r: int, arch: str) -> str:
    return f"/many/{ARCHES[arch]}/{r}/repodata/repomd.xml"


@pytest.fixture
def many(tmp_path: Path) -> tuple[Path, SlowMirror]:
    hub = tmp_path / "hub"
    (hub / "catalog").mkdir(parents=True)
    (hub / "catalog" / "many.yaml").write_text(_manifest())
    server = SlowMirror(tmp_path / "mirror", delay=0.0)
    for r in range(RELEASES):
        for arch in ARCHES:
            _publish(server, r, arch)
    with server:
        yield hub, server


def _start(hub: Path, server: SlowMirror) -> subprocess.Popen[str]:
    argv = ["plan", "--root", str(hub), "--mirror", f"{UPSTREAM}={server.url}", "--json"]
    return subprocess.Popen(
        [sys.executable, "-m", "generator", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _plan(hub: Path, server: SlowMirror) -> tuple[int, dict[str, object], str, int]:
    """(exit code, plan JSON, stderr, most live children seen while it ran)."""
    proc = _start(hub, server)
    most = 0
    while proc.poll() is None:
        most = max(most, len(descendants(proc.pid)))
        time.sleep(0.002)
    out, err = proc.communicate()
    assert out, err
    return proc.returncode, json.loads(out), err, most


def _unames(plan: dict[str, object]) -> set[str]:
    return {k["uname"] for k in plan["kernels"]}  # type: ignore[index, union-attr]


@needs_two_cores
def test_a_no_op_confirms_every_root_once_in_workers_and_a_changed_or_failing_one_reads_as_before(
    many: tuple[Path, SlowMirror],
) -> None:
    hub, server = many
    code, cold, err, _ = _plan(hub, server)
    assert code == 0, err
    assert len(_unames(cold)) == RELEASES * len(ARCHES)
    # The hub's state, loaded while the workers ask upstream, is planned with.
    archived = hub / "archive/many/7/x86_64/5.7.0-0.el8.x86_64.btf.tar.xz"
    archived.parent.mkdir(parents=True)
    archived.write_bytes(b"archived")
    server.clear_log()
    server.delay = 0.01  # long enough to see the workers
    code, warm, err, most = _plan(hub, server)
    assert code == 0, err
    states = {k["uname"]: k["state"] for k in warm["kernels"]}  # type: ignore[attr-defined]
    assert states.pop("5.7.0-0.el8.x86_64") == "archived"
    assert set(states.values()) == {"missing"}
    assert warm["kernels"] == [  # type: ignore[index]
        k if k["uname"] != "5.7.0-0.el8.x86_64" else {**k, "state": "archived"}
        for k in cold["kernels"]  # type: ignore[attr-defined]
    ]
    assert most >= 2, "the roots were not confirmed by worker processes"
    # One conditional request per root, each answered 304: nothing else was read.
    roots = sorted(_repomd(r, arch) for r in range(RELEASES) for arch in ARCHES)
    assert sorted(r.path for r in server.log) == roots
    assert {r.status for r in server.log} == {304}
    assert all("If-None-Match" in r.headers for r in server.log)

    # A new kernel behind one root, an error behind another: listed and reported
    # by the run itself, as without workers.
    time.sleep(0.01)  # a distinct mtime, hence a distinct ETag
    _publish(server, 3, "arm64", builds=2)  # a new kernel upstream
    server.fail(_repomd(5, "x86_64"), status=403, times=None)
    server.clear_log()
    code, changed, err, most = _plan(hub, server)
    assert code == 1, err
    assert most >= 2
    assert _unames(changed) == _unames(cold) - {"5.5.0-0.el8.x86_64"} | {"5.3.0-1.el8.aarch64"}
    assert f"{UPSTREAM}many/x86_64/5/repodata/repomd.xml" in err
    assert "403" in err
    # Every other root answered 304 (the changed one too, when the run listed it
    # again from the body its worker had cached), and only the new primary was read.
    kept = {r.path for r in server.log if r.status == 304}
    assert kept == set(roots) - {_repomd(5, "x86_64")}
    read = [r.path for r in server.log if r.status == 200]
    assert len(read) == 2 and read[0] == _repomd(3, "arm64") and "primary" in read[1]


@needs_two_cores
def test_workers_end_with_a_killed_run(many: tuple[Path, SlowMirror]) -> None:
    hub, server = many
    code, _, err, _ = _plan(hub, server)
    assert code == 0, err
    server.delay = 0.05  # 32 roots a worker: over a second of work left when killed
    proc = _start(hub, server)
    workers: dict[int, str] = {}
    deadline = time.monotonic() + 30
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        workers = descendants(proc.pid)
        time.sleep(0.002)
    assert len(workers) >= 2, "no workers seen"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert wait_gone(workers, timeout=1.5) == {}


def test_run_probed_runs_every_item_once_in_threads_when_they_wait() -> None:
    seen: list[int] = []
    names: set[str] = set()

    def work(item: int) -> None:
        time.sleep(0.002)  # waiting, as on a distant server
        names.add(threading.current_thread().name)
        seen.append(item)

    run_probed(list(range(100)), work, workers=4)
    assert sorted(seen) == list(range(100))
    assert len(names) > 1


def test_run_probed_raises_a_bug_and_stops_taking_items() -> None:
    seen: list[int] = []

    def work(item: int) -> None:
        time.sleep(0.001)
        if item == 50:
            raise RuntimeError("bug")
        seen.append(item)

    with pytest.raises(RuntimeError, match="bug"):
        run_probed(list(range(1000)), work, workers=4)
    assert len(seen) < 999


def test_a_failed_fork_leaves_the_roots_to_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(confirm, "usable_cores", lambda: 2)
    monkeypatch.setattr(confirm.threading, "active_count", lambda: 1)
    monkeypatch.setattr(confirm.os, "fork", no_fork)
    reads = [IndexRead(f"{UPSTREAM}r{i}/repodata/repomd.xml", "0" * 64) for i in range(80)]
    ran: list[bool] = []
    client = UpstreamClient(cache_dir=None)
    assert confirm.confirm_roots(reads, client, lambda: ran.append(True)) == {}
    assert ran == []  # no worker was started: discover_all runs it after the listing
    assert client.stats.requests == 0
