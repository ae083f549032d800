"""`btfhub min-core`: minimized BTF (BTFGen) of the hub's kernels for given CO-RE objects.

Prints one size line per kernel (full vs minimized) and the total; exit 1
when any kernel failed or an object was unusable, 2 when no object is usable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from generator import api
from generator.commands.hostargs import (
    add_cache_argument,
    add_hub_arguments,
    add_select_argument,
    bad_input,
    hub_kwargs,
    selectors,
)
from generator.consumer.mincore import MinCoreError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bpf", action="append", type=Path, required=True, metavar="OBJ.o",
        help="a CO-RE BPF object (clang -g -O2 -target bpf); repeatable",
    )  # fmt: skip
    parser.add_argument("--output", "-o", type=Path, required=True, help="output directory")
    add_select_argument(parser, "only these kernels (repeatable; kernel is a glob); default all")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="kernels minimized at once")
    parser.add_argument(
        "--pack", type=Path, metavar="FILE.tar.gz",
        help="also write one reproducible ustar+gzip bundle in the archive's layout",
    )  # fmt: skip
    parser.add_argument(
        "--dot-prefix", action="store_true", help="bundle entries start with ./ (as tar . does)"
    )
    add_hub_arguments(parser)
    add_cache_argument(parser)


def run(args: argparse.Namespace) -> int:
    try:
        with hub_kwargs(args) as hub:
            report = api.min_core(
                args.bpf, args.output, selectors=selectors(args), jobs=args.jobs,
                pack_file=args.pack, dot_prefix=args.dot_prefix, cache_dir=args.cache_dir,
                **hub,
            )  # fmt: skip
    except MinCoreError as exc:
        for line in _rejected(args.bpf):
            print(line, file=sys.stderr)
        return bad_input(exc)
    for rejected in report.rejected:
        print(f"skipped {rejected.path}: {rejected.reason}", file=sys.stderr)
    for line in report.size_report():
        print(line)
    print(f"manifest: {report.manifest}")
    if args.pack:
        print(f"bundle: {args.pack}")
    return 1 if report.failures or report.rejected else 0


def _rejected(paths: list[Path]) -> list[str]:
    from generator.consumer.mincore import check_objects

    return [f"skipped {r.path}: {r.reason}" for r in check_objects(paths)[1]]
