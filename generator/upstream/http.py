"""The one HTTP client btfhub uses: mirrors, retries, an index cache, verified streams.

Two kinds of download, with different needs:

- Indexes (Release, Packages.xz, repomd.xml, primary.xml.gz) are small and
  read whole: ``get_index`` keeps them in an on-disk cache keyed by the
  rewritten URL and revalidates with If-None-Match / If-Modified-Since, so a
  scheduled rerun re-downloads no index that did not change. When the caller
  knows the expected checksum (from Release or repomd.xml) a matching cached
  body is served without any request at all.
- Packages (0.3 to 1.7 GB) are streamed: ``open_stream`` hands out a
  file-like object that counts and hashes the bytes as the reader pulls them.

Every package is verified in full before anything derived from it is
published. Readers stop as soon as vmlinux is out (often within the first
fifth of an Ubuntu ddeb), but the package's SHA-256 covers the whole file:
the build (generator.verify) then drains the rest of the stream through the
hash, with no decompression, while pahole runs, and publishes only when
size and SHA-256 match the index. Size and digest are checked whenever the
stream reaches EOF, and a mismatch raises PackageError from that read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.cookies import extract_cookies_to_jar as _untyped_extract_cookies
from requests.sessions import merge_setting as _untyped_merge_setting
from requests.structures import CaseInsensitiveDict
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import ProtocolError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from generator import __version__
from generator.errors import PackageError, UpstreamError
from generator.fsutil import atomic_write
from generator.trust import TrustPolicy
from generator.upstream.credentials import Credentials
from generator.upstream.listingcache import SUBDIR, IndexMatch, ListingCache
from generator.upstream.mirrors import Mirrors

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
ATTEMPTS = 4
BACKOFF = 1.0  # seconds; attempt n waits BACKOFF * 2**(n-1)
MAX_RETRY_AFTER = 60.0  # never sleep longer than this on a server's Retry-After
USER_AGENT = f"btfhub/{__version__}"
CHUNK = 1 << 20
BUFFER = 1 << 18  # package reads: few syscalls for the small ar/tar/cpio header reads

# Statuses worth another attempt: rate limiting and server errors.
RETRY_STATUSES = frozenset([429, *range(500, 600)])
RAW_TRANSIENT = (urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class Cause:
    """Why a request failed, in plain words, and whether a retry could help."""

    text: str  # e.g. "the host name does not resolve"
    unreachable: bool  # the host could not be reached at all (a mirror would help)
    final: bool  # retrying cannot fix it (name resolution, TLS verification)
    host: str = ""  # the host contacted (a mirror's, when one is used)


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and its causes: requests wraps urllib3's MaxRetryError, whose reason is the cause."""
    found: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in found:
        found.append(seen)
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else seen.__context__
    return found


def transport_cause(exc: BaseException) -> Cause:
    """The plain-words cause of a requests exception."""
    chain = _chain(exc)

    def has(*types: type[BaseException]) -> bool:
        return any(isinstance(e, types) for e in chain)

    if has(urllib3.exceptions.NameResolutionError):
        return Cause("the host name does not resolve", unreachable=True, final=True)
    if has(urllib3.exceptions.SSLError, requests.exceptions.SSLError):
        return Cause("TLS verification failed", unreachable=False, final=True)
    if has(ConnectionRefusedError):
        return Cause("the connection was refused", unreachable=True, final=False)
    # urllib3's NewConnectionError is a ConnectTimeoutError too: test for it first.
    if has(urllib3.exceptions.NewConnectionError):
        return Cause("no connection could be made", unreachable=True, final=False)
    if has(urllib3.exceptions.ConnectTimeoutError, requests.ConnectTimeout):
        return Cause("the connection timed out", unreachable=True, final=False)
    return Cause(type(exc).__name__, unreachable=False, final=False)


def _retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES


def backoff_delay(backoff: float, failures: int) -> float:
    """The wait after the n-th failed attempt: backoff * 2**(n-1)."""
    return backoff * (2 ** (failures - 1)) if failures > 0 else 0.0


class RetryPolicy(Retry):
    """urllib3's Retry with btfhub's rules, mounted on the client's session.

    Each failed attempt waits BACKOFF * 2**(n-1), or the server's Retry-After
    when longer (at most MAX_RETRY_AFTER), through an injectable sleep (tests
    record the waits instead). A host name that does not resolve fails at
    once; so does a TLS verification failure (urllib3 counts it as an
    "other" error, of which none are allowed). Every retry is reported to
    on_retry (the client's request counters).
    """

    def __init__(
        self,
        *args: Any,
        sleep_fn: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.sleep_fn = sleep_fn
        self.on_retry = on_retry

    @classmethod
    def for_attempts(
        cls,
        attempts: int,
        backoff: float,
        sleep_fn: Callable[[float], None],
        on_retry: Callable[[], None] | None,
    ) -> RetryPolicy:
        retries = attempts - 1
        return cls(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=None,  # requests follows redirects itself
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff,
            raise_on_status=False,  # the last response is returned: its status is the message
            sleep_fn=sleep_fn,
            on_retry=on_retry,
        )

    def new(self, **kw: Any) -> Self:
        kw.setdefault("sleep_fn", self.sleep_fn)
        kw.setdefault("on_retry", self.on_retry)
        return super().new(**kw)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        policy = self
        if isinstance(error, urllib3.exceptions.NameResolutionError):
            # Retrying cannot make a name resolve: no attempts left, so urllib3 gives up.
            policy = self.new(total=0)
        new = super(RetryPolicy, policy).increment(method, url, response, error, _pool, _stacktrace)
        if self.on_retry is not None:
            self.on_retry()
        return new

    def get_backoff_time(self) -> float:
        return backoff_delay(self.backoff_factor, len(self.history))

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        delay = self.get_backoff_time()
        if response is not None and self.respect_retry_after_header:
            delay = max(delay, min(self.get_retry_after(response) or 0.0, MAX_RETRY_AFTER))
        if delay > 0:
            self.sleep_fn(delay)


# requests' own merge rule for a request's and the session's setting, and its
# cookie extraction (untyped upstream).
merge_setting: Callable[[Any, Any], Any] = _untyped_merge_setting
extract_cookies_to_jar: Callable[[Any, Any, Any], None] = _untyped_extract_cookies


class _Session(requests.Session):
    """A requests.Session that reads the proxy environment once per host.

    requests looks up the proxy variables (walking all of os.environ) and the
    CA bundle variables for every request: 0.4 ms each, 1.5 s of a no-op run
    over 3,500 rpm-md repositories. The environment does not change during a
    run, so the answer per scheme and host (no_proxy depends on the host) is
    kept; everything else is requests' own merging.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environ: dict[tuple[str, str], dict[str, str]] = {}
        self._netrc: dict[tuple[str, str], tuple[str, str] | None] = {}
        self._environ_lock = threading.Lock()

    def _environ_proxies(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        with self._environ_lock:
            found = self._environ.get(key)
            if found is None:
                found = self._environ[key] = requests.utils.get_environ_proxies(url)
            return found

    def _netrc_auth(self, url: str) -> tuple[str, str] | None:
        """requests' ~/.netrc (or $NETRC) credentials for url's host, looked up once per host."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        with self._environ_lock:
            if key not in self._netrc:
                self._netrc[key] = requests.utils.get_netrc_auth(url)
            return self._netrc[key]

    def get_direct(
        self, url: str, *, headers: dict[str, str], stream: bool, timeout: Any, **options: Any
    ) -> requests.Response:
        """A GET sent straight to the mounted adapter, as Session.get sends it.

        For the thousands of small index requests of a run (mostly 304s on
        loopback or a LAN mirror), Session.request's preparation (cookie jar
        merges, a ~/.netrc read, header and hook merging) cost as much as the
        request itself (3,500 304s: 2.40 s against 1.28 s this way, 1.05 s
        as bare urllib3 calls). The request built here is the one requests would
        build: the same URL normalisation, session headers, auth (options,
        then ~/.netrc per host), proxies and CA bundle (merge_environment_settings),
        and the same adapter, so retries (RetryPolicy), TLS and the
        exceptions raised are requests' own. What this path does not do it
        hands back to Session.get: a session with cookies or hooks, and a
        redirect, which the caller follows with Session.get (see
        UpstreamClient._send).
        """
        if self.cookies or self.params or self.auth or any(self.hooks.values()):
            return self.get(url, headers=headers, stream=stream, timeout=timeout, **options)
        auth = options.get("auth")
        if auth is None and self.trust_env:
            auth = self._netrc_auth(url)
        merged = CaseInsensitiveDict(self.headers)
        merged.update(headers)
        request = requests.PreparedRequest()
        request.prepare_method("GET")
        request.prepare_url(url, None)
        request.prepare_headers(merged)
        request.prepare_body(None, None)
        request.prepare_auth(auth, url)
        settings = self.merge_environment_settings(
            request.url, {}, stream, options.get("verify"), options.get("cert")
        )
        response: requests.Response = self.get_adapter(url).send(
            request,
            stream=settings["stream"],
            timeout=timeout,
            verify=settings["verify"],
            cert=settings["cert"],
            proxies=settings["proxies"],
        )
        if "Set-Cookie" in response.headers:
            # Kept as Session.send keeps them; later requests then take Session.get.
            extract_cookies_to_jar(self.cookies, request, response.raw)
        if not stream and not response.is_redirect:
            response.content  # noqa: B018 (read the body now, as Session.send does)
        return response

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:  # requests' private _Settings TypedDict
        if not self.trust_env or (proxies and "no_proxy" in proxies):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        merged = dict(proxies or {})
        for scheme, proxy in self._environ_proxies(url).items():
            merged.setdefault(scheme, proxy)
        if verify is True or verify is None:
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
            )
        return {
            "proxies": merge_setting(merged, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }


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
    """What the client did; tests assert on it and the CLI prints it."""

    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0  # requests that were repeats of a failed one
    index_bytes: int = 0  # index body bytes received from the network
    package_bytes: int = 0  # package bytes handed to readers
    not_modified: int = 0  # 304 answers: the cached index body was served
    cache_hits: int = 0  # indexes served from the cache with no request (checksum known)
    memo_hits: int = 0  # indexes asked for again within this run
    # Of cache_hits: indexes whose parsed listing was reused (generator.upstream.listingcache),
    # so their bodies were neither read nor parsed.
    listing_hits: int = 0


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


@dataclass(frozen=True)
class _Cached:
    body: bytes
    etag: str | None
    last_modified: str | None


class UpstreamClient:
    """A requests.Session with mirrors, bounded retries and an index cache.

    Safe to share between threads: requests' connection pool is, and the
    counters and the in-memory index memo are guarded by a lock.
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
        trust: TrustPolicy | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.mirrors = mirrors or Mirrors()
        # The keys signatures are checked against (BTFHUB_KEYRINGS when not given).
        self.trust = trust if trust is not None else TrustPolicy.from_sources()
        self.cache_dir = cache_dir
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.stats = HttpStats()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._memo: dict[str, bytes] = {}
        # Beside the index bodies: what each index listed, parsed.
        self.listings = ListingCache(cache_dir / SUBDIR) if cache_dir is not None else None
        self.retry = RetryPolicy.for_attempts(
            attempts, backoff, sleep, lambda: self._count(requests=1, retries=1)
        )
        # Public URL prefix -> credentials for the repository under it.
        self._credentials: dict[str, Credentials] = {}
        self.session = _Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # Checksums are over the bytes as published: never let a server or proxy
        # re-encode them (requests would transparently gunzip a Content-Encoding).
        self.session.headers["Accept-Encoding"] = "identity"
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=8, pool_maxsize=16, max_retries=self.retry
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()
        self.trust.close()

    def __enter__(self) -> UpstreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authorize(self, prefix: str, credentials: Credentials) -> None:
        """Send `credentials` with every request for a URL under `prefix` (public form).

        Matched on the URL the manifest names, before mirror rewriting, so a
        private mirror of a subscription repository gets the same credentials.
        """
        with self._lock:
            self._credentials[prefix] = credentials

    def _request_options(self, url: str) -> dict[str, Any]:
        with self._lock:
            prefixes = [p for p in self._credentials if url.startswith(p)]
            if not prefixes:
                return {}
            creds = self._credentials[max(prefixes, key=len)]
        options: dict[str, Any] = {}
        if creds.cert is not None:
            options["cert"] = creds.cert
        if creds.ca is not None:
            options["verify"] = creds.ca
        if creds.auth is not None:
            options["auth"] = creds.auth
        return options

    def where(self, url: str) -> str:
        """The URL for a message: the rewritten one, and the original when different."""
        rewritten = self.mirrors.rewrite(url)
        return url if rewritten == url else f"{rewritten} (mirror of {url})"

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    # -- requests with retries -------------------------------------------------

    def _wait(self, attempt: int, response: requests.Response | None) -> None:
        """The backoff after failed attempt `attempt` (a package stream reconnecting)."""
        del response  # a package stream reconnects after a transport failure: no headers
        delay = backoff_delay(self.backoff, attempt)
        if delay > 0:
            self._sleep(delay)

    def _send(
        self,
        url: str,
        *,
        headers: dict[str, str],
        stream: bool,
        error: Callable[[str, Cause], Exception],
        direct: bool = False,
    ) -> requests.Response:
        """GET through the session's RetryPolicy; the first response it does not retry.

        A response with a retryable status comes back only once the attempts
        are used up, and is an error here. Failures retrying cannot fix (a
        name that does not resolve, a TLS verification failure) fail at once.
        direct: through _Session.get_direct (indexes: many small requests);
        a redirect it meets is followed by Session.get, asking again.
        """
        rewritten = self.mirrors.rewrite(url)
        options = self._request_options(url)
        host = urlsplit(rewritten).netloc
        retry = self.retry
        while True:
            self._count(requests=1)
            try:
                get = self.session.get_direct if direct else self.session.get
                response = get(
                    rewritten, headers=headers, stream=stream, timeout=self.timeout, **options
                )
                if direct and response.is_redirect:
                    response.close()
                    self._count(requests=1)
                    response = self.session.get(
                        rewritten, headers=headers, stream=stream, timeout=self.timeout, **options
                    )
            except requests.exceptions.SSLError as exc:  # before ConnectionError: a subclass
                cause = replace(transport_cause(exc), host=host)
                raise error(f"{self.where(url)}: {cause.text} ({exc})", cause) from exc
            except requests.exceptions.ChunkedEncodingError as exc:
                # A body cut short (urllib3's IncompleteRead, e.g. a proxy dropping
                # us): requests reads the body after urllib3's retries are done, so
                # the attempt is counted against the same policy here.
                try:
                    retry = retry.increment("GET", rewritten, error=ProtocolError(str(exc)))
                except urllib3.exceptions.MaxRetryError:
                    cause = Cause("the body was cut short", unreachable=False, final=False)
                    raise error(
                        f"{self.where(url)}: {type(exc).__name__}: {exc} "
                        f"(gave up after {self.attempts} attempts)",
                        replace(cause, host=host),
                    ) from exc
                retry.sleep()
                continue
            except requests.ConnectionError as exc:
                cause = replace(transport_cause(exc), host=host)
                failure = f"{type(exc).__name__}: {exc}"
                if cause.final:
                    raise error(f"{self.where(url)}: {cause.text} ({failure})", cause) from exc
                raise error(
                    f"{self.where(url)}: {failure} (gave up after {self.attempts} attempts)", cause
                ) from exc
            except requests.RequestException as exc:  # invalid URL, too many redirects ...
                cause = Cause(type(exc).__name__, unreachable=False, final=True, host=host)
                raise error(f"{self.where(url)}: {type(exc).__name__}: {exc}", cause) from exc
            if not _retryable_status(response.status_code):
                return response
            failure = f"HTTP {response.status_code} {response.reason}"
            response.close()
            raise error(
                f"{self.where(url)}: {failure} (gave up after {self.attempts} attempts)",
                Cause(failure, unreachable=False, final=False, host=host),
            )

    # -- indexes ---------------------------------------------------------------

    def _cache_paths(self, rewritten: str) -> tuple[Path, Path] | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(rewritten.encode()).hexdigest()
        return self.cache_dir / f"{key}.body", self.cache_dir / f"{key}.json"

    def _load_cache(self, rewritten: str) -> _Cached | None:
        paths = self._cache_paths(rewritten)
        if paths is None:
            return None
        body_path, meta_path = paths
        try:
            meta = json.loads(meta_path.read_text())
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        # A torn or tampered cache entry is ignored, never trusted.
        if meta.get("url") != rewritten or meta.get("sha256") != hashlib.sha256(body).hexdigest():
            return None
        return _Cached(body, meta.get("etag"), meta.get("last_modified"))

    def _store_cache(self, rewritten: str, body: bytes, response: requests.Response) -> None:
        paths = self._cache_paths(rewritten)
        if paths is None:
            return
        body_path, meta_path = paths
        meta: dict[str, Any] = {
            "url": rewritten,
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        # Body first: the meta's sha256 guards against a crash between the writes.
        atomic_write(body_path, body)
        atomic_write(meta_path, (json.dumps(meta, sort_keys=True, indent=2) + "\n").encode())

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
        file list), so a cached body is served without asking again.
        """
        rewritten = self.mirrors.rewrite(url)

        def expected(body: bytes) -> bool:
            return (size is None or len(body) == size) and (
                checksum is None or checksum.matches(body)
            )

        with self._lock:
            memo = self._memo.get(rewritten)
        if memo is not None and expected(memo):
            self._count(memo_hits=1)
            return memo

        cached = self._load_cache(rewritten)
        headers: dict[str, str] = {}
        if cached is not None and immutable and size is None and checksum is None:
            self._count(cache_hits=1)
            return self._remember(rewritten, cached.body)
        if cached is not None and (size is not None or checksum is not None):
            if expected(cached.body):
                self._count(cache_hits=1)
                return self._remember(rewritten, cached.body)
            cached = None  # the index moved on: fetch unconditionally
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified

        response = self._send(
            url,
            headers=headers,
            stream=False,
            error=lambda m, c: UpstreamIndexError(m, url, c.text, c.unreachable, c.host),
            direct=True,
        )
        with response:
            if response.status_code == 304 and cached is not None:
                self._count(not_modified=1)
                return self._remember(rewritten, cached.body)
            if response.status_code != 200:
                status = f"HTTP {response.status_code} {response.reason}"
                raise UpstreamIndexError(
                    f"{self.where(url)}: {status}", url, status, status=response.status_code
                )
            body = response.content
        self._count(index_bytes=len(body))
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
        self._store_cache(rewritten, body, response)
        return self._remember(rewritten, body)

    def listing(
        self,
        checksum: Checksum,
        inputs: Mapping[str, Any],
        parse: Callable[[], list[IndexMatch]],
    ) -> list[IndexMatch]:
        """What an index lists, parsed: from the listing cache when an entry for this
        checksum and these parse inputs exists, else parse() (which fetches the index
        through get_index) and remember the result. Without a cache_dir: parse()."""
        if self.listings is None:
            return parse()
        index = f"{checksum.algorithm}:{checksum.hexdigest.lower()}"
        matches, hit = self.listings.get_or_parse(index, inputs, parse)
        if hit:
            self._count(cache_hits=1, listing_hits=1)
        return matches

    def find_index(self, url: str) -> bytes | None:
        """get_index for a file that may not exist (InRelease, repomd.xml.asc): None on 404/410."""
        try:
            return self.get_index(url)
        except UpstreamIndexError as exc:
            if exc.status in (404, 410):
                return None
            raise

    def _remember(self, rewritten: str, body: bytes) -> bytes:
        with self._lock:
            self._memo[rewritten] = body
        return body

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
        stream = PackageStream(_PackageRaw(self, url, expected_size, expected_sha256, on_bytes))
        try:
            yield stream
        finally:
            stream.close()


class _PackageRaw(io.RawIOBase):
    """Counts and hashes bytes as the reader pulls them; verifies at EOF.

    A connection failure before the first byte reaches the reader is retried
    (the reader has seen nothing, so starting over is invisible to it); after
    that it is a PackageError, since the reader's state cannot be rewound.
    """

    def __init__(
        self,
        client: UpstreamClient,
        url: str,
        size: int | None,
        sha256: str | None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self._on_bytes = on_bytes
        self._client = client
        self.url = url
        self.expected_size = size
        self.expected_sha256 = sha256.lower() if sha256 is not None else None
        self.bytes_read = 0
        self.verified = False  # True once size (and SHA-256, if known) were checked at EOF
        self._hash = hashlib.sha256()
        self._eof = False
        self._response: requests.Response | None = None
        self._connect()

    def _fail(self, message: str) -> PackageError:
        return PackageError(f"{self._client.where(self.url)}: {message}")

    def _connect(self) -> None:
        response = self._client._send(
            self.url, headers={}, stream=True, error=lambda m, _: PackageError(m)
        )
        if response.status_code != 200:
            response.close()
            raise self._fail(f"HTTP {response.status_code} {response.reason}")
        length = response.headers.get("Content-Length")
        if (
            self.expected_size is not None
            and length is not None
            and length.isdigit()
            and int(length) != self.expected_size
        ):
            response.close()
            raise self._fail(
                f"server announces {length} bytes, but the index says {self.expected_size}"
            )
        self._response = response

    def _read_raw(self, n: int) -> bytes:
        attempt = 1
        while True:
            assert self._response is not None
            try:
                data: bytes = self._response.raw.read(n, decode_content=False)
                return data
            except RAW_TRANSIENT as exc:
                if self.bytes_read > 0 or attempt >= self._client.attempts:
                    raise self._fail(
                        f"connection failed after {self.bytes_read} bytes: {exc}"
                    ) from exc
            self._response.close()
            self._client._wait(attempt, None)
            attempt += 1
            self._connect()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("read from a closed package stream")
        if self._eof:
            return 0
        view = memoryview(buffer).cast("B")
        data = self._read_raw(len(view))
        if not data:
            self._eof = True
            self._verify()
            return 0
        self.bytes_read += len(data)
        self._client._count(package_bytes=len(data))
        if self._on_bytes is not None:
            self._on_bytes(len(data))
        if self.expected_size is not None and self.bytes_read > self.expected_size:
            raise self._fail(f"more than the {self.expected_size} bytes the index says")
        self._hash.update(data)
        view[: len(data)] = data
        return len(data)

    def _verify(self) -> None:
        if self.expected_size is not None and self.bytes_read != self.expected_size:
            raise self._fail(f"{self.bytes_read} bytes, but the index says {self.expected_size}")
        digest = self._hash.hexdigest()
        if self.expected_sha256 is not None and digest != self.expected_sha256:
            raise self._fail(
                f"sha256 {digest} does not match {self.expected_sha256} from the index"
            )
        self.verified = True

    def close(self) -> None:
        if self._response is not None:
            # Closing (not releasing) drops the socket when unread bytes remain,
            # instead of reading the rest of a large package to reuse it.
            self._response.close()
            self._response = None
        super().close()


class PackageStream(io.BufferedReader):
    """What open_stream yields: a buffered binary file over the verified raw stream."""

    def __init__(self, raw: _PackageRaw) -> None:
        super().__init__(raw, BUFFER)
        self._package = raw

    @property
    def verified(self) -> bool:
        """True once the stream was read to EOF and size and SHA-256 (if known) matched."""
        return self._package.verified

    @property
    def has_index_digest(self) -> bool:
        return self._package.expected_sha256 is not None

    @property
    def bytes_received(self) -> int:
        return self._package.bytes_read

    def drain(self) -> None:
        """Read and hash the rest, raising PackageError unless size and SHA-256 match.

        The bytes are only hashed, never decompressed; safe to call from another
        thread once the reader is done with the stream.
        """
        while self.read(CHUNK):
            pass
