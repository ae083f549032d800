"""vmlinux out of a .deb/.ddeb stream: ar -> data.tar.* -> decompressor -> tar (stream mode).

python-debian's DebFile is not used: it reads a whole data.tar member into
memory (639 MB for a 200 MB zstd package) and needs a seekable file. Here
the ar member feeds the decompressor which feeds `tarfile` in "r|" mode, and
reading stops once the vmlinux regular file is written: on Ubuntu and
Debian it is within the first dozen tar members, so most of a 1 GB package
is never downloaded.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from generator.errors import PackageError
from generator.packages.ar import iter_members
from generator.packages.decompress import close_reader, decompressed, sniffed
from generator.packages.stream import Readable, as_binary, copy_to_file

# data.tar suffix -> compression; verified against the magic bytes too.
DATA_TAR_COMPRESSION: dict[str, str | None] = {
    "data.tar.xz": "xz",
    "data.tar.zst": "zstd",
    "data.tar.gz": "gzip",
    "data.tar.bz2": "bzip2",
    "data.tar": None,
}

# tarfile's own read size in stream mode; 64 KiB keeps its buffer slicing cheap.
TAR_BUFSIZE = 64 << 10


def vmlinux_paths(uname: str) -> tuple[str, ...]:
    """Where a Debian/Ubuntu debug package may hold vmlinux, most usual first.

    Only the first is a regular file in the packages seen so far; the others
    are symlinks to it there, but accepted when they are regular files.
    """
    return (
        f"usr/lib/debug/boot/vmlinux-{uname}",
        f"usr/lib/debug/lib/modules/{uname}/vmlinux",
        f"usr/lib/debug/vmlinux-{uname}",
    )


def _normalise(name: str) -> str:
    # Only the "./" prefix dpkg-deb writes is dropped; anything cleverer
    # ("..", "//") simply fails to match, which is the safe outcome.
    while name.startswith("./"):
        name = name[2:]
    return name


def extract_deb_vmlinux(stream: Readable, uname: str, dest: Path) -> None:
    for member in iter_members(stream):
        if not member.name.startswith("data.tar"):
            continue
        if member.name not in DATA_TAR_COMPRESSION:
            raise PackageError(f"unknown compression of .deb member {member.name!r}")
        expected = DATA_TAR_COMPRESSION[member.name]
        found, body = sniffed(member.data, member.name)
        if found != expected:
            raise PackageError(
                f".deb member {member.name!r} does not hold {expected or 'plain tar'} data"
                f" (magic says {found or 'not compressed'})"
            )
        reader = decompressed(body, expected, member.name)
        try:
            _extract_from_tar(reader, uname, dest)
        finally:
            close_reader(reader)
        return
    raise PackageError("not a .deb package: no data.tar member")


def _extract_from_tar(data: Readable, uname: str, dest: Path) -> None:
    wanted = set(vmlinux_paths(uname))
    try:
        with tarfile.open(fileobj=as_binary(data), mode="r|", bufsize=TAR_BUFSIZE) as tar:
            for info in tar:
                # First regular file at any candidate path wins: in a stream
                # there is no going back, and the candidates are one file.
                # Symlinks and hardlinks are not followed (isreg() is False).
                if not info.isreg() or _normalise(info.name) not in wanted:
                    continue
                member = tar.extractfile(info)
                if member is None:  # pragma: no cover - isreg() members always have data
                    continue
                copy_to_file(member, info.size, dest, f"tar member {info.name!r}")
                return
    except tarfile.TarError as exc:
        raise PackageError(f"malformed data.tar in .deb: {exc}") from exc
    raise PackageError(f"package holds no vmlinux for {uname} (a signed-flavour dbgsym stub?)")
