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

Compression runs through the xz tool in its multi-threaded mode, with the
block size a function of the input alone (two blocks for a real BTF file):
Python's lzma has one thread, and on a 4 MB BTF this halves the 1.5 s it
costs per kernel, for about 0.1% more bytes. xz's threaded mode writes the
same bytes whatever the number of threads, as long as it is 2 or more
(single-threaded mode would differ: it leaves the sizes out of block
headers), so --threads is fixed at 2 and the result does not depend on the
machine's cores. --no-adjust makes xz fail rather than change its settings
under a memory limit, and XZ_OPT/XZ_DEFAULTS are cleared for the same
reason.
"""

from __future__ import annotations

import io
import lzma
import os
import tarfile

from generator.children import run_child
from generator.errors import EncodeError

XZ_PRESET = 6
XZ_BLOCK_ALIGN = 64 << 10
XZ_MIN_BLOCK = 1 << 20  # small inputs stay one block
MEMBER_MODE = 0o444
OWNER = "root"


def reproducible_tar_xz(member_name: str, data: bytes) -> bytes:
    """A deterministic .tar.xz holding `data` as the single member `member_name`."""
    return reproducible_tar_xz_members([(member_name, data)])


def reproducible_tar_xz_members(members: list[tuple[str, bytes]]) -> bytes:
    """A deterministic .tar.xz holding each (name, data), in the order given."""
    raw = io.BytesIO()
    # GNU format never writes pax extended headers; a name over 100 bytes
    # would use a GNU longname block, itself deterministic.
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member_name, data in members:
            if not member_name or "/" in member_name or member_name in (".", ".."):
                raise ValueError(f"member name must be a plain file name, not {member_name!r}")
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            info.mode = MEMBER_MODE
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = OWNER
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return xz_compress(raw.getvalue())


def xz_block_size(size: int) -> int:
    """Half the input, rounded up to 64 KiB, at least 1 MiB: two blocks for two cores."""
    half = -(-size // 2)
    return max(XZ_MIN_BLOCK, -(-half // XZ_BLOCK_ALIGN) * XZ_BLOCK_ALIGN)


def xz_compress(data: bytes) -> bytes:
    cmd = [
        "xz",
        "--format=xz",
        "--check=crc64",
        f"-{XZ_PRESET}",
        "--threads=2",
        f"--block-size={xz_block_size(len(data))}",
        "--memlimit-compress=max",
        "--no-adjust",
        "--stdout",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("XZ_OPT", "XZ_DEFAULTS")}
    try:
        proc = run_child(cmd, input=data, env=env)
    except FileNotFoundError:
        raise EncodeError("xz is not installed (run scripts/setup.sh)") from None
    if proc.returncode != 0:
        raise EncodeError(
            f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
        )
    return proc.stdout


def read_tar_xz_member(data: bytes) -> tuple[str, bytes]:
    """(name, bytes) of the single regular member of an archive .tar.xz."""
    members = read_tar_xz_members(data)
    if len(members) != 1:
        raise EncodeError(
            f"BTF tarball must hold exactly one regular file, not {len(members)} members"
        )
    return members[0]


def read_tar_xz_members(data: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of every member of an archive .tar.xz, all regular files, in order."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
            out = []
            for info in tar.getmembers():
                if not info.isreg() or "/" in info.name:
                    raise EncodeError(
                        f"BTF tarball member {info.name!r} is not a regular file at its top"
                    )
                f = tar.extractfile(info)
                assert f is not None  # isreg() members always have data
                out.append((info.name, f.read()))
            return out
    except (tarfile.TarError, lzma.LZMAError, EOFError) as exc:
        raise EncodeError(f"unreadable BTF tarball: {exc}") from exc
