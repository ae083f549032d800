"""The reconcile loop: discover upstream, plan, build what is missing.

Discovery failures fail only the releases their repository serves; a kernel
that fails to build is recorded with its reason and the others go on. Only
BtfhubError subclasses count as a kernel failure: anything else is a bug and
propagates, so a worker never swallows an exception into a log line.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from generator import planner
from generator.btf.build import build_kernel_btf
from generator.errors import BtfhubError, StorageError
from generator.fsutil import atomic_write
from generator.model import (
    Catalog,
    KernelPackage,
    KernelState,
    Outcome,
    Plan,
    PlannedKernel,
    archive_path,
)
from generator.progress import Progress
from generator.state import Discovery
from generator.upstream.discover import discover_release
from generator.upstream.http import UpstreamClient
from generator.workdir import WorkArea

UpstreamKey = tuple[str, str, str]


@dataclass(frozen=True)
class Selection:
    distro: str | None = None
    release: str | None = None
    arch: str | None = None


@dataclass
class DiscoveryResult:
    upstream: dict[UpstreamKey, list[KernelPackage]] = field(default_factory=dict)
    errors: list[tuple[str, str, str, str, str]] = field(default_factory=list)


def discover(
    client: UpstreamClient, catalog: Catalog, selection: Selection, force: bool = False
) -> DiscoveryResult:
    """Ask upstream for every wanted (release, arch); failures are kept, not raised."""
    result = DiscoveryResult()
    for dist, release, arch in planner.select(
        catalog, selection.distro, selection.release, selection.arch, force=force
    ):
        key = (dist.id, release.id, arch)
        try:
            result.upstream[key] = discover_release(client, dist, release, arch)
        except StorageError:
            raise  # a full disk (the index cache) is the run's failure, not the release's
        except BtfhubError as exc:
            url = getattr(exc, "url", "")
            result.errors.append((dist.id, release.id, arch, str(url), str(exc)))
    return result


def make_plan(
    root: Path,
    catalog: Catalog,
    discovery: Discovery,
    found: DiscoveryResult,
    force: bool = False,
) -> Plan:
    """Plan against what the archive holds; the check is per candidate path, not a walk."""
    candidates = set()
    for (distro, release_id, arch), packages in found.upstream.items():
        dist = catalog.distribution(distro)
        release = next(r for r in dist.releases if r.id == release_id)
        for pkg in packages:
            candidates.add(archive_path(dist.archive_dir, release.directory, arch, pkg.uname))
    archived = {p for p in candidates if (root / p).is_file()}
    return planner.plan(
        catalog, found.upstream, archived, discovery.outcomes(), found.errors, force=force
    )


@dataclass(frozen=True)
class KernelResult:
    kernel: PlannedKernel
    state: KernelState  # ARCHIVED (built), SHIPS_BTF or FAILED
    reason: str | None = None
    size: int = 0


@dataclass
class BuildSummary:
    results: list[KernelResult] = field(default_factory=list)
    already: int = 0

    def count(self, state: KernelState) -> int:
        return sum(1 for r in self.results if r.state is state)

    @property
    def failed(self) -> list[KernelResult]:
        return [r for r in self.results if r.state is KernelState.FAILED]


def build_one(
    client: UpstreamClient,
    kernel: PlannedKernel,
    dest_root: Path,
    progress: Progress,
    force: bool,
    verify: bool = False,
    *,
    work: WorkArea,
) -> KernelResult:
    """Build one kernel in its own directory of the run's work area.

    A full disk (StorageError) is not this kernel's failure: it stops the run.
    """
    pkg = kernel.package
    assert pkg is not None
    try:
        with (
            work.kernel_dir() as tmp,
            client.open_stream(pkg.url, pkg.size, pkg.sha256, on_bytes=progress.add_bytes) as body,
        ):
            built = build_kernel_btf(
                body,
                pkg.format,
                pkg.uname,
                tmp,
                force=force,
                package=package_file(pkg),
                size=pkg.size,
            )
            if verify:
                body.drain()  # the rest of the package, for the index's SHA-256
        if built.tar_xz is None:  # ships its own BTF and not forced
            return KernelResult(kernel, KernelState.SHIPS_BTF, "vmlinux has a .BTF section")
        atomic_write(dest_root / kernel.archive_path, built.tar_xz, tmp_dir=work.path)
        return KernelResult(kernel, KernelState.ARCHIVED, size=len(built.tar_xz))
    except StorageError:
        raise
    except BtfhubError as exc:
        return KernelResult(kernel, KernelState.FAILED, public_reason(client, pkg.url, str(exc)))


def package_file(pkg: KernelPackage) -> str:
    """The package's file name, as messages name it (the index's Filename / href)."""
    return pkg.filename.rsplit("/", 1)[-1] or pkg.name


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
    jobs: int = 1,
    force: bool = False,
    verify: bool = False,
    *,
    work: WorkArea,
) -> list[KernelResult]:
    """Build each kernel with `jobs` workers (downloads and encodes overlap).

    A StorageError (disk full) or a bug cancels the kernels not started yet
    and propagates once the running builds are done; what they archived is
    whole, and the next run records it.
    """
    total_bytes = sum(k.package.size for k in kernels if k.package)
    progress = Progress(len(kernels), total_bytes)
    results: list[KernelResult] = []
    stop = threading.Event()  # set by the first worker that fails the run

    def build(kernel: PlannedKernel) -> KernelResult | None:
        if stop.is_set():
            return None  # no point downloading more onto a full disk
        try:
            return build_one(client, kernel, dest_root, progress, force, verify, work=work)
        except BaseException:
            stop.set()
            raise

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(build, k) for k in kernels]
            for fut in as_completed(futures):
                try:
                    res = fut.result()  # a full disk or a bug in a worker propagates here
                except BaseException:
                    stop.set()
                    for pending in futures:
                        pending.cancel()
                    raise
                if res is None:
                    continue  # skipped after another worker's failure, which follows
                results.append(res)
                label = (
                    f"{res.kernel.distro}/{res.kernel.release}/{res.kernel.arch} {res.kernel.uname}"
                )
                status = {
                    KernelState.ARCHIVED: "built",
                    KernelState.SHIPS_BTF: "ships-btf",
                    KernelState.FAILED: "FAILED",
                }[res.state]
                suffix = f": {res.reason}" if res.state is KernelState.FAILED else ""
                progress.kernel_done(label + suffix, status)
    finally:
        progress.close()
    results.sort(key=lambda r: r.kernel.archive_path)
    return results


def record_results(
    discovery: Discovery, found: DiscoveryResult, results: Sequence[KernelResult]
) -> None:
    for (distro, release, arch), packages in found.upstream.items():
        discovery.record_listing(distro, release, arch, packages)
    for res in results:
        k = res.kernel
        outcome = (
            None
            if res.state is KernelState.ARCHIVED
            else Outcome(res.state, res.reason if res.state is KernelState.FAILED else None)
        )
        discovery.record_outcome(k.distro, k.release, k.arch, k.uname, outcome)
