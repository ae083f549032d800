"""`btfhub merge DIR...`: bring the build jobs' shard outputs into archive/, verified.

Every shard directory is checked (manifest, paths, sizes, hashes, no strays)
before any file moves; see generator/shards/merge.py. The failed and
ships-btf outcomes the shards report are printed and, with --outcomes FILE,
written as JSON for the next step (`btfhub sync`) to record in index.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from generator.commands.common import add_store_arguments, store_choice
from generator.commands.output import report_failed_kernels
from generator.hub.run import load_state
from generator.lock import HubLock
from generator.model import KernelState
from generator.progress import Reporter
from generator.shards.merge import merge_shards
from generator.shards.outcomes import write_outcomes
from generator.store.hubstore import output_root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    parser.add_argument(
        "dirs", nargs="+", type=Path, metavar="DIR", help="shard output directories"
    )
    parser.add_argument(
        "--outcomes",
        type=Path,
        metavar="FILE",
        help="write the shards' outcomes (failed, ships-btf, built files' provenance) "
        "to FILE (JSON), for sync --skip-build --outcomes",
    )


def run(args: argparse.Namespace) -> int:
    with HubLock(args.root):
        # An OCI store's files are staged: `btfhub sync` pushes and records them.
        store = load_state(args.root, store_choice(args)).store
        result = merge_shards(output_root(args.root, store), args.dirs)
    report_failed_kernels(Reporter(), result.outcomes)
    if result.missing_shards:
        missing = ", ".join(s.label for s in result.missing_shards)
        print(
            f"btfhub merge: warning: no output from shard(s) {missing} "
            "(did a build job fail?); their kernels stay missing until the next run",
            file=sys.stderr,
        )
    if args.outcomes is not None:
        write_outcomes(args.outcomes, result.outcomes)
    failed = sum(1 for o in result.outcomes if o.state is KernelState.FAILED)
    ships = sum(1 for o in result.outcomes if o.state is KernelState.SHIPS_BTF)
    print(
        f"merged {len(result.shards)} shard(s): {len(result.added)} file(s) added, "
        f"{len(result.unchanged)} already there, {failed} failed, {ships} ship their own BTF"
    )
    return 0
