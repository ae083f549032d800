"""The cycle collector around a run's bursts of objects (generator/heap.py), on the real gc."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import heap

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    assert gc.get_freeze_count() == 0, "the test process froze objects of its own"
    enabled = gc.isenabled()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.enable() if enabled else gc.disable()


def test_a_burst_pauses_the_collector_and_freezes_what_it_made_for_the_run() -> None:
    with heap.run_scope():
        with heap.burst():
            assert not gc.isenabled()
            kept = [{"n": n} for n in range(10_000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0  # the run ended: the caller's collector as it was
    assert gc.isenabled()


def test_a_run_that_fails_still_unfreezes() -> None:
    with pytest.raises(RuntimeError), heap.run_scope(), heap.burst():
        raise RuntimeError("a bug mid-burst")
    assert (gc.get_freeze_count(), gc.isenabled()) == (0, True)


def test_outside_a_run_a_burst_only_pauses() -> None:
    with heap.burst():
        assert not gc.isenabled()
    assert (gc.get_freeze_count(), gc.isenabled()) == (0, True)


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with heap.run_scope(), heap.burst():
        pass
    assert not gc.isenabled()


def test_objects_the_process_froze_itself_are_left_frozen() -> None:
    gc.freeze()
    before = gc.get_freeze_count()
    with heap.run_scope():
        with heap.burst():
            made = [[] for _ in range(1_000)]  # lists: tracked by the collector, as {} is not
        # Nothing of ours frozen on top (the count may only shrink: another thread
        # of the test process can free objects frozen before).
        assert gc.get_freeze_count() <= before
    assert gc.get_freeze_count() <= before and made


def test_a_process_leaves_with_its_collector_off_and_its_heap_frozen(tmp_path: Path) -> None:
    # In a process of its own: leave() is for a process that ends right after.
    probe = (
        "import gc, sys; from generator import heap; kept = [[] for _ in range(1000)]; "
        "heap.leave(); print(gc.isenabled(), gc.get_freeze_count() >= 1000)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    # `python -m generator` ends through it with main's exit code.
    run = subprocess.run(
        [sys.executable, "-m", "generator", "validate", "--root", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert run.returncode == 1, run.stderr
    assert "btfhub: error:" in run.stderr
