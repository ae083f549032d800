"""The one HTTP transport: urllib3's pools and its Retry, with the environment's proxies.

Every request btfhub sends (indexes, packages, a hub's own files) goes
through Transport.open: one urllib3 PoolManager per proxy and TLS identity,
one retry policy (RetryPolicy, urllib3's Retry: connect, read and status
failures, the backoff, Retry-After), the proxy variables (http_proxy,
https_proxy, all_proxy, no_proxy) and ~/.netrc read once per host, and a
repository's credentials sent only to the host the request is for.

urllib3 rather than requests: a scheduled run sends thousands of small
conditional GETs (mostly 304s from a near mirror), and requests' Session
spent as long preparing each one as sending it (bench/README.md).

Redirects are followed here rather than by urllib3, so that credentials
never leave their host: a redirect to another scheme, host or port drops
the Authorization header and the TLS client certificate, as requests drops
the header (its `rebuild_auth`).
"""

from __future__ import annotations

import netrc
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import urllib3
import urllib3.exceptions
from urllib3.connectionpool import ConnectionPool
from urllib3.response import BaseHTTPResponse
from urllib3.util import make_headers
from urllib3.util.retry import Retry

from generator import __version__
from generator.upstream.credentials import Credentials

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
ATTEMPTS = 4
BACKOFF = 1.0  # urllib3's backoff_factor: the n-th retry waits BACKOFF * 2**(n-1), the first none
MAX_RETRY_AFTER = 60.0  # never sleep longer than this on a server's Retry-After
MAX_REDIRECTS = 10
USER_AGENT = f"btfhub/{__version__}"
# Statuses worth another attempt: rate limiting and server errors.
RETRY_STATUSES = frozenset([429, *range(500, 600)])


class TooManyRedirects(urllib3.exceptions.HTTPError):
    """A chain of redirects longer than MAX_REDIRECTS (a loop, most likely)."""


@dataclass(frozen=True)
class Cause:
    """Why a request failed, in plain words, and whether a retry could help."""

    text: str  # e.g. "the host name does not resolve"
    unreachable: bool  # the host could not be reached at all (a mirror would help)
    final: bool  # retrying cannot fix it (name resolution, TLS verification)
    host: str = ""  # the host contacted (a mirror's, when one is used)


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and its causes: urllib3's MaxRetryError keeps the last failure as its reason."""
    found: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in found:
        found.append(seen)
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else seen.__context__
    return found


# The causes a failure's chain is searched for, first match wins. urllib3's
# NewConnectionError is a ConnectTimeoutError too: it comes first.
_CAUSES: tuple[tuple[tuple[type[BaseException], ...], Cause], ...] = (
    (
        (urllib3.exceptions.NameResolutionError,),
        Cause("the host name does not resolve", True, True),
    ),
    ((urllib3.exceptions.SSLError,), Cause("TLS verification failed", False, True)),
    ((urllib3.exceptions.ProxyError,), Cause("the proxy failed", True, False)),
    ((ConnectionRefusedError,), Cause("the connection was refused", True, False)),
    ((urllib3.exceptions.NewConnectionError,), Cause("no connection could be made", True, False)),
    ((urllib3.exceptions.ConnectTimeoutError,), Cause("the connection timed out", True, False)),
    ((urllib3.exceptions.ReadTimeoutError,), Cause("the server stopped answering", False, False)),
    ((urllib3.exceptions.ProtocolError,), Cause("the connection broke off", False, False)),
    ((TooManyRedirects,), Cause("too many redirects", False, True)),
    (
        (urllib3.exceptions.LocationValueError, urllib3.exceptions.URLSchemeUnknown),
        Cause("not a usable URL", False, True),
    ),
)


def transport_cause(exc: BaseException) -> Cause:
    """The plain-words cause of a urllib3 exception."""
    chain = _chain(exc)
    for types, cause in _CAUSES:
        if any(isinstance(e, types) for e in chain):
            return cause
    return Cause(type(chain[-1]).__name__, unreachable=False, final=False)


class RetryPolicy(Retry):
    """urllib3's Retry with btfhub's rules: every request of a run follows it.

    Connect, read (a body cut short included) and status failures (429, 5xx)
    are retried, attempts - 1 times each, with urllib3's exponential backoff
    or the server's Retry-After (at most MAX_RETRY_AFTER). A host name that
    does not resolve fails at once; so does a TLS verification failure
    (urllib3 counts it as an "other" error, of which none are allowed). The
    waits go through sleep_fn (tests record them) and every retry is
    reported to on_retry (the client's request counters).
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
        sleep_fn: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] | None = None,
    ) -> RetryPolicy:
        retries = attempts - 1
        return cls(
            # Each kind of failure has its own budget (a redirect is no failure:
            # Transport follows those itself).
            total=None,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            backoff_factor=backoff,
            raise_on_status=False,  # the last response is returned: its status is the message
            raise_on_redirect=False,
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

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        # urllib3's own choice (Retry-After when the server sent one, else the
        # backoff), through sleep_fn instead of time.sleep.
        delay = self.get_retry_after(response) if response is not None else None
        if not delay or not self.respect_retry_after_header:
            delay = self.get_backoff_time()
        if delay > 0:
            self.sleep_fn(delay)


@dataclass(frozen=True)
class _HostSettings:
    proxy: str | None  # the proxy URL requests to this host go through
    login: tuple[str, str] | None  # ~/.netrc's (login, password) for this host


class Transport:
    """GET over urllib3 with one RetryPolicy; safe to share between threads.

    on_request is called for every request sent (a retry or a redirect included).
    """

    def __init__(
        self,
        retry: RetryPolicy,
        timeout: tuple[float, float],
        on_request: Callable[[], None],
    ) -> None:
        self.retry = retry
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._on_request = on_request
        # The environment does not change during a run: read once per run (the
        # proxies) or per host (no_proxy, ~/.netrc), as curl and requests read it.
        self._proxies = urllib.request.getproxies_environment()
        self._netrc_path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
        self._hosts: dict[tuple[str, str], _HostSettings] = {}
        self._managers: dict[tuple[str | None, Credentials | None], urllib3.PoolManager] = {}
        self._credentials: dict[str, Credentials] = {}  # public URL prefix -> credentials
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()

    def forget_connections(self) -> None:
        """In a forked worker: pools of its own, the parent's connections left as they are.

        Closing them here would not close the parent's (a fork shares the
        socket, not the connection), but a worker must never send on one.
        """
        self._managers = {}
        self._lock = threading.Lock()

    def authorize(self, prefix: str, credentials: Credentials) -> None:
        """Send `credentials` with every request for a URL under `prefix` (public form)."""
        with self._lock:
            self._credentials[prefix] = credentials

    def _credentials_for(self, public_url: str) -> Credentials | None:
        with self._lock:
            prefixes = [p for p in self._credentials if public_url.startswith(p)]
            return self._credentials[max(prefixes, key=len)] if prefixes else None

    def open(
        self,
        public_url: str,
        url: str,
        headers: Mapping[str, str],
        *,
        preload: bool,
        retries: Retry | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> BaseHTTPResponse:
        """GET url (public_url after mirror rewriting), following redirects.

        method and body: another request (an OCI registry's HEAD, POST, PUT);
        a redirect is followed with a GET, as browsers and curl -L do for 302/303
        (a registry redirects only its blob GETs, to a CDN).

        The response may have a retryable status once the attempts are used
        up; urllib3's exceptions pass through (MaxRetryError naming the last
        failure). preload: read the whole body now (indexes); otherwise the
        caller streams it and closes the response. The credentials that
        public_url's prefix was authorized with go to url's own host only.
        """
        credentials = self._credentials_for(public_url)
        origin = _origin(url)
        policy = retries if retries is not None else self.retry
        for _ in range(MAX_REDIRECTS + 1):
            home = _origin(url) == origin
            own = credentials if home else None
            host = self._host(url)
            sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
            if not home:  # a caller's own Authorization (a registry's token) stays home too
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
            login = own.auth if own is not None and own.auth is not None else host.login
            if login is not None and "Authorization" not in sent:
                sent["Authorization"] = make_headers(basic_auth=":".join(login))["authorization"]
            self._on_request()
            response = self._manager(host.proxy, own).urlopen(
                method,
                url,
                body=body,
                headers=sent,
                retries=policy,
                redirect=False,
                preload_content=preload,
                decode_content=False,  # checksums are over the bytes as published
                timeout=self._timeout,
            )
            location = response.get_redirect_location()
            if not location:
                return response
            response.drain_conn()
            response.release_conn()
            url = urljoin(url, location)
            method, body = ("HEAD", None) if method == "HEAD" else ("GET", None)
            policy = response.retries if response.retries is not None else policy
        raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects, the last to {url}")

    def _host(self, url: str) -> _HostSettings:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        with self._lock:
            found = self._hosts.get(key)
        if found is None:
            proxy = None
            if not urllib.request.proxy_bypass(parts.netloc):  # no_proxy
                proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
            found = _HostSettings(proxy, self._netrc_login(parts.hostname or ""))
            with self._lock:
                self._hosts[key] = found
        return found

    def _netrc_login(self, host: str) -> tuple[str, str] | None:
        try:
            entry = netrc.netrc(self._netrc_path).authenticators(host)
        except (OSError, netrc.NetrcParseError):
            return None
        if entry is None:
            return None
        login, account, password = entry
        return (login or account or "", password or "")

    def _manager(self, proxy: str | None, credentials: Credentials | None) -> urllib3.PoolManager:
        tls = None
        if credentials is not None and (credentials.cert or credentials.ca):
            tls = Credentials(cert=credentials.cert, ca=credentials.ca)
        key = (proxy, tls)
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                manager = self._managers[key] = _pool_manager(proxy, tls)
            return manager


def _pool_manager(proxy: str | None, tls: Credentials | None) -> urllib3.PoolManager:
    options: dict[str, Any] = {"num_pools": 32, "maxsize": 16}
    if tls is not None and tls.cert is not None:
        options["cert_file"], options["key_file"] = tls.cert
    if tls is not None and tls.ca is not None:
        options["ca_certs"] = tls.ca
    if proxy is None:
        return urllib3.PoolManager(**options)
    parts = urlsplit(proxy)
    if parts.username is not None:
        login = f"{parts.username}:{parts.password or ''}"
        options["proxy_headers"] = make_headers(proxy_basic_auth=login)
    return urllib3.ProxyManager(proxy, **options)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
