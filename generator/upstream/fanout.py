"""Many small requests, in threads only when threads pay: the first ones timed alone.

Listing a source, or asking a server to confirm a root, is a chain of small
requests. Against a distant upstream most of its time is waiting for answers,
and threads overlap the waits (the client is shared safely between them).
Against a near one (a mirror on the LAN or loopback, answering a 304 in a
fraction of a millisecond) the client's own Python work dominates, and
threads only contend for the GIL: measured on 2 cores, 4 threads cost
1.2-1.4 s more CPU than one over 3,500 repositories and saved no time. So
the first items run one by one while timing them, and the rest go to threads
only when those waited longer than they computed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

# Connections a run holds to upstream at once: a few stay polite to public mirrors.
WORKERS = 4
# At most this many items run one by one first, timed.
PROBE = 32

T = TypeVar("T")


def run_probed(items: Sequence[T], work: Callable[[T], None], workers: int = WORKERS) -> None:
    """work(item) for every item: the first few alone, the rest `workers` at a time when that pays.

    work must not raise for an expected failure (it records it); an exception
    (a bug) stops the threads from taking further items and is raised here.
    """
    if workers <= 1 or len(items) < 2:
        for item in items:
            work(item)
        return
    probe = max(1, min(PROBE, len(items) // 8))
    start, cpu = time.perf_counter(), time.thread_time()
    for item in items[:probe]:
        work(item)
    computed = time.thread_time() - cpu
    rest = items[probe:]
    if time.perf_counter() - start - computed <= computed:
        for item in rest:
            work(item)
        return
    # Each thread takes the next item itself: one future per thread, not one
    # per item (3,500 futures and their locks cost a tenth of a no-op's discovery).
    pending = iter(rest)
    done = object()
    lock = threading.Lock()
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            with lock:
                item = next(pending, done)
            if item is done:
                return
            work(item)  # type: ignore[arg-type]

    threads = min(workers, len(rest))
    pool = ThreadPoolExecutor(threads, thread_name_prefix="upstream")
    try:
        futures = [pool.submit(drain) for _ in range(threads)]
        wait(futures, return_when=FIRST_EXCEPTION)
        stop.set()  # a bug in one thread: the others take no further item
        for future in futures:
            future.result()  # the bug raises here, as it would unthreaded
    finally:
        # Ctrl-C or a bug: the threads take no further item.
        stop.set()
        pool.shutdown(wait=True)
