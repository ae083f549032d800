"""`btfhub reconcile`: build every missing BTF file, then render the tables."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from generator.catalog import load_catalog
from generator.commands.common import (
    add_build_arguments,
    add_selection_arguments,
    add_upstream_arguments,
    discover_and_plan,
    upstream_client,
)
from generator.errors import BtfhubError
from generator.lock import HubLock
from generator.model import Catalog, KernelState, Plan
from generator.planner import format_plan, plan_from_json
from generator.reconcile import (
    KernelResult,
    build_missing,
    record_results,
)
from generator.render import render_hub
from generator.shard_manifest import write_shard_manifest
from generator.shards import select_shard
from generator.upstream.http import UpstreamClient
from generator.workdir import WorkArea


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection_arguments(parser)
    add_upstream_arguments(parser)
    add_build_arguments(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan and exit 1 when anything is missing (a drift check)",
    )
    parser.add_argument("--shard", metavar="I/N", help="build only shard I of N of the plan")
    parser.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="with --shard: write files and a shard manifest into DIR, not archive/",
    )
    parser.add_argument(
        "--plan",
        type=Path,
        metavar="FILE",
        help="with --shard: split this `btfhub plan --json` output instead of asking "
        "upstream again, so every shard job works from the plan the matrix came from",
    )


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise BtfhubError(f"--shard takes I/N (e.g. 2/5), not {text!r}") from None
    if not 1 <= i <= n:
        raise BtfhubError(f"--shard {text}: I must be between 1 and N")
    return i, n


@dataclass(frozen=True)
class ReconcileReport:
    plan: Plan
    results: tuple[KernelResult, ...]
    errors: tuple[tuple[str, str, str, str, str], ...]

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(r.state is KernelState.FAILED for r in self.results)


def reconcile(
    catalog: Catalog,
    client: UpstreamClient,
    args: argparse.Namespace,
    render: bool = True,
) -> ReconcileReport:
    """Discover, plan, build, record and (unless sharded) render args.root; sync uses it too."""
    root: Path = args.root
    verify: bool = getattr(args, "verify_packages", False)
    shard = parse_shard(getattr(args, "shard", None))
    output: Path | None = getattr(args, "output", None)
    if shard and output is None:
        raise BtfhubError("--shard needs --output DIR (merge it later with `btfhub merge`)")
    if output is not None and not shard:
        # Files would land outside archive/ while index.json, rendered from
        # archive/, went on calling those kernels missing.
        raise BtfhubError("--output DIR goes with --shard I/N; without it files go into archive/")
    plan_file: Path | None = getattr(args, "plan", None)
    if plan_file is not None:
        if not shard or output is None:
            raise BtfhubError("--plan FILE goes with --shard I/N (the plan job's output)")
        the_plan = read_plan(plan_file)
        todo = select_shard(list(the_plan.missing()), shard[0], shard[1])
        with WorkArea(root) as work:
            results = build_missing(
                client, todo, output, jobs=args.jobs, force=args.force, verify=verify, work=work
            )
        write_shard_manifest(output, f"{shard[0]}/{shard[1]}", results)
        return ReconcileReport(the_plan, tuple(results), the_plan.errors)
    found, discovery, the_plan = discover_and_plan(args, catalog, client)
    todo = list(the_plan.missing())
    if shard:
        todo = select_shard(todo, shard[0], shard[1])
    dest = output if output is not None else root
    with WorkArea(root) as work:
        results = build_missing(
            client, todo, dest, jobs=args.jobs, force=args.force, verify=verify, work=work
        )
    if shard and output is not None:
        write_shard_manifest(output, f"{shard[0]}/{shard[1]}", results)
    else:
        record_results(discovery, found, results)
        if render:
            render_hub(root, catalog, discovery)
    return ReconcileReport(the_plan, tuple(results), tuple(found.errors))


def read_plan(path: Path) -> Plan:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BtfhubError(f"--plan {path}: cannot read it: {exc}") from None
    return plan_from_json(doc, str(path))


def print_summary(report: ReconcileReport) -> None:
    results = report.results
    built = sum(1 for r in results if r.state is KernelState.ARCHIVED)
    ships = sum(1 for k in report.plan.kernels if k.state is KernelState.SHIPS_BTF) + sum(
        1 for r in results if r.state is KernelState.SHIPS_BTF
    )
    already = sum(1 for k in report.plan.kernels if k.state is KernelState.ARCHIVED)
    failed = [r for r in results if r.state is KernelState.FAILED]
    for distro, release, arch, _url, message in report.errors:
        # message names the URL already
        print(f"FAILED {distro}/{release}/{arch}: {message}", file=sys.stderr)
    for r in failed:
        k = r.kernel
        print(f"FAILED {k.distro}/{k.release}/{k.arch} {k.uname}: {r.reason}", file=sys.stderr)
    print(
        f"summary: {built} built, {already} already there, {ships} ship their own BTF, "
        f"{len(failed)} failed"
        + (f", {len(report.errors)} release/arch could not be discovered" if report.errors else "")
    )


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.root)
    client = upstream_client(args)
    if args.dry_run:
        found, _, the_plan = discover_and_plan(args, catalog, client)
        print(format_plan(the_plan))
        missing = the_plan.missing()
        print(f"dry run: {len(missing)} kernel(s) to build")
        return 1 if missing or found.errors else 0
    with HubLock(args.root):
        report = reconcile(catalog, client, args)
    print_summary(report)
    return 1 if report.failed else 0
