"""`btfhub verify`: every selected archive file checked against index.json; `--rebuild`
builds a sample again from its recorded provenance and compares bytes.

One line per problem, `PATH: what is wrong`, then a summary; exit 1 on any
problem. With --hub-key, index.json's signature is checked first.
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

from generator.catalog import load_catalog
from generator.commands.common import add_upstream_arguments, upstream_context
from generator.consumer.download import HubClient
from generator.consumer.hubindex import Selector, read_index, select_files
from generator.errors import BtfhubError
from generator.provenance.audit import check_files, rebuild_files, sample
from generator.state import INDEX_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--distro", help="only this distribution (archive dir or manifest id)")
    parser.add_argument("--release", help="only this release (directory, id or name)")
    parser.add_argument("--arch", help="only this architecture (x86_64 or arm64)")
    parser.add_argument("--kernel", metavar="GLOB", help="only kernels matching (uname -r glob)")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="also download each file's recorded package, verify it as a build does, "
        "rebuild with the recorded pahole arguments and compare bytes",
    )
    parser.add_argument(
        "--sample", type=int, metavar="N", help="rebuild only N files picked at random"
    )
    parser.add_argument(
        "--seed", type=int, help="the sample's random seed (printed; give it to pick the same)"
    )
    parser.add_argument(
        "--hub-key",
        action="append",
        type=Path,
        metavar="FILE",
        help="check index.json.asc against the hub's public key first (repeatable; "
        "default: $BTFHUB_HUB_KEYS)",
    )
    add_upstream_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.sample is not None and args.sample < 1:
        raise BtfhubError("--sample N needs N >= 1")
    keys = args.hub_key or [Path(k) for k in os.environ.get("BTFHUB_HUB_KEYS", "").split()]
    selector = Selector(args.distro, args.release, args.arch, args.kernel)
    with upstream_context(args) as upstream:
        hub = read_index(str(args.root / INDEX_FILE), HubClient(upstream.client), hub_keys=keys)
        files = select_files(hub.document, [selector])
        if hub.signers:
            print(f"{INDEX_FILE}: signed by {', '.join(hub.signers)}")
        problems = 0
        for finding in check_files(args.root, files, hub.document):
            print(finding.line)
            problems += 1
        print(f"checked {len(files)} file(s): {problems} problem(s)")
        if args.rebuild:
            seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
            chosen = sample(files, args.sample, seed)
            rebuilt = differ = 0
            catalog = load_catalog(args.root)
            for differs, skipped in rebuild_files(
                args.root, chosen, hub.document, upstream, catalog
            ):
                if skipped is not None:
                    print(f"skipped {skipped}")
                    continue
                rebuilt += 1
                if differs is not None:
                    print(differs.line)
                    differ += 1
            print(
                f"rebuilt {rebuilt} of {len(chosen)} sampled file(s) (seed {seed}): "
                f"{rebuilt - differ} identical, {differ} differ"
            )
            problems += differ
    return 1 if problems else 0
