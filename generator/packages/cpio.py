"""A forward-only reader of cpio "newc" archives (an RPM payload).

Per member: a 110-byte ASCII header ("070701", or "070702" with a checksum,
then 13 eight-digit hex fields), the NUL-terminated name padded so header
plus name is a multiple of 4, then the data padded to a multiple of 4.
The archive ends with a member named "TRAILER!!!". rpm writes its payload
in path order, so a kernel-debuginfo vmlinux comes after the modules.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from generator.errors import PackageError
from generator.packages.stream import LimitedReader, Readable, read_exact, skip

HEADER_LEN = 110
NEWC_MAGICS = (b"070701", b"070702")
TRAILER = "TRAILER!!!"
# rpm >= 4.12 writes "07070X" (file data only, metadata in the header) for
# payloads holding files of 4 GiB or more.
RPM_STRIPPED_MAGIC = b"07070X"
MAX_NAME = 64 << 10
HEX_FIELDS_RE = re.compile(rb"[0-9A-Fa-f]{104}")


@dataclass
class CpioMember:
    """One member, positioned at its data: read it through `data` before advancing."""

    name: str
    mode: int
    nlink: int
    size: int
    data: LimitedReader

    def is_regular(self) -> bool:
        return stat.S_ISREG(self.mode)


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def iter_members(stream: Readable) -> Iterator[CpioMember]:
    """Yield members up to (not including) the trailer; truncation is a PackageError."""
    index = 0
    while True:
        header = read_exact(stream, HEADER_LEN, "a cpio header")
        index += 1
        magic = header[:6]
        if magic == RPM_STRIPPED_MAGIC:
            raise PackageError("unsupported rpm payload: stripped cpio (files of 4 GiB or more)")
        if magic not in NEWC_MAGICS:
            raise PackageError(f"malformed rpm payload: not a newc cpio member ({magic!r})")
        # Exactly 8 hex digits each: int(x, 16) alone also reads "-0000001",
        # " 000000a" or "0000_00a", and a negative size would unbound the reader.
        if not HEX_FIELDS_RE.fullmatch(header[6:]):
            raise PackageError(f"malformed rpm payload: bad cpio header {index}")
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, nlink, size, namesize = fields[1], fields[4], fields[6], fields[11]
        if not 1 <= namesize <= MAX_NAME:
            raise PackageError(f"malformed rpm payload: bad cpio name size {namesize}")
        raw = read_exact(stream, namesize + _pad4(HEADER_LEN + namesize), "a cpio name")
        name = raw[: namesize - 1].decode("utf-8", "replace")
        if name == TRAILER:
            return
        data = LimitedReader(stream, size, f"cpio member {name!r}")
        yield CpioMember(name=name, mode=mode, nlink=nlink, size=size, data=data)
        data.drain()
        skip(stream, _pad4(size), "cpio padding")
