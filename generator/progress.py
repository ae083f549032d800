"""Progress reporting: a bar on a terminal, one log line per kernel otherwise.

CI logs get one line per finished kernel (greppable, no carriage returns);
an interactive terminal gets a single updating line with kernels and bytes.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


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
