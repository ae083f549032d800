"""vmlinux out of a .deb/.ddeb stream: ar -> data.tar.* -> decompressor -> tar, read forward.

python-debian's DebFile is not used: it reads a whole data.tar member into
memory (639 MB for a 200 MB zstd package) and needs a seekable file. Here
the ar member feeds the decompressor, whose output `tarfile` walks once
through a forward-only reader (stream.ForwardReader: tarfile's "r:" mode,
without the copies of its "r|" mode), and the vmlinux's bytes go from the
decompressor to its file without passing through tarfile. Decoding stops
once the vmlinux is written: on Ubuntu and Debian it is within the first
dozen tar members, so most of a 1 GB package is never decoded. A
multi-block data.tar.xz (Debian 12's dpkg) is spooled instead and only the
vmlinux's blocks pahole reads are decoded (xzblocks.py): as they arrive
when the package's last bytes can be read ahead (spool.py), else once the
whole member is spooled.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Generator
from pathlib import Path

from generator.errors import MalformedPackageError, PackageError
from generator.packages.ar import iter_members
from generator.packages.decompress import decompressed, sniffed
from generator.packages.modules import ModuleSink
from generator.packages.spool import TAIL, ArrivingSpool
from generator.packages.stream import (
    CHUNK,
    ForwardReader,
    PrefixedReader,
    Readable,
    as_binary,
    copy_to_file,
    read_upto,
)
from generator.packages.xzblocks import (
    PEEK,
    STREAM_HEADER,
    Block,
    BlockFile,
    extract_sparse,
    list_blocks,
    multi_block,
    spool_pays,
)

# The package's last n bytes, fetched ahead of the rest (PackageStream.read_tail); None if not.
TailReader = Callable[[int], bytes | None]

# data.tar suffix -> compression; verified against the magic bytes too.
DATA_TAR_COMPRESSION: dict[str, str | None] = {
    "data.tar.xz": "xz",
    "data.tar.zst": "zstd",
    "data.tar.gz": "gzip",
    "data.tar.bz2": "bzip2",
    "data.tar": None,
}


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
    # Only the "./" prefix dpkg-deb writes is dropped; member names with ".."
    # or an absolute path are refused before they get here.
    while name.startswith("./"):
        name = name[2:]
    return name


# ar members of a binary package, in the order dpkg-deb writes and requires them.
CONTROL_MEMBERS = ("control.tar", "control.tar.gz", "control.tar.xz", "control.tar.zst")


def walk_deb(
    stream: Readable,
    uname: str,
    dest: Path,
    size: int | None = None,
    modules: ModuleSink | None = None,
    read_tail: TailReader | None = None,
) -> Generator[None, None, None]:
    """Write vmlinux to dest, yield once, then (resumed) take the modules that follow.

    Closing the generator at its yield stops decoding there (an xz child is
    killed), which is all a build without modules does. read_tail: how to
    read the package's last bytes ahead, which a multi-block data.tar.xz
    lists its blocks in.
    """
    position = 0
    for member in iter_members(stream, size):
        position += 1
        # dpkg refuses a package whose members are not debian-binary, then
        # control.tar.*, then (after optional "_"-prefixed ones) data.tar.*.
        if position == 1:
            if member.name != "debian-binary":
                raise MalformedPackageError(
                    f"malformed package: first ar member is {member.name!r}, not debian-binary"
                )
            version = member.data.read(16)
            if not version.startswith(b"2."):
                raise MalformedPackageError(
                    f"malformed package: debian-binary says {version[:8]!r}, dpkg reads 2.x"
                )
            continue
        if position == 2:
            if member.name not in CONTROL_MEMBERS:
                raise MalformedPackageError(
                    f"malformed package: second ar member is {member.name!r}, not control.tar"
                )
            continue
        if member.name.startswith("_"):
            continue
        if not member.name.startswith("data.tar"):
            raise MalformedPackageError(f"malformed package: unexpected ar member {member.name!r}")
        if member.name not in DATA_TAR_COMPRESSION:
            raise PackageError(f"unknown compression of .deb member {member.name!r}")
        expected = DATA_TAR_COMPRESSION[member.name]
        found, body = sniffed(member.data, member.name)
        if found != expected:
            raise PackageError(
                f".deb member {member.name!r} does not hold {expected or 'plain tar'} data"
                f" (magic says {found or 'not compressed'})"
            )
        if expected == "xz" and modules is None:
            head = read_upto(body, min(member.size, PEEK))
            last = size is not None and size - member.end in (0, 1)  # (1: ar's padding)
            if read_tail is not None and size is not None and last and multi_block(head):
                arriving = _arriving(
                    read_tail, size - member.end, member.size, head, dest, member.name
                )
                if arriving is not None:
                    body = PrefixedReader(head, body)
                    yield from _walk_arriving(body, *arriving, uname, dest, member.name)
                    return
            first, spool = spool_pays(head, body, member.size)
            body = PrefixedReader(first, body)
            if spool:
                yield from _walk_spooled(body, member.size, uname, dest, member.name)
                return
        with decompressed(body, expected, member.name) as reader:
            yield from _walk_tar(reader, uname, dest, modules)
        return
    raise PackageError("not a .deb package: no data.tar member")


def _walk_spooled(
    body: Readable, size: int, uname: str, dest: Path, what: str
) -> Generator[None, None, None]:
    """vmlinux out of a multi-block data.tar.xz, spooled beside dest (packages/xzblocks.py)."""
    spool = dest.with_name(f"{dest.name}.{what}")
    try:
        copy_to_file(body, size, spool, what)
        blocks = list_blocks(spool)
        if blocks is not None:
            with BlockFile(spool, blocks, what) as view:
                yield from _walk_tar(view, uname, dest, None)
            return
        with spool.open("rb") as source, decompressed(source, "xz", what) as reader:
            yield from _walk_tar(reader, uname, dest, None)
    finally:
        spool.unlink(missing_ok=True)


def _arriving(
    read_tail: TailReader, padding: int, size: int, head: bytes, dest: Path, what: str
) -> tuple[ArrivingSpool, tuple[Block, ...]] | None:
    """A spool for the member (the package's last one) and its blocks, listed from its end.

    None when the package's last bytes cannot be read ahead or do not end
    in an xz index this trusts: the member is then spooled whole.
    """
    tail = read_tail(TAIL + padding)
    if tail is None or not STREAM_HEADER < len(tail) - padding <= size - STREAM_HEADER:
        return None
    spool = ArrivingSpool(dest.with_name(f"{dest.name}.{what}"), size, what)
    blocks = spool.skeleton(head, tail[: len(tail) - padding])
    return None if blocks is None else (spool, blocks)


def _walk_arriving(
    body: Readable,
    spool: ArrivingSpool,
    blocks: tuple[Block, ...],
    uname: str,
    dest: Path,
    what: str,
) -> Generator[None, None, None]:
    """vmlinux out of a multi-block data.tar.xz, each block decoded once it has arrived."""
    try:
        spool.start(body)
        with BlockFile(spool.path, blocks, what, spool) as view:
            yield from _walk_tar(view, uname, dest, None)
    finally:
        spool.stop()
        spool.path.unlink(missing_ok=True)


def _check_member(info: tarfile.TarInfo, wanted: set[str], seen: set[str]) -> bool:
    """Refuse what dpkg refuses; True when the member is the vmlinux to take.

    Every member read (those before the vmlinux: reading stops there) is
    checked: no absolute path, no "..", no hard link that points out of the
    package, no name twice. At a vmlinux path only a regular file (taken) or
    a symlink (skipped: the other candidate paths are symlinks to it) may be.
    """
    for what, name in (("member", info.name), ("hard link target", info.linkname)):
        if what == "hard link target" and not info.islnk():
            continue
        if name.startswith("/"):
            raise MalformedPackageError(
                f"malformed package: data.tar {what} {name!r} is an absolute path"
            )
        if ".." in name.split("/"):
            raise MalformedPackageError(
                f"malformed package: data.tar {what} {name!r} climbs out (..)"
            )
    name = _normalise(info.name).rstrip("/")
    if name in seen and not info.isdir():
        raise MalformedPackageError(f"malformed package: data.tar holds {info.name!r} twice")
    seen.add(name)
    if name not in wanted or info.issym():
        return False
    if info.isreg() and not info.issparse():
        return True
    kind = _kind(info)
    raise MalformedPackageError(f"malformed package: data.tar member {info.name!r} is a {kind}")


def _kind(info: tarfile.TarInfo) -> str:
    """What a tar member is, in words, for messages."""
    if info.islnk():
        return "hard link"
    if info.ischr() or info.isblk():
        return "device"
    if info.issparse():
        return "sparse file"
    if info.isdir():
        return "directory"
    return f"tar member of type {info.type!r}"


# GNU long names and pax headers: tarfile reads each whole into memory, so
# one as big as the package would be; real ones are a few hundred bytes.
MAX_EXTENDED_HEADER = 1 << 20
_EXTENDED_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses an extended header too big to hold in memory."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_TYPES and self.size > MAX_EXTENDED_HEADER:
            raise tarfile.ReadError(f"a {self.size}-byte extended header for {self.name!r}")
        member: tarfile.TarInfo = super()._proc_member(tar)  # type: ignore[misc]
        return member


def _extract_from_tar(data: Readable, uname: str, dest: Path) -> None:
    """vmlinux out of a data.tar stream, reading no further."""
    walk = _walk_tar(data, uname, dest, None)
    next(walk)
    walk.close()


def _walk_tar(
    data: Readable, uname: str, dest: Path, modules: ModuleSink | None
) -> Generator[None, None, None]:
    """data: a stream, or a BlockFile, whose vmlinux is written with holes (xzblocks)."""
    wanted = set(vmlinux_paths(uname))
    seen: set[str] = set()
    done = False
    forward = data if isinstance(data, BlockFile) else ForwardReader(data, "data.tar")
    try:
        with tarfile.open(fileobj=as_binary(forward), mode="r:", tarinfo=_BoundedTarInfo) as tar:
            for info in tar:
                # First regular file at any candidate path wins: in a stream
                # there is no going back, and the candidates are one file.
                if _check_member(info, set() if done else wanted, seen):
                    what = f"tar member {info.name!r}"
                    if isinstance(forward, BlockFile):
                        extract_sparse(forward, info.offset_data, info.size, dest, what)
                    else:
                        forward.seek(info.offset_data)
                        copy_to_file(forward, info.size, dest, what)
                    done = True
                    yield
                    if modules is None:
                        return
                    continue
                regular = info.isreg() and not info.issparse()
                name = modules.wanted(_normalise(info.name)) if modules and regular else None
                if modules is not None and name is not None:
                    member = tar.extractfile(info)
                    assert member is not None  # isreg() members always have data
                    modules.take(name, _normalise(info.name), member, info.size)
        # The archive ended: read its stream to the end too, so that damaged
        # compressed data that decoded into what looks like an end-of-archive
        # block is reported as the decoder's error, not as a missing vmlinux.
        while data.read(CHUNK):
            pass
    except tarfile.TarError as exc:
        raise PackageError(f"malformed data.tar in .deb: {exc}") from exc
    if not done:
        raise PackageError(f"package holds no vmlinux for {uname} (a signed-flavour dbgsym stub?)")
