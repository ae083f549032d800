"""vmlinux out of an .rpm stream: lead -> signature -> header -> compressed cpio.

`rpmfile` (PyPI) is not used: it buffers a zstd payload whole in memory and
wants a seekable file. The headers are skipped without being parsed (we
need nothing from them), the payload compression is taken from its magic
bytes rather than the header tag (the bytes cannot lie about themselves),
and the cpio stream is read until the vmlinux regular file is written.
"""

from __future__ import annotations

import struct
from pathlib import Path

from generator.errors import PackageError
from generator.packages.cpio import iter_members
from generator.packages.decompress import close_reader, decompressed, sniffed
from generator.packages.stream import Readable, copy_to_file, read_exact, read_upto, skip

LEAD_LEN = 96
LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
# rpm's own sanity limits (hdrchkTags / hdrchkData): beyond them it is garbage.
MAX_INDEX = 0xFFFF
MAX_DATA = 256 << 20


def vmlinux_path(uname: str) -> str:
    return f"usr/lib/debug/lib/modules/{uname}/vmlinux"


def vmlinux_paths(uname: str) -> tuple[str, str]:
    """Where kernel debuginfo RPMs keep vmlinux: Red Hat family, then SUSE."""
    return vmlinux_path(uname), f"usr/lib/debug/boot/vmlinux-{uname}.debug"


def _skip_header(stream: Readable, what: str, pad: bool) -> None:
    intro = read_exact(stream, 16, f"the rpm {what} header")
    if intro[:4] != HEADER_MAGIC:
        raise PackageError(f"malformed rpm: bad {what} header magic {intro[:4].hex()}")
    nindex, hsize = struct.unpack(">II", intro[8:16])
    if nindex > MAX_INDEX or hsize > MAX_DATA:
        raise PackageError(f"malformed rpm: implausible {what} header ({nindex} tags, {hsize} B)")
    length = nindex * 16 + hsize
    # The signature header is padded so the main header starts 8-aligned.
    if pad:
        length += (8 - length % 8) % 8
    skip(stream, length, f"the rpm {what} header")


def _normalise(name: str) -> str:
    if name.startswith("./"):
        return name[2:]
    return name.lstrip("/")


def extract_rpm_vmlinux(stream: Readable, uname: str, dest: Path) -> None:
    lead = read_upto(stream, LEAD_LEN)
    if lead[:4] != LEAD_MAGIC:
        raise PackageError(f"not an rpm package: no lead magic (starts with {lead[:8]!r})")
    if len(lead) < LEAD_LEN:
        raise PackageError("truncated package: stream ended inside the rpm lead")
    _skip_header(stream, "signature", pad=True)
    _skip_header(stream, "main", pad=False)
    compression, payload = sniffed(stream, "the rpm payload")
    wanted = vmlinux_paths(uname)
    reader = decompressed(payload, compression, "the rpm payload")
    try:
        for member in iter_members(reader):
            if _normalise(member.name) not in wanted or not member.is_regular():
                continue
            if member.size == 0 and member.nlink > 1:
                # A hard-linked file's data travels with its last link.
                continue
            copy_to_file(member.data, member.size, dest, f"cpio member {member.name!r}")
            return
    finally:
        close_reader(reader)
    raise PackageError(f"package holds no vmlinux for {uname} (not a kernel-debuginfo package?)")
