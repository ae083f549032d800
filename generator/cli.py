"""The `btfhub` command: argument parsing and the one error handler.

Each subcommand lives in generator/commands/<name>.py and exposes
``add_arguments(parser)`` and ``run(args) -> int``. User errors
(BtfhubError) print one clean message and exit 1; Ctrl-C exits 130; anything
else is a bug and exits 3 with its traceback.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from generator import __version__, heap
from generator.errors import BtfhubError

if TYPE_CHECKING:  # the commands' modules load only when chosen (see build_parser)
    from generator.commands.common import UpstreamFactory

# Objects allocated between collections of the youngest generation (CPython: 700).
# A run holds millions of long-lived objects (the catalog, the 20 MB index.json
# as state and as the document render builds); at 700 the collector ran ~940
# times in a no-op reconcile of 20,000 kernels and re-walked them in full
# several times: 0.6 s of CPU, 0.2 s at this threshold. Cyclic garbage is rare
# here (few objects are in cycles), so collecting it less often costs little memory.
GC_YOUNG_THRESHOLD = 50_000

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("generator.commands.validate", "check every manifest in catalog/"),
    "render": ("generator.commands.render", "write README.md support tables and index.json"),
    "plan": ("generator.commands.plan", "list upstream kernels and what the archive lacks"),
    "reconcile": ("generator.commands.reconcile", "build every missing BTF file, then render"),
    "merge": ("generator.commands.merge", "verify shard outputs and move them into archive/"),
    "sync": ("generator.commands.sync", "reconcile, then commit and push the hub's files"),
    "store": ("generator.commands.store", "move the hub's files between git and an OCI registry"),
    "demo": ("generator.commands.demo", "run the main job on a built-in offline example"),
    "lookup": ("generator.commands.lookup", "find this machine's BTF file in the hub, or why not"),
    "fetch": ("generator.commands.fetch", "download and verify BTF files, extract the raw BTF"),
    "verify": ("generator.commands.verify", "check archive files against index.json"),
    "site": ("generator.commands.site", "write the hub's coverage as a static, searchable site"),
    "min-core": (
        "generator.commands.min_core",
        "minimized BTF of the hub's kernels for BPF objects",
    ),
}


@functools.cache
def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with `only`, one where just that command's module is imported.

    Importing every command pulls in requests and Jinja2; a
    pre-commit `btfhub validate` should not pay for them on every commit.
    `only` naming no command ("") imports none: enough for `btfhub --help`,
    which lists the commands by their help lines, and for a usage error.
    Built once per process and `only` (5 ms each: a caller of main() running
    hundreds of commands, as the tests do, paid seconds); parsing leaves a
    parser as it was, and no command changes the lists it is given in place.
    """
    parser = argparse.ArgumentParser(
        prog="btfhub",
        description="Build and publish kernel BTF files from distributions' debug packages.",
    )
    parser.add_argument("--version", action="version", version=f"btfhub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is not None and name != only:
            continue  # listed in --help, never parsed: its module stays unloaded
        module = importlib.import_module(module_name)
        p.add_argument(
            "--root",
            type=Path,
            default=Path("."),
            help="the hub's directory (holding catalog/ and archive/); default: .",
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def entry() -> int:
    """The `btfhub` command's process (console script, `python -m generator`): main,
    then a lean end (heap.leave), as nothing in the process is used again."""
    code = main()
    heap.leave()
    return code


def main(argv: Sequence[str] | None = None, *, upstream: UpstreamFactory | None = None) -> int:
    """Run one command; `upstream` makes the upstream client instead of the default one.

    The way to give the commands another client (a test's, with no backoff
    sleeps): nothing needs patching.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else "")
    args = parser.parse_args(argv)
    args.upstream_factory = upstream
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    try:
        code: int = args._run(args)
        return code
    except BtfhubError as exc:
        print(f"btfhub: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        sys.stderr.close()
        return 1
    except KeyboardInterrupt:
        print("btfhub: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            "btfhub: internal error (a bug): please report it with the trace above", file=sys.stderr
        )
        return 3
