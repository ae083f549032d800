"""One kernel's build step: package stream -> vmlinux -> BTF -> checked tarball bytes.

Disk use peaks at one vmlinux plus its BTF: the vmlinux is deleted as soon
as pahole is done with it, whatever happens. Storing the result (atomic
write into archive/) is the caller's job; this returns bytes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from generator.btf.check import BtfSummary, check_btf
from generator.btf.encode import PaholeRun, encode_btf, has_btf_section
from generator.btf.tarball import reproducible_tar_xz
from generator.errors import EncodeError, StorageError
from generator.fsutil import storage_error
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
    pahole: PaholeRun | None = None  # what encoded it (None when nothing was)

    @property
    def member_name(self) -> str:
        return f"{self.uname}.btf"


# pahole reports a full disk only as a failure to write ("Could only write N
# bytes ... aborting", exit 1) and deletes its partial file. When it fails
# with less room left than its BTF could take, the disk is to blame, not the
# kernel: a BTF file is about 1% of its vmlinux (4 MB of 588 MB), so less
# than 1/32 of the vmlinux, or 1 MiB, counts as full.
LOW_SPACE = 1 << 20
BTF_SHARE = 32


def _disk_full(directory: Path, vmlinux: Path) -> bool:
    try:
        free = os.statvfs(directory)
        needed = max(LOW_SPACE, vmlinux.stat().st_size // BTF_SHARE)
    except OSError:
        return False
    return free.f_bavail * free.f_frsize < needed


def build_kernel_btf(
    stream: BinaryIO,
    fmt: str,
    uname: str,
    workdir: Path,
    *,
    force: bool = False,
    package: str = "",
    size: int | None = None,
    on_extracted: Callable[[Path], None] | None = None,
    pahole_threads: int | None = None,
    pahole_arguments: tuple[str, ...] | None = None,
) -> BuiltBtf:
    """Read the package stream, encode its vmlinux as BTF and return the tarball bytes.

    Stops reading `stream` once the vmlinux is out (the caller closes it).
    on_extracted(vmlinux) runs right after that, before pahole: the caller
    verifies the package alongside the encoding (generator.verify).
    pahole_threads: pahole's -j (default: every core this process may use).
    pahole_arguments: a recorded run's arguments instead (a rebuild, generator.audit).
    Raises PackageError (package unreadable, no vmlinux) or EncodeError.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    # extract_vmlinux rejects a uname with "/" before anything is written.
    vmlinux = workdir / f"vmlinux-{uname}"
    raw = workdir / f"{uname}.btf"
    seconds: dict[str, float] = {}
    try:
        start = time.monotonic()
        extract_vmlinux(stream, fmt, uname, vmlinux, package=package, size=size)
        seconds["extract"] = time.monotonic() - start
        if on_extracted is not None:
            on_extracted(vmlinux)
        ships_btf = has_btf_section(vmlinux)
        if ships_btf and not force:
            return BuiltBtf(uname, True, None, None, seconds)
        start = time.monotonic()
        try:
            ran = encode_btf(vmlinux, raw, threads=pahole_threads, arguments=pahole_arguments)
        except EncodeError as exc:
            if _disk_full(workdir, vmlinux):
                raise StorageError(
                    f"cannot write the BTF of {uname} in {workdir}: no space left on device; "
                    "free some space and run again"
                ) from exc
            raise
        seconds["pahole"] = time.monotonic() - start
        vmlinux.unlink()
        data = raw.read_bytes()
    except OSError as exc:
        full = storage_error(exc, workdir)
        if full is not None:
            raise full from exc
        raise
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
        return BuiltBtf(uname, ships_btf, tar_xz.result(), summary, seconds, ran)
