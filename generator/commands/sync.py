"""`btfhub sync`: reconcile (or record the shards' outcomes), then commit and push.

Exit 0 when everything was built (or recorded) and published, 1 when a
kernel failed or a release could not be discovered (what was built is still
committed, failures and all) or on any error. See generator/sync.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from generator.commands.common import (
    add_build_arguments,
    add_selection_arguments,
    add_upstream_arguments,
)
from generator.sync import run_sync


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection_arguments(parser)
    add_upstream_arguments(parser)
    add_build_arguments(parser)
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
    return run_sync(args.root, args)
