"""`btfhub verify`: every selected archive file checked against index.json; `--rebuild`
builds a sample again from its recorded provenance and compares bytes.

One line per problem, `PATH: what is wrong`, then a summary; exit 1 on any
problem. With --hub-key, index.json's signature is checked first.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import tempfile
from pathlib import Path

from generator.catalog import load_catalog
from generator.commands.common import add_store_arguments, add_upstream_arguments, upstream_context
from generator.consumer.download import FileCache, HubClient
from generator.consumer.fetch import FileSource
from generator.consumer.hubindex import Selector, read_index, select_files
from generator.errors import BtfhubError
from generator.provenance.audit import Locate, check_files, rebuild_files, sample
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
    add_store_arguments(parser)


def _pulled(source: FileSource) -> Locate:
    return lambda file: source.archive_file(file)[0]


def run(args: argparse.Namespace) -> int:
    if args.sample is not None and args.sample < 1:
        raise BtfhubError("--sample N needs N >= 1")
    keys = args.hub_key or [Path(k) for k in os.environ.get("BTFHUB_HUB_KEYS", "").split()]
    selector = Selector(args.distro, args.release, args.arch, args.kernel)
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(upstream_context(args))
        client = HubClient(upstream.client)
        hub = read_index(str(args.root / INDEX_FILE), client, hub_keys=keys, store=args.store)
        files = select_files(hub.document, [selector])
        locate: Locate | None = None
        if hub.store is not None:  # an OCI store: each file pulled by digest, verified, cached
            # A cache of this run only: what is checked is the registry's copy now.
            pulled = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="btfhub-")))
            locate = _pulled(FileSource(hub, client, FileCache(pulled)))
        if hub.signers:
            print(f"{INDEX_FILE}: signed by {', '.join(hub.signers)}")
        problems = 0
        for finding in check_files(args.root, files, hub.document, locate):
            print(finding.line)
            problems += 1
        print(f"checked {len(files)} file(s): {problems} problem(s)")
        if args.rebuild:
            seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
            chosen = sample(files, args.sample, seed)
            rebuilt = differ = 0
            catalog = load_catalog(args.root)
            for differs, skipped in rebuild_files(
                args.root, chosen, hub.document, upstream, catalog, locate
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
