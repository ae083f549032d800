"""`btfhub fetch`: a machine's raw BTF file, verified against index.json.

`--output FILE` writes the machine's file (lookup's selectors); with
`--select`, `--output DIR` receives every matching archived kernel as
DIR/<distro>/<release>/<arch>/<uname -r>.btf. `--modules a,b` (or `all`)
makes each file hold those kernel modules' types too. Exit 1 when the hub
has no file for the machine (or no BTF for a module asked for), 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from generator import api
from generator.commands.hostargs import (
    add_cache_argument,
    add_host_arguments,
    add_hub_arguments,
    add_select_argument,
    bad_input,
    host_kwargs,
    hub_kwargs,
    selectors,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_host_arguments(parser)
    add_hub_arguments(parser)
    add_cache_argument(parser)
    add_select_argument(
        parser,
        "fetch every archived kernel matching (repeatable; kernel is a glob): --output is "
        "then a directory in the archive's layout",
    )
    parser.add_argument(
        "--modules",
        metavar="NAMES",
        help="also these kernel modules' types, in the same file (nf_conntrack,overlay; or all): "
        "one raw BTF for btf_custom_path",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        required=True,
        help="the raw .btf file (a directory with --select)",
    )


def run(args: argparse.Namespace) -> int:
    if args.select:
        return _fetch_selected(args)
    try:
        with hub_kwargs(args) as hub:
            fetched = api.fetch(args.output, **host_kwargs(args), **hub,
                                cache_dir=args.cache_dir, modules=args.modules)  # fmt: skip
    except api.HostInputError as exc:
        return bad_input(exc)
    except api.KernelNotFound as exc:
        loc = exc.result.location
        where = f" ({loc.path})" if loc is not None else ""
        print(f"not found{where}: {exc.result.reason}", file=sys.stderr)
        if exc.result.host_btf:
            print("(this machine has /sys/kernel/btf/vmlinux: use that)", file=sys.stderr)
        return 1
    print(f"{fetched.output}: {fetched.file.path} ({fetched.source}, sha256 {fetched.file.sha256})")
    return 0


def _fetch_selected(args: argparse.Namespace) -> int:
    try:
        with hub_kwargs(args) as hub:
            fetched = api.fetch_selected(
                selectors(args), args.output, **hub, cache_dir=args.cache_dir, modules=args.modules
            )
    except api.HostInputError as exc:
        return bad_input(exc)
    for item in fetched:
        print(f"{item.output}: {item.file.path} ({item.source})")
    sources = [f.source for f in fetched]
    counts = ", ".join(f"{sources.count(s)} {s}" for s in sorted(set(sources))) or "nothing"
    print(f"fetched {len(fetched)} file(s) into {args.output}: {counts}")
    return 0 if fetched else 1
