"""Progress: one log line per kernel in CI logs, an updating bar on a terminal."""

from __future__ import annotations

import io

from generator.progress import Progress, human_bytes


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_without_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(2, 2048, out)
    progress.add_bytes(1024)
    progress.kernel_done("ubuntu/focal/x86_64 5.4.0-42-generic", "built")
    progress.kernel_done("ubuntu/focal/x86_64 5.4.0-43-generic: no vmlinux", "FAILED")
    progress.close()
    assert out.getvalue().splitlines() == [
        "[1/2] built      ubuntu/focal/x86_64 5.4.0-42-generic",
        "[2/2] FAILED     ubuntu/focal/x86_64 5.4.0-43-generic: no vmlinux",
    ]
    assert "\r" not in out.getvalue()


def test_bar_with_kernels_and_bytes_on_a_terminal() -> None:
    out = FakeTerminal()
    progress = Progress(3, 3 << 20, out)
    progress.add_bytes(3 << 19)
    progress.kernel_done("centos7/7.9.2009/x86_64 3.10.0-1160.el7.x86_64", "built")
    text = out.getvalue()
    assert "[###############---------------] 0/3 kernels, 1.5 MiB / 3.0 MiB" in text
    assert "[1/3] built" in text
    assert text.endswith("1/3 kernels, 1.5 MiB / 3.0 MiB")
    progress.close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(283_308_068) == "270.2 MiB"
