"""The compressions btfhub meets, in one table: magic bytes, errors, decoders.

Package members (data.tar.xz, an rpm's zstd payload) and repository indexes
(Packages.xz, primary.xml.zst) use the same four codecs. Both are recognised
by their first bytes, never by a file name: mirrors and proxies have been
known to re-encode indexes, and a rewritten URL says nothing. Package
readers (generator.packages.decompress) and index fetching
(generator.upstream.compression) both build on this module.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import zstandard

# What the decoders raise on corrupt input (bz2 uses a bare OSError). Callers
# convert these right at the decompress() call, so that an OSError from
# writing an output file is never mistaken for corrupt input.
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

    zstandard's decompressobj cannot bound its output; package members,
    which must never be inflated whole, go through its stream_reader instead
    (generator.packages.decompress). Indexes are bounded by their download.
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
    decompressor: Callable[[], Decompressor]


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


def decompressor(name: str) -> Decompressor:
    """A fresh incremental decoder for codec `name` (KeyError for an unknown one)."""
    return BY_NAME[name].decompressor()


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
        decomp = decompressor(codec)
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
