"""Decompressing package members as streams, the codec sniffed from magic bytes.

The codec table is generator.codecs; this module picks the streaming reader
for each: the multi-threaded block decoder for xz (generator.packages.xz),
zstandard's stream_reader for zstd, and the bounded incremental decoders
for gzip and bzip2. Nothing here ever holds a whole member in memory.
"""

from __future__ import annotations

import zstandard

from generator import codecs
from generator.errors import PackageError
from generator.packages.stream import (
    CHUNK,
    INPUT_CHUNK,
    DecompressingReader,
    PrefixedReader,
    Readable,
    Reader,
    as_binary,
    read_upto,
)
from generator.packages.xz import xz_reader


class _ZstdReader(Reader):
    """zstandard's stream_reader with its errors turned into PackageError.

    stream_reader decompresses incrementally; ZstdDecompressor().decompress()
    would need the whole frame (and its output) in memory. It returns b"" on
    a frame cut short rather than raising: the archive layer above, which
    reads exact lengths, reports that truncation.
    """

    def __init__(self, stream: Readable, what: str) -> None:
        super().__init__()
        self._r = zstandard.ZstdDecompressor().stream_reader(
            as_binary(stream), read_size=INPUT_CHUNK, read_across_frames=True
        )
        self._what = what

    def read(self, n: int = -1, /) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        try:
            out: bytes = self._r.read(n)
        except zstandard.ZstdError as exc:
            raise PackageError(f"corrupt compressed data in {self._what}: {exc}") from exc
        return out


def decompressed(stream: Readable, compression: str | None, what: str) -> Readable:
    """A reader of `stream` decompressed with `compression` (None: as is).

    Pass it to close_reader() when done: the xz reader runs worker threads.
    """
    if compression is None:
        return stream
    if compression == "zstd":
        return _ZstdReader(stream, what)
    if compression == "xz":
        return xz_reader(stream, what)
    if compression not in codecs.BY_NAME:
        raise PackageError(f"unknown compression {compression!r} for {what}")
    return DecompressingReader(stream, codecs.decompressor(compression), what)


def close_reader(reader: Readable) -> None:
    """Close a reader that has a close() (releases a decoder's threads and buffers)."""
    close = getattr(reader, "close", None)
    if callable(close):
        close()


def sniffed(stream: Readable, what: str) -> tuple[str | None, Readable]:
    """Peek at the magic bytes: (compression or None, a reader that still starts at them)."""
    head = read_upto(stream, codecs.MAGIC_LEN)
    if not head:
        raise PackageError(f"truncated package: {what} is empty")
    return codecs.sniff(head), PrefixedReader(head, stream)
