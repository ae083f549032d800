"""A stand-in for Launchpad's REST API and librarian, on 127.0.0.1, for tests.

It answers the calls btfhub makes, in the shapes api.launchpad.net/1.0 uses:

- ``GET /api/1.0/ubuntu/+archive/primary?ws.op=getPublishedBinaries&binary_name=N
  &exact_match=true|false&distro_arch_series=<link>[&status=S][&ws.start=I&ws.size=K]``:
  ``{"start", "total_size", "entries": [...], "next_collection_link"?}``, newest first;
- ``GET /api/1.0/ubuntu/+archive/primary/+binarypub/<id>?ws.op=binaryFileUrls
  [&include_meta=true]``: the file URLs, or ``[{"url", "size", "sha1", "sha256"}]``;
- ``GET /lp/ubuntu/+archive/primary/+files/<file>``: a 303 to the librarian
  (``/librarian/<id>/<file>``), which serves the bytes, as launchpad.net does.

Links in answers use the public hosts (https://api.launchpad.net/1.0/,
https://launchpad.net/), so a client reaches the stand-in through its
--mirror rewriting exactly as it would reach a local copy of the real site:
map API_PUBLIC to ``<url>api/1.0/`` and WEB_PUBLIC to ``<url>lp/``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from generator.demokit.server import LocalServer

API_PUBLIC = "https://api.launchpad.net/1.0/"
WEB_PUBLIC = "https://launchpad.net/"
ARCHIVE = "ubuntu/+archive/primary"
DEFAULT_PAGE = 75
MAX_PAGE = 300


@dataclass
class Publication:
    id: int
    name: str
    version: str
    series: str
    arch: str  # Launchpad's spelling: amd64, arm64
    path: Path
    status: str = "Published"
    sha256: str | None = None  # what binaryFileUrls claims; None: the file's real digest
    size: int | None = None  # likewise for the size

    @property
    def das_link(self) -> str:
        return f"{API_PUBLIC}ubuntu/{self.series}/{self.arch}"

    @property
    def self_link(self) -> str:
        return f"{API_PUBLIC}{ARCHIVE}/+binarypub/{self.id}"

    def entry(self) -> dict[str, Any]:
        return {
            "self_link": self.self_link,
            "resource_type_link": f"{API_PUBLIC}#binary_package_publishing_history",
            "binary_package_name": self.name,
            "binary_package_version": self.version,
            "display_name": f"{self.name} {self.version} in {self.series} {self.arch}",
            "distro_arch_series_link": self.das_link,
            "status": self.status,
            "pocket": "Updates",
            "component_name": "main",
            "architecture_specific": True,
            "build_link": f"{API_PUBLIC}ubuntu/+source/linux/{self.version}/+build/{self.id}",
            "archive_link": f"{API_PUBLIC}{ARCHIVE}",
        }

    def file_meta(self) -> dict[str, Any]:
        data = self.path.read_bytes()
        return {
            "url": f"{WEB_PUBLIC}{ARCHIVE}/+files/{self.path.name}",
            "size": len(data) if self.size is None else self.size,
            "sha1": hashlib.sha1(data).hexdigest(),
            "sha256": self.sha256 or hashlib.sha256(data).hexdigest(),
        }


class LaunchpadStandIn(LocalServer):
    def __init__(self) -> None:
        self.publications: list[Publication] = []
        self._by_id: dict[int, Publication] = {}
        self._by_file: dict[str, Publication] = {}
        # A query's matches, newest first, kept for its next pages (cleared on publish).
        self._matches: dict[tuple[str, bool, str | None, str | None], list[Publication]] = {}
        self.log: list[str] = []  # request paths with their query, in order
        # While set, every request is answered with this HTTP status (an outage).
        self.failing: int | None = None
        self._lock = threading.Lock()
        super().__init__(_handler_for(self))

    def mirror_pairs(self) -> list[str]:
        return [f"{API_PUBLIC}={self.url}api/1.0/", f"{WEB_PUBLIC}={self.url}lp/"]

    def publish(
        self,
        path: Path,
        name: str,
        version: str,
        series: str,
        arch: str = "amd64",
        *,
        status: str = "Published",
        sha256: str | None = None,
    ) -> Publication:
        with self._lock:
            pub = Publication(
                len(self.publications) + 1, name, version, series, arch, path, status, sha256
            )
            self.publications.append(pub)
            # Lookups by id and file name stay cheap with thousands published
            # (bench/coverage.py); the first publication of a file serves it.
            self._by_id[pub.id] = pub
            self._by_file.setdefault(path.name, pub)
            self._matches.clear()
        return pub

    def requests_for(self, fragment: str) -> list[str]:
        with self._lock:
            return [r for r in self.log if fragment in r]

    # -- the API -----------------------------------------------------------------

    def published_binaries(self, query: dict[str, str]) -> dict[str, Any]:
        name = query.get("binary_name", "")
        exact = query.get("exact_match", "false") == "true"
        das = query.get("distro_arch_series")
        status = query.get("status")
        start = int(query.get("ws.start", "0"))
        size = min(int(query.get("ws.size", str(DEFAULT_PAGE))), MAX_PAGE)
        with self._lock:
            key = (name, exact, das, status)
            matches = self._matches.get(key)
            if matches is None:
                # Paging through 20,000 publications (bench/launchpad_pages.py)
                # filters them once per query, not once per page.
                matches = self._matches[key] = [
                    p
                    for p in reversed(self.publications)
                    if (p.name == name if exact else name in p.name)
                    and (das is None or p.das_link == das)
                    and (status is None or p.status == status)
                ]
        page: dict[str, Any] = {
            "start": start,
            "total_size": len(matches),
            "entries": [p.entry() for p in matches[start : start + size]],
        }
        if start + size < len(matches):
            nxt = dict(query, **{"ws.start": str(start + size), "ws.size": str(size)})
            page["next_collection_link"] = f"{API_PUBLIC}{ARCHIVE}?{urllib.parse.urlencode(nxt)}"
        return page

    def publication(self, pub_id: int) -> Publication | None:
        with self._lock:
            return self._by_id.get(pub_id)

    def publication_of_file(self, name: str) -> Publication | None:
        with self._lock:
            return self._by_file.get(name)


def _handler_for(stand_in: LaunchpadStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes: without this, Nagle and
        # the client's delayed ACK cost ~40 ms an answer on a kept-alive connection.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, value: Any) -> None:
            self._send(200, json.dumps(value).encode(), "application/json", {})

        def _missing(self) -> None:
            self._send(404, b"Object: not found\n", "text/plain", {})

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(parts.path)
            query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
            with stand_in._lock:
                stand_in.log.append(self.path)
                failing = stand_in.failing
            if failing is not None:
                return self._send(failing, b"Launchpad is down\n", "text/plain", {})
            archive = f"/api/1.0/{ARCHIVE}"
            if path == archive and query.get("ws.op") == "getPublishedBinaries":
                self._json(stand_in.published_binaries(query))
            elif path.startswith(f"{archive}/+binarypub/") and (
                query.get("ws.op") == "binaryFileUrls"
            ):
                pub = stand_in.publication(int(path.rsplit("/", 1)[1]))
                if pub is None:
                    return self._missing()
                meta = pub.file_meta()
                self._json([meta] if query.get("include_meta") == "true" else [meta["url"]])
            elif path.startswith(f"/lp/{ARCHIVE}/+files/"):
                name = path.rsplit("/", 1)[1]
                pub = stand_in.publication_of_file(name)
                if pub is None:
                    return self._missing()
                self._send(303, b"", "text/plain", {"Location": f"/librarian/{pub.id}/{name}"})
            elif path.startswith("/librarian/"):
                _, _, pub_id, name = path.split("/", 3)
                pub = stand_in.publication(int(pub_id))
                if pub is None or pub.path.name != name:
                    return self._missing()
                self._send(200, pub.path.read_bytes(), "application/octet-stream", {})
            else:
                self._missing()

    return Handler
