"""The hub's own files over HTTP: index.json and the BTF files, cached by sha256.

A hub in an OCI store (index.json's "store") has its files pulled from the
registry by digest (generator/store/oci.py), through the same client and into
the same cache.

HTTP itself is upstream/http.py's (one client for the whole generator:
retries, mirrors, a verified stream). Here a BTF file is streamed into a
temporary file in the cache; the stream checks its size and sha256 against
index.json as it reaches the end, and only a match is moved into place (the
bandersnatch way), so the cache never holds a file the index does not
vouch for. A cached file is keyed by its sha256: fetching it again makes no
request.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from generator.errors import BtfhubError
from generator.store.oci import RegistryClient
from generator.store.setting import Blob, OciStore
from generator.upstream.http import UpstreamClient

CHUNK = 1 << 20


class DownloadError(BtfhubError):
    """A hub file could not be read, or did not match index.json."""


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/btfhub (~/.cache/btfhub), the XDG base directory rule."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "btfhub"


class HubClient:
    """The hub's index and files through the generator's one HTTP client."""

    def __init__(self, http: UpstreamClient | None = None) -> None:
        self.http = http or UpstreamClient()
        self._registries: dict[OciStore, RegistryClient] = {}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def download_to(self, url: str, dest: Path, size: int, sha256: str) -> None:
        """Stream url into dest (atomically), failing unless size and sha256 match."""
        _save(self.http.open_stream(url, size, sha256), dest)

    def pull_to(self, store: OciStore, blob: Blob, dest: Path) -> None:
        """Pull blob from an OCI store by its digest into dest, verified like a download."""
        registry = self._registries.get(store)
        if registry is None:
            registry = self._registries[store] = RegistryClient(self.http, store)
        _save(registry.open_blob(blob), dest)


def _save(opened: AbstractContextManager[BinaryIO], dest: Path) -> None:
    """A verified stream's bytes into dest, atomically: nothing lands unless it all matched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, opened as stream:
            # Reading to the end is what checks size and sha256 (PackageError).
            shutil.copyfileobj(stream, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> tuple[int, str]:
    """(size, sha256) of the bytes read."""
    with path.open("rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        return f.tell(), sha256


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
