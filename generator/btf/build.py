"""One kernel's build step: vmlinux -> BTF -> checked tarball bytes.

The vmlinux comes out of its package first (generator.verify, which
checks the package meanwhile). Disk use peaks at one vmlinux plus its BTF:
the vmlinux is deleted as soon as pahole is done with it, whatever
happens. Storing the result (atomic write into archive/) is the caller's
job; this returns bytes.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from generator.btf.check import BtfSummary, check_btf
from generator.btf.encode import PaholeRun, encode_btf, has_btf_section
from generator.btf.tarball import reproducible_tar_xz
from generator.errors import EncodeError, StorageError
from generator.fsutil import storage_error


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
    # Seconds each step took (pahole, tar.xz, check): the build's own
    # timing record, reported through generator.progress.Timings.
    seconds: dict[str, float] = field(default_factory=dict)
    pahole: PaholeRun | None = None  # what encoded it (None when nothing was)
    raw: bytes | None = None  # <uname>.btf itself: the base its modules are encoded on

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
    vmlinux: Path,
    uname: str,
    workdir: Path,
    *,
    force: bool = False,
    pahole_threads: int | None = None,
    pahole_arguments: tuple[str, ...] | None = None,
) -> BuiltBtf:
    """Encode vmlinux (in workdir) as BTF and return the tarball bytes; vmlinux is deleted.

    pahole_threads: pahole's -j (default: every core this process may use).
    pahole_arguments: a recorded run's arguments instead (a rebuild, generator.provenance.audit).
    Raises EncodeError, or StorageError when the disk is full.
    """
    raw = workdir / f"{uname}.btf"
    seconds: dict[str, float] = {}
    try:
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
        return BuiltBtf(uname, ships_btf, tar_xz.result(), summary, seconds, ran, data)
