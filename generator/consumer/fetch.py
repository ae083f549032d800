"""Getting archive files to a consumer: verified against index.json, then extracted.

A file comes from the hub's checkout when the index was read from one (and
no --base-url says otherwise), else from the hub's URL through the sha256
cache. Either way its size and sha256 must match index.json before the raw
BTF is taken out of it; nothing unverified reaches the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator.consumer.btffile import extract_btf
from generator.consumer.download import DownloadError, FileCache, HubClient, file_sha256
from generator.consumer.hubindex import HubFile, HubIndex
from generator.store.setting import Blob


@dataclass(frozen=True)
class Fetched:
    file: HubFile
    output: Path  # the raw BTF written
    source: str  # "local" | "cache" | "download" | "registry"
    written: bool  # False: the output already held these bytes


class FileSource:
    """Where a HubIndex's files are read from: its checkout, the cache, or HTTP."""

    def __init__(self, index: HubIndex, client: HubClient, cache: FileCache) -> None:
        self.index = index
        self.client = client
        self.cache = cache

    def archive_file(self, file: HubFile) -> tuple[Path, str]:
        """A verified copy of file's .btf.tar.xz and how it was obtained."""
        store = self.index.store
        if store is not None:  # an OCI store: the blob whose digest is the file's sha256
            cached = self.cache.get(file.size, file.sha256)
            if cached is not None:
                return cached, "cache"
            dest = self.cache.path_for(file.sha256)
            self.client.pull_to(store, Blob(file.path, file.size, file.sha256), dest)
            return dest, "registry"
        local = self.index.local_path(file)
        if local is not None:
            try:
                found = file_sha256(local)
            except FileNotFoundError:
                raise DownloadError(f"{local}: in index.json but not in the archive") from None
            if found != (file.size, file.sha256):
                raise DownloadError(
                    f"{local}: {found[0]} bytes, sha256 {found[1]}; index.json says "
                    f"{file.size} bytes, sha256 {file.sha256} (run `btfhub render`?)"
                )
            return local, "local"
        cached = self.cache.get(file.size, file.sha256)
        if cached is not None:
            return cached, "cache"
        url = self.index.url_for(file)
        assert url is not None  # an index without local_root has a base URL
        dest = self.cache.path_for(file.sha256)
        self.client.download_to(url, dest, file.size, file.sha256)
        return dest, "download"

    def raw_btf(self, file: HubFile, output: Path) -> Fetched:
        archive, how = self.archive_file(file)
        written = extract_btf(archive, file.uname, output)
        return Fetched(file, output, how, written)
