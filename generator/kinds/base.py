"""The record of a repository kind, and what several kinds share.

Kept free of the upstream client (no HTTP, no requests) so that validation,
which reads every record, stays as light as it is: a record names its lister
and completer by import path ("module:function"), and discovery, which
talks HTTP anyway, imports them when it lists a repository of that kind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

# How an architecture is spelt upstream (canonical name -> upstream name).
DEB_ARCHES: Mapping[str, str] = {"x86_64": "amd64", "arm64": "arm64"}
RPM_ARCHES: Mapping[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}


# What a release's source may name in a repository: each kind reads one of them.
SOURCE_KEYS = ("suites", "paths")


class Finding(NamedTuple):
    """A problem a kind's own rule finds in one repository of a manifest.

    path: below the repository (("url",), or () for the repository itself);
    at_key: positioned at the key rather than its value.
    """

    path: tuple[str | int, ...]
    message: str
    at_key: bool = False


Rules = Callable[[Mapping[str, Any]], Iterator[Finding]]


def no_rules(repo: Mapping[str, Any]) -> Iterator[Finding]:
    return iter(())


@dataclass(frozen=True, eq=False)  # compared and hashed as itself: a registry caches by it
class RepositoryKind:
    """One repository kind: what a manifest may say of it and what reads it upstream."""

    name: str  # the manifest's `kind:`
    summary: str  # the format in a few words (the schema's description of `kind`)
    arches: Mapping[str, str]  # canonical architecture -> upstream spelling ({arch})
    source_key: Literal["suites", "paths"]  # what a release's source names in it
    source_doc: str  # what those suites or paths are (the schema's description)
    packages_doc: str  # what its `packages:` are (the schema's description)
    # True: `packages:` are name patterns holding {uname}; False: exact names.
    patterns: bool
    # "module:function", called as (client, repo, source, arch) -> list[KernelPackage].
    lister: str
    # Optional manifest keys beyond those every repository has, with their JSON
    # schema; a key several kinds share has the same schema in each.
    keys: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    rules: Rules = no_rules  # what its schema cannot say
    # "module:function", called as (client, repo, package) -> KernelPackage: a
    # costly part of each package, done only for those a release keeps.
    completer: str | None = None


# Keys of a tree served over plain HTTP, mirrored and signed (apt, rpm-md,
# html-listing), not of an API answering per request (launchpad).
TREE_KEYS: Mapping[str, Mapping[str, Any]] = {
    "keyring": {
        "title": "keyring path",
        "description": "OpenPGP public keys (armored .asc or binary), relative to the hub's root "
        "(e.g. catalog/keys/ubuntu-ddebs.asc), that sign what this repository publishes: "
        "apt InRelease (or Release + Release.gpg), rpm-md repomd.xml.asc where published, "
        "and each RPM's header signature. Required unless unsigned is true; the run's "
        "--keyring / BTFHUB_KEYRINGS files are trusted as well.",
        "type": "string",
        "pattern": "^[A-Za-z0-9_.-][A-Za-z0-9_./-]*$",
        "examples": ["catalog/keys/ubuntu-ddebs.asc"],
    },
    "signing_key_id": {
        "title": "signing key ID",
        "description": "for a publisher whose key the hub does not ship yet (instead of "
        "keyring): the ID (16 hex digits) or fingerprint (40) of the key that signs it, "
        "e.g. BCB4A85B21C0F39F for Amazon Linux 1. A run given a key file holding it "
        "(--keyring, BTFHUB_KEYRINGS) builds from it, trusting only the given files that hold "
        "it; otherwise its releases are skipped as needing their signing key.",
        "type": "string",
        "pattern": "^([0-9A-Fa-f]{16}|[0-9A-Fa-f]{40})$",
    },
    "moved_to": {
        "description": "where upstream moves this tree once the release ends (Debian: "
        "http://archive.debian.org/debian/; Fedora: archives.fedoraproject.org). A source "
        "whose index the repository URL answers HTTP 404 or 410 for is read from here "
        "instead, with the same keys and the same layout; any other error is reported as it "
        "is. {arch} as in url.",
        "$ref": "#/$defs/url",
    },
}

# A publisher that signs over SHA-1 only (rpm-md, html-listing: RPM headers).
SHA1_KEY: Mapping[str, Mapping[str, Any]] = {
    "sha1_signatures": {
        "title": "SHA-1 signatures allowed",
        "description": "true for a publisher whose RPM header signatures (and repomd.xml.asc, "
        "if any) are made over SHA-1 only, as Photon OS 3.0 and openEuler 20.03 sign theirs: "
        "those signatures count for this repository's packages (by its keys only); everywhere "
        "else a SHA-1 signature is refused. btfhub plan names every such repository.",
        "type": "boolean",
    },
}

# Debian-style kernel names end with a flavour (apt, launchpad).
FLAVOURS_KEY: Mapping[str, Mapping[str, Any]] = {
    "flavours": {
        "description": "kernel flavours to keep, the end of uname -r (e.g. generic, aws); "
        "{arch} is the upstream architecture, e.g. cloud-{arch}.",
        "$ref": "#/$defs/strings",
    },
}


def spoken_list(words: Sequence[str], last: str = "and") -> str:
    """("a", "b", "c") -> "a, b and c"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


@functools.cache  # validation asks once per repository of every manifest
def key_owners(kinds: tuple[RepositoryKind, ...]) -> dict[str, tuple[str, ...]]:
    """Each manifest key only some kinds have -> those kinds' names, in the kinds' order."""
    owners: dict[str, tuple[str, ...]] = {}
    for kind in kinds:
        for key in kind.keys:
            owners[key] = (*owners.get(key, ()), kind.name)
    return owners
