"""Small HTTP servers on 127.0.0.1 for the transport's tests.

PackageServer serves one package the way a real mirror does (Range from a
byte on or the last bytes: 206 with Content-Range, If-Range against its
ETag) and can cut an answer short by closing the connection mid-body, or
answer as a server that ignores Range. Redirector answers every request
with a redirect elsewhere and records the headers it was sent.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from generator.demokit.server import LocalServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

    def log_message(self, format: str, *args: object) -> None:
        pass  # what a test checks is recorded on its server


@dataclass(frozen=True)
class Answer:
    """How the server answers one request."""

    body: bytes  # the package as this answer has it
    cut: int | None = None  # close the connection after this many body bytes
    ranges: bool = True  # honour Range; False: always 200 and the whole body


@dataclass(frozen=True)
class Served:
    """One request as the server saw it, and what it answered."""

    headers: dict[str, str]
    status: int
    sent: int  # body bytes written


class PackageServer(LocalServer):
    """Serves /package: the i-th request gets answers[i] (the last one from then on).

    forged_tail: what a request for the last bytes ("Range: bytes=-N") is
    answered from instead, as a lying mirror would.
    """

    def __init__(self, answers: list[Answer], forged_tail: bytes | None = None) -> None:
        self.answers = answers
        self.forged_tail = forged_tail
        self.served: list[Served] = []
        self._lock = threading.Lock()
        super().__init__(_package_handler(self))

    @property
    def package_url(self) -> str:
        return f"{self.url}package"

    def _answer(self) -> Answer:
        with self._lock:
            return self.answers[min(len(self.served), len(self.answers) - 1)]

    def _record(self, served: Served) -> None:
        with self._lock:
            self.served.append(served)


def _package_handler(server: PackageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        def do_GET(self) -> None:
            answer = server._answer()
            data = answer.body
            etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
            if server.forged_tail is not None and self.headers.get("Range", "").startswith(
                "bytes=-"
            ):
                data = server.forged_tail  # under the real version's ETag: a lie
            wanted = self.headers.get("Range") if answer.ranges else None
            if_range = self.headers.get("If-Range")
            start, status = 0, 200
            if wanted is not None and if_range in (None, etag):
                first, _, last = wanted.removeprefix("bytes=").partition("-")
                # "N-": from byte N on (a resumed stream); "-N": the last N bytes (a tail)
                start = int(first) if first else max(0, len(data) - int(last))
                status = 206
                self.send_response(status)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(status)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            if answer.cut is not None:
                body = body[: answer.cut]
                self.close_connection = True
            sent = 0
            try:
                self.wfile.write(body)
                self.wfile.flush()
                sent = len(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            server._record(Served(dict(self.headers), status, sent))

    return Handler


class Redirector(LocalServer):
    """Redirects every request to target + its path, recording what it was sent."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.headers: list[dict[str, str]] = []
        super().__init__(_redirect_handler(self))


def _redirect_handler(server: Redirector) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        def do_GET(self) -> None:
            server.headers.append(dict(self.headers))
            self.send_response(302)
            self.send_header("Location", server.target + self.path.lstrip("/"))
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
