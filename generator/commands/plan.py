"""`btfhub plan`: what upstream publishes and what the archive lacks (reads, never writes).

Exit 0 when every selected release was discovered, 1 when any discovery
failed, a fallback source included (its release is planned from the other
sources, with a warning); the plan (table or JSON) is printed either way.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from generator.catalog import load_catalog
from generator.commands.common import (
    add_selection_arguments,
    add_store_arguments,
    add_upstream_arguments,
    selection,
    store_choice,
    upstream_context,
)
from generator.commands.output import report_failures
from generator.hub.run import plan_in_store
from generator.model import Catalog, Repository
from generator.planner import format_plan, plan_to_json
from generator.progress import Reporter
from generator.shards.split import shards_to_json, split_plan
from generator.store.setting import describe_store, store_label


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection_arguments(parser)
    add_upstream_arguments(parser)
    add_store_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="with --json: split the missing kernels into N balanced shards "
        "(a GitHub Actions matrix)",
    )
    parser.add_argument(
        "--force", action="store_true", help="plan kernels that ship their own BTF as missing"
    )


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.root)
    with upstream_context(args) as upstream:
        the_plan, store = plan_in_store(
            args.root, catalog, upstream, selection(args), args.force, store_choice(args)
        )
    unsigned = unsigned_repositories(catalog, args.distro)
    if args.json:
        out = plan_to_json(the_plan)
        out["store"] = store_label(store)
        out["unsigned_repositories"] = unsigned
        if args.shards:
            out.update(shards_to_json(split_plan(the_plan.missing(), args.shards)))
        print(json.dumps(out, sort_keys=True, indent=2))
        # stderr: stdout stays JSON
        report_failures(Reporter(), the_plan.failures, the_plan.incomplete)
    else:
        print(format_plan(the_plan))
        print(describe_store(store))
        for u in unsigned:
            print(
                f"unsigned: {u['distro']}/{u['repository']} ({u['url']}): its manifest says "
                "`unsigned: true`, so no signature vouches for what is built from it"
            )
        for r in sha1_repositories(catalog, args.distro):
            print(
                f"sha1 signatures: {r['distro']}/{r['repository']} ({r['url']}): its publisher "
                "signs over SHA-1 only, and its manifest lets those signatures count"
            )
    # A failed fallback source counts like a failed discovery: the plan is
    # printed and usable, the exit status says it is not complete.
    return 1 if the_plan.failures or the_plan.incomplete else 0


def unsigned_repositories(catalog: Catalog, distro: str | None) -> list[dict[str, str]]:
    """The repositories a manifest marks `unsigned: true` (of the selected distribution)."""
    return _repositories(catalog, distro, lambda r: r.unsigned)


def sha1_repositories(catalog: Catalog, distro: str | None) -> list[dict[str, str]]:
    """The repositories whose manifest lets SHA-1 signatures count (`sha1_signatures: true`)."""
    return _repositories(catalog, distro, lambda r: r.sha1_signatures)


def _repositories(
    catalog: Catalog, distro: str | None, marked: Callable[[Repository], bool]
) -> list[dict[str, str]]:
    return [
        {"distro": d.id, "repository": r.id, "url": r.url}
        for d in catalog.distributions
        if distro is None or d.id == distro
        for r in d.repositories
        if marked(r)
    ]
