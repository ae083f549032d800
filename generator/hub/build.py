"""The build step: one function per kernel, and the pool that runs them.

A kernel that fails to build is reported with its reason and the others go
on. Only BtfhubError subclasses count as a kernel failure: anything else is
a bug and propagates, so a worker never swallows an exception into a log line.
Every package is verified in full (generator.verify) before its BTF is
stored: against the index's SHA-256 and, for RPMs from a signed repository,
against the package's own signed header, with the keys the catalog names.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from generator.children import build_cores, usable_cores
from generator.errors import BtfhubError, MissingToolError, StorageError
from generator.fsutil import atomic_write
from generator.model import (
    Catalog,
    KernelId,
    KernelOutcome,
    KernelState,
    ModuleSelection,
    PlannedKernel,
    Repository,
    modules_path,
)
from generator.progress import TIMINGS_ENV, Progress, Reporter
from generator.upstream.context import UpstreamContext
from generator.upstream.http import UpstreamClient
from generator.workdir import WorkArea

# What one build holds in memory at its peak: pahole reading a 600 MB vmlinux
# (~450 MB resident), xz decoding two 24 MiB blocks, this process's buffers;
# the page cache keeps the vmlinux pahole reads too (bench/README.md, "Fleet").
JOB_MEMORY = 1 << 30


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_jobs() -> int:
    """Kernels built at once when --jobs is not given: one per core, as memory allows.

    A kernel's build is mostly single-threaded work (xz decoding up to the
    vmlinux, then pahole), so one per core keeps every core busy, and while
    one build runs pahole another downloads: bench/fleet_bench.py measured
    the most kernels per hour at one per core on real packages.
    """
    memory = _available_memory()
    by_memory = usable_cores() if memory is None else memory // JOB_MEMORY
    return max(1, min(usable_cores(), by_memory))


@dataclass(frozen=True)
class BuildOptions:
    """How kernels are built (reconcile, sync)."""

    jobs: int | None = None  # kernels built at once (None: default_jobs())
    force: bool = False  # also build kernels that ship their own BTF

    def workers(self, kernels: int) -> int:
        """Builds at once for `kernels` kernels: the jobs asked for, never more than kernels."""
        return max(1, min(self.jobs or default_jobs(), kernels))

    @property
    def pahole_threads(self) -> int:
        """pahole's -j (and xz's -T when it decodes): the cores shared among the kernels
        built at once.

        build_all settles `jobs` to the builds it runs at once, so a single
        kernel gets every core. The bytes are the same for any count (pahole
        1.30); more threads than cores across the builds would only make them
        wait for each other.
        """
        return max(1, usable_cores() // max(1, self.jobs or 1))


_STATUS = {
    KernelState.ARCHIVED: "built",
    KernelState.SHIPS_BTF: "ships-btf",
    KernelState.FAILED: "FAILED",
}


def build_one(
    upstream: UpstreamContext,
    kernel: PlannedKernel,
    dest_root: Path,
    progress: Progress,
    options: BuildOptions,
    catalog: Catalog,
    work: WorkArea,
    archive_root: Path | None = None,
) -> KernelOutcome:
    """Fetch one kernel's package, encode its BTF, verify the package, store the BTF.

    archive_root: where the archived BTF a modules_only kernel's modules are
    encoded on is read (default dest_root; a shard job builds elsewhere).

    It is built in its own directory of the run's work area. A full disk
    (StorageError) or a missing pahole 1.30 (MissingToolError) is not this
    kernel's failure: it stops the run.
    """
    # Imported with the first kernel to build: the build's chain (pahole, the
    # package formats, verification) is a sixth of a no-op run's start-up.
    from generator.btf.tarball import read_tar_xz_member
    from generator.provenance.build import build_verified

    pkg = kernel.package
    assert pkg is not None
    label = kernel.id.label
    timings = progress.timings
    timings.mark(label, "started")

    def on_bytes(n: int) -> None:
        timings.mark(label, "first byte")
        progress.add_bytes(n)

    client = upstream.client
    try:
        repo = _repository(catalog, kernel.id.distro, pkg.repository)
        keyring = upstream.trust.keyring(repo)
        base = None
        archived = (archive_root or dest_root) / kernel.archive_path
        if kernel.modules_only:  # archived: its modules are built on the file as it is
            base = read_tar_xz_member(archived.read_bytes())[1]
        # Its share of the cores for every tool it starts: xz's decoding threads too.
        with work.kernel_dir() as tmp, build_cores(options.pahole_threads):
            done = build_verified(
                client,
                pkg,
                keyring,
                tmp,
                force=options.force,
                pahole_threads=options.pahole_threads,
                on_bytes=on_bytes,
                mark=lambda step: timings.mark(label, step),
                modules=wanted_modules(catalog, kernel.id, repo),
                base=base,
            )
            built = done.built
            module_seconds = done.modules.seconds if done.modules else {}
            timings.steps(label, {**built.seconds, **done.verification_seconds, **module_seconds})
        if built.tar_xz is None and base is None:  # ships its own BTF and not forced
            return KernelOutcome(kernel.id, KernelState.SHIPS_BTF, "vmlinux has a .BTF section")
        if built.tar_xz is not None:
            atomic_write(dest_root / kernel.archive_path, built.tar_xz, tmp_dir=work.path)
        elif archived != dest_root / kernel.archive_path:
            # A shard's output holds the kernel's file too, the same bytes: the
            # merge finds it identical and leaves the archive's alone.
            atomic_write(dest_root / kernel.archive_path, archived.read_bytes(), tmp_dir=work.path)
        if done.modules is not None:  # beside it, once it is there (the modules' base)
            modules_file = dest_root / modules_path(kernel.archive_path)
            atomic_write(modules_file, done.modules.tar_xz, tmp_dir=work.path)
        timings.mark(label, "stored")
        return KernelOutcome(kernel.id, KernelState.ARCHIVED, provenance=done.provenance)
    except (StorageError, MissingToolError):
        raise
    except BtfhubError as exc:
        return KernelOutcome(
            kernel.id, KernelState.FAILED, public_reason(client, pkg.url, str(exc))
        )


def wanted_modules(catalog: Catalog, kernel: KernelId, repo: Repository) -> ModuleSelection | None:
    """The modules to build for a kernel: its release's choice, else its repository's."""
    try:
        dist = catalog.distribution(kernel.distro)
    except KeyError:
        return repo.modules
    release = next((r for r in dist.releases if r.id == kernel.release), None)
    return repo.modules if release is None else dist.modules(release, repo.id)


def _repository(catalog: Catalog, distro: str, repo_id: str) -> Repository:
    try:
        return catalog.distribution(distro).repository(repo_id)
    except KeyError:
        raise BtfhubError(
            f"{distro}: the plan names repository {repo_id!r}, which the catalog does not "
            "have: no keys to verify its package against"
        ) from None


def public_reason(client: UpstreamClient, url: str, message: str) -> str:
    """A failure as index.json keeps it: naming the package's public URL, not the mirror's.

    index.json is committed and published; a reason naming the mirror a run
    used (a CI cache on 127.0.0.1, a corporate proxy) would leak its address
    and change the file whenever the mirror changes.
    """
    return message.replace(client.where(url), url)


def build_missing(
    upstream: UpstreamContext,
    kernels: Sequence[PlannedKernel],
    dest_root: Path,
    options: BuildOptions,
    reporter: Reporter,
    catalog: Catalog,
    work: WorkArea,
    archive_root: Path | None = None,
) -> tuple[KernelOutcome, ...]:
    """Build each kernel with options.jobs workers (downloads and encodes overlap).

    The outcomes come back sorted by kernel, whatever order the workers finished in.
    A StorageError (disk full), a MissingToolError or a bug stops the
    kernels not started yet and propagates once the running builds are done; what they archived is
    whole, and the next run records it.
    """
    total_bytes = sum(k.package.size or 0 for k in kernels if k.package)
    options = dataclasses.replace(options, jobs=options.workers(len(kernels)))
    outcomes: list[KernelOutcome] = []
    stop = threading.Event()  # set by the first worker that fails the run

    def build(kernel: PlannedKernel, progress: Progress) -> KernelOutcome | None:
        if stop.is_set():
            return None  # no point downloading more onto a full disk
        try:
            return build_one(
                upstream, kernel, dest_root, progress, options, catalog, work, archive_root
            )
        except BaseException:
            stop.set()
            raise

    with (
        reporter.progress(len(kernels), total_bytes) as progress,
        ThreadPoolExecutor(max_workers=options.jobs or 1) as pool,
    ):
        futures = [pool.submit(build, k, progress) for k in kernels]
        for fut in as_completed(futures):
            try:
                outcome = fut.result()  # a full disk or a bug in a worker propagates here
            except BaseException:
                stop.set()
                for pending in futures:
                    pending.cancel()
                raise
            if outcome is None:
                continue  # skipped after another worker's failure, which follows
            outcomes.append(outcome)
            suffix = f": {outcome.reason}" if outcome.state is KernelState.FAILED else ""
            progress.kernel_done(outcome.kernel.label + suffix, _STATUS[outcome.state])
    timings_file = os.environ.get(TIMINGS_ENV)
    if timings_file:
        atomic_write(Path(timings_file), progress.timings.as_json().encode())
    return tuple(sorted(outcomes, key=lambda o: o.kernel))
