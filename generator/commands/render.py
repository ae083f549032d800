"""`btfhub render [--check]`: write README.md's support tables and index.json.

Offline by design: the catalog, the discovery state kept in index.json and
the archive/ listing are all it reads. `--check` writes nothing and exits 1
with a diff when either file is stale, so CI can tell a manifest edit that
was not rendered.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from generator import heap
from generator.catalog import load_catalog
from generator.commands.common import add_store_arguments, store_choice
from generator.hub.run import load_state, render
from generator.lock import HubLock
from generator.render import README_FILE
from generator.state import INDEX_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff when README.md or index.json is stale",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="read and hash every archive file, even those git reports unchanged "
        "(whose recorded size and sha256 are trusted otherwise)",
    )


def run(args: argparse.Namespace) -> int:
    root: Path = args.root
    catalog = load_catalog(root)
    # --check writes nothing, so it can run beside a sync; a write cannot. The state
    # and the index it renders are one burst of kept objects (generator/heap.py).
    lock = contextlib.nullcontext() if args.check else HubLock(root)
    with lock, heap.run_scope(), heap.burst():
        state = load_state(root, store_choice(args))
        result = render(root, catalog, state, check=args.check, verify=args.verify)
    for path in result.unassigned:
        print(
            f"warning: {path} belongs to no release of the catalog (kept in index.json)",
            file=sys.stderr,
        )
    if args.check:
        if result.stale:
            for diff in result.diffs:
                print(diff, end="")
            print(f"stale: {', '.join(result.changed)}; run `btfhub render` and commit the result")
            return 1
        print(f"{README_FILE} and {INDEX_FILE} are up to date")
        return 0
    for name in result.changed:
        print(f"wrote {name}")
    if not result.changed:
        print(f"{README_FILE} and {INDEX_FILE} already up to date")
    return 0
