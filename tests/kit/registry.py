"""A real OCI registry for the store tests, and a proxy in front of it that can fail.

Registry runs Debian's docker-registry (CNCF distribution 2.8, installed into
.tools/ by scripts/install-registry.sh) on 127.0.0.1 at a free port, with
its config and storage in a temporary directory, tied to the test process
(children.tied_command: it dies with pytest, even after kill -9) and stopped
at teardown. RegistryProxy forwards every request to it unchanged (the Host
header included, so the registry's upload Locations name the proxy) and
records them; a test can make it answer a status or drop the connection
for requests whose method and path match.
"""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from generator.children import tied_command
from generator.demokit.server import LocalServer

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".tools" / "docker-registry-2.8.2" / "bin" / "docker-registry"
CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Registry:
    """docker-registry on 127.0.0.1:<free port>, storing under directory/data."""

    def __init__(self, directory: Path, auth: str = "") -> None:
        """auth: an `auth:` section for its config (a token service's, tests/kit/tokenauth.py)."""
        self.auth = auth
        if not BINARY.exists():
            raise RuntimeError(f"{BINARY} is missing: run scripts/setup.sh")
        self.directory = directory
        self.data = directory / "data"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        for _ in range(5):  # another process may take the free port before the registry does
            self.port = _free_port()
            config = self.directory / "config.yml"
            config.write_text(CONFIG.format(data=self.data, port=self.port) + self.auth)
            log = (self.directory / "registry.log").open("ab")
            self._process = subprocess.Popen(
                tied_command([str(BINARY), "serve", str(config)]), stdout=log, stderr=log
            )
            log.close()
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"docker-registry did not start: {self.directory / 'registry.log'}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1):
                    return True
            except urllib.error.HTTPError:
                return True  # it answers (401: it wants a token)
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def garbage_collect(self) -> str:
        """Stop, run `garbage-collect --delete-untagged` (as an operator's clean-up would), restart.

        The registry must not serve while it collects (distribution's rule);
        it comes back on another port. Returns what the collector printed.
        """
        self.stop()
        done = subprocess.run(
            tied_command(
                [
                    str(BINARY),
                    "garbage-collect",
                    "--delete-untagged",
                    str(self.directory / "config.yml"),
                ]
            ),
            capture_output=True,
            text=True,
            check=True,
        )
        self.start()
        return done.stdout + done.stderr

    def blob_data(self, sha256: str) -> Path:
        """Where the registry keeps a blob's bytes on disk (a test tampers with it)."""
        return self.data / "docker/registry/v2/blobs/sha256" / sha256[:2] / sha256 / "data"


HOLD = -1  # a Fault's status: keep the request waiting until released, then drop it


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int | None  # None: drop the connection without an answer; HOLD: wait first
    times: int | None  # None: every matching request


@dataclass
class Seen:
    method: str
    path: str
    status: int  # 0: dropped


@dataclass
class _State:
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: threading.Event = field(default_factory=threading.Event)  # a request is held
    release: threading.Event = field(default_factory=threading.Event)


class RegistryProxy(LocalServer):
    """Forwards to registry; records requests; fails those a test names."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.state = _State()
        super().__init__(_handler(self))

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://").rstrip("/")

    def fail(self, method: str, path: str, status: int | None = 500, times: int | None = 1) -> None:
        with self.state.lock:
            self.state.faults.append(Fault(method, re.compile(path), status, times))

    def hold(self, method: str, path: str) -> threading.Event:
        """Keep the next matching request waiting (until release()); set when one is held."""
        self.fail(method, path, status=HOLD, times=1)
        return self.state.held

    def release(self) -> None:
        self.state.release.set()

    def stop(self) -> None:
        self.release()  # a held request must not keep the server from stopping
        super().stop()

    def clear(self) -> None:
        with self.state.lock:
            self.state.faults.clear()
            self.state.seen.clear()

    @property
    def seen(self) -> list[Seen]:
        with self.state.lock:
            return list(self.state.seen)

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.state.lock:
            for fault in self.state.faults:
                if fault.method == method and fault.path.search(path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self.state.faults.remove(fault)
                    return fault
            return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self.state.lock:
            self.state.seen.append(Seen(method, path, status))


def _handler(proxy: RegistryProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            fault = proxy._fault(self.command, self.path)
            if fault is not None and fault.status == HOLD:
                proxy.state.held.set()
                proxy.state.release.wait(60)
            if fault is not None and fault.status in (None, HOLD):
                proxy._record(self.command, self.path, 0)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None:
                proxy._record(self.command, self.path, fault.status or 500)
                self.send_response(fault.status or 500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            upstream = http.client.HTTPConnection("127.0.0.1", proxy.registry.port, timeout=30)
            headers = {k: v for k, v in self.headers.items()}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            proxy._record(self.command, self.path, answer.status)
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            sent = answer.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", sent or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    return Handler
