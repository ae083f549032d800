"""The raw BTF out of an archive file, for libbpf's btf_custom_path.

An archive file is a .tar.xz with exactly one regular member `<uname -r>.btf`
(generator/btf/tarball.py writes it). It is read as a stream (tarfile's
"r|xz": no seeking, no temporary copy) and anything else is refused: a
second member, a link or device, a path, another kernel's name. The bytes
must be valid BTF before they are written, atomically, to the output.
"""

from __future__ import annotations

import lzma
import tarfile
from pathlib import Path

from generator.btf.check import check_btf
from generator.errors import BtfhubError, EncodeError
from generator.fsutil import write_if_changed

# A real kernel's BTF is 3 to 8 MB; anything far bigger is not one.
MAX_BTF_BYTES = 256 << 20


class BtfFileError(BtfhubError):
    """An archive file that is not what the hub writes."""


def read_btf_member(archive: Path, kernel: str) -> bytes:
    """The bytes of the single member `<kernel>.btf` of archive (a .btf.tar.xz)."""
    expected = f"{kernel}.btf"
    try:
        with archive.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|xz") as tar:
            member = tar.next()
            if member is None:
                raise BtfFileError(f"{archive.name}: empty archive, expected {expected}")
            if member.name != expected or not member.isreg():
                kind = "regular file" if member.isreg() else "non-regular member"
                raise BtfFileError(
                    f"{archive.name}: holds {kind} {member.name!r}, expected only {expected}"
                )
            if member.size > MAX_BTF_BYTES:
                raise BtfFileError(f"{archive.name}: {expected} is {member.size} bytes, too big")
            stream = tar.extractfile(member)
            assert stream is not None  # a regular member always has data
            data = stream.read()
            extra = tar.next()
            if extra is not None:
                raise BtfFileError(
                    f"{archive.name}: a second member {extra.name!r}; expected only {expected}"
                )
    except (tarfile.TarError, lzma.LZMAError, EOFError) as exc:
        raise BtfFileError(f"{archive.name}: not a readable .tar.xz: {exc}") from None
    try:
        check_btf(data)
    except EncodeError as exc:
        raise BtfFileError(f"{archive.name}: {expected}: {exc}") from None
    return data


def extract_btf(archive: Path, kernel: str, output: Path) -> bool:
    """Write archive's raw BTF to output atomically; False when output already held it."""
    return write_if_changed(output, read_btf_member(archive, kernel))
