"""Arguments and output shared by the commands that read upstream (plan, reconcile, sync)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from generator.hub.build import BuildOptions
from generator.model import Selection
from generator.store.setting import StoreChoice
from generator.trust import TrustPolicy
from generator.upstream.context import UpstreamContext
from generator.upstream.http import UpstreamClient
from generator.upstream.mirrors import ENV_VAR, Mirrors

# How a command gets its upstream client: cli.main(upstream=...) may pass
# another factory (a test: no backoff sleeps); cli.main stores it on every args.
# The consumer commands (commands/hostargs.py) pass no cache_dir: no index cache.
UpstreamFactory = Callable[[Mirrors, Path | None], UpstreamClient]


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


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The build options of the commands that build (reconcile, sync)."""
    parser.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        help="kernels built at once (default: one per core, as memory allows)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="also build kernels that ship their own BTF (e.g. to compare against it)",
    )


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """--store and --insecure-registry: where the hub's archive files are (generator/store/)."""
    parser.add_argument(
        "--store",
        metavar="git|oci://REGISTRY/REPO",
        help="where the archive files are: git (archive/ in the hub's repository) or an OCI "
        "registry repository (default: BTFHUB_STORE, else the store index.json records, "
        "else git); credentials come from ~/.docker/config.json or "
        "BTFHUB_REGISTRY_USERNAME / BTFHUB_REGISTRY_PASSWORD",
    )
    add_insecure_argument(parser)


def add_insecure_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure-registry",
        action="store_true",
        help="reach a registry that is not on this machine over plain HTTP",
    )


def store_choice(args: argparse.Namespace) -> StoreChoice:
    return StoreChoice(args.store, args.insecure_registry)


def selection(args: argparse.Namespace) -> Selection:
    return Selection(distro=args.distro, release=args.release, arch=args.arch)


def build_options(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(jobs=args.jobs, force=args.force)


def default_upstream(mirrors: Mirrors, cache_dir: Path | None) -> UpstreamClient:
    return UpstreamClient(mirrors=mirrors, cache_dir=cache_dir)


def upstream_context(args: argparse.Namespace) -> UpstreamContext:
    """The run's client, trusted keys and listing cache; the caller closes it."""
    mirrors = Mirrors.parse(args.mirror, os.environ.get(ENV_VAR))
    cache_dir = args.cache_dir or (args.root / ".btfhub-cache" / "http")
    # The run's added keys: --keyring files, then BTFHUB_KEYRINGS (generator.trust).
    trust = TrustPolicy.from_sources(args.keyring)
    factory: UpstreamFactory = args.upstream_factory or default_upstream
    return UpstreamContext.of(factory(mirrors, cache_dir), trust)
