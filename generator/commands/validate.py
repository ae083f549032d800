"""`btfhub validate`: check every manifest in catalog/ and report all problems.

Diagnostics go to stdout, one `file:line:col: path: message` line each, so
editors and CI logs can jump to them; under GitHub Actions each one is also
printed as an `::error` workflow command, which becomes an annotation on the
pull request's diff.
"""

from __future__ import annotations

import argparse
import os
import sys

from generator.catalog import CatalogInvalid, load_catalog
from generator.consumer.hostmap import HOST_RULES_FILE, check_host_rules
from generator.manifest import Diagnostic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # nothing beyond --root, which the CLI adds to every command


def run(args: argparse.Namespace) -> int:
    diagnostics: list[Diagnostic] = []
    try:
        catalog = load_catalog(args.root)
    except CatalogInvalid as exc:
        diagnostics += exc.diagnostics
    # The host rules (lookup/fetch) sit beside the manifests, in a subdirectory
    # the manifest loader does not read; a hub without its own copy uses btfhub's.
    host_rules = args.root / HOST_RULES_FILE
    if host_rules.is_file():
        diagnostics += check_host_rules(host_rules)
    if diagnostics:
        _report(diagnostics)
        return 1
    releases = sum(len(d.releases) for d in catalog.distributions)
    print(f"{len(catalog.distributions)} manifests, {releases} releases: valid")
    return 0


def _report(diagnostics: list[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        print(diagnostic.format())
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for diagnostic in diagnostics:
            print(diagnostic.github())
    files = len({d.file for d in diagnostics})
    print(f"btfhub validate: {len(diagnostics)} problem(s) in {files} manifest(s)", file=sys.stderr)
