"""`btfhub site --output DIR`: the hub's coverage as a static, searchable web site.

Built from the catalog (ROOT/catalog) and an index.json (a path or a URL);
the same inputs give the same bytes. Open DIR/index.html from disk or
publish DIR (the pages workflow does, on GitHub Pages).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from generator import api
from generator.commands.hostargs import add_hub_arguments, hub_kwargs
from generator.site.output import read_inputs, write_site


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_hub_arguments(parser)
    parser.add_argument(
        "--output", "-o", type=Path, required=True, help="the site's directory (created if needed)"
    )
    parser.add_argument(
        "--index-url",
        metavar="URL",
        help="the index.json readers' `btfhub fetch` commands name, and the files' download "
        "links beside it (default: --index; a local one as its absolute path)",
    )


def run(args: argparse.Namespace) -> int:
    inputs = read_inputs(args.root)  # a broken catalog stops the command before any download
    with hub_kwargs(args) as hub_arguments:
        hub = api.open_index(**hub_arguments)
    report = write_site(inputs, hub, args.output, args.index_url)
    data = report.data
    total = sum(size for _, size in report.sizes)
    print(
        f"{report.page}: {data.kernels} kernel(s) of {len(data.sections)} distribution(s), "
        f"{len(report.sizes)} files, {total:,} bytes"
    )
    for name, size in report.sizes:
        mark = "wrote" if name in report.written else "unchanged"
        print(f"  {name}: {size:,} bytes ({mark})")
    return 0
