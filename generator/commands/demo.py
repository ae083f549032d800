"""`btfhub demo`: validate, plan, reconcile and render on an offline example."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from generator import demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="build the example in DIR (must be empty) and keep it, instead of a temp dir",
    )


def _step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run(args: argparse.Namespace) -> int:
    from generator.cli import main  # the same entry point a user types

    with demo.workspace(args.keep) as work:
        _step("building real packages (a DWARF ELF in a .ddeb and an .rpm)")
        mirror = demo.build_mirror(work)
        hub = work / "hub"
        demo.copy_hub(args.root, hub)
        with demo.MirrorServer(mirror) as server:
            print(f"local upstream mirror: {server.url} (serving {mirror})")
            common = ["--root", str(hub)]
            mirrors = demo.mirror_args(server) + demo.trust_args()
            _step("btfhub validate")
            if main(["validate", *common]) != 0:
                return 1
            failed = False
            for target in demo.TARGETS:
                select = demo.selection_args(target)
                _step(f"btfhub plan {' '.join(select)}")
                failed |= main(["plan", *common, *select, *mirrors]) != 0
                _step(f"btfhub reconcile {' '.join(select)}")
                failed |= main(["reconcile", *common, *select, *mirrors]) != 0
            _step("btfhub reconcile again: nothing left to build, nothing downloaded")
            before = server.bytes_sent
            for target in demo.TARGETS:
                select = demo.selection_args(target)
                failed |= main(["reconcile", *common, *select, *mirrors]) != 0
            print(f"bytes served by the mirror on the rerun: {server.bytes_sent - before}")
        _step("btfhub render --check")
        failed |= main(["render", *common, "--check"]) != 0
        readme = (hub / "README.md").read_text()
        for title in ("CentOS 7", "Ubuntu"):
            _step(f"README.md: {title}")
            print(demo.table_of(readme, title))
        _step("index.json entries")
        index = json.loads((hub / "index.json").read_text())
        print(json.dumps(demo.index_entries(index), indent=2, sort_keys=True))
        _step("archive/, read back with bpftool")
        for path in sorted((hub / "archive").rglob("*.btf.tar.xz")):
            print(f"{path.relative_to(hub)}  ({path.stat().st_size} bytes)")
            print(demo.bpftool_struct(path, work, demo.STRUCT_NAMES[0]))
        if args.keep:
            print(f"\nthe example hub is kept in {hub}")
    print("\ndemo " + ("FAILED" if failed else "finished: every step succeeded"))
    return 1 if failed else 0
