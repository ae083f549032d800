"""`btfhub lookup`: which hub file a machine needs, where to get it, or why there is none.

Exit 0 when found (or when the machine has /sys/kernel/btf/vmlinux and needs
no hub), 1 when the hub has no file for it (with the reason), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json

from generator import api
from generator.commands.hostargs import (
    add_host_arguments,
    add_hub_arguments,
    bad_input,
    host_kwargs,
    hub_kwargs,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_host_arguments(parser)
    add_hub_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        with hub_kwargs(args) as hub:
            result = api.lookup(**host_kwargs(args), **hub)
    except api.HostInputError as exc:
        return bad_input(exc)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        print("\n".join(describe(result)))
        if result.index_signers:
            print(f"index: signed by {', '.join(result.index_signers)}")
    return 0 if result.found or result.host_btf else 1


def describe(result: api.LookupResult) -> list[str]:
    lines = []
    if result.host_btf:
        lines.append("this machine has /sys/kernel/btf/vmlinux: the hub is not needed")
    loc = result.location
    if result.file is not None and loc is not None:
        lines += [
            f"path: {result.file.path}",
            f"url: {result.url or '-'}",
        ]
        if result.local_path is not None:
            lines.append(f"file: {result.local_path}")
        lines += [
            f"size: {result.file.size}",
            f"sha256: {result.file.sha256}",
            f"match: {loc.match.value} ({result.os_release.id} "
            f"{result.os_release.version_id or ''} -> {loc.distro_dir}/{loc.release_dir}, "
            f"catalog {result.file.distro}/{result.file.release})",
        ]
    else:
        where = f" ({loc.path})" if loc is not None else ""
        lines.append(f"not found{where}: {result.reason}")
    return lines
