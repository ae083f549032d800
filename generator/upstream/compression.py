"""Streaming decompression of index files, picking the codec from magic bytes.

Indexes are named Packages.xz or primary.xml.zst, but mirrors and proxies
have been known to serve them re-encoded, and the name says nothing once a
URL is rewritten: the first bytes are the only reliable signal. Every codec
is driven incrementally with an explicit end-of-stream check, because some
(zstandard's stream_reader, for one) return a truncated stream's prefix
without complaint.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

import zstandard

from generator.upstream.http import UpstreamIndexError

IN_CHUNK = 1 << 16

MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
)

ERRORS: tuple[type[BaseException], ...] = (
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    ValueError,
    zstandard.ZstdError,
)


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


def sniff(head: bytes) -> str:
    """ "gzip", "xz", "zstd", "bzip2", or "" for data that is not compressed."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    return ""


def _decompressor(codec: str) -> _Decompressor:
    if codec == "gzip":
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if codec == "xz":
        return lzma.LZMADecompressor()
    if codec == "bzip2":
        return bz2.BZ2Decompressor()
    decomp: Any = zstandard.ZstdDecompressor().decompressobj()
    return decomp  # type: ignore[no-any-return]


def decompressed_chunks(body: bytes, where: str, url: str) -> Iterator[bytes]:
    """Yield the decompressed bytes of body; UpstreamIndexError on a bad stream.

    Concatenated streams (multi-member gzip, several zstd frames) are read to
    the end, as the command-line tools do.
    """
    codec = sniff(body[:8])
    if not codec:
        yield body
        return
    pending = memoryview(body)
    try:
        while True:
            decomp = _decompressor(codec)
            while not decomp.eof and pending:
                chunk, pending = bytes(pending[:IN_CHUNK]), pending[IN_CHUNK:]
                out = decomp.decompress(chunk)
                if out:
                    yield out
            if not decomp.eof:
                raise EOFError("the compressed stream ends early (truncated?)")
            rest = decomp.unused_data + bytes(pending)
            if not rest.strip(b"\x00"):  # trailing padding is allowed after xz/gzip
                return
            pending = memoryview(rest)
    except ERRORS as exc:
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
