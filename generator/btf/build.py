"""One kernel's build step: package stream -> vmlinux -> BTF -> checked tarball bytes.

Disk use peaks at one vmlinux plus its BTF: the vmlinux is deleted as soon
as pahole is done with it, whatever happens. Storing the result (atomic
write into archive/) is the caller's job; this returns bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from generator.btf.check import BtfSummary, check_btf
from generator.btf.encode import encode_btf, has_btf_section
from generator.btf.tarball import reproducible_tar_xz
from generator.packages import extract_vmlinux


@dataclass(frozen=True)
class BuiltBtf:
    """The outcome for one kernel.

    ships_btf: the vmlinux has its own .BTF section (the running kernel
    exposes /sys/kernel/btf/vmlinux). Unless forced, nothing is encoded then
    and tar_xz/summary are None.
    """

    uname: str
    ships_btf: bool
    tar_xz: bytes | None  # <uname>.btf.tar.xz, holding <uname>.btf
    summary: BtfSummary | None
    # Seconds each step took (extract, pahole, tar.xz, check): the build's own
    # timing record, reported through generator.progress.Timings.
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def member_name(self) -> str:
        return f"{self.uname}.btf"


def build_kernel_btf(
    stream: BinaryIO,
    fmt: str,
    uname: str,
    workdir: Path,
    *,
    force: bool = False,
    on_extracted: Callable[[Path], None] | None = None,
) -> BuiltBtf:
    """Read the package stream, encode its vmlinux as BTF and return the tarball bytes.

    Stops reading `stream` once the vmlinux is out (the caller closes it).
    on_extracted(vmlinux) runs right after that, before pahole: the caller
    verifies the package alongside the encoding (generator.verify).
    Raises PackageError (package unreadable, no vmlinux) or EncodeError.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    # extract_vmlinux rejects a uname with "/" before anything is written.
    vmlinux = workdir / f"vmlinux-{uname}"
    raw = workdir / f"{uname}.btf"
    seconds: dict[str, float] = {}
    try:
        start = time.monotonic()
        extract_vmlinux(stream, fmt, uname, vmlinux)
        seconds["extract"] = time.monotonic() - start
        if on_extracted is not None:
            on_extracted(vmlinux)
        ships_btf = has_btf_section(vmlinux)
        if ships_btf and not force:
            return BuiltBtf(uname, True, None, None, seconds)
        start = time.monotonic()
        encode_btf(vmlinux, raw)
        seconds["pahole"] = time.monotonic() - start
        vmlinux.unlink()
        data = raw.read_bytes()
    finally:
        vmlinux.unlink(missing_ok=True)
        raw.unlink(missing_ok=True)

    def compress() -> bytes:
        began = time.monotonic()
        result = reproducible_tar_xz(f"{uname}.btf", data)
        seconds["tar.xz"] = time.monotonic() - began
        return result

    # xz compresses in a subprocess (two threads), so the (pure Python) check runs
    # alongside instead of after it; a failed check still discards the tarball.
    with ThreadPoolExecutor(1, thread_name_prefix="tar-xz") as pool:
        tar_xz = pool.submit(compress)
        start = time.monotonic()
        summary = check_btf(data)
        seconds["check"] = time.monotonic() - start
        return BuiltBtf(uname, ships_btf, tar_xz.result(), summary, seconds)
