"""Arguments shared by lookup, fetch and min-core: which machine, which hub."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generator.consumer.download import HubClient
from generator.consumer.hubindex import Selector
from generator.errors import BtfhubError
from generator.upstream.mirrors import Mirrors

EXIT_BAD_INPUT = 2


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        metavar="PATH_OR_URL",
        help="the hub's index.json, a path or an http(s) URL "
        "(default: $BTFHUB_INDEX, else ROOT/index.json)",
    )
    parser.add_argument(
        "--base-url",
        help="download files from BASE_URL/archive/... (default: $BTFHUB_BASE_URL, else "
        "beside a URL --index; beside a local one, files are read from that checkout)",
    )
    parser.add_argument(
        "--hub-key",
        action="append",
        type=Path,
        metavar="FILE",
        help="the hub's public key (repeatable; default: $BTFHUB_HUB_KEYS): refuse an "
        "index.json whose signature, index.json.asc, is missing or not by one of them",
    )
    parser.add_argument(
        "--store",
        metavar="git|oci://REGISTRY/REPO",
        help="pull the files from this store (default: $BTFHUB_STORE, else the store "
        "index.json names: an OCI registry's blobs by digest, else archive/ as above)",
    )


def add_cache_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="downloaded files, by sha256 (default: $XDG_CACHE_HOME/btfhub, ~/.cache/btfhub)",
    )


def add_host_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--os-release", type=Path, metavar="FILE", help="read this os-release")
    where.add_argument(
        "--host-root",
        type=Path,
        metavar="DIR",
        help="the machine mounted at DIR (its etc/os-release, sys/kernel/btf/vmlinux)",
    )
    parser.add_argument("--id", help="os-release ID, instead of reading a file (e.g. ubuntu)")
    parser.add_argument("--version-id", help="os-release VERSION_ID (e.g. 20.04, 8.4, focal)")
    parser.add_argument("--kernel", metavar="UNAME_R", help="kernel release (default: uname -r)")
    parser.add_argument("--arch", help="machine (default: uname -m; aarch64 and arm64 alike)")


def host_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    # --version-id alone overrides the version of the os-release file read.
    return {
        "os_release": args.os_release,
        "host_root": args.host_root,
        "id": args.id,
        "version_id": args.version_id,
        "kernel": args.kernel,
        "arch": args.arch,
    }


@contextmanager
def hub_kwargs(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """The api's hub arguments, with the HTTP client cli.main(upstream=...) makes if given.

    Without a factory the api makes its own client (urllib3's retries and
    backoff); a caller's (a test's: no backoff sleeps) is closed afterwards.
    """
    hub = {
        "index": args.index,
        "base_url": args.base_url,
        "hub_keys": args.hub_key,  # None: $BTFHUB_HUB_KEYS
        "store": args.store,
        "root": args.root,
    }
    factory = args.upstream_factory
    if factory is None:
        yield hub
        return
    # A consumer reads the hub's own URLs: no --mirror rules and no index cache on disk.
    with HubClient(factory(Mirrors(), None)) as client:
        yield {**hub, "client": client}


def add_select_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="distro=..,release=..,arch=..,kernel=GLOB",
        help=help_text,
    )


def selectors(args: argparse.Namespace) -> list[Selector]:
    return [Selector.parse(s) for s in args.select]


def bad_input(exc: BtfhubError) -> int:
    print(f"btfhub: error: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT
