"""Arguments shared by the commands that read upstream (plan, reconcile, sync)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from generator.model import Catalog, Plan
from generator.reconcile import DiscoveryResult, Selection, discover, make_plan
from generator.state import Discovery, load_discovery
from generator.trust import TrustPolicy
from generator.upstream.http import UpstreamClient
from generator.upstream.mirrors import Mirrors


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--distro", help="only this distribution (manifest name, e.g. ubuntu)")
    parser.add_argument("--release", help="only this release id (e.g. focal-hwe, 7.9.2009)")
    parser.add_argument("--arch", help="only this architecture (x86_64 or arm64)")


def add_upstream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="rewrite upstream URLs starting with FROM to start with TO (repeatable; "
        "also BTFHUB_MIRRORS='FROM=TO ...')",
    )
    parser.add_argument(
        "--keyring",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="also trust the OpenPGP keys in FILE (armored or binary) for every repository, "
        "e.g. a private mirror's re-signing key (repeatable; also BTFHUB_KEYRINGS='FILE ...')",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="where upstream indexes are cached for conditional GET "
        "(default: ROOT/.btfhub-cache/http)",
    )


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The build options of the commands that build (reconcile, sync)."""
    parser.add_argument("--jobs", "-j", type=int, default=1, help="kernels built at once")
    parser.add_argument(
        "--force",
        action="store_true",
        help="also build kernels that ship their own BTF (e.g. to compare against it)",
    )


def selection(args: argparse.Namespace) -> Selection:
    return Selection(distro=args.distro, release=args.release, arch=args.arch)


def discover_and_plan(
    args: argparse.Namespace, catalog: Catalog, client: UpstreamClient
) -> tuple[DiscoveryResult, Discovery, Plan]:
    """What upstream lists for the selection, the hub's recorded state, and the plan."""
    found = discover(client, catalog, selection(args), force=args.force)
    discovery = load_discovery(args.root)
    return found, discovery, make_plan(args.root, catalog, discovery, found, force=args.force)


def upstream_client(args: argparse.Namespace) -> UpstreamClient:
    mirrors = Mirrors.parse(args.mirror, os.environ.get("BTFHUB_MIRRORS"))
    cache_dir = args.cache_dir or (args.root / ".btfhub-cache" / "http")
    trust = TrustPolicy.from_sources(args.keyring)
    return UpstreamClient(mirrors=mirrors, cache_dir=cache_dir, trust=trust)
