"""How a run talks to people: one Reporter for messages, a Progress for the builds.

Nothing below the commands prints: the application layer (generator/hub/)
reports warnings and build progress through the Reporter it is given, and
the commands print the reports it returns. CI logs get one line per
finished kernel (greppable, no carriage returns); an interactive terminal
gets a single updating line with kernels and bytes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

# When set, a run writes each kernel's build timings (generator.progress.Timings)
# to this file as JSON: bench/real_kernel_bench.py reads them for its breakdown.
TIMINGS_ENV = "BTFHUB_TIMINGS"


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Timings:
    """When each kernel's build reached each phase, and how long its steps took.

    marks are time.monotonic() values (CLOCK_MONOTONIC: comparable across
    processes on one machine, so a benchmark can line them up with its own
    clock); steps are durations in seconds the build step measured itself.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.kernels: dict[str, dict[str, dict[str, float]]] = {}

    def _record(self, kernel: str) -> dict[str, dict[str, float]]:
        return self.kernels.setdefault(kernel, {"marks": {}, "steps": {}})

    def mark(self, kernel: str, phase: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._record(kernel)["marks"].setdefault(phase, now)

    def steps(self, kernel: str, seconds: Mapping[str, float]) -> None:
        with self._lock:
            self._record(kernel)["steps"].update(seconds)

    def as_json(self) -> str:
        with self._lock:
            doc = {"build_started": self.started, "kernels": self.kernels}
            return json.dumps(doc, indent=2, sort_keys=True) + "\n"


class Progress:
    def __init__(self, total_kernels: int, total_bytes: int, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.total_kernels = total_kernels
        self.total_bytes = total_bytes
        self.done_kernels = 0
        self.done_bytes = 0
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self.timings = Timings()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.done_bytes += n
            if self.tty and time.monotonic() - self._last_draw > 0.2:
                self._draw()

    def kernel_done(self, label: str, status: str) -> None:
        with self._lock:
            self.done_kernels += 1
            if self.tty:
                self.out.write("\r\x1b[K")
            self.out.write(f"[{self.done_kernels}/{self.total_kernels}] {status:<10} {label}\n")
            if self.tty:
                self._draw()
            self.out.flush()

    def close(self) -> None:
        if self.tty:
            with self._lock:
                self.out.write("\r\x1b[K")
                self.out.flush()

    def _draw(self) -> None:
        self._last_draw = time.monotonic()
        width = 30
        frac = self.done_bytes / self.total_bytes if self.total_bytes else 0.0
        filled = int(width * min(frac, 1.0))
        bar = "#" * filled + "-" * (width - filled)
        self.out.write(
            f"\r[{bar}] {self.done_kernels}/{self.total_kernels} kernels, "
            f"{human_bytes(self.done_bytes)} / {human_bytes(self.total_bytes)}"
        )
        self.out.flush()


class Reporter:
    """The one channel a run reports through: results to `out`, the rest to `err`.

    The streams are looked up when written to (not when the Reporter is
    made), so output captured or redirected later still lands in the right place.
    """

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out = out
        self._err = err

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    @property
    def err(self) -> TextIO:
        return self._err or sys.stderr

    def info(self, text: str) -> None:
        """A result line (stdout): what was done."""
        print(text, file=self.out, flush=True)

    def failed(self, text: str) -> None:
        """Something that failed (a kernel, a release's discovery): `FAILED text` on stderr."""
        print(f"FAILED {text}", file=self.err, flush=True)

    def warning(self, text: str) -> None:
        print(f"warning: {text}", file=self.err, flush=True)

    def note(self, text: str) -> None:
        """Context for a person, on stderr (a hint, a discovery failure)."""
        print(text, file=self.err, flush=True)

    @contextmanager
    def progress(self, total_kernels: int, total_bytes: int) -> Iterator[Progress]:
        progress = Progress(total_kernels, total_bytes, self.err)
        try:
            yield progress
        finally:
            progress.close()
