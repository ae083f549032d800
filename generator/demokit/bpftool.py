"""Read BTF back the way its consumers do: bpftool's C dump."""

from __future__ import annotations

from pathlib import Path

from generator.demokit.tools import run


def dump_c(btf: Path) -> str:
    """`bpftool btf dump file BTF format c`; BtfhubError with bpftool's output on failure."""
    return run(["bpftool", "btf", "dump", "file", str(btf), "format", "c"]).stdout.decode()
