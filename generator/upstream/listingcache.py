"""Parsed index listings, cached by the checksum the verified chain gives for the index.

A scheduled run finds most indexes unchanged: repomd.xml answers 304 and
still names the same primary.xml by the same checksum, InRelease still lists
the same Packages file by the same SHA-256. Decompressing and parsing such
an index again would give the same kernel packages, so the packages it
listed are kept, as parsed, in CACHE_DIR/listings/<key>.json.

The key is a SHA-256 over the index's checksum and every other input the
parse depends on (package patterns, architecture, flavours, the repository
root packages' URLs are joined to, a format version), so a repository whose
manifest changes, or two repositories sharing an index with different
patterns, never share an entry. A changed index has a new checksum, hence a
new key: it is fetched and parsed again. An entry is only written after the
index body matched its checksum and parsed without error.

An entry that cannot be read, is not JSON, does not fit
schemas/listing-cache.schema.json or names another key (a torn write, a
file copied over another) is ignored, and the index is parsed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import jsonschemas
from generator.fsutil import atomic_write, dump_json
from generator.kinds.registry import upstream_arch
from generator.model import KernelPackage, Repository

# Bump when what is stored, or how an index is parsed into it, changes:
# entries written by another format are then never looked up.
FORMAT = 1
SUBDIR = "listings"


@dataclass(frozen=True)
class IndexMatch:
    """A kernel package an index lists, and which package pattern matched it.

    rank: the position of the repository's package pattern that matched (apt
    prefers the earliest), 0 where the lister does not rank (rpm-md).
    """

    package: KernelPackage
    rank: int = 0


def parse_inputs(repo: Repository, root: str, arch: str, **specific: Any) -> dict[str, Any]:
    """What every lister's parse depends on besides the index's bytes, and its own (specific)."""
    return {
        "kind": repo.kind,
        "repository": repo.id,
        "root": root,
        "arch": arch,
        "upstream_arch": upstream_arch(repo, arch),
        **specific,
    }


def listing_key(index_checksum: str, inputs: Mapping[str, Any]) -> str:
    """The cache key: the index's "algorithm:hexdigest" and the parse's inputs (JSON values)."""
    canonical = json.dumps(
        {"format": FORMAT, "index": index_checksum, "inputs": inputs},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ListingCache:
    """The parsed-listing entries under one directory (the index cache's listings/)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str) -> list[IndexMatch] | None:
        """The entry's matches, or None when there is no usable entry for key."""
        try:
            document = json.loads(self._path(key).read_bytes())
        except (OSError, ValueError):
            return None
        if jsonschemas.problems(document, jsonschemas.LISTING_CACHE_SCHEMA, str(self._path(key))):
            return None
        if document["key"] != key:
            return None
        return [
            IndexMatch(KernelPackage(**match["package"]), match["rank"])
            for match in document["matches"]
        ]

    def store(self, key: str, index_checksum: str, matches: list[IndexMatch]) -> None:
        document = {
            "format": FORMAT,
            "key": key,
            "index": index_checksum,
            "matches": [
                {"rank": m.rank, "package": dataclasses.asdict(m.package)} for m in matches
            ],
        }
        atomic_write(self._path(key), dump_json(document))

    def get_or_parse(
        self, index_checksum: str, inputs: Mapping[str, Any], parse: Callable[[], list[IndexMatch]]
    ) -> tuple[list[IndexMatch], bool]:
        """(the index's matches, True when they came from the cache); parse() on a miss.

        parse fetches, verifies and parses the index; what it raises passes
        through and nothing is stored.
        """
        key = listing_key(index_checksum, inputs)
        cached = self.load(key)
        if cached is not None:
            return cached, True
        matches = parse()
        self.store(key, index_checksum, matches)
        return matches, False
