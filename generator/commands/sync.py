"""`btfhub sync`: the GitOps loop in one locked run.

    reconcile (discover, build, record, render)            default
    discover, record the shards' outcomes, render          --skip-build
    commit the hub's files                                 --commit
    push, re-rendering on top of the remote                --push

--skip-build is the publish step of the sharded workflow: the build jobs
built the files, `btfhub merge` put them into archive/ and wrote their
failed / ships-btf outcomes to a file. Discovery still runs (index fetches,
cached by conditional GET): the listings it records are what index.json
shows for every kernel, so the sharded flow renders the very bytes one
unsharded reconcile would.

Exit 0 when everything was built (or recorded) and published, 1 when a
kernel failed or a release could not be discovered (what was built is still
committed, failures and all) or on any error. See generator/hub/publish.py.
"""

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
from generator.commands.output import (
    report_failed_kernels,
    report_failures,
    report_summary,
    undiscovered,
)
from generator.errors import BtfhubError
from generator.hub import publish
from generator.hub.run import reconcile, record_only
from generator.lock import HubLock
from generator.model import KernelOutcome, KernelState, UpstreamListing
from generator.progress import Reporter
from generator.shards.outcomes import read_outcomes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection_arguments(parser)
    add_upstream_arguments(parser)
    add_build_arguments(parser)
    add_store_arguments(parser)
    parser.add_argument(
        "--skip-build",
        action="store_true",
        help="build nothing: discover, record --outcomes and render "
        "(after `btfhub merge` brought the shards' files into archive/)",
    )
    parser.add_argument(
        "--outcomes",
        type=Path,
        metavar="FILE",
        help="with --skip-build: the failed / ships-btf outcomes `btfhub merge --outcomes` wrote",
    )
    parser.add_argument(
        "--commit",
        action="store_true",
        help="commit the changed archive files, README.md and index.json (nothing else)",
    )
    parser.add_argument(
        "--push",
        action="store_true",
        help="commit, then push; when the remote moved on, rebuild on top of it and re-render",
    )
    parser.add_argument(
        "--remote", default="origin", help="the remote to push to (default: origin)"
    )
    parser.add_argument(
        "--branch", help="the remote branch to push to (default: the checked-out branch)"
    )


def run(args: argparse.Namespace) -> int:
    if args.outcomes is not None and not args.skip_build:
        raise BtfhubError("--outcomes FILE goes with --skip-build (a build run has its own)")
    root: Path = args.root
    options = publish.PublishOptions(args.commit, args.push, args.remote, args.branch)
    reporter = Reporter()
    store = store_choice(args)
    listing: UpstreamListing | None
    outcomes: tuple[KernelOutcome, ...]
    with HubLock(root), upstream_context(args) as upstream:
        catalog = load_catalog(root)
        branch = publish.prepare(root, options)
        if args.skip_build:
            given = read_outcomes(args.outcomes) if args.outcomes is not None else ()
            recorded = record_only(
                root, catalog, upstream, selection(args), args.force, given, reporter, store
            )
            report_failures(reporter, recorded.failures, recorded.incomplete)
            failed = report_failed_kernels(reporter, recorded.outcomes)
            ships = sum(1 for o in recorded.outcomes if o.state is KernelState.SHIPS_BTF)
            reporter.info(
                f"summary: recorded {failed} failed and {ships} shipping their own BTF"
                + undiscovered(recorded.failures, recorded.incomplete)
            )
            listing, outcomes, failures = recorded.listing, recorded.outcomes, recorded.failures
            incomplete = recorded.incomplete
        else:
            report = reconcile(
                root, catalog, upstream, selection(args), build_options(args), reporter, store
            )
            report_summary(reporter, report)
            listing, outcomes, failures = report.listing, report.outcomes, report.failures
            incomplete = report.incomplete
        if options.commits:
            learnt = publish.learnt(root, listing, outcomes)
            publish.publish(root, options, branch, learnt, reporter)
    failed_kernel = any(o.state is KernelState.FAILED for o in outcomes)
    # A failed fallback source counts like a failed discovery (see ReconcileReport.failed).
    return 1 if failed_kernel or failures or incomplete else 0
