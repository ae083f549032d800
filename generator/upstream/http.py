"""The one HTTP client btfhub uses: indexes (cached) and packages (streamed, verified).

Two kinds of download, with different needs, over one transport
(generator.upstream.transport: urllib3, one retry policy, mirrors applied
here before any request):

- Indexes (Release, Packages.xz, repomd.xml, primary.xml.gz) are small and
  read whole: ``get_index`` serves them from the index cache
  (generator.upstream.indexcache) when it can, revalidates with a
  conditional GET otherwise, and checks size and checksum when the caller
  knows them.
- Packages (0.3 to 1.7 GB) are streamed: ``open_stream`` hands out a
  PackageStream (generator.upstream.packagestream) that hashes the bytes as
  the reader pulls them, takes a dropped connection up again with Range,
  and checks size and SHA-256 at the end.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

import urllib3.exceptions
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from generator.errors import PackageError, UpstreamError
from generator.upstream import sourcememo
from generator.upstream.credentials import Credentials
from generator.upstream.indexcache import CachedIndex, IndexCache
from generator.upstream.mirrors import Mirrors
from generator.upstream.packagestream import PackageBody, PackageStream
from generator.upstream.sourcememo import IndexRead
from generator.upstream.transport import (
    ATTEMPTS,
    BACKOFF,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    RETRY_STATUSES,
    Cause,
    RetryPolicy,
    Transport,
    transport_cause,
)

# What a server answers for a file that is not there (moved, never published), not down.
GONE = frozenset({404, 410})


@dataclass(frozen=True)
class Checksum:
    """An expected digest, as an index lists it ("sha256", "sha1", "sha512")."""

    algorithm: str
    hexdigest: str

    def of(self, data: bytes) -> str:
        return hashlib.new(self.algorithm, data).hexdigest()

    def matches(self, data: bytes) -> bool:
        return self.of(data) == self.hexdigest.lower()


@dataclass
class HttpStats:
    """What the client did; tests assert on it. Counted through add() (threads share it)."""

    requests: int = 0  # HTTP requests sent, retries and redirects included
    retries: int = 0  # requests that were repeats of a failed one
    index_bytes: int = 0  # index body bytes received from the network
    package_bytes: int = 0  # package bytes handed to readers
    not_modified: int = 0  # 304 answers: the cached index body was served
    cache_hits: int = 0  # indexes served from the cache with no request (checksum known)
    memo_hits: int = 0  # indexes asked for again within this run
    # Sources whose listing an earlier run kept, all roots confirmed (upstream/sourcememo.py).
    source_hits: int = 0
    # Of cache_hits: indexes whose parsed listing was reused (generator.upstream.listingcache),
    # so their bodies were neither read nor parsed.
    listing_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def counts(self) -> dict[str, int]:
        """Every count by name (what a worker process hands back to add())."""
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}


class UpstreamIndexError(UpstreamError):
    """An index could not be fetched or read; ``url`` is the one the manifest names.

    cause says why in plain words ("the host name does not resolve", "HTTP
    404 Not Found"); unreachable is True when the host could not be reached;
    status is the HTTP status when the server answered with an error.
    """

    def __init__(
        self,
        message: str,
        url: str,
        cause: str = "",
        unreachable: bool = False,
        host: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.cause = cause or message
        self.unreachable = unreachable
        self.host = host or urlsplit(url).netloc  # the host contacted
        self.status = status


class UpstreamClient:
    """Mirrors, the index cache and package streams over one Transport.

    Safe to share between threads: urllib3's pools are, and so are the
    index cache and the counters.
    """

    def __init__(
        self,
        *,
        mirrors: Mirrors | None = None,
        cache_dir: Path | None = None,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.mirrors = mirrors or Mirrors()
        self.cache_dir = cache_dir
        self.attempts = attempts
        self.stats = HttpStats()
        self.indexes = IndexCache(cache_dir)
        retry = RetryPolicy.for_attempts(
            attempts, backoff, sleep, lambda: self.stats.add(requests=1, retries=1)
        )
        self.transport = Transport(retry, timeout, lambda: self.stats.add(requests=1))

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> UpstreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authorize(self, prefix: str, credentials: Credentials) -> None:
        """Send `credentials` with every request for a URL under `prefix` (public form).

        Matched on the URL the manifest names, before mirror rewriting, so a
        private mirror of a subscription repository gets the same credentials;
        they go to that URL's host only, never to where it redirects.
        """
        self.transport.authorize(prefix, credentials)

    def where(self, url: str) -> str:
        """The URL for a message: the rewritten one, and the original when different."""
        rewritten = self.mirrors.rewrite(url)
        return url if rewritten == url else f"{rewritten} (mirror of {url})"

    def _request(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        preload: bool,
        error: Callable[[str, Cause], Exception],
        retries: Retry | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> BaseHTTPResponse:
        """GET url's mirror through the transport: the first answer it does not retry.

        An answer with a retryable status comes back only once the attempts
        are used up, and is an error here; so is a failure urllib3 gave up on
        (at once for those retrying cannot fix: a name that does not resolve,
        TLS verification).
        """
        rewritten = self.mirrors.rewrite(url)
        host = urlsplit(rewritten).netloc
        try:
            response = self.transport.open(
                url, rewritten, headers, preload=preload, retries=retries, method=method, body=body
            )
        except urllib3.exceptions.HTTPError as exc:
            cause = replace(transport_cause(exc), host=host)
            reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
            detail = f"{cause.text} ({reason})"
            if not cause.final:
                detail += f" (gave up after {self.attempts} attempts)"
            raise error(f"{self.where(url)}: {detail}", cause) from exc
        if response.status in RETRY_STATUSES:
            failure = f"HTTP {response.status} {response.reason}"
            response.close()
            raise error(
                f"{self.where(url)}: {failure} (gave up after {self.attempts} attempts)",
                Cause(failure, unreachable=False, final=False, host=host),
            )
        return response

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        error: Callable[[str, Cause], Exception],
        *,
        body: bytes | None = None,
        preload: bool = True,
    ) -> BaseHTTPResponse:
        """Any request (an OCI registry's HEAD, POST, PUT) under the run's one retry policy.

        Retried like a GET: the registry calls btfhub makes are idempotent
        (a blob or manifest PUT names its digest or tag; a repeated upload
        POST only opens another session). An answer with a retryable status,
        once the attempts are used up, or a failure urllib3 gave up on, is
        error(message, cause); any other answer is the caller's to read.
        """
        retries = self.transport.retry.new(allowed_methods=None)  # None: every method
        return self._request(
            url, headers, preload=preload, error=error, retries=retries, method=method, body=body
        )

    # -- indexes ---------------------------------------------------------------

    def get_index(
        self,
        url: str,
        *,
        size: int | None = None,
        checksum: Checksum | None = None,
        immutable: bool = False,
    ) -> bytes:
        """The body of an index file, verified against size/checksum when given.

        immutable: the URL's answer never changes (a Launchpad publication's
        file list), so a cached body is served without asking again. A read
        that neither knows its body nor is immutable is a root of the listing
        being recorded, if one is (generator.upstream.sourcememo).
        """
        rewritten = self.mirrors.rewrite(url)

        def expected(body: bytes) -> bool:
            return (size is None or len(body) == size) and (
                checksum is None or checksum.matches(body)
            )

        root = size is None and checksum is None and not immutable
        found = self.indexes.lookup(rewritten, None if root else expected, immutable)
        if found.served is not None:
            self.stats.add(**{f"{found.hit}_hits": 1})
            return self._read(url, found.served, root)
        response = self._index_request(url, found.stale)
        if response.status == 304 and found.stale is not None:
            self.stats.add(not_modified=1)
            return self._read(url, self.indexes.remember(rewritten, found.stale), root)
        if response.status != 200:
            if root and response.status in GONE:
                sourcememo.note(url, None, None, None)
            raise self._status_error(url, response)
        body = response.data
        self.stats.add(index_bytes=len(body))
        if size is not None and len(body) != size:
            raise UpstreamIndexError(
                f"{self.where(url)}: {len(body)} bytes, but the index listing it says {size}",
                url,
            )
        if checksum is not None and not checksum.matches(body):
            raise UpstreamIndexError(
                f"{self.where(url)}: {checksum.algorithm} {checksum.of(body)} does not match "
                f"{checksum.hexdigest} from the index listing it",
                url,
            )
        etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
        return self._read(url, self.indexes.store(rewritten, body, etag, modified), root)

    def _index_request(self, url: str, stale: CachedIndex | IndexRead | None) -> BaseHTTPResponse:
        return self._request(
            url,
            stale.validators() if stale is not None else {},
            preload=True,
            error=lambda m, c: UpstreamIndexError(m, url, c.text, c.unreachable, c.host),
        )

    def _status_error(self, url: str, response: BaseHTTPResponse) -> UpstreamIndexError:
        """An index request answered with neither the body nor a 304."""
        status = f"HTTP {response.status} {response.reason}"
        return UpstreamIndexError(
            f"{self.where(url)}: {status}", url, status, status=response.status
        )

    @staticmethod
    def _read(url: str, entry: CachedIndex, root: bool) -> bytes:
        if root:
            sourcememo.note(url, entry.body, entry.etag, entry.last_modified)
        return entry.body

    def revalidate(self, read: IndexRead) -> IndexRead | None:
        """A recorded root as its server answers now; None when its body changed.

        One request (conditional when the read has validators), nothing read
        from the disk cache: 304, the same bytes again or still 404 confirm
        it. A new body is verified by nothing here, so it is only kept in the
        index cache for the listing that follows. Errors are get_index's.
        """
        rewritten = self.mirrors.rewrite(read.url)
        held = self.indexes.memo(rewritten)
        if held is not None:  # another source read it earlier in this run
            same = hashlib.sha256(held.body).hexdigest() == read.sha256
            return replace(read, etag=held.etag, last_modified=held.last_modified) if same else None
        response = self._index_request(read.url, read if read.sha256 is not None else None)
        if response.status == 304 and read.sha256 is not None:
            self.stats.add(not_modified=1)
            return read
        if response.status in GONE:
            return read if read.sha256 is None else None
        if response.status != 200:
            raise self._status_error(read.url, response)
        body = response.data
        self.stats.add(index_bytes=len(body))
        etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
        self.indexes.store(rewritten, body, etag, modified)
        if hashlib.sha256(body).hexdigest() != read.sha256:
            return None
        return IndexRead(read.url, read.sha256, etag, modified)

    def find_index(self, url: str) -> bytes | None:
        """get_index for a file that may not exist (InRelease, repomd.xml.asc): None on 404/410."""
        try:
            return self.get_index(url)
        except UpstreamIndexError as exc:
            if exc.status in GONE:
                return None
            raise

    # -- packages --------------------------------------------------------------

    @contextmanager
    def open_stream(
        self,
        url: str,
        expected_size: int | None,
        expected_sha256: str | None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> Iterator[PackageStream]:
        """A verified byte stream of a package; the connection closes on exit.

        expected_sha256 None (an index that lists no digest): only the size is
        checked here; the caller verifies the package another way. With
        expected_size None too (an HTML listing gives neither) the server's
        Content-Length is all there is, which the transport enforces.
        on_bytes is called with each chunk's length as the reader pulls it
        (a progress bar).
        """

        def opener(headers: Mapping[str, str], retries: Retry) -> BaseHTTPResponse:
            return self._request(
                url, headers, preload=False, retries=retries, error=lambda m, _: PackageError(m)
            )

        def received(n: int) -> None:
            self.stats.add(package_bytes=n)
            if on_bytes is not None:
                on_bytes(n)

        stream = PackageStream(
            PackageBody(
                opener,
                self.transport.retry,
                self.where(url),
                expected_size,
                expected_sha256,
                received,
            )
        )
        try:
            yield stream
        finally:
            stream.close()
