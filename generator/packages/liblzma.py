"""xz blocks decoded by a newer liblzma than Python's, when the project has one.

Decoding the ~600 MB of xz data ahead of a Debian vmlinux is a third of a
kernel's CPU time. Python's `lzma` module is linked to the system's liblzma
(5.4 on Debian 12); liblzma 5.8 (Debian 13) decodes the same data with about
30% less CPU (bench/README.md). scripts/install-pahole.sh already puts
Debian 13's liblzma beside the project's pahole, and it loads into this
process (it needs nothing newer than glibc 2.34), so blocks are decoded
through it with ctypes, which releases the GIL during each call like
`lzma` does. Any liblzma older than MIN_VERSION, or none at all, and
Python's `lzma` is used: both give the same bytes, and liblzma verifies
each block's check either way.

Only what generator.packages.xz asks of a decompressor is offered:
decompress(data, max_length) and needs_input, with lzma.LZMAError on bad
data, as lzma.LZMADecompressor(format=FORMAT_XZ) behaves.
"""

from __future__ import annotations

import ctypes
import functools
import lzma
import os
from pathlib import Path
from typing import Protocol

LIBLZMA_ENV = "BTFHUB_LIBLZMA"  # a liblzma.so to use, or "system" for Python's lzma
# Where install-pahole.sh unpacks Debian 13's libraries.
PROJECT_LIBS = (
    Path(__file__).resolve().parents[2] / ".tools" / "pahole-1.30" / "root" / "usr" / "lib"
)
MIN_VERSION = 50_060_000  # 5.6.0, as lzma_version_number() spells it

LZMA_OK, LZMA_STREAM_END, LZMA_BUF_ERROR = 0, 1, 10
LZMA_RUN = 0
UNLIMITED_STEP = 4 << 20  # decompress(data) with no max_length decodes this much a call
MEMLIMIT = 2**64 - 1  # what a block needs is bounded by its dictionary size
_ERRORS = {
    2: "no integrity check",
    3: "unsupported integrity check",
    5: "out of memory",
    6: "memory limit reached",
    7: "not xz data",
    8: "unsupported xz options",
    9: "corrupt xz data",
    11: "liblzma programming error",
}


class Decompressor(Protocol):
    @property
    def needs_input(self) -> bool: ...

    @property
    def eof(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Stream(ctypes.Structure):
    """lzma_stream (lzma/base.h), all fields, zeroed like LZMA_STREAM_INIT."""

    _fields_ = [
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_size_t),
        ("total_in", ctypes.c_uint64),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_size_t),
        ("total_out", ctypes.c_uint64),
        ("allocator", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
        ("reserved_ptr1", ctypes.c_void_p),
        ("reserved_ptr2", ctypes.c_void_p),
        ("reserved_ptr3", ctypes.c_void_p),
        ("reserved_ptr4", ctypes.c_void_p),
        ("seek_pos", ctypes.c_uint64),
        ("reserved_int2", ctypes.c_uint64),
        ("reserved_int3", ctypes.c_size_t),
        ("reserved_int4", ctypes.c_size_t),
        ("reserved_enum1", ctypes.c_int),
        ("reserved_enum2", ctypes.c_int),
    ]


def _candidates() -> list[str]:
    chosen = os.environ.get(LIBLZMA_ENV)
    if chosen:
        return [] if chosen == "system" else [chosen]
    return [str(p) for p in sorted(PROJECT_LIBS.glob("*/liblzma.so.5"))]


@functools.cache
def _library() -> ctypes.CDLL | None:
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.lzma_version_number.restype = ctypes.c_uint32
        if lib.lzma_version_number() < MIN_VERSION:
            continue
        lib.lzma_stream_decoder.argtypes = [
            ctypes.POINTER(_Stream),
            ctypes.c_uint64,
            ctypes.c_uint32,
        ]
        lib.lzma_stream_decoder.restype = ctypes.c_int
        lib.lzma_code.argtypes = [ctypes.POINTER(_Stream), ctypes.c_int]
        lib.lzma_code.restype = ctypes.c_int
        lib.lzma_end.argtypes = [ctypes.POINTER(_Stream)]
        lib.lzma_end.restype = None
        return lib
    return None


def version() -> str:
    """The liblzma that decodes packages' xz blocks, for benchmarks and reports."""
    lib = _library()
    if lib is None:
        return "Python's lzma (the system liblzma)"
    lib.lzma_version_string.restype = ctypes.c_char_p
    return f"liblzma {lib.lzma_version_string().decode()}"


class _NewerDecompressor:
    """lzma.LZMADecompressor(format=FORMAT_XZ)'s decompress/needs_input on another liblzma."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._strm = _Stream()
        ret = lib.lzma_stream_decoder(ctypes.byref(self._strm), MEMLIMIT, 0)
        if ret != LZMA_OK:
            raise lzma.LZMAError(f"cannot start an xz decoder: {_ERRORS.get(ret, ret)}")
        self._input = b""  # kept alive while liblzma points into it
        self._consumed = 0
        self.needs_input = True
        self.eof = False
        self._out = ctypes.create_string_buffer(0)  # reused: each answer is copied out

    def __del__(self) -> None:
        self._lib.lzma_end(ctypes.byref(self._strm))

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self.eof:
            raise EOFError("already at the end of the xz stream")
        if data:
            rest = self._input[self._consumed :]
            self._input, self._consumed = (rest + data) if rest else data, 0
        if max_length < 0:  # everything there is, as Python's decompress gives it
            parts = [self.decompress(b"", UNLIMITED_STEP)]
            while not self.eof and not self.needs_input:
                parts.append(self.decompress(b"", UNLIMITED_STEP))
            return b"".join(parts)
        if max_length == 0:  # input kept for later, as Python's does
            self.needs_input = len(self._input) == self._consumed
            return b""
        if len(self._out) < max_length:
            self._out = ctypes.create_string_buffer(max_length)
        out = self._out
        strm = self._strm
        left = len(self._input) - self._consumed
        base = ctypes.cast(ctypes.c_char_p(self._input), ctypes.c_void_p).value or 0
        strm.next_in = base + self._consumed
        strm.avail_in = left
        strm.next_out = ctypes.addressof(out)
        strm.avail_out = max_length
        ret = self._lib.lzma_code(ctypes.byref(strm), LZMA_RUN)
        self._consumed += left - strm.avail_in
        produced = max_length - strm.avail_out
        if ret == LZMA_STREAM_END:
            self.eof = True
        elif ret == LZMA_BUF_ERROR and strm.avail_in == 0 and strm.avail_out > 0:
            pass  # no input to make progress with: like Python's, not an error
        elif ret != LZMA_OK:
            raise lzma.LZMAError(f"{_ERRORS.get(ret, f'liblzma error {ret}')}")
        if self._consumed == len(self._input):
            self._input, self._consumed = b"", 0
        self.needs_input = not self.eof and strm.avail_in == 0 and produced < max_length
        return ctypes.string_at(out, produced)


def xz_decompressor() -> Decompressor:
    """A decoder of one xz stream: on the newer liblzma when there is one."""
    lib = _library()
    if lib is None:
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    return _NewerDecompressor(lib)
