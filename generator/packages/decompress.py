"""Every decompression btfhub does, in one place: the codecs, sniffed from magic bytes.

Package members (a .deb's data.tar.xz, an rpm's zstd payload) and
repository indexes (Packages.xz, primary.xml.zst) use the same four codecs,
recognised by their first bytes, never by a file name: mirrors and proxies
have been known to re-encode indexes, and a rewritten URL says nothing.

- a package member is a forward-only stream far bigger than memory, read
  only as far as its vmlinux: decompressed() gives a reader that decodes
  as it is read and stops decoding the moment it is closed. xz is decoded
  by the `xz` command (`xz -T N -dc`, started through generator.children;
  a multi-block .deb member is spooled first: xzblocks.py); zstd by
  zstandard's stream_reader; gzip and bzip2 by their bounded decoders.
- an index body is already in memory and small: decompress_all() and
  open_decompressed() decode it in this process (no process per index).

Which xz: Debian 13's xz 5.8 that scripts/install-pahole.sh puts in
.tools/ when it is there, the system's otherwise. Both give the same bytes;
5.8's liblzma decodes with about 30% less CPU than Debian 12's 5.4
(bench/README.md, "xz 5.8").
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import io
import lzma
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

import zstandard

from generator.children import run_child, start_child, tool_threads
from generator.errors import PackageError
from generator.packages.stream import (
    CHUNK,
    INPUT_CHUNK,
    PrefixedReader,
    Readable,
    Reader,
    as_binary,
    read_upto,
)

# -- the codec table ---------------------------------------------------------------

# What the in-process decoders raise on corrupt input (bz2 uses a bare
# OSError). Callers convert these right at the decompress() call, so that an
# OSError from writing an output file is never mistaken for corrupt input.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    lzma.LZMAError,
    zlib.error,
    zstandard.ZstdError,
    OSError,
    EOFError,
    ValueError,
)


class Decompressor(Protocol):
    """An incremental decoder: bounded output per call, end-of-stream known.

    lzma's and bz2's decompressor objects have this interface natively;
    zlib's and zstandard's are adapted below.
    """

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Zlib:
    """zlib's decompressobj with the lzma/bz2 interface (gzip or zlib framing)."""

    def __init__(self) -> None:
        # wbits=47: auto-detect zlib or gzip framing, 32 KiB window.
        self._d = zlib.decompressobj(wbits=47)
        self.eof = False
        self.needs_input = True

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        data = self._d.unconsumed_tail + data
        out = self._d.decompress(data, max(max_length, 0))
        self.eof = self._d.eof
        self.needs_input = not self._d.unconsumed_tail
        return out


class _Zstd:
    """zstandard's decompressobj with the lzma/bz2 interface (output is not bounded).

    It cannot bound its output, so package members, which must never be
    inflated whole, go through _ZstdReader instead; an index is bounded by
    its download.
    """

    def __init__(self) -> None:
        self._d: Any = zstandard.ZstdDecompressor().decompressobj()
        self.needs_input = True

    @property
    def eof(self) -> bool:
        return bool(self._d.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._d.unused_data)

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        return bytes(self._d.decompress(data))


@dataclass(frozen=True)
class Codec:
    name: str
    magic: bytes
    decompressor: Callable[[], Decompressor]  # in this process: index bodies, small members


CODECS: tuple[Codec, ...] = (
    Codec("xz", b"\xfd7zXZ\x00", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ)),
    Codec("zstd", b"\x28\xb5\x2f\xfd", _Zstd),
    Codec("gzip", b"\x1f\x8b", _Zlib),
    Codec("bzip2", b"BZh", bz2.BZ2Decompressor),
)
BY_NAME = {c.name: c for c in CODECS}
# Enough bytes to tell the codecs apart (no magic is a prefix of another).
MAGIC_LEN = max(len(c.magic) for c in CODECS)


def sniff(head: bytes) -> str | None:
    """The codec whose magic starts `head`, or None (data that is not compressed)."""
    for codec in CODECS:
        if head.startswith(codec.magic):
            return codec.name
    return None


# -- package members: streams ------------------------------------------------------------


def _corrupt(what: str, detail: str) -> PackageError:
    return PackageError(f"corrupt compressed data in {what}: {detail}")


def _cut_short(what: str) -> PackageError:
    return PackageError(f"truncated package: compressed {what} ends before its end marker")


class DecompressingReader(Reader):
    """read(n) over a one-shot decompressor fed from a stream, bounded output per call."""

    def __init__(self, stream: Readable, decompressor: Decompressor, what: str) -> None:
        super().__init__()
        self._stream = stream
        self._d = decompressor
        self._what = what

    def read(self, n: int = -1, /) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        while not self._d.eof:
            data = b""
            if self._d.needs_input:
                data = self._stream.read(INPUT_CHUNK)
                if not data:
                    raise _cut_short(self._what)
            try:
                out = self._d.decompress(data, n)
            except DATA_ERRORS as exc:
                raise _corrupt(self._what, str(exc)) from exc
            if out:
                return out
        # Trailing bytes after the end marker (padding, a second stream) are
        # ignored: the archive format above knows its own end.
        return b""


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
            raise _corrupt(self._what, str(exc)) from exc
        return out


# Debian 13's xz, where scripts/install-pahole.sh puts it (beside its pahole).
PROJECT_XZ = Path(__file__).resolve().parents[2] / ".tools" / "pahole-1.30" / "bin" / "xz"
# The user's xz settings must not change how packages are decoded.
XZ_ENV_CLEARED = ("XZ_OPT", "XZ_DEFAULTS")


def xz_command() -> str:
    """The xz that decodes packages: the project's 5.8 when installed, else the system's."""
    return str(PROJECT_XZ) if os.access(PROJECT_XZ, os.X_OK) else "xz"


def xz_env() -> dict[str, str]:
    """This process's environment without the user's xz settings."""
    return {k: v for k, v in os.environ.items() if k not in XZ_ENV_CLEARED}


@functools.cache
def xz_version() -> str:
    """`xz --version`'s first line for the xz in use, for benchmarks and reports."""
    out = run_child([xz_command(), "--version"], timeout=30)
    return out.stdout.decode(errors="replace").splitlines()[0] if out.stdout else "xz"


PIPE_SIZE = 1 << 20  # xz writes 8 KiB at a time: fewer turns between it and this process


class XzReader(Reader):
    """read(n) over one xz stream, decoded by an `xz -T N -dc` child process.

    A thread feeds the child the compressed bytes as they are read off
    `stream` (the HTTP body, hashed as it is read); this thread reads the
    decoded bytes back. close() kills the child at once, however much of
    the stream is left, and returns once the feeding thread stopped reading
    `stream`: the caller may then read the rest of `stream` itself (as the
    package verification does, without decoding). Corrupt data is the
    child's error message; a stream cut short is the error reading it gave.
    stream may be a file descriptor at the data instead, read by the child
    itself.
    """

    def __init__(self, stream: Readable | int, what: str, threads: int | None = None) -> None:
        super().__init__()
        self._what = what
        # --single-stream: xz stops at the end marker and ignores what follows,
        # as the other decoders do; the archive format above knows its own end.
        cmd = [xz_command(), f"-T{threads or tool_threads()}", "-dc", "--single-stream"]
        direct = stream if isinstance(stream, int) else None
        self._proc = start_child(cmd, env=xz_env(), stdout_size=PIPE_SIZE, stdin=direct)
        self._stop = threading.Event()
        self._feed_error: BaseException | None = None
        self._feeder: threading.Thread | None = None
        if not isinstance(stream, int):  # stdin: a pipe, 64 KiB ahead
            self._stream = stream
            self._feeder = threading.Thread(target=self._feed, name="xz-feed", daemon=True)
            self._feeder.start()

    def _feed(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            while not self._stop.is_set():
                data = self._stream.read(INPUT_CHUNK)
                if not data:
                    break
                view = memoryview(data)
                while view:  # an unbuffered pipe may take a write in parts
                    view = view[stdin.write(view) or 0 :]
        except BrokenPipeError:
            pass  # xz stopped reading: it ended (its status says why) or was killed
        except BaseException as exc:  # re-raised by read() in the reader's thread
            self._feed_error = exc
        finally:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()

    def read(self, n: int = -1, /) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        out = self._stdout().read(n)
        if out:
            return out
        self._ended()
        return b""

    def splice_into(self, fd: int, n: int, /) -> int:
        """Move up to n decoded bytes from xz's pipe into file fd inside the kernel; 0 at the end.

        A vmlinux is 600 MB: read() would copy each byte into a new Python
        bytes object and out again.
        """
        moved = os.splice(self._stdout().fileno(), fd, n)
        if moved:
            return moved
        self._ended()
        return 0

    def _stdout(self) -> IO[bytes]:
        stdout = self._proc.stdout
        if stdout is None:  # closed
            raise ValueError(f"read from a closed xz reader of {self._what}")
        return stdout

    def _ended(self) -> None:
        """xz's output ended: raise what went wrong, if anything did."""
        self._proc.wait()
        if self._feeder is not None:
            self._feeder.join()
        if self._feed_error is not None:
            raise self._feed_error
        if self._proc.returncode != 0:
            assert self._proc.stderr is not None
            message = self._proc.stderr.read().decode(errors="replace").strip()
            if "Unexpected end of input" in message:
                raise _cut_short(self._what)
            raise _corrupt(self._what, message or f"xz exited with {self._proc.returncode}")

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            if self._proc.poll() is None:
                self._proc.kill()  # stop decoding now: nothing more is wanted
            self._proc.wait()
            if self._feeder is not None:
                self._feeder.join()  # it no longer reads the stream once this returns
            for pipe in (self._proc.stdout, self._proc.stderr):
                if pipe is not None:
                    pipe.close()
            self._proc.stdout = None
        super().close()


@contextlib.contextmanager
def decompressed(stream: Readable, compression: str | None, what: str) -> Iterator[Readable]:
    """A reader of `stream` decompressed with `compression` (None: as is).

    Decoding stops when the block is left: an xz child is killed, and the
    rest of `stream` is the caller's again.
    """
    reader: Reader
    if compression is None:
        yield stream
        return
    if compression == "xz":
        reader = XzReader(stream, what)
    elif compression == "zstd":
        reader = _ZstdReader(stream, what)
    elif compression in BY_NAME:
        reader = DecompressingReader(stream, BY_NAME[compression].decompressor(), what)
    else:
        raise PackageError(f"unknown compression {compression!r} for {what}")
    with reader:
        yield reader


def sniffed(stream: Readable, what: str) -> tuple[str | None, Readable]:
    """Peek at the magic bytes: (compression or None, a reader that still starts at them)."""
    head = read_upto(stream, MAGIC_LEN)
    if not head:
        raise PackageError(f"truncated package: {what} is empty")
    return sniff(head), PrefixedReader(head, stream)


# -- index bodies: in memory -------------------------------------------------------------

IN_CHUNK = 1 << 16


def decompress_all(body: bytes) -> Iterator[bytes]:
    """The decoded bytes of an in-memory body whose codec is sniffed; as is if plain.

    Concatenated streams (multi-member gzip, several zstd frames) are read to
    the end, as the command-line tools do; trailing zero padding is allowed.
    Raises one of DATA_ERRORS on a corrupt or truncated stream.
    """
    codec = sniff(body[:MAGIC_LEN])
    if codec is None:
        yield body
        return
    pending = memoryview(body)
    while True:
        decomp = BY_NAME[codec].decompressor()
        while not decomp.eof and pending:
            chunk, pending = bytes(pending[:IN_CHUNK]), pending[IN_CHUNK:]
            out = decomp.decompress(chunk)
            if out:
                yield out
            # A bounded decoder may hold output back: drain it before feeding more.
            while not decomp.eof and not decomp.needs_input:
                out = decomp.decompress(b"")
                if not out:
                    break
                yield out
        if not decomp.eof:
            raise EOFError("the compressed stream ends early (truncated?)")
        rest = decomp.unused_data + bytes(pending)
        if not rest.strip(b"\x00"):
            return
        pending = memoryview(rest)


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


def open_decompressed(chunks: Iterator[bytes]) -> BinaryIO:
    """A buffered, line-iterable file object over decoded chunks (decompress_all's)."""
    return io.BufferedReader(_ChunkReader(chunks), 1 << 16)
