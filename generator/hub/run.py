"""A run of the hub: discover -> plan -> build -> record -> render.

Each step is a function taking its collaborators (the upstream context, the
hub root holding archive/ and index.json, a reporter) as arguments, and the
runs the commands offer (plan, reconcile, a shard's build, sync's record
step) are compositions of them returning reports. Nothing here parses
arguments or prints: the commands do, with what these return.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from generator import gitops, planner
from generator.errors import BtfhubError
from generator.hub.build import BuildOptions, build_missing
from generator.model import (
    Catalog,
    DiscoveryFailure,
    KernelId,
    KernelOutcome,
    KernelState,
    Plan,
    PlannedKernel,
    Selection,
    ShardId,
    UpstreamListing,
    archive_path,
)
from generator.progress import Reporter
from generator.provenance.signing import signing_key
from generator.render import RenderResult, render_hub
from generator.shards.manifest import write_shard_manifest
from generator.shards.split import select_shard
from generator.state import HubState, load_hub_state
from generator.upstream.context import UpstreamContext
from generator.upstream.discover import discover_all
from generator.workdir import WorkArea

# -- the steps -------------------------------------------------------------------------


def discover(
    upstream: UpstreamContext, catalog: Catalog, selection: Selection, force: bool = False
) -> UpstreamListing:
    """Ask upstream for every selected (release, arch); failures are kept, not raised."""
    return discover_all(upstream, planner.select(catalog, selection, force))


def plan(
    root: Path, catalog: Catalog, state: HubState, listing: UpstreamListing, force: bool = False
) -> Plan:
    """Plan against what root's archive holds; the check is per candidate path, not a walk."""
    candidates = set()
    for target, packages in listing.kernels.items():
        dist = catalog.distribution(target.distro)
        release = next(r for r in dist.releases if r.id == target.release)
        for pkg in packages:
            candidates.add(
                archive_path(dist.archive_dir, release.directory, target.arch, pkg.uname)
            )
    # os.path on strings: a third of pathlib's cost over 20,000 candidates.
    base = str(root)
    archived = {p for p in candidates if os.path.isfile(os.path.join(base, p))}
    return planner.plan(
        catalog,
        listing.kernels,
        archived,
        state.outcomes(),
        listing.failures,
        force=force,
        needs_operator_input=listing.needs_operator_input,
        incomplete=listing.incomplete,
    )


def record(
    state: HubState, listing: UpstreamListing, outcomes: Iterable[KernelOutcome]
) -> list[str]:
    """Record this run's listings and outcomes in state; warnings for outcomes it cannot keep.

    An outcome of a kernel no listing names (upstream dropped it since the
    build, or its discovery failed this time) cannot be shown, so it is
    not recorded. A listing made without a failed fallback source is merged
    into the recorded one, never replaces it.
    """
    incomplete = {f.target for f in listing.incomplete}
    for target, packages in listing.kernels.items():
        state.record_listing(target, packages, complete=target not in incomplete)
    warnings = []
    for outcome in outcomes:
        try:
            state.record_outcome(outcome)
        except KeyError:
            warnings.append(
                f"{outcome.kernel.label}: not listed by discovery, "
                f"its outcome ({outcome.state.value}) is not recorded"
            )
    return warnings


def render(
    root: Path, catalog: Catalog, state: HubState, *, check: bool = False, verify: bool = False
) -> RenderResult:
    """Write README.md's tables and index.json for root (with check: only compare).

    Archive files git reports unchanged keep the digests index.json recorded
    for them (no read); verify re-reads and hashes every file instead. With
    $BTFHUB_SIGNING_KEY, index.json.asc is kept signing index.json.
    """
    blobs = {} if verify else gitops.clean_blobs(root)
    with signing_key() as key:  # BTFHUB_SIGNING_KEY: index.json.asc signs it
        return render_hub(root, catalog, state, check=check, clean_blobs=blobs, signing_key=key)


# -- the runs --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconcileReport:
    """What a reconcile (or one shard of it) did."""

    plan: Plan
    outcomes: tuple[KernelOutcome, ...]  # of the kernels this run tried to build
    listing: UpstreamListing | None  # None when the run worked from a plan file

    @property
    def failures(self) -> tuple[DiscoveryFailure, ...]:
        return self.plan.failures

    @property
    def incomplete(self) -> tuple[DiscoveryFailure, ...]:
        return self.plan.incomplete

    @property
    def failed(self) -> bool:
        # A failed fallback fails the run like a failed discovery: what could be
        # built is built and recorded, and the exit status says not everything was.
        return (
            bool(self.failures)
            or bool(self.incomplete)
            or any(o.state is KernelState.FAILED for o in self.outcomes)
        )


def plan_hub(
    root: Path, catalog: Catalog, upstream: UpstreamContext, selection: Selection, force: bool
) -> Plan:
    """Discover and plan, writing nothing (`btfhub plan`, `reconcile --dry-run`)."""
    listing = discover(upstream, catalog, selection, force)
    return plan(root, catalog, load_hub_state(root), listing, force)


def reconcile(
    root: Path,
    catalog: Catalog,
    upstream: UpstreamContext,
    selection: Selection,
    options: BuildOptions,
    reporter: Reporter,
) -> ReconcileReport:
    """Discover, plan, build into root/archive, record and render (the caller holds the lock)."""
    listing = discover(upstream, catalog, selection, options.force)
    state = load_hub_state(root)
    the_plan = plan(root, catalog, state, listing, options.force)
    with WorkArea(root) as work:
        todo = the_plan.missing()
        outcomes = build_missing(upstream, todo, root, options, reporter, catalog, work)
    for warning in record(state, listing, outcomes):
        reporter.warning(warning)
    render(root, catalog, state)
    return ReconcileReport(the_plan, outcomes, listing)


@dataclass(frozen=True)
class ShardJob:
    """One build job of the sharded workflow: shard I/N of the plan, into output."""

    shard: ShardId
    output: Path  # files and shard-manifest.json go here, not into archive/
    plan_file: Path | None = None  # the plan job's `btfhub plan --json`; None: plan afresh


def build_shard(
    root: Path,
    catalog: Catalog,
    upstream: UpstreamContext,
    selection: Selection,
    options: BuildOptions,
    job: ShardJob,
    reporter: Reporter,
) -> ReconcileReport:
    """Build one shard's kernels into job.output with its manifest; records nothing."""
    listing: UpstreamListing | None = None
    if job.plan_file is not None:
        the_plan = read_plan(job.plan_file)
    else:
        listing = discover(upstream, catalog, selection, options.force)
        the_plan = plan(root, catalog, load_hub_state(root), listing, options.force)
    todo = select_shard(the_plan.missing(), job.shard)
    with WorkArea(root) as work:
        outcomes = build_missing(upstream, todo, job.output, options, reporter, catalog, work)
    write_shard_manifest(job.output, job.shard, _archive_paths(todo), outcomes)
    return ReconcileReport(the_plan, outcomes, listing)


def _archive_paths(kernels: Sequence[PlannedKernel]) -> dict[KernelId, str]:
    return {k.id: k.archive_path for k in kernels}


def read_plan(path: Path) -> Plan:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BtfhubError(f"--plan {path}: cannot read it: {exc}") from None
    return planner.plan_from_json(doc, str(path))


@dataclass(frozen=True)
class RecordReport:
    """What `sync --skip-build` recorded: the shards' outcomes over a fresh discovery."""

    outcomes: tuple[KernelOutcome, ...]
    listing: UpstreamListing

    @property
    def failures(self) -> tuple[DiscoveryFailure, ...]:
        return self.listing.failures

    @property
    def incomplete(self) -> tuple[DiscoveryFailure, ...]:
        return self.listing.incomplete


def record_only(
    root: Path,
    catalog: Catalog,
    upstream: UpstreamContext,
    selection: Selection,
    force: bool,
    outcomes: Sequence[KernelOutcome],
    reporter: Reporter,
) -> RecordReport:
    """Discover and record listings, record the given outcomes, render; builds nothing."""
    listing = discover(upstream, catalog, selection, force)
    state = load_hub_state(root)
    for warning in record(state, listing, outcomes):
        reporter.warning(warning)
    render(root, catalog, state)
    return RecordReport(tuple(outcomes), listing)
