"""apt: dists/<suite>/InRelease -> Packages indexes (Ubuntu ddebs, Debian main)."""

from __future__ import annotations

from generator.kinds.base import DEB_ARCHES, FLAVOURS_KEY, TREE_KEYS, RepositoryKind

KIND = RepositoryKind(
    name="apt",
    summary="dists/<suite>/... Packages indexes",
    arches=DEB_ARCHES,
    source_key="suites",
    source_doc="suites to read (dists/<suite>/), e.g. [focal, focal-updates, focal-proposed]",
    packages_doc="name patterns holding {uname}, the preferred first "
    "(a kernel matched by several uses the first)",
    patterns=True,
    lister="generator.upstream.apt:discover_apt",
    keys={
        "components": {
            "description": "archive components to read (default [main]).",
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"$ref": "#/$defs/suite"},
        },
        **FLAVOURS_KEY,
        **TREE_KEYS,
    },
)
