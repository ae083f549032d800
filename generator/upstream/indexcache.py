"""Index bodies kept between requests: in memory for the run, on disk between runs.

A scheduled rerun should download no index that did not change. Each body
is kept under CACHE_DIR/<sha256 of the rewritten URL>.body, with its ETag,
Last-Modified, size and SHA-256 in <same>.json, so the next request for it
is conditional (If-None-Match / If-Modified-Since) and a 304 serves the
kept body. When the caller knows what the body must be (the size and
checksum a signed Release or repomd.xml gives), a kept body that matches is
served with no request at all; one that does not is the index moving on,
and is fetched unconditionally. Within one run, a URL asked for again is
answered from memory (releases share repositories).

A torn or tampered entry (the body's SHA-256 is not the one its metadata
recorded, or the metadata names another URL) is ignored, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.fsutil import atomic_write

Expected = Callable[[bytes], bool]  # whether a body is the one the caller must have


@dataclass(frozen=True)
class CachedIndex:
    """A body kept on disk and the validators its server sent with it."""

    body: bytes
    etag: str | None
    last_modified: str | None

    def validators(self) -> dict[str, str]:
        """The headers that make a request for this body conditional."""
        return conditional_headers(self.etag, self.last_modified)


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for what the server sent with a body."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


@dataclass(frozen=True)
class Lookup:
    """What the cache can answer for a URL before any request.

    served: the answer, with no request (hit says from where: "memo" or "cache");
    stale: otherwise, a kept body the server may confirm with a 304.
    """

    served: CachedIndex | None = None
    hit: str = ""
    stale: CachedIndex | None = None


class IndexCache:
    """The index bodies of one run (memory) over a cache directory (disk; None: none)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memo: dict[str, CachedIndex] = {}
        self._lock = threading.Lock()

    def lookup(self, url: str, expected: Expected | None, immutable: bool = False) -> Lookup:
        """What is known of `url` (the rewritten one) before asking its server.

        expected: the size/checksum test a body must pass, when the caller knows
        one. immutable: the URL's answer never changes, so a kept body is served
        as it is.
        """
        memo = self.memo(url)
        if memo is not None and (expected is None or expected(memo.body)):
            return Lookup(memo, "memo")
        kept = self._load(url)
        if kept is None:
            return Lookup()
        if expected is None and immutable:
            return Lookup(self.remember(url, kept), "cache")
        if expected is not None:
            if expected(kept.body):
                return Lookup(self.remember(url, kept), "cache")
            return Lookup()  # the index moved on: fetch unconditionally
        return Lookup(stale=kept)

    def remember(self, url: str, entry: CachedIndex) -> CachedIndex:
        """entry, kept in memory for the rest of the run."""
        with self._lock:
            self._memo[url] = entry
        return entry

    def memo(self, url: str) -> CachedIndex | None:
        """What this run already holds for url (no disk read)."""
        with self._lock:
            return self._memo.get(url)

    def store(
        self, url: str, body: bytes, etag: str | None, last_modified: str | None
    ) -> CachedIndex:
        """A body the server just sent (and the caller verified), kept for this run and the next."""
        paths = self._paths(url)
        if paths is not None:
            body_path, meta_path = paths
            meta: dict[str, Any] = {
                "url": url,
                "etag": etag,
                "last_modified": last_modified,
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            }
            # Body first: the meta's sha256 guards against a crash between the writes.
            atomic_write(body_path, body)
            atomic_write(meta_path, (json.dumps(meta, sort_keys=True, indent=2) + "\n").encode())
        return self.remember(url, CachedIndex(body, etag, last_modified))

    def _paths(self, url: str) -> tuple[Path, Path] | None:
        if self.directory is None:
            return None
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.directory / f"{key}.body", self.directory / f"{key}.json"

    def _load(self, url: str) -> CachedIndex | None:
        paths = self._paths(url)
        if paths is None:
            return None
        body_path, meta_path = paths
        try:
            meta = json.loads(meta_path.read_text())
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if meta.get("url") != url or meta.get("sha256") != hashlib.sha256(body).hexdigest():
            return None
        return CachedIndex(body, meta.get("etag"), meta.get("last_modified"))
