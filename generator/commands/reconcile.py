"""`btfhub reconcile`: build every missing BTF file, then render the tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from generator.catalog import load_catalog
from generator.commands.common import (
    add_build_arguments,
    add_selection_arguments,
    add_store_arguments,
    add_upstream_arguments,
    build_options,
    selection,
    store_choice,
    upstream_context,
)
from generator.commands.output import report_summary
from generator.errors import BtfhubError
from generator.hub.run import ShardJob, build_shard, plan_in_store, reconcile
from generator.lock import HubLock
from generator.model import ShardId
from generator.planner import format_plan
from generator.progress import Reporter
from generator.store.setting import describe_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection_arguments(parser)
    add_upstream_arguments(parser)
    add_build_arguments(parser)
    add_store_arguments(parser)
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


def shard_job(args: argparse.Namespace) -> ShardJob | None:
    """--shard I/N --output DIR [--plan FILE], checked together; None without --shard."""
    if args.shard is None:
        if args.output is not None:
            # Files would land outside archive/ while index.json, rendered from
            # archive/, went on calling those kernels missing.
            raise BtfhubError(
                "--output DIR goes with --shard I/N; without it files go into archive/"
            )
        if args.plan is not None:
            raise BtfhubError("--plan FILE goes with --shard I/N (the plan job's output)")
        return None
    try:
        shard = ShardId.parse(args.shard)
    except ValueError as exc:
        raise BtfhubError(f"--shard: {exc}") from None
    if args.output is None:
        raise BtfhubError("--shard needs --output DIR (merge it later with `btfhub merge`)")
    return ShardJob(shard, args.output, args.plan)


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.root)
    job = shard_job(args)
    with upstream_context(args) as upstream:
        if args.dry_run:
            the_plan, planned_store = plan_in_store(
                args.root, catalog, upstream, selection(args), args.force, store_choice(args)
            )
            print(format_plan(the_plan))
            print(describe_store(planned_store))
            missing = the_plan.missing()
            print(f"dry run: {len(missing)} kernel(s) to build")
            return 1 if missing or the_plan.failures or the_plan.incomplete else 0
        reporter = Reporter()
        options = build_options(args)
        store = store_choice(args)
        with HubLock(args.root):
            if job is not None:
                report = build_shard(
                    args.root, catalog, upstream, selection(args), options, job, reporter, store
                )
            else:
                report = reconcile(
                    args.root, catalog, upstream, selection(args), options, reporter, store
                )
    report_summary(reporter, report)
    return 1 if report.failed else 0
