"""Decoded index bodies (Packages.xz, primary.xml.zst ...), codec from magic bytes.

The decoding is generator.packages.decompress, shared with the package
readers; this module turns its errors into the index error that names the URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from generator.packages import decompress
from generator.upstream.http import UpstreamIndexError


def decompressed_chunks(body: bytes, where: str, url: str) -> Iterator[bytes]:
    """Yield the decompressed bytes of body; UpstreamIndexError on a bad stream."""
    codec = decompress.sniff(body[: decompress.MAGIC_LEN])
    try:
        yield from decompress.decompress_all(body)
    except decompress.DATA_ERRORS as exc:
        raise UpstreamIndexError(f"{where}: bad {codec} stream: {exc}", url) from exc


def open_decompressed(body: bytes, where: str, url: str) -> BinaryIO:
    """A buffered, line-iterable file object over the decompressed body."""
    return decompress.open_decompressed(decompressed_chunks(body, where, url))
