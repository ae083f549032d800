"""Decoded index bodies (Packages.xz, primary.xml.zst ...), codec from magic bytes.

The codecs themselves are generator.codecs, shared with the package readers;
this module turns their errors into the index error that names the URL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, BinaryIO

from generator import codecs
from generator.upstream.http import UpstreamIndexError


def decompressed_chunks(body: bytes, where: str, url: str) -> Iterator[bytes]:
    """Yield the decompressed bytes of body; UpstreamIndexError on a bad stream."""
    codec = codecs.sniff(body[: codecs.MAGIC_LEN])
    try:
        yield from codecs.decompress_all(body)
    except codecs.DATA_ERRORS as exc:
        raise UpstreamIndexError(f"{where}: bad {codec} stream: {exc}", url) from exc


class _ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._buffer))
        view[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def open_decompressed(body: bytes, where: str, url: str) -> BinaryIO:
    """A buffered, line-iterable file object over the decompressed body."""
    return io.BufferedReader(_ChunkReader(decompressed_chunks(body, where, url)), 1 << 16)
