"""Byte-stream plumbing shared by the package readers.

Everything here works on a forward-only stream: the caller hands over an
HTTP response body (already being hashed and size-checked), so nothing may
seek, and nothing may hold more than a chunk in memory. A 282 MB Debian
package holds a 588 MB vmlinux; reading it through these adapters keeps the
resident set to a few MiB of buffers plus the decompressor's dictionary
(decoders are in generator.packages.decompress; xz decodes in a child
process, whose threads hold a block each).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Protocol

from generator.errors import PackageError

# Copy and read granularity: large enough that Python call overhead vanishes
# next to decompression, small enough to keep memory flat.
CHUNK = 1 << 20
# How much compressed input the decompressors pull per read.
INPUT_CHUNK = 256 << 10


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def read_exact(stream: Readable, n: int, what: str) -> bytes:
    """Exactly n bytes, or PackageError naming what was being read."""
    parts: list[bytes] = []
    left = n
    while left > 0:
        b = stream.read(min(left, CHUNK))
        if not b:
            raise PackageError(f"truncated package: stream ended inside {what}")
        parts.append(b)
        left -= len(b)
    return b"".join(parts)


def read_upto(stream: Readable, n: int) -> bytes:
    """Up to n bytes: fewer only at the end of the stream (reads may come back short)."""
    parts: list[bytes] = []
    left = n
    while left > 0:
        b = stream.read(left)
        if not b:
            break
        parts.append(b)
        left -= len(b)
    return b"".join(parts)


def skip(stream: Readable, n: int, what: str) -> None:
    """Discard exactly n bytes by reading them (the stream cannot seek)."""
    left = n
    while left > 0:
        b = stream.read(min(left, CHUNK))
        if not b:
            raise PackageError(f"truncated package: stream ended inside {what}")
        left -= len(b)


def copy_to_file(stream: Readable, n: int, dest: Path, what: str) -> None:
    """Write exactly n bytes of `stream` to dest in chunks; no partial file is left."""
    try:
        with dest.open("wb") as out:
            left = n
            while left > 0:
                b = stream.read(min(left, CHUNK))
                if not b:
                    raise PackageError(f"truncated package: stream ended inside {what}")
                out.write(b)
                left -= len(b)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


class Reader(io.RawIOBase):
    """Base of the adapters: subclasses implement read(n); readinto follows from it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)


class PrefixedReader(Reader):
    """Bytes already read (to sniff a magic number) followed by the rest of a stream."""

    def __init__(self, prefix: bytes, stream: Readable) -> None:
        super().__init__()
        self._prefix = prefix
        self._stream = stream

    def read(self, n: int = -1, /) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        if self._prefix:
            out, self._prefix = self._prefix[:n], self._prefix[n:]
            return out
        return self._stream.read(n)


class LimitedReader(Reader):
    """Exactly `size` bytes of an underlying stream (one archive member).

    Reads never go past the member, so a reader further down (tarfile,
    a decompressor) cannot swallow the next member's bytes; an early end of
    the underlying stream is a truncated package, not a short member.
    """

    def __init__(self, stream: Readable, size: int, what: str) -> None:
        super().__init__()
        self._stream = stream
        self.remaining = size
        self._what = what

    def read(self, n: int = -1, /) -> bytes:
        if n is None or n < 0 or n > self.remaining:
            n = min(self.remaining, CHUNK)
        if n == 0:
            return b""
        b = self._stream.read(n)
        if not b:
            raise PackageError(f"truncated package: stream ended inside {self._what}")
        self.remaining -= len(b)
        return b

    def drain(self) -> None:
        skip(self._stream, self.remaining, self._what)
        self.remaining = 0


def as_binary(reader: Readable) -> BinaryIO:
    """Type-level view of a reader as the BinaryIO tarfile expects (it only calls read)."""
    return reader  # type: ignore[return-value]
