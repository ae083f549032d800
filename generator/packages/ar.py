"""A forward-only reader of Unix `ar` archives (the outer layer of a .deb).

Format: "!<arch>\\n", then per member a 60-byte ASCII header
(name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\\n") followed by the
data, padded to an even length with one "\\n". Names: System V/GNU end with
"/" ("data.tar.xz/"), long GNU names are "/<offset>" into a "//" member,
"/" alone is a symbol table; BSD writes "#1/<len>" and puts the name at the
start of the data. dpkg-deb writes plain short names, but other tools
(e.g. a repacked package) may not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from generator.errors import MalformedPackageError, PackageError
from generator.packages.stream import (
    LimitedReader,
    Readable,
    read_exact,
    read_upto,
    skip,
)

AR_MAGIC = b"!<arch>\n"
HEADER_LEN = 60
# Names are held in memory: a hostile package must not make a name (BSD) or
# the GNU long-name table as big as itself. dpkg's own limits are far lower.
MAX_NAME = 4096
MAX_LONG_NAMES = 1 << 20


@dataclass
class ArMember:
    """One member, positioned at its data: read it through `data` before advancing."""

    name: str
    size: int
    data: LimitedReader
    end: int  # where its data ends in the archive (before any padding byte)


def _field(header: bytes, start: int, end: int) -> str:
    return header[start:end].decode("ascii", "replace").strip()


def iter_members(stream: Readable, total: int | None = None) -> Iterator[ArMember]:
    """Yield members in order; unread bytes of a member are skipped on advance.

    total: the archive's length (from the index listing it), when known. A
    member whose header claims more bytes than are left is refused at its
    header, as dpkg refuses it, even when a reader would stop before its end.
    """
    magic = read_upto(stream, len(AR_MAGIC))
    if magic != AR_MAGIC:
        if magic == b"!<thin>\n":
            raise PackageError("not a .deb package: a thin ar archive holds no data")
        raise PackageError(f"not a .deb package: no ar magic (starts with {magic[:8]!r})")
    long_names = b""
    index = 0
    offset = len(AR_MAGIC)
    while True:
        header = read_upto(stream, HEADER_LEN)
        if not header:
            return
        if len(header) < HEADER_LEN:
            raise PackageError("truncated package: stream ended inside an ar member header")
        index += 1
        if header[58:60] != b"`\n":
            raise PackageError(f"malformed ar archive: bad header of member {index}")
        raw_name = _field(header, 0, 16)
        size_text = _field(header, 48, 58)
        if not size_text.isdigit():
            raise PackageError(f"malformed ar archive: bad size {size_text!r} of member {index}")
        size = int(size_text)
        offset += HEADER_LEN
        if total is not None and offset + size > total:
            raise MalformedPackageError(
                f"malformed package: ar member {raw_name!r} claims {size} bytes, "
                f"the package has {max(total - offset, 0)} left"
            )
        end = offset + size
        offset = end + size % 2
        data = LimitedReader(stream, size, f"ar member {raw_name!r}")
        name = raw_name
        if raw_name.startswith("#1/") and raw_name[3:].isdigit():
            name_len = int(raw_name[3:])
            if name_len > MAX_NAME:
                raise MalformedPackageError(
                    f"malformed package: ar member {index} has a {name_len}-byte name"
                )
            if name_len > size:
                raise PackageError(f"malformed ar archive: BSD name longer than member {index}")
            name = (
                read_exact(data, name_len, "an ar member name")
                .rstrip(b"\0")
                .decode("utf-8", "replace")
            )
        elif raw_name == "//":
            # GNU long-name table: small, needed to resolve later names.
            if size > MAX_LONG_NAMES:
                raise MalformedPackageError(
                    f"malformed package: ar long-name table of {size} bytes"
                )
            long_names = read_exact(data, size, "the ar long-name table")
            name = ""
        elif raw_name == "/" or raw_name == "/SYM64/":
            name = ""  # symbol table
        elif raw_name.startswith("/") and raw_name[1:].isdigit():
            at = int(raw_name[1:])
            stop = long_names.find(b"/\n", at)
            if at >= len(long_names) or stop < 0:
                raise PackageError(f"malformed ar archive: bad long name of member {index}")
            name = long_names[at:stop].decode("utf-8", "replace")
        elif raw_name.endswith("/"):
            name = raw_name[:-1]
        if name:
            yield ArMember(name=name, size=data.remaining, data=data, end=end)
        data.drain()
        if size % 2:
            skip(stream, 1, "ar padding")
