"""Kept listings' roots confirmed at once, in worker processes, before discovery replays them.

A no-op at the public hub's scale asks thousands of servers "is this root
still the same?" (generator/upstream/sourcememo.py): one conditional GET
each, which a near mirror answers with a 304 in well under a millisecond.
In one process the client's own Python work per request is then the cost,
and threads only contend for the GIL (fanout.py). Forked workers run the
same client (its mirrors, proxies, credentials, retry policy and cache) on
the other cores, each with an interpreter of its own: on 2 cores the
requests of a 3,500-source no-op take about half the time.

The parent replays what the workers confirmed. What they could not confirm
(an error, a worker that died) the parent asks again itself, in the order a
single process asks, so a failure is reported exactly as without workers.
A worker checks that its parent is alive before each request and exits
when it is not: nothing outlives a killed run by more than one request.

Forking is only done from a process with one thread (a thread holding a
lock at the fork would hold it forever in the child, and Python 3.12 warns
of it), on Linux, and when there are enough roots to pay for it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import BinaryIO, NoReturn

from generator.children import usable_cores
from generator.errors import BtfhubError
from generator.upstream.fanout import WORKERS, run_probed
from generator.upstream.http import UpstreamClient
from generator.upstream.sourcememo import IndexRead

# Fewer roots than this are asked in this process: a fork costs a few ms.
MIN_ROOTS = 64
MAX_PROCESSES = 4

Confirmed = dict[IndexRead, IndexRead | None]


def worker_count(roots: int) -> int:
    """How many workers a single-threaded run forks for this many roots (0: none)."""
    n = min(usable_cores(), MAX_PROCESSES, roots // (MIN_ROOTS // 2))
    return n if roots >= MIN_ROOTS and n >= 2 else 0


def processes_for(roots: int) -> int:
    """How many workers confirm this many roots here; 0: the parent asks them all."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return 0
    return worker_count(roots)


def confirm_roots(
    reads: Sequence[IndexRead],
    client: UpstreamClient,
    meanwhile: Callable[[], None] | None = None,
) -> Confirmed:
    """Each read as its server answers now (None: its body changed), for those a worker
    could ask; the rest are absent (the parent asks them itself).

    meanwhile runs in this process while the workers ask (not at all when
    none is started): their answers wait in their pipes until it is done.
    """
    n = processes_for(len(reads))
    if not n:
        return {}
    # A URL always goes to the same worker, which then asks it once per
    # distinct read, as one process would, and writes its cache entry alone.
    shares: list[list[IndexRead]] = [[] for _ in range(n)]
    for read in reads:
        shares[zlib.crc32(read.url.encode()) % n].append(read)
    parent = os.getpid()
    running: dict[int, tuple[BinaryIO, list[IndexRead]]] = {}  # pid -> (its answers, share)
    confirmed: Confirmed = {}
    try:
        for share in shares:
            if not share:
                continue
            readable, writable = os.pipe()
            try:
                pid = os.fork()
            except OSError:  # no memory or process left: the parent asks the rest itself
                os.close(readable)
                os.close(writable)
                break
            if pid == 0:
                os.close(readable)
                _work(share, client, writable, parent, max(1, WORKERS // n))
            os.close(writable)
            running[pid] = (os.fdopen(readable, "rb"), share)
        if meanwhile is not None and running:
            meanwhile()
        for pid, (pipe, share) in list(running.items()):
            data = pipe.read()
            pipe.close()
            _, status = os.waitpid(pid, 0)
            del running[pid]
            if os.waitstatus_to_exitcode(status) != 0 or not data:
                continue  # a worker that failed confirmed nothing: its share is asked again
            results, counts = pickle.loads(data)
            confirmed.update((share[i], now) for i, now in results)
            client.stats.add(**counts)
    finally:
        for pid, (pipe, _) in running.items():  # Ctrl-C or a bug: no worker stays
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pipe.close()
    return confirmed


def _work(
    share: list[IndexRead], client: UpstreamClient, out: int, parent: int, threads: int
) -> NoReturn:
    """A worker's whole life: ask each root, write (results, request counts), exit.

    It never returns into the caller's frames (os._exit), so none of the
    parent's cleanup runs twice.
    """
    code = 1
    try:
        client.transport.forget_connections()
        before = client.stats.counts()
        results: list[tuple[int, IndexRead | None]] = []

        def ask(item: tuple[int, IndexRead]) -> None:
            if os.getppid() != parent:
                os._exit(1)  # the run is gone: nobody reads the answers
            index, read = item
            with contextlib.suppress(BtfhubError):  # asked again, and reported, by the parent
                results.append((index, client.revalidate(read)))

        run_probed(list(enumerate(share)), ask, threads)
        after = client.stats.counts()
        counts = {name: after[name] - before[name] for name in after if after[name] != before[name]}
        with os.fdopen(out, "wb") as pipe:
            pipe.write(pickle.dumps((results, counts)))
        code = 0
    finally:
        os._exit(code)
