"""The demo's MirrorServer with failure injection, and index-only repository writers.

FaultyMirror answers like MirrorServer until a test asks it to fail a path:
an HTTP status, a body cut short, a dropped connection, no Content-Length;
or asks every request for Basic credentials (basic_auth).
write_apt_index() and write_rpmmd_index() list packages that are not on
disk, so a coverage run lays out thousands of kernels without gigabytes.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.demokit.mirror import (
    LAUNCHPAD_API,
    LAUNCHPAD_DIR,
    IndexedRpm,
    apt_stanza,
    pool_dir,
    primary_entry,
    write_empty_launchpad,
    write_packages,
    write_repodata,
)
from generator.demokit.server import MirrorHandler, MirrorServer

# Re-exported: conftest and tests.kit.hub give every test's mirror an empty Launchpad.
__all__ = ["LAUNCHPAD_API", "LAUNCHPAD_DIR", "FaultyMirror", "write_empty_launchpad"]


@dataclass
class Fault:
    """How to spoil one answer."""

    status: int | None = None  # answer with this status and a short body
    truncate: int | None = None  # send only this many body bytes (full Content-Length)
    drop: bool = False  # close the connection without any answer
    no_length: bool = False  # no Content-Length: the body ends when the connection closes
    times: int | None = 1  # how many requests it affects; None: all


class FaultyHandler(MirrorHandler):
    """The mirror's handler, asking credentials and spoiling answers as the FaultyMirror says."""

    mirror: FaultyMirror  # type: ignore[misc]  # narrowed: this handler serves a FaultyMirror

    def _serve(self, body: bool) -> None:
        if not self.mirror._admits(self.headers.get("Authorization")):
            self._simple(401, "authentication required\n")
            return
        fault = self.mirror._take_fault(self.url_path)
        if fault is None:
            super()._serve(body)
        elif fault.drop:
            self.close_connection = True
            self.mirror.done(self._start(0), 0)
        elif fault.status is not None:
            self._simple(fault.status, f"injected failure {fault.status}\n")
        elif (found := self._file()) is None:
            self._simple(404, "not found\n")
        else:
            self._spoiled(*found, fault, body)

    def _spoiled(self, target: Path, st: os.stat_result, fault: Fault, body: bool) -> None:
        """A 200 whose body is cut short, or has no Content-Length."""
        etag, last_modified = self._validators(st)
        request = self._start(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if fault.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(st.st_size))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        self.end_headers()
        sent = self._copy(target, fault.truncate) if body else 0
        if fault.truncate is not None:
            self.close_connection = True  # the client sees a short body
        self.mirror.done(request, sent)


class FaultyMirror(MirrorServer):
    """MirrorServer whose answers a test can break, path by path."""

    def __init__(
        self,
        directory: Path,
        basic_auth: tuple[str, str] | None = None,
        handler: type[FaultyHandler] = FaultyHandler,
    ) -> None:
        # basic_auth: answer 401 to any request without these credentials (an
        # RMT/SMT mirror of SUSE's repositories, say).
        super().__init__(directory, handler)
        # The shipped Ubuntu releases fall back to Launchpad (tests.kit.hub.HOSTS maps
        # its API here): a test mirror's Launchpad publishes nothing.
        write_empty_launchpad(directory)
        self.basic_auth = basic_auth
        self._faults: dict[str, list[Fault]] = {}

    def _admits(self, authorization: str | None) -> bool:
        """Whether a request with this Authorization header is served."""
        if self.basic_auth is None:
            return True
        token = base64.b64encode(":".join(self.basic_auth).encode()).decode()
        return authorization == f"Basic {token}"

    # `path` is the URL path, e.g. "/dists/focal/Release"

    def fail(self, path: str, status: int = 500, times: int | None = 1) -> None:
        self._add(path, Fault(status=status, times=times))

    def truncate(self, path: str, keep: int, times: int | None = None) -> None:
        self._add(path, Fault(truncate=keep, times=times))

    def drop(self, path: str, times: int | None = 1) -> None:
        self._add(path, Fault(drop=True, times=times))

    def without_length(self, path: str, times: int | None = None) -> None:
        self._add(path, Fault(no_length=True, times=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, path: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(path, []).append(fault)

    def _take_fault(self, path: str) -> Fault | None:
        """The failure to inject into the answer for `path` (the URL path), if any."""
        with self._lock:
            faults = self._faults.get(path, [])
            while faults:
                fault = faults[0]
                if fault.times is None:
                    return fault
                if fault.times > 0:
                    fault.times -= 1
                    return fault
                faults.pop(0)
            return None


class SlowMirror(FaultyMirror):
    """Answers each request after `delay` seconds, counting how many are in flight at once."""

    def __init__(self, directory: Path, delay: float = 0.05) -> None:
        super().__init__(directory)
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
        return super()._take_fault(path)


@dataclass(frozen=True)
class IndexedDeb:
    """A Packages stanza with no package file behind it (index-only mirrors).

    Planning reads indexes only, so a coverage run can lay out thousands of
    kernels as the upstream lists them without writing gigabytes of packages.
    """

    package: str
    version: str
    architecture: str
    source: str
    size: int
    sha256: str
    extension: str = "deb"  # Ubuntu's debug symbols are .ddeb

    def filename(self, component: str) -> str:
        name = f"{self.package}_{self.version}_{self.architecture}.{self.extension}"
        return f"{pool_dir(component, self.source)}/{name}"


def write_apt_index(
    repo: Path,
    suite: str,
    component: str,
    arch: str,
    entries: Sequence[IndexedDeb],
    compression: str | Sequence[str] = "xz",
) -> None:
    """dists/<suite>/<component>/binary-<arch>/Packages for packages that are not
    on disk; call write_release() once the suite's indexes are all written."""
    stanzas = [
        (
            e.package,
            e.version,
            apt_stanza(
                e.package,
                e.source,
                e.version,
                e.architecture,
                e.filename(component),
                e.size,
                e.sha256,
            ),
        )
        for e in entries
    ]
    write_packages(repo, suite, component, arch, stanzas, compression)


def write_rpmmd_index(
    repo_root: Path, entries: Sequence[IndexedRpm], primary_compression: str = "gz"
) -> Path:
    """repodata/ listing packages that are not on disk (planning reads only this)."""
    repo_root.mkdir(parents=True, exist_ok=True)
    write_repodata(repo_root, [(e.nevra, primary_entry(e)) for e in entries], primary_compression)
    return repo_root
