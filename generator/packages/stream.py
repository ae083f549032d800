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

import functools
import io
import os
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
    """Discard exactly n bytes (the stream cannot seek): into /dev/null, spliced where it can.

    Building modules walks past 1 GB of other modules' files in the xz
    child's output: spliced, those bytes never enter this process.
    """
    if n > 0:
        move_exactly(stream, _devnull(), n, what)


@functools.cache
def _devnull() -> int:
    """/dev/null, opened once: skip() runs for every tar and cpio member passed over."""
    return os.open(os.devnull, os.O_WRONLY)


def move_exactly(stream: Readable, fd: int, n: int, what: str) -> None:
    """Exactly n bytes of stream to file descriptor fd, or PackageError naming what."""
    left = n
    while left > 0:
        moved = move_to_fd(stream, fd, min(left, CHUNK))
        if not moved:
            raise PackageError(f"truncated package: stream ended inside {what}")
        left -= moved


def move_to_fd(stream: Readable, fd: int, n: int) -> int:
    """Up to n bytes of stream written to file descriptor fd (0 at the stream's end).

    A stream that can splice (the xz child's pipe, and the readers over it)
    moves its bytes inside the kernel: a vmlinux is 600 MB, and each copy of
    it through Python's buffers costs page faults and system time.
    """
    splice = getattr(stream, "splice_into", None)
    if splice is not None:
        moved: int = splice(fd, n)
        return moved
    b = stream.read(n)
    view = memoryview(b)
    while view:  # a regular file takes whole writes; a pipe may not
        view = view[os.write(fd, view) :]
    return len(b)


def copy_to_file(stream: Readable, n: int, dest: Path, what: str) -> None:
    """Write exactly n bytes of `stream` to dest in chunks; no partial file is left."""
    try:
        with dest.open("wb", buffering=0) as out:
            move_exactly(stream, out.fileno(), n, what)
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

    def splice_into(self, fd: int, n: int, /) -> int:
        """Up to n of the member's bytes into file descriptor fd (see move_to_fd)."""
        n = min(n, self.remaining)
        if n == 0:
            return 0
        moved = move_to_fd(self._stream, fd, n)
        if not moved:
            raise PackageError(f"truncated package: stream ended inside {self._what}")
        self.remaining -= moved
        return moved

    def drain(self) -> None:
        skip(self._stream, self.remaining, self._what)
        self.remaining = 0


def as_binary(reader: Readable) -> BinaryIO:
    """Type-level view of a reader as the BinaryIO tarfile expects (it only calls read)."""
    return reader  # type: ignore[return-value]


class ForwardReader(Reader):
    """A forward-only stream that tarfile's random-access mode ("r:") can walk.

    tarfile's stream mode ("r|") passes every byte through its own buffer,
    joined and sliced at each read: for a 590 MB vmlinux that was four copies,
    about 400,000 page faults and 3 s of system time. Its "r:" mode reads
    headers and members in place from a file object with tell() and seek().
    A package stream cannot seek back, but tarfile walking an archive once
    only seeks forward, which this reader does by reading and discarding; a
    seek back is refused. A member's bytes can then go from the stream to a
    file directly (copy_to_file, spliced when the stream can).
    """

    def __init__(self, stream: Readable, what: str) -> None:
        super().__init__()
        self._stream = stream
        self._what = what
        self._position = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        target = offset + (self._position if whence == io.SEEK_CUR else 0)
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self._position:
            raise io.UnsupportedOperation(f"cannot seek back in the stream of {self._what}")
        skip(self._stream, target - self._position, self._what)
        self._position = target
        return target

    def read(self, n: int = -1, /) -> bytes:
        """n bytes, fewer only at the end: tarfile's "r:" mode takes a short read for the end."""
        if n is None or n < 0:
            n = CHUNK
        b = read_upto(self._stream, n)
        self._position += len(b)
        return b

    def splice_into(self, fd: int, n: int, /) -> int:
        """Up to n bytes into file descriptor fd, spliced when the stream can (0 at its end)."""
        moved = move_to_fd(self._stream, fd, n)
        self._position += moved
        return moved
