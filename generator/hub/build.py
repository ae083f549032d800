"""The build step: one function per kernel, and the pool that runs them.

A kernel that fails to build is reported with its reason and the others go
on. Only BtfhubError subclasses count as a kernel failure: anything else is
a bug and propagates, so a worker never swallows an exception into a log line.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from generator.btf.build import build_kernel_btf
from generator.errors import BtfhubError
from generator.fsutil import atomic_write
from generator.model import KernelOutcome, KernelState, PlannedKernel
from generator.progress import Progress, Reporter
from generator.upstream.http import UpstreamClient


@dataclass(frozen=True)
class BuildOptions:
    """How kernels are built (reconcile, sync)."""

    jobs: int = 1  # kernels built at once
    force: bool = False  # also build kernels that ship their own BTF
    # Read each package to its end to check the index's SHA-256 (see upstream/http.py).
    verify_packages: bool = False


_STATUS = {
    KernelState.ARCHIVED: "built",
    KernelState.SHIPS_BTF: "ships-btf",
    KernelState.FAILED: "FAILED",
}


def build_one(
    client: UpstreamClient,
    kernel: PlannedKernel,
    dest_root: Path,
    progress: Progress,
    options: BuildOptions,
) -> KernelOutcome:
    """Fetch one kernel's package, encode its BTF and store it at dest_root/archive_path."""
    pkg = kernel.package
    assert pkg is not None
    try:
        with (
            tempfile.TemporaryDirectory(prefix="btfhub-build-") as tmp,
            client.open_stream(pkg.url, pkg.size, pkg.sha256, on_bytes=progress.add_bytes) as body,
        ):
            built = build_kernel_btf(body, pkg.format, pkg.uname, Path(tmp), force=options.force)
            if options.verify_packages:
                body.drain()  # the rest of the package, for the index's SHA-256
        if built.tar_xz is None:  # ships its own BTF and not forced
            return KernelOutcome(kernel.id, KernelState.SHIPS_BTF, "vmlinux has a .BTF section")
        atomic_write(dest_root / kernel.archive_path, built.tar_xz)
        return KernelOutcome(kernel.id, KernelState.ARCHIVED)
    except BtfhubError as exc:
        return KernelOutcome(
            kernel.id, KernelState.FAILED, public_reason(client, pkg.url, str(exc))
        )


def public_reason(client: UpstreamClient, url: str, message: str) -> str:
    """A failure as index.json keeps it: naming the package's public URL, not the mirror's.

    index.json is committed and published; a reason naming the mirror a run
    used (a CI cache on 127.0.0.1, a corporate proxy) would leak its address
    and change the file whenever the mirror changes.
    """
    return message.replace(client.where(url), url)


def build_missing(
    client: UpstreamClient,
    kernels: Sequence[PlannedKernel],
    dest_root: Path,
    options: BuildOptions,
    reporter: Reporter,
) -> tuple[KernelOutcome, ...]:
    """Build each kernel with options.jobs workers (downloads and encodes overlap).

    The outcomes come back sorted by kernel, whatever order the workers finished in.
    """
    total_bytes = sum(k.package.size for k in kernels if k.package)
    outcomes: list[KernelOutcome] = []
    with (
        reporter.progress(len(kernels), total_bytes) as progress,
        ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool,
    ):
        futures = [pool.submit(build_one, client, k, dest_root, progress, options) for k in kernels]
        for fut in as_completed(futures):
            outcome = fut.result()  # a bug in a worker propagates here
            outcomes.append(outcome)
            suffix = f": {outcome.reason}" if outcome.state is KernelState.FAILED else ""
            progress.kernel_done(outcome.kernel.label + suffix, _STATUS[outcome.state])
    return tuple(sorted(outcomes, key=lambda o: o.kernel))
