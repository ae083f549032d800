"""A package as a verified byte stream: counted and hashed as the reader pulls it.

Packages (0.3 to 1.7 GB) are streamed, never stored whole. Readers stop as
soon as vmlinux is out (often within the first fifth of an Ubuntu ddeb),
but the package's SHA-256 covers the whole file: the build
(generator.verify) reads the rest through the hash while pahole runs, and
publishes only when size and SHA-256 match the index. Both are checked
when the stream reaches its end; a mismatch raises PackageError from that
read.

A connection that drops mid-body is taken up again under the transport's
one retry policy (the same urllib3 Retry budget and backoff as every other
request): a request for the rest, `Range: bytes=N-` from the byte reached,
with `If-Range` naming the version already read. A server that answers
206 continues the hash; one that answers 200 (it ignores Range, or the
file changed) starts the hash over from zero, reading again, unseen by the
reader, the bytes it already handed out, and fails the stream unless they
are the same bytes.

A reader may ask for the package's last bytes ahead of the rest (read_tail:
a .deb's data.tar.xz lists its blocks there). They are fetched apart, with
`Range: bytes=-N`, and held against the stream's own last bytes when it
reaches its end: a mismatch fails the package as a wrong SHA-256 does.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Mapping
from typing import Any

import urllib3.exceptions
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from generator.errors import PackageError

BUFFER = 1 << 18  # package reads: few syscalls for the small ar/tar/cpio header reads
CHUNK = 1 << 20
# What a body read raises when the connection fails (urllib3 wraps most in ProtocolError).
TRANSIENT = (urllib3.exceptions.HTTPError, OSError)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

# How the stream asks for (the rest of) the package: extra headers and the
# retry state so far in; a response with its status, or PackageError, out.
Opener = Callable[[Mapping[str, str], Retry], BaseHTTPResponse]


class PackageBody(io.RawIOBase):
    """The bytes of one package, resumed across dropped connections, verified at EOF.

    It connects at once (PackageError for an answer that cannot be the package);
    PackageStream buffers it for the readers.
    """

    def __init__(
        self,
        opener: Opener,
        retry: Retry,
        where: str,
        size: int | None,
        sha256: str | None,
        on_bytes: Callable[[int], None],
    ) -> None:
        super().__init__()
        self._open = opener
        self._retry = retry
        self._where = where
        self._on_bytes = on_bytes
        self.expected_size = size
        self.expected_sha256 = sha256.lower() if sha256 is not None else None
        self.handed = 0  # bytes handed to the reader
        self.position = 0  # bytes of the current answer's body hashed (< handed: catching up)
        self.verified = False  # True once size (and SHA-256, if known) were checked at EOF
        self._hash = hashlib.sha256()
        self._prefix_digest: str | None = None  # what the handed bytes hashed to, after a restart
        self._if_range: str | None = None  # the version read: strong ETag, else Last-Modified
        self._eof = False
        self._response: BaseHTTPResponse | None = None
        self._tail: bytes | None = None  # the last bytes, as read_tail() fetched them
        self._own_tail = bytearray()  # the same bytes, as the stream itself hashes them
        self._connect()

    def _fail(self, message: str) -> PackageError:
        return PackageError(f"{self._where}: {message}")

    def _connect(self) -> None:
        headers: dict[str, str] = {}
        if self.position:
            headers["Range"] = f"bytes={self.position}-"
            if self._if_range is not None:
                headers["If-Range"] = self._if_range
        response = self._open(headers, self._retry)
        if response.retries is not None:
            self._retry = response.retries
        if response.status == 206 and self.position:
            self._check_resumed(response)
        elif response.status == 200:
            if self.position:
                self._restart()
            self._check_length(response)
            self._if_range = _validator(response)
        else:
            response.close()
            raise self._fail(f"HTTP {response.status} {response.reason}")
        self._response = response

    def _check_resumed(self, response: BaseHTTPResponse) -> None:
        found = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        total = found.group(3) if found else None
        if (
            found is None
            or int(found.group(1)) != self.position
            or (self.expected_size is not None and total not in ("*", str(self.expected_size)))
        ):
            response.close()
            raise self._fail(
                f"asked for the rest from byte {self.position}, the server sent "
                f"{response.headers.get('Content-Range')!r}"
            )

    def _check_length(self, response: BaseHTTPResponse) -> None:
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

    def _restart(self) -> None:
        """The server sent the whole package again: hash it from zero."""
        if self._prefix_digest is None:  # (a restart while catching up keeps the first one)
            self._prefix_digest = self._hash.hexdigest()
        self._hash = hashlib.sha256()
        self.position = 0

    def _read(self, n: int) -> bytes | None:
        """Up to n bytes of the body; None when the connection failed and was taken up
        again (the body may then start over: see where position stands)."""
        assert self._response is not None
        try:
            data: bytes = self._response.read(n, decode_content=False)
        except TRANSIENT as exc:
            self._resume(exc)
            return None
        return data

    def _resume(self, exc: Exception) -> None:
        """After a failed read: the rest asked for again, if the retry policy allows."""
        assert self._response is not None
        self._response.close()
        error = exc if isinstance(exc, urllib3.exceptions.HTTPError) else None
        try:
            self._retry = self._retry.increment(
                "GET", None, error=error or urllib3.exceptions.ProtocolError(str(exc), exc)
            )
        except urllib3.exceptions.MaxRetryError:
            attempts = len(self._retry.history) + 1
            raise self._fail(
                f"connection failed after {self.handed} bytes: {exc} "
                f"(gave up after {attempts} attempts)"
            ) from exc
        self._retry.sleep()
        self._connect()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("read from a closed package stream")
        if self._eof:
            return 0
        view = memoryview(buffer).cast("B")
        data = None
        while data is None:
            self._catch_up()
            data = self._read(len(view))
        if not data:
            self._eof = True
            self._verify()
            return 0
        self.position += len(data)
        self.handed += len(data)
        self._on_bytes(len(data))
        if self.expected_size is not None and self.handed > self.expected_size:
            raise self._fail(f"more than the {self.expected_size} bytes the index says")
        self._hashed(data, self.position - len(data))
        view[: len(data)] = data
        return len(data)

    def _hashed(self, data: bytes, at: int) -> None:
        """Hash the bytes at offset `at`, keeping those that fall in the tail read ahead."""
        self._hash.update(data)
        if self._tail is not None and self.expected_size is not None:
            first = self.expected_size - len(self._tail)
            if at + len(data) > first:
                lo = max(first, at)
                self._own_tail[lo - first : lo - first + len(data)] = data[lo - at :]

    def _catch_up(self) -> None:
        """After a restart: hash again the bytes the reader has, and check they are the same."""
        while self.position < self.handed:
            data = self._read(min(CHUNK, self.handed - self.position))
            if data is None:
                continue
            if not data:
                raise self._fail(f"{self.position} bytes, but {self.handed} were read before")
            self._hashed(data, self.position)
            self.position += len(data)
        if self._prefix_digest is not None:
            if self._hash.copy().hexdigest() != self._prefix_digest:
                raise self._fail(
                    f"the package changed while it was read: its first {self.handed} bytes "
                    "differ when sent again"
                )
            self._prefix_digest = None

    def _verify(self) -> None:
        if self.expected_size is not None and self.handed != self.expected_size:
            raise self._fail(f"{self.handed} bytes, but the index says {self.expected_size}")
        digest = self._hash.hexdigest()
        if self.expected_sha256 is not None and digest != self.expected_sha256:
            raise self._fail(
                f"sha256 {digest} does not match {self.expected_sha256} from the index"
            )
        if self._tail is not None and bytes(self._own_tail) != self._tail:
            raise self._fail(
                f"its last {len(self._tail)} bytes, fetched apart ahead of the rest, "
                "are not the package's own"
            )
        self.verified = True

    def read_tail(self, n: int) -> bytes | None:
        """The package's last n bytes (fewer for a smaller one), fetched apart; None if not.

        None when the package's size is unknown, the stream read them
        already, a tail was fetched before, or the server does not send
        exactly those bytes of the version being read (it ignores Range,
        the file changed, or it fails). What is returned is checked at the
        stream's end (see _verify).
        """
        size = self.expected_size
        if size is None or self._tail is not None or self.handed > size - min(n, size):
            return None
        n = min(n, size)
        headers = {"Range": f"bytes=-{n}"}
        if self._if_range is not None:  # a file changed since answers whole: no tail then
            headers["If-Range"] = self._if_range
        try:
            response = self._open(headers, self._retry)
        except PackageError:
            return None
        wanted = f"bytes {size - n}-{size - 1}/{size}"
        try:
            if response.status != 206 or response.headers.get("Content-Range") != wanted:
                return None  # closed unread: never the whole package for its last bytes
            data: bytes = response.read(n + 1, decode_content=False)
        except TRANSIENT:
            return None
        finally:
            response.close()
        if len(data) != n:
            return None
        self._tail = data
        self._own_tail = bytearray(n)
        return data

    def close(self) -> None:
        if self._response is not None:
            # Closing (not releasing) drops the socket when unread bytes remain,
            # instead of reading the rest of a large package to reuse it.
            self._response.close()
            self._response = None
        super().close()


class PackageStream(io.BufferedReader):
    """A buffered binary file over one package; read() raises PackageError on a mismatch.

    verified: True once the stream was read to its end and size and SHA-256
    (when the index gives one) matched.
    """

    def __init__(self, body: PackageBody) -> None:
        super().__init__(body, BUFFER)
        self._package = body

    @property
    def verified(self) -> bool:
        return self._package.verified

    def read_tail(self, n: int) -> bytes | None:
        """The package's last n bytes, fetched apart and checked at the end (PackageBody)."""
        return self._package.read_tail(n)

    @property
    def bytes_received(self) -> int:
        """Bytes handed to the reader so far."""
        return self._package.handed


def _validator(response: BaseHTTPResponse) -> str | None:
    """What If-Range may name (RFC 9110 13.1.5): a strong ETag, else Last-Modified."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return str(etag)
    modified = response.headers.get("Last-Modified")
    return str(modified) if modified else None
