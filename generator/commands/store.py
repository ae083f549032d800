"""`btfhub store migrate --to git|oci://REGISTRY/REPO`: move the hub's files between stores.

Every byte is verified on the way (generator/store/migrate.py); index.json
is rendered with the new store and its locations; a rerun does nothing.
Commit the result with `btfhub sync --skip-build --commit` or git itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from generator.catalog import load_catalog
from generator.commands.common import UpstreamFactory, add_insecure_argument, default_upstream
from generator.hub.run import migrate_store
from generator.lock import HubLock
from generator.progress import Reporter
from generator.store.setting import StoreChoice
from generator.upstream.mirrors import Mirrors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    migrate = sub.add_parser(
        "migrate", help="move the hub's files to another store, verified, and rewrite index.json"
    )
    migrate.add_argument(
        "--root",
        type=Path,
        default=argparse.SUPPRESS,  # `btfhub store --root R migrate` works as well
        help="the hub's directory (default: .)",
    )
    migrate.add_argument(
        "--to",
        required=True,
        metavar="git|oci://REGISTRY/REPO",
        help="the store to move the files to (credentials: ~/.docker/config.json or "
        "BTFHUB_REGISTRY_USERNAME / BTFHUB_REGISTRY_PASSWORD)",
    )
    add_insecure_argument(migrate)


def run(args: argparse.Namespace) -> int:
    root: Path = args.root
    catalog = load_catalog(root)
    reporter = Reporter()
    factory: UpstreamFactory = args.upstream_factory or default_upstream
    target = StoreChoice(args.to, args.insecure_registry)
    with HubLock(root), factory(Mirrors(), root / ".btfhub-cache" / "http") as client:
        report = migrate_store(root, catalog, target, client, reporter)
    print(
        f"store migrate: {len(report.moved)} file(s) moved, {len(report.present)} already "
        f"there, {len(report.manifests)} manifest(s) tagged"
    )
    return 0
