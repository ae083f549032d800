"""A run of the hub: discover -> plan -> build -> record -> render.

Each step is a function taking its collaborators (the upstream context, the
hub root holding archive/ and index.json, a reporter) as arguments, and the
runs the commands offer (plan, reconcile, a shard's build, sync's record
step) are compositions of them returning reports. Nothing here parses
arguments or prints: the commands do, with what these return.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from generator import heap, planner
from generator.errors import BtfhubError
from generator.hub.build import BuildOptions, build_missing
from generator.hub.earlyscan import EarlyScan, render_scan
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
from generator.store import hubstore
from generator.store.migrate import MigrateReport, drop_local_archive, migrate
from generator.store.oci import RegistryClient
from generator.store.setting import Store, StoreChoice
from generator.upstream.context import UpstreamContext
from generator.upstream.discover import discover_all
from generator.upstream.http import UpstreamClient
from generator.workdir import WorkArea

GIT_STORE = StoreChoice()  # no --store: BTFHUB_STORE, else the hub's recorded store, else git

# -- the steps -------------------------------------------------------------------------


def discover(
    upstream: UpstreamContext, catalog: Catalog, selection: Selection, force: bool = False
) -> UpstreamListing:
    """Ask upstream for every selected (release, arch); failures are kept, not raised."""
    return discover_all(upstream, planner.select(catalog, selection, force))


def discover_and_load(
    upstream: UpstreamContext,
    catalog: Catalog,
    selection: Selection,
    force: bool,
    root: Path,
    store: StoreChoice,
    scan: bool = False,
) -> tuple[UpstreamListing, HubState, EarlyScan | None]:
    """discover, with root's state loaded meanwhile (while worker processes ask
    upstream), and with scan, archive/ scanned and render's output composed for
    render too (earlyscan.py)."""
    loaded: list[tuple[HubState, EarlyScan | None]] = []

    def load() -> None:
        state = load_state(root, store)
        loaded.append((state, EarlyScan.take(root, state, catalog) if scan else None))

    listing = discover_all(upstream, planner.select(catalog, selection, force), meanwhile=load)
    return listing, *loaded[0]


def plan(
    root: Path, catalog: Catalog, state: HubState, listing: UpstreamListing, force: bool = False
) -> Plan:
    """Plan against what root's store holds; the check is per candidate path, not a walk."""
    candidates = set()
    for target, packages in listing.kernels.items():
        dist = catalog.distribution(target.distro)
        release = next(r for r in dist.releases if r.id == target.release)
        for pkg in packages:
            candidates.add(
                archive_path(dist.archive_dir, release.directory, target.arch, pkg.uname)
            )
    archived = hubstore.archived(root, state.store, state, candidates)
    # What index.json lists of the modules files the hub has (btf/modules.py).
    # In an OCI store a modules_only build pulls the archived BTF first (stage_bases).
    have = hubstore.archived(root, state.store, state, state.module_files)
    modules = {
        path: (frozenset(entry.get("modules", {})), frozenset(entry.get("absent", ())))
        for path, entry in state.module_files.items()
        if path in have
    }
    return planner.plan(
        catalog,
        listing.kernels,
        archived,
        state.outcomes(),
        listing.failures,
        force=force,
        needs_operator_input=listing.needs_operator_input,
        incomplete=listing.incomplete,
        modules=modules,
    )


def stage_bases(
    root: Path, state: HubState, kernels: Sequence[PlannedKernel], client: UpstreamClient, top: Path
) -> Path | None:
    """Where the builds of kernels read the archived BTF modules_only ones encode on.

    Git: None (the build reads the hub's archive/). OCI: top, holding each such
    kernel's file, pulled from the registry by the digest index.json records
    (checked before it is written) or copied from staging; a failed pull stops
    the run, as a failed push does.
    """
    if state.store is None:
        return None
    paths = [k.archive_path for k in kernels if k.modules_only]
    hubstore.pull_archived(root, state, RegistryClient(client, state.store), paths, top)
    return top


@dataclass(frozen=True)
class Recorded:
    warnings: list[str]  # outcomes state cannot keep
    changed: bool  # whether a listing or an outcome changed state


def record(
    state: HubState, listing: UpstreamListing, outcomes: Iterable[KernelOutcome]
) -> Recorded:
    """Record this run's listings and outcomes in state; warnings for outcomes it cannot keep.

    An outcome of a kernel no listing names (upstream dropped it since the
    build, or its discovery failed this time) cannot be shown, so it is
    not recorded. A listing made without a failed fallback source is merged
    into the recorded one, never replaces it.
    """
    incomplete = {f.target for f in listing.incomplete}
    changed = False
    for target, packages in listing.kernels.items():
        changed |= state.record_listing(target, packages, complete=target not in incomplete)
    warnings = []
    for outcome in outcomes:
        changed = True
        try:
            state.record_outcome(outcome)
        except KeyError:
            warnings.append(
                f"{outcome.kernel.label}: not listed by discovery, "
                f"its outcome ({outcome.state.value}) is not recorded"
            )
    return Recorded(warnings, changed)


def render(
    root: Path,
    catalog: Catalog,
    state: HubState,
    *,
    check: bool = False,
    verify: bool = False,
    early: EarlyScan | None = None,
) -> RenderResult:
    """Write README.md's tables and index.json for root (with check: only compare).

    Archive files git reports unchanged keep the digests index.json recorded
    for them (no read); verify re-reads and hashes every file instead. In an
    OCI store the files are the locations state records (nothing is read).
    With $BTFHUB_SIGNING_KEY, index.json.asc is kept signing index.json.
    early: archive/ scanned and README.md and index.json composed earlier in the run,
    each used when it still holds (hub/earlyscan.py).
    """
    files = early.still(state) if early is not None and not verify else None
    composed = early.composed_for(state) if early is not None and not verify else None
    if files is None and composed is None:
        files = render_scan(root, state, verify)
    with signing_key() as key:  # BTFHUB_SIGNING_KEY: index.json.asc signs it
        result = render_hub(
            root, catalog, state, check=check, archive=files, signing_key=key, composed=composed
        )
    if early is not None and composed is not None and not check:
        early.settled(root, result)
    return result


def load_state(root: Path, store: StoreChoice) -> HubState:
    """root's index.json state, in the store the command chose (adopted when the hub has none)."""
    state = load_hub_state(root)
    hubstore.adopt_store(root, state, store.resolve(state.store))
    return state


def store_and_render(
    root: Path,
    catalog: Catalog,
    state: HubState,
    client: UpstreamClient,
    reporter: Reporter,
    early: EarlyScan | None = None,
) -> None:
    """Render; in an OCI store, first push what is staged (generator/store/hubstore.py).

    A push that fails midway still renders what it recorded (directories
    tagged before the failure), then raises.
    """
    if state.store is None:
        render(root, catalog, state, early=early)
        return
    registry = RegistryClient(client, state.store)
    try:
        report = hubstore.push_staged(root, state, registry, reporter)
        if report.uploaded or report.present:
            reporter.info(
                f"store: {len(report.uploaded)} file(s) uploaded ({report.bytes} bytes), "
                f"{len(report.present)} already in {state.store.url}"
            )
    finally:
        # What was composed early is used only while the state records what it did
        # (EarlyScan.composed_for): not once the push recorded a file.
        render(root, catalog, state, early=early)
        hubstore.drop_recorded_staged(root, state)


def migrate_store(
    root: Path, catalog: Catalog, target: StoreChoice, client: UpstreamClient, reporter: Reporter
) -> MigrateReport:
    """Move the hub's files into target's store, render index.json, then drop the old copies.

    The archive/ files of a hub moving to OCI are removed only once index.json
    records their locations: an interrupted migration leaves them, and a rerun
    finds the blobs already there.
    """
    state = load_hub_state(root)
    chosen = target.resolve(None, {})  # --to names the store: BTFHUB_STORE plays no part
    report = migrate(root, state, chosen, client, reporter)
    render(root, catalog, state)
    if chosen is not None:
        removed = drop_local_archive(root, state)
        if removed:
            reporter.info(f"store: {removed} file(s) removed from archive/ (now in {chosen.url})")
    return report


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


def plan_in_store(
    root: Path,
    catalog: Catalog,
    upstream: UpstreamContext,
    selection: Selection,
    force: bool,
    store: StoreChoice = GIT_STORE,
) -> tuple[Plan, Store]:
    """Discover and plan, writing nothing (`btfhub plan`, `reconcile --dry-run`); and the
    store the files would go to (what is archived is read from it: archive/, or
    index.json's locations in an OCI store, with no registry request)."""
    listing, state, _ = discover_and_load(upstream, catalog, selection, force, root, store)
    return plan(root, catalog, state, listing, force), state.store


def reconcile(
    root: Path,
    catalog: Catalog,
    upstream: UpstreamContext,
    selection: Selection,
    options: BuildOptions,
    reporter: Reporter,
    store: StoreChoice = GIT_STORE,
) -> ReconcileReport:
    """Discover, plan, build into the store, record and render (the caller holds the lock).

    The listings, the state and the index render makes are bursts of objects
    kept to the end (generator/heap.py); the builds run with the collector on.
    """
    with heap.run_scope():
        with heap.burst():
            listing, state, early = discover_and_load(
                upstream, catalog, selection, options.force, root, store, scan=True
            )
            the_plan = plan(root, catalog, state, listing, options.force)
        output = hubstore.output_root(root, state.store)
        with WorkArea(root) as work:
            todo = the_plan.missing()
            bases = stage_bases(root, state, todo, upstream.client, work.path / "bases")
            outcomes = build_missing(
                upstream, todo, output, options, reporter, catalog, work, archive_root=bases
            )
        recorded = record(state, listing, outcomes)
        for warning in recorded.warnings:
            reporter.warning(warning)
        with heap.burst():
            # A build changed archive/, a listing state: what was taken early no longer holds.
            early = None if outcomes else early
            if early is not None and recorded.changed:
                early = early.scan_only()
            store_and_render(root, catalog, state, upstream.client, reporter, early)
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
    store: StoreChoice = GIT_STORE,
) -> ReconcileReport:
    """Build one shard's kernels into job.output with its manifest; records nothing.

    In an OCI store the shard pushes its own files' blobs; the merge and sync
    of the publish job tag their manifests and record them.
    """
    listing: UpstreamListing | None = None
    state = load_state(root, store)
    if job.plan_file is not None:
        the_plan = read_plan(job.plan_file)
    else:
        listing = discover(upstream, catalog, selection, options.force)
        the_plan = plan(root, catalog, state, listing, options.force)
    todo = select_shard(the_plan.missing(), job.shard)
    with WorkArea(root) as work:
        bases = stage_bases(root, state, todo, upstream.client, work.path / "bases")
        outcomes = build_missing(
            upstream, todo, job.output, options, reporter, catalog, work, archive_root=bases or root
        )
    write_shard_manifest(job.output, job.shard, _archive_paths(todo), outcomes)
    if state.store is not None:
        pushed = hubstore.push_blobs(RegistryClient(upstream.client, state.store), job.output)
        reporter.info(
            f"store: {len(pushed.uploaded)} file(s) uploaded to {state.store.url}, "
            f"{len(pushed.present)} already there"
        )
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
    store: StoreChoice = GIT_STORE,
) -> RecordReport:
    """Discover and record listings, record the given outcomes, render; builds nothing.

    In an OCI store, what `btfhub merge` staged is pushed and recorded too.
    """
    listing, state, _ = discover_and_load(upstream, catalog, selection, force, root, store)
    for warning in record(state, listing, outcomes).warnings:
        reporter.warning(warning)
    store_and_render(root, catalog, state, upstream.client, reporter)
    return RecordReport(tuple(outcomes), listing)
