"""The hub's own files over HTTP: index.json and the BTF files, cached by sha256.

This is the only consumer code that talks HTTP. A BTF file is streamed to a
temporary file in the cache while its size and sha256 are checked against
index.json, and only a match is moved into place (the bandersnatch way), so
the cache never holds a file the index does not vouch for. A cached file is
keyed by its sha256: fetching it again makes no request.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from generator import __version__
from generator.errors import BtfhubError

TIMEOUT = (10.0, 60.0)  # connect, read
CHUNK = 1 << 20
USER_AGENT = f"btfhub/{__version__}"


class DownloadError(BtfhubError):
    """A hub file could not be downloaded, or did not match index.json."""


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/btfhub (~/.cache/btfhub), the XDG base directory rule."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "btfhub"


class HubClient:
    """A requests session with retries on transient failures; counts requests made."""

    def __init__(self, attempts: int = 3) -> None:
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        retry = Retry(
            total=attempts - 1,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.requests = 0

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, url: str, *, stream: bool) -> requests.Response:
        self.requests += 1
        try:
            response = self.session.get(url, stream=stream, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise DownloadError(f"cannot download {url}: {exc}") from None
        if response.status_code != 200:
            response.close()
            raise DownloadError(f"cannot download {url}: HTTP {response.status_code}")
        return response

    def get_json(self, url: str) -> Any:
        response = self._get(url, stream=False)
        try:
            return response.json()
        except json.JSONDecodeError as exc:
            raise DownloadError(f"{url} is not JSON: {exc}") from None

    def download_to(self, url: str, dest: Path, size: int, sha256: str) -> None:
        """Stream url into dest (atomically), failing unless size and sha256 match."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        try:
            digest = hashlib.sha256()
            received = 0
            with os.fdopen(fd, "wb") as out, self._get(url, stream=True) as response:
                try:
                    for chunk in response.iter_content(CHUNK):
                        received += len(chunk)
                        if received > size:
                            raise DownloadError(
                                f"{url}: more than the {size} bytes index.json gives"
                            )
                        digest.update(chunk)
                        out.write(chunk)
                except requests.RequestException as exc:
                    raise DownloadError(f"cannot download {url}: {exc}") from None
                out.flush()
                os.fsync(out.fileno())
            if received != size:
                raise DownloadError(f"{url}: {received} bytes, index.json says {size}")
            if digest.hexdigest() != sha256:
                raise DownloadError(
                    f"{url}: sha256 {digest.hexdigest()} does not match index.json's {sha256}"
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def file_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class FileCache:
    """Verified hub files by sha256: <dir>/files/<sha256[:2]>/<sha256>.btf.tar.xz."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_cache_dir()

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise DownloadError(f"{sha256!r} is not a sha256 (is index.json damaged?)")
        return self.directory / "files" / sha256[:2] / f"{sha256}.btf.tar.xz"

    def get(self, size: int, sha256: str) -> Path | None:
        """The cached file when it is there and still matches; a damaged one is dropped."""
        path = self.path_for(sha256)
        try:
            if file_sha256(path) == (size, sha256):
                return path
        except FileNotFoundError:
            return None
        path.unlink(missing_ok=True)
        return None
