"""The archive's file form: <uname>.btf.tar.xz holding one member <uname>.btf.

Rebuilding a kernel must give byte-identical bytes, so nothing in the file
depends on the machine or the clock: GNU tar format (no pax headers that
could carry atime/mtime), mtime 0, uid/gid 0 with names "root"/"root" (what
`tar --owner=root --group=root` writes, and what the public hub's files
show), mode 0444, and xz with a fixed preset and check. The preset and
check are xz's defaults (6, CRC64) so every xz reader handles it; BTF files
are a few MB, below preset 6's 8 MiB dictionary, so a higher preset would
only cost memory. Identical output is promised for one liblzma version; a
different liblzma may compress differently, which write-if-changed then
shows as a change only when a kernel is actually rebuilt.
"""

from __future__ import annotations

import io
import lzma
import tarfile

from generator.errors import EncodeError

XZ_PRESET = 6
XZ_CHECK = lzma.CHECK_CRC64
MEMBER_MODE = 0o444
OWNER = "root"


def reproducible_tar_xz(member_name: str, data: bytes) -> bytes:
    """A deterministic .tar.xz holding `data` as the single member `member_name`."""
    if not member_name or "/" in member_name or member_name in (".", ".."):
        raise ValueError(f"member name must be a plain file name, not {member_name!r}")
    info = tarfile.TarInfo(member_name)
    info.size = len(data)
    info.mode = MEMBER_MODE
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = OWNER
    info.type = tarfile.REGTYPE
    raw = io.BytesIO()
    # GNU format never writes pax extended headers; a name over 100 bytes
    # would use a GNU longname block, itself deterministic.
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    return lzma.compress(raw.getvalue(), format=lzma.FORMAT_XZ, check=XZ_CHECK, preset=XZ_PRESET)


def read_tar_xz_member(data: bytes) -> tuple[str, bytes]:
    """(name, bytes) of the single regular member of an archive .tar.xz."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
            members = tar.getmembers()
            if len(members) != 1 or not members[0].isreg():
                raise EncodeError(
                    f"BTF tarball must hold exactly one regular file, not {len(members)} members"
                )
            f = tar.extractfile(members[0])
            assert f is not None  # isreg() members always have data
            return members[0].name, f.read()
    except (tarfile.TarError, lzma.LZMAError, EOFError) as exc:
        raise EncodeError(f"unreadable BTF tarball: {exc}") from exc
