"""The demo's upstream: an HTTP server on 127.0.0.1 serving a mirror directory.

MirrorServer serves a directory the way ddebs.ubuntu.com or a CentOS mirror
does (Content-Length, ETag, Last-Modified, 304 on conditional GET, one byte
range with Range and If-Range) and logs every request. It injects no
failures and asks for no credentials; the tests' FaultyMirror
(tests/kit/mirror.py) brings a handler of its own that does. The
repository layouts it serves are written by demokit/mirror.py.
"""

from __future__ import annotations

import email.utils
import os
import re
import stat
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar, Self


@dataclass
class Request:
    """One request, logged before the answer is sent so a client never outruns the log."""

    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict, compare=False)
    sent: int = field(default=0, compare=False)  # body bytes written
    done: bool = field(default=False, compare=False)  # the handler finished writing


# The one form of Range served: a single range, "a-b", "a-" or the last n bytes "-n".
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class _HTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up (a download stopped after the vmlinux, a killed
        # run) is normal for a mirror: not worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1:<free port>, served from a thread of its own."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd: ThreadingHTTPServer = _HTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Bandwidth:
    """One link's bytes per second, shared by every connection to the server.

    Each chunk sent books the next slot of the link's time line and its
    sender waits for the slot's end, so however many downloads run at once
    the server sends no more than `rate` bytes a second in all (a runner's
    network, for bench/fleet_bench.py).
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = time.monotonic()  # when the link has sent what is booked

    def take(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._free_at = max(self._free_at, now) + n / self.rate
            done = self._free_at
        time.sleep(max(0.0, done - now))


class MirrorServer(LocalServer):
    """A LocalServer serving `directory` the way the upstream mirrors do.

    handler: the request handler class (a MirrorHandler); it reaches this
    server as its `mirror`. rate: bytes per second for all connections
    together (None: as fast as loopback goes).
    """

    def __init__(
        self,
        directory: Path,
        handler: type[MirrorHandler] | None = None,
        rate: float | None = None,
    ) -> None:
        self.bandwidth = Bandwidth(rate) if rate else None
        self.directory = directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log: list[Request] = []
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._resolved: dict[str, Path] = {}
        base = handler or MirrorHandler
        super().__init__(type(base.__name__, (base,), {"mirror": self}))

    def resolve(self, path: str) -> Path:
        """Where a URL path leads below the directory, symbolic links followed.

        Remembered per path once it leads to something: Path.resolve() looks
        up every component of a deep mirror path, and was most of the
        server's time on a no-op's thousands of conditional GETs. The tests
        add and replace files, not the links on their way; a path that leads
        nowhere yet is resolved again each time (a link added later counts).
        Whether a file is there is asked anew on every request.
        """
        target = self._resolved.get(path)
        if target is not None:
            return target
        unresolved = self.directory / path.lstrip("/")
        try:
            target = unresolved.resolve(strict=True)
        except OSError:
            return unresolved.resolve()
        if len(self._resolved) >= 1 << 16:
            self._resolved.clear()
        self._resolved[path] = target
        return target

    # -- what happened

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.path == path]

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.log]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()
            self.bytes_sent = 0

    def record(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)

    def done(self, request: Request, sent: int) -> None:
        with self._lock:
            request.sent = sent
            request.done = True
            self.bytes_sent += sent

    def wait_done(self, timeout: float = 10.0) -> None:
        """Wait until every logged request was answered in full (or abandoned)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(r.done for r in self.log):
                    return
            time.sleep(0.01)
        raise TimeoutError("the mirror server is still answering")


class MirrorHandler(BaseHTTPRequestHandler):
    """Answers GET and HEAD from the mirror's directory, logging each request."""

    mirror: ClassVar[MirrorServer]  # set per server (MirrorServer.__init__)
    protocol_version = "HTTP/1.1"  # keep-alive, as real mirrors do
    # Headers and body go out in separate writes: with Nagle's algorithm the
    # body waits for the client's delayed ACK (40 ms a response on Linux),
    # which made 7,000 index requests take 320 s instead of seconds.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request log is mirror.log; keep pytest output clean

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    @property
    def url_path(self) -> str:
        """The path of the request's URL, e.g. "/dists/focal/Release" (no query)."""
        return urllib.parse.urlsplit(self.path).path

    def _start(self, status: int) -> Request:
        request = Request(self.command, self.url_path, status, dict(self.headers))
        self.mirror.record(request)
        return request

    def _simple(self, status: int, text: str) -> None:
        data = text.encode()
        request = self._start(status)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.mirror.done(request, 0)

    def _file(self) -> tuple[Path, os.stat_result] | None:
        """The file a request names, with its stat; None when there is none."""
        path = urllib.parse.unquote(self.url_path)
        target = self.mirror.resolve(path)
        if not target.is_relative_to(self.mirror.directory):
            return None
        try:
            st = target.stat()
            if stat.S_ISDIR(st.st_mode) and path.endswith("/"):
                # A directory URL answers with its index page, as Apache's does.
                target = target / "index.html"
                st = target.stat()
        except OSError:
            return None
        return (target, st) if stat.S_ISREG(st.st_mode) else None

    @staticmethod
    def _validators(st: os.stat_result) -> tuple[str, str]:
        """(ETag, Last-Modified) of a file, from its stat."""
        return f'"{st.st_mtime_ns:x}-{st.st_size:x}"', email.utils.formatdate(
            st.st_mtime, usegmt=True
        )

    def _serve(self, body: bool) -> None:
        found = self._file()
        if found is None:
            self._simple(404, "not found\n")
            return
        target, st = found
        etag, last_modified = self._validators(st)
        if self._not_modified(etag, st.st_mtime):
            request = self._start(304)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            self.end_headers()
            self.mirror.done(request, 0)
            return
        wanted = self._range(st.st_size, etag, last_modified)
        start, stop = wanted or (0, st.st_size)
        request = self._start(206 if wanted else 200)
        self.send_response(206 if wanted else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(stop - start))
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{st.st_size}")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        self.end_headers()
        self.mirror.done(request, self._copy(target, stop - start, start) if body else 0)

    def _range(self, size: int, etag: str, last_modified: str) -> tuple[int, int] | None:
        """[start, stop) of the file a Range header asks for; None for the whole file.

        As Apache does: a range it cannot serve (several, or none inside the
        file) and a Range whose If-Range names another version get the whole file.
        """
        found = _RANGE.fullmatch(self.headers.get("Range", "").strip())
        if_range = self.headers.get("If-Range")
        if found is None or (if_range is not None and if_range not in (etag, last_modified)):
            return None
        first, last = found.groups()
        if not first:  # the last n bytes
            start, stop = max(0, size - int(last or 0)), size
        else:
            start, stop = int(first), min(size, int(last) + 1 if last else size)
        return (start, stop) if start < stop else None

    def _not_modified(self, etag: str, mtime: float) -> bool:
        # RFC 9110: If-None-Match, when present, takes precedence over If-Modified-Since.
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        ims = self.headers.get("If-Modified-Since")
        if ims is not None:
            try:
                since = email.utils.parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                return False
            return int(mtime) <= since
        return False

    def _copy(self, target: Path, limit: int | None = None, start: int = 0) -> int:
        """Write the file's bytes from `start` (`limit` of them, if given); the count written."""
        sent = 0
        with target.open("rb") as f:
            f.seek(start)
            while limit is None or sent < limit:
                want = 1 << 16 if limit is None else min(1 << 16, limit - sent)
                chunk = f.read(want)
                if not chunk:
                    break
                if self.mirror.bandwidth is not None:
                    self.mirror.bandwidth.take(len(chunk))
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break  # the client stopped reading early: normal for packages
                sent += len(chunk)
        return sent
