"""The cycle collector kept off the objects a run makes in bulk and keeps to its end.

A no-op reconcile of a public-hub-sized hub makes about a million objects
in three bursts (the kept listings, index.json as the hub's state, and the
index render builds), and keeps most of them until it ends. CPython's
collector, triggered by allocations, walked those again and again while
they were being made: 0.5-0.7 s of a 7 s run, one gen1 collection in the
middle of build_index alone 0.26 s. During a burst it is off; at its end
what the burst made is frozen (gc.freeze: the collector no longer walks it;
reference counting still frees whatever the run drops), and the run
unfreezes everything when it ends, so an in-process caller (a test, a
bench) finds its collector as it was. Cyclic garbage is rare in these
bursts, so leaving it for the run's end costs little memory.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def run_scope() -> Iterator[None]:
    """A run whose bursts may freeze objects: unfrozen again when it ends.

    Nothing is frozen (bursts only pause the collector) when the process
    had already frozen objects of its own: their fate is not ours to change.
    """
    global _freezing
    outer = _freezing
    _freezing = gc.get_freeze_count() == 0
    try:
        yield
    finally:
        if _freezing:
            gc.unfreeze()
        _freezing = outer


@contextmanager
def burst() -> Iterator[None]:
    """Many long-lived objects made at once: no collection meanwhile, frozen after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _freezing:
            gc.freeze()
        if enabled:
            gc.enable()


_freezing = False  # inside a run_scope that may freeze


def leave() -> None:
    """The process is about to end: its collector is switched off and its heap frozen.

    What the process still holds is freed by its end, not by the collector;
    but the interpreter's finalization collects as it tears the modules down,
    walking whatever a big run left (a no-op of a public-hub-sized hub: 0.5-0.7 s
    after its last line ran, against 0.1 s frozen). Only for a process that
    ends now (generator.cli.entry), never for an in-process caller.
    """
    gc.disable()
    gc.freeze()
