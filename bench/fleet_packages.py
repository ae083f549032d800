"""Real-layout kernel packages for the fleet bench: one real Debian package under other unames.

A fleet needs N kernels whose packages look like real ones: the vmlinux,
then ~1.1 GB of module debug info, in a data.tar.xz of 24 MiB xz blocks as
Debian ships it. Recompressing 1.7 GB for each copy would take many
minutes, so a copy keeps the real data.tar.xz's compressed blocks and
changes only what names the kernel:

- the tar headers in the first xz block (the vmlinux's path is there), that
  block compressed again and the stream's index rewritten for its new size;
- the package name in control.tar.xz.

The new uname has the real one's length (6.1.0-57-cloud-amd64 ->
6.1.0-99-cloud-amd64, -98-, ...), so no tar offset moves, and the
module files further on keep the real uname (nothing reads them: the
fleet builds vmlinux BTF only). Each copy is checked with `xz -t`.

This xz index writer is bench machinery: generator/ decodes xz with the xz
command and never writes a container by hand.
"""

from __future__ import annotations

import io
import lzma
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path

from generator.packages.decompress import xz_command

STREAM_HEADER = 12
STREAM_FOOTER = 12
TAR_BLOCK = 512
AR_MAGIC = b"!<arch>\n"


# -- ar ----------------------------------------------------------------------------------


def read_ar(path: Path) -> list[tuple[str, bytes]]:
    """Every member of an ar archive (a .deb), in order."""
    data = path.read_bytes()
    if not data.startswith(AR_MAGIC):
        raise SystemExit(f"{path} is not an ar archive")
    members, at = [], len(AR_MAGIC)
    while at < len(data):
        header = data[at : at + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58])
        members.append((name, data[at + 60 : at + 60 + size]))
        at += 60 + size + (size & 1)
    return members


def write_ar(path: Path, members: list[tuple[str, bytes]]) -> None:
    """An ar archive as dpkg-deb writes it (mode 100644, owner 0, time 0)."""
    with path.open("wb") as out:
        out.write(AR_MAGIC)
        for name, body in members:
            header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n"
            out.write(header.encode())
            out.write(body)
            if len(body) & 1:
                out.write(b"\n")


# -- xz ----------------------------------------------------------------------------------


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _pad4(n: int) -> int:
    return -n % 4


def xz_records(stream: bytes) -> list[tuple[int, int]]:
    """(unpadded size, uncompressed size) of each block of a single xz stream."""
    backward = struct.unpack("<I", stream[-8:-4])[0]
    index = stream[-STREAM_FOOTER - (backward + 1) * 4 : -STREAM_FOOTER]
    count, at = _varint(index, 1)
    records = []
    for _ in range(count):
        unpadded, at = _varint(index, at)
        uncompressed, at = _varint(index, at)
        records.append((unpadded, uncompressed))
    return records


def _index_and_footer(records: list[tuple[int, int]], flags: bytes) -> bytes:
    index = b"\x00" + _encode_varint(len(records))
    index += b"".join(_encode_varint(u) + _encode_varint(c) for u, c in records)
    index += b"\x00" * _pad4(len(index))
    index += struct.pack("<I", zlib.crc32(index))
    backward = struct.pack("<I", len(index) // 4 - 1) + flags
    return index + struct.pack("<I", zlib.crc32(backward)) + backward + b"YZ"


def rename_first_block(stream: bytes, old: str, new: str) -> bytes:
    """The xz stream with `old` replaced by `new` in the tar headers of its first block."""
    flags = stream[6:8]
    records = xz_records(stream)
    first_unpadded, first_size = records[0]
    first_end = STREAM_HEADER + first_unpadded + _pad4(first_unpadded)
    tar = bytearray(lzma.LZMADecompressor().decompress(stream[:first_end], first_size))
    if len(tar) != first_size:
        raise SystemExit("could not decode the package's first xz block")
    renamed = _rename_tar_headers(tar, old.encode(), new.encode())
    if not renamed:
        raise SystemExit(f"no tar header in the first xz block names {old}")
    check = {b"\x00\x01": "crc32", b"\x00\x04": "crc64"}[flags]
    # xz's multi-threaded encoder, as dpkg's: it records the block's sizes in its
    # header, which btfhub looks for before spooling (generator/packages/xzblocks.py).
    encode = [xz_command(), "-6", "-T2", f"--block-size={first_size}", f"--check={check}", "-c"]
    one = subprocess.run(encode, input=bytes(tar), capture_output=True, check=True).stdout
    (unpadded, size), *more = xz_records(one)
    if more or size != first_size:
        raise SystemExit("xz did not write the first block as one block")
    block = one[STREAM_HEADER : STREAM_HEADER + unpadded + _pad4(unpadded)]
    rest_end = len(stream) - STREAM_FOOTER - (struct.unpack("<I", stream[-8:-4])[0] + 1) * 4
    body = stream[:STREAM_HEADER] + block + stream[first_end:rest_end]
    return body + _index_and_footer([(unpadded, size), *records[1:]], flags)


def _rename_tar_headers(tar: bytearray, old: bytes, new: bytes) -> int:
    """Rename in place in each header (and long-name/pax data) of a tar prefix; how many."""
    renamed, at = 0, 0
    while at + TAR_BLOCK <= len(tar):
        header = tar[at : at + TAR_BLOCK]
        if not any(header):
            break
        size = int(bytes(header[124:136]).rstrip(b"\x00 ") or b"0", 8)
        data_end = at + TAR_BLOCK + size
        if old in header:
            header = header.replace(old, new)
            header[148:156] = b" " * 8
            header[148:156] = b"%06o\x00 " % sum(header)
            tar[at : at + TAR_BLOCK] = header
            renamed += 1
        if bytes(header[156:157]) in (b"L", b"K", b"x") and data_end <= len(tar):
            tar[at + TAR_BLOCK : data_end] = tar[at + TAR_BLOCK : data_end].replace(old, new)
        at = data_end + (-size % TAR_BLOCK)
    return renamed


# -- the package -------------------------------------------------------------------------


def _rename_control(control: bytes, old: str, new: str) -> bytes:
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(control), mode="r:xz") as src,
        tarfile.open(fileobj=out, mode="w:xz", format=tarfile.GNU_FORMAT) as dst,
    ):
        for info in src:
            body = src.extractfile(info).read() if info.isreg() else None  # type: ignore[union-attr]
            if body is not None:
                body = body.replace(old.encode(), new.encode())
                info.size = len(body)
            dst.addfile(info, io.BytesIO(body) if body is not None else None)
    return out.getvalue()


def renamed_package(real: Path, old: str, new: str, out: Path) -> None:
    """A copy of the real .deb whose kernel is `new` (same length as `old`), at out."""
    if len(old) != len(new):
        raise SystemExit(f"{new!r} must be as long as {old!r}")
    members = dict(read_ar(real))
    data_name = next(name for name in members if name.startswith("data.tar"))
    if data_name != "data.tar.xz":
        raise SystemExit(f"{real} has {data_name}, not data.tar.xz")
    control_name = next(name for name in members if name.startswith("control.tar"))
    partial = out.with_name(out.name + ".partial")
    write_ar(
        partial,
        [
            ("debian-binary", members["debian-binary"]),
            (control_name, _rename_control(members[control_name], old, new)),
            (data_name, rename_first_block(members[data_name], old, new)),
        ],
    )
    test = subprocess.run(
        f"ar p {partial} {data_name} | {xz_command()} -T0 -t",
        shell=True,
        capture_output=True,
        text=True,
    )
    if test.returncode != 0:
        partial.unlink()
        raise SystemExit(f"the renamed data.tar.xz does not test clean: {test.stderr}")
    partial.rename(out)


def fleet_unames(real: str, count: int) -> list[str]:
    """count unames as long as the real one, from the top of its ABI's range down."""
    prefix, abi, suffix = real.split("-", 2)
    width = len(abi)
    numbers = (n for n in range(10**width - 1, 0, -1) if f"{n:0{width}d}" != abi)
    return [f"{prefix}-{next(numbers):0{width}d}-{suffix}" for _ in range(count)]
