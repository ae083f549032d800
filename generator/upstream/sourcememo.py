"""A source's listing kept from run to run, for as long as upstream says nothing changed.

A listing (the kernel packages one repository source lists for one arch) is
a function of the index bodies its lister read and of the manifest entry it
was listed for. Most of those reads follow from earlier ones: repomd.xml
names primary.xml by checksum, InRelease names Packages.xz by SHA-256; the
rest (repomd.xml, InRelease, a mirror list, an HTML directory page, a
.asc that was not there) are the *roots*, which only the server can vouch
for. So a listing is kept with its roots (URL, ETag, Last-Modified, the
body's SHA-256, or that the server answered 404), and the next run asks
the server about each root again: when every one is unchanged (304, or the
same bytes, or still 404) the kept listing is the listing, and no index is
read from the cache, parsed or looked up. Anything else (a changed root, an
error, a memo entry from other code or another manifest entry) lists the
source as before.

Kept only for listings that checked no signature (SourceMemo.record): a
signature is checked on every run (a key can expire or be revoked while its file stays the same),
as the listing cache keeps its listings unsigned (generator.upstream.
listingcache). The key covers the manifest's repository and source entries,
the arch, the keyring the run would check signatures with, and the code of
the listers and the model (parser_digest: a fixed lister is never hidden
behind an old entry).

One file, CACHE_DIR/sources.json: a no-op run over thousands of sources
reads it once instead of three files per source. It fits
schemas/source-memo.schema.json or is ignored whole; entries unused for
KEEP_DAYS are dropped when it is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime
import functools
import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from generator import jsonschemas
from generator.codedigest import code_digest
from generator.fsutil import atomic_write
from generator.model import KernelPackage, Repository, Source
from generator.upstream.indexcache import conditional_headers

FORMAT = 1
FILE_NAME = "sources.json"
KEEP_DAYS = 30


@dataclass(frozen=True)
class IndexRead:
    """A root read: what its server answered, which the next run asks it to confirm.

    sha256 None: the server answered 404 or 410 (an absent .asc, a moved tree).
    """

    url: str  # as the manifest spells it: mirrors are applied at each request
    sha256: str | None
    etag: str | None = None
    last_modified: str | None = None

    def validators(self) -> dict[str, str]:
        """The headers that make the request conditional (none for an absent file)."""
        return conditional_headers(self.etag, self.last_modified)


# The roots the lister running in this thread has read so far (None: nobody records).
_RECORDING: contextvars.ContextVar[list[IndexRead] | None] = contextvars.ContextVar(
    "btfhub_source_reads", default=None
)


def note(url: str, body: bytes | None, etag: str | None, last_modified: str | None) -> None:
    """Tell the recording listing (if any) that url is a root it read (body None: absent)."""
    reads = _RECORDING.get()
    if reads is not None:
        digest = None if body is None else hashlib.sha256(body).hexdigest()
        reads.append(IndexRead(url, digest, etag, last_modified))


@contextlib.contextmanager
def recording() -> Iterator[list[IndexRead]]:
    """The roots read inside the block, in order (per thread: prefetch lists in threads)."""
    reads: list[IndexRead] = []
    token = _RECORDING.set(reads)
    try:
        yield reads
    finally:
        _RECORDING.reset(token)


@functools.cache
def parser_digest() -> str:
    """A digest of the listers' code and of the model they list into: what a kept
    listing was made by (another btfhub's entries are never replayed)."""
    import generator.kinds
    import generator.model
    import generator.upstream

    return code_digest(f"format {FORMAT}", (generator.upstream, generator.kinds, generator.model))


def memo_key(repo: Repository, source: Source, arch: str, keyring: str) -> str:
    """The entry's key: the manifest's entries (their repr holds every field), arch, keyring."""
    text = f"{parser_digest()}\0{repo!r}\0{source!r}\0{arch}\0{keyring}"
    return hashlib.sha256(text.encode()).hexdigest()


def _reads(entry: dict[str, Any]) -> list[IndexRead]:
    return [IndexRead(**read) for read in entry["reads"]]


Revalidate = Callable[[IndexRead], IndexRead | None]


class SourceMemo:
    """The kept listings under one cache directory; thread-safe (prefetch lists in threads)."""

    def __init__(self, directory: Path, today: datetime.date | None = None) -> None:
        self.path = directory / FILE_NAME
        self.today = (today or datetime.date.today()).isoformat()
        self._entries: dict[str, dict[str, Any]] | None = None
        self._dirty = False
        self._lock = threading.Lock()

    def _loaded(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._entries is None:
                self._entries = self._read()
            return self._entries

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            document = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        if not jsonschemas.fits(document, jsonschemas.SOURCE_MEMO_SCHEMA):
            return {}  # torn or tampered: listed afresh, rewritten at the end
        if document["parser"] != parser_digest():
            return {}  # other listers' results: never trusted
        entries: dict[str, dict[str, Any]] = document["entries"]
        return entries

    def roots(self, key: str) -> list[IndexRead] | None:
        """The roots the kept listing under key was read from; None when none is kept."""
        entry = self._loaded().get(key)
        return None if entry is None else _reads(entry)

    def replay(self, key: str, revalidate: Revalidate) -> list[KernelPackage] | None:
        """The kept listing when every root is confirmed unchanged, else None.

        revalidate(read) asks the server: the read as it stands now, or None
        when the body changed; it raises what the lister's own request would.
        """
        entry = self._loaded().get(key)
        if entry is None:
            return None
        reads = _reads(entry)
        now = []
        for read in reads:
            current = revalidate(read)
            if current is None:
                return None
            now.append(current)
        with self._lock:
            if now != reads or entry["used"] != self.today:
                entry["reads"] = [dataclasses.asdict(read) for read in now]
                entry["used"] = self.today
                self._dirty = True
        return [KernelPackage(**package) for package in entry["packages"]]

    def record(
        self, key: str, reads: list[IndexRead], packages: list[KernelPackage], keyring: bool
    ) -> None:
        """Keep a listing made now from these roots; a signed one is listed every run instead.

        A signature a lister checks marks every package it lists (signed_index);
        an empty listing of a repository with a keyring (keyring True) may have
        checked one all the same, and is not kept either.
        """
        entries = self._loaded()
        if (keyring and not packages) or any(p.signed_index is not None for p in packages):
            with self._lock:
                if entries.pop(key, None) is not None:  # kept before its index was signed
                    self._dirty = True
            return
        entry = {
            "used": self.today,
            "reads": [dataclasses.asdict(read) for read in reads],
            # A shallow copy: asdict's deep one cost seconds over 20,000 packages,
            # and every field here is a plain value (signed_index is None).
            "packages": [dict(vars(package)) for package in packages],
        }
        with self._lock:
            entries[key] = entry
            self._dirty = True

    def save(self) -> None:
        """Write the file when this run changed it, dropping entries unused for KEEP_DAYS."""
        with self._lock:
            if self._entries is None or not self._dirty:
                return
            oldest = (
                datetime.date.fromisoformat(self.today) - datetime.timedelta(days=KEEP_DAYS)
            ).isoformat()
            kept = {k: e for k, e in self._entries.items() if e["used"] >= oldest}
            document = {"format": FORMAT, "parser": parser_digest(), "entries": kept}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, orjson.dumps(document))
            self._dirty = False
