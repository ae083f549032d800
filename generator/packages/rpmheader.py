"""RPM header structures: the lead, a header's index and store, and the file list.

A header is a 16-byte intro (magic 8e ad e8 01, 4 reserved bytes, the
number of index entries, the size of the data store), the index (16 bytes
per entry: tag, type, offset into the store, count, all big-endian) and the
store. The main header lists every file of the payload with its size, mode
and inode, which is what lets a reader refuse a package whose payload says
something else before it writes a byte (rpm does the same: "archive file not
in header").

Every offset and count is checked against the store's bounds, so a hostile
header is a PackageError, never an IndexError or a huge allocation.
"""

from __future__ import annotations

import posixpath
import stat
import struct
from dataclasses import dataclass

from generator.errors import MalformedPackageError, PackageError
from generator.packages.stream import Readable, read_exact, read_upto

LEAD_LEN = 96
LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
# rpm's own sanity limits (hdrchkTags / hdrchkData): beyond them it is garbage.
MAX_INDEX = 0xFFFF
MAX_DATA = 256 << 20
LEAD_BINARY = 0
RPMSIGTYPE_HEADERSIG = 5

# Entry types (rpmTagType).
T_CHAR, T_INT8, T_INT16, T_INT32, T_INT64 = 1, 2, 3, 4, 5
T_STRING, T_BIN, T_STRING_ARRAY, T_I18NSTRING = 6, 7, 8, 9
_INT_FORMATS = {T_CHAR: "B", T_INT8: "B", T_INT16: "H", T_INT32: "I", T_INT64: "Q"}

# Signature header tags: the size of main header + compressed payload.
SIGTAG_SIZE = 1000
SIGTAG_LONGSIZE = 270

# Main header tags (rpmtag.h) btfhub reads.
TAG_OLDFILENAMES = 1027
TAG_FILESIZES = 1028
TAG_FILEMODES = 1030
TAG_FILEDEVICES = 1095
TAG_FILEINODES = 1096
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118
TAG_PAYLOADFORMAT = 1124
TAG_LONGFILESIZES = 5008


@dataclass(frozen=True)
class Entry:
    tag: int
    type: int
    offset: int
    count: int


@dataclass(frozen=True)
class Header:
    """One parsed header: its index entries by tag and its data store.

    The bytes it came from are kept (intro, index, padding) because a header
    signature covers them: rpmsig derives the signed region from them.
    """

    what: str  # "signature" or "main", for messages
    entries: dict[int, Entry]  # the first entry of each tag
    store: bytes
    intro: bytes = b""  # the 16-byte intro as read
    index: tuple[Entry, ...] = ()  # every entry, in file order
    index_bytes: bytes = b""  # the index as read
    padding: bytes = b""  # read after the store (the signature header's alignment)

    @property
    def raw(self) -> bytes:
        """The header as in the file, without padding."""
        return self.intro + self.index_bytes + self.store

    @property
    def length(self) -> int:
        """Bytes it took in the file: intro, index, store and padding."""
        return len(self.intro) + len(self.index_bytes) + len(self.store) + len(self.padding)

    def _fail(self, tag: int, problem: str) -> PackageError:
        return PackageError(f"malformed rpm: {self.what} header tag {tag}: {problem}")

    def strings(self, tag: int) -> list[str] | None:
        """A STRING, STRING_ARRAY or I18NSTRING entry as a list; None when absent."""
        entry = self.entries.get(tag)
        if entry is None:
            return None
        if entry.type not in (T_STRING, T_STRING_ARRAY, T_I18NSTRING):
            raise self._fail(tag, f"type {entry.type} where strings belong")
        out: list[str] = []
        pos = entry.offset
        for _ in range(entry.count):
            end = self.store.find(b"\0", pos)
            if end < 0:
                raise self._fail(tag, "a string runs past the end of the header")
            out.append(self.store[pos:end].decode("utf-8", "surrogateescape"))
            pos = end + 1
        return out

    def ints(self, tag: int) -> list[int] | None:
        """An integer entry (any width) as a list; None when absent."""
        entry = self.entries.get(tag)
        if entry is None:
            return None
        fmt = _INT_FORMATS.get(entry.type)
        if fmt is None:
            raise self._fail(tag, f"type {entry.type} where integers belong")
        width = struct.calcsize(fmt)
        end = entry.offset + width * entry.count
        if end > len(self.store):
            raise self._fail(tag, "its values run past the end of the header")
        return list(struct.unpack(f">{entry.count}{fmt}", self.store[entry.offset : end]))

    def binary(self, tag: int) -> bytes | None:
        """A BIN entry's bytes; None when absent."""
        entry = self.entries.get(tag)
        if entry is None:
            return None
        if entry.type != T_BIN:
            raise self._fail(tag, f"type {entry.type} where binary data belongs")
        end = entry.offset + entry.count
        if end > len(self.store):
            raise self._fail(tag, "its bytes run past the end of the header")
        return self.store[entry.offset : end]


def read_lead(stream: Readable) -> bytes:
    """Check the 96-byte lead (magic, a binary package, a header-style signature); return it."""
    lead = read_upto(stream, LEAD_LEN)
    if lead[:4] != LEAD_MAGIC:
        raise PackageError(f"not an rpm package: no lead magic (starts with {lead[:8]!r})")
    if len(lead) < LEAD_LEN:
        raise PackageError("truncated package: stream ended inside the rpm lead")
    major = lead[4]
    kind, sigtype = struct.unpack(">H", lead[6:8])[0], struct.unpack(">H", lead[78:80])[0]
    if major < 3:
        raise PackageError(f"unsupported rpm: lead version {major} (rpm reads 3 and 4)")
    if kind != LEAD_BINARY:
        raise PackageError("not a binary rpm package (a source rpm?)")
    if sigtype != RPMSIGTYPE_HEADERSIG:
        raise PackageError(f"unsupported rpm: signature type {sigtype} (rpm reads only 5)")
    return lead


def read_header(stream: Readable, what: str, pad: bool) -> Header:
    """Read and parse one header; `pad`: it is padded to 8 bytes (the signature header)."""
    intro = read_exact(stream, 16, f"the rpm {what} header")
    if intro[:4] != HEADER_MAGIC:
        raise PackageError(f"malformed rpm: bad {what} header magic {intro[:4].hex()}")
    nindex, hsize = struct.unpack(">II", intro[8:16])
    if not 1 <= nindex <= MAX_INDEX or hsize > MAX_DATA:
        raise PackageError(f"malformed rpm: implausible {what} header ({nindex} tags, {hsize} B)")
    index = read_exact(stream, nindex * 16, f"the rpm {what} header")
    store = read_exact(stream, hsize, f"the rpm {what} header")
    padding = (8 - hsize % 8) % 8 if pad else 0
    pad_bytes = read_exact(stream, padding, f"the rpm {what} header padding")
    order: list[Entry] = []
    entries: dict[int, Entry] = {}
    for i in range(nindex):
        tag, typ, offset, count = struct.unpack(">IIII", index[16 * i : 16 * i + 16])
        if offset > hsize or count > hsize + 1:
            # Even a one-byte value needs its byte; strings need theirs.
            raise PackageError(f"malformed rpm: {what} header tag {tag} points outside the header")
        entry = Entry(tag, typ, offset, count)
        order.append(entry)
        entries.setdefault(tag, entry)
    return Header(what, entries, store, intro, tuple(order), index, pad_bytes)


@dataclass(frozen=True)
class FileEntry:
    """One file the main header lists."""

    path: str  # absolute, as rpm installs it
    size: int
    mode: int
    inode: int
    device: int


def file_paths(header: Header) -> list[str]:
    """The paths the main header lists, in its order (BASENAMES+DIRNAMES, or OLDFILENAMES)."""
    basenames = header.strings(TAG_BASENAMES)
    if basenames is None:
        return header.strings(TAG_OLDFILENAMES) or []
    dirnames = header.strings(TAG_DIRNAMES) or []
    dirindexes = header.ints(TAG_DIRINDEXES) or []
    if len(dirindexes) != len(basenames) or any(i >= len(dirnames) for i in dirindexes):
        raise PackageError("malformed rpm: the header's file names do not add up")
    return [dirnames[d] + b for d, b in zip(dirindexes, basenames, strict=True)]


def file_list(header: Header) -> list[FileEntry]:
    """Every file the main header lists, refusing paths that climb or are not absolute."""
    paths = file_paths(header)
    n = len(paths)
    sizes = header.ints(TAG_LONGFILESIZES) or header.ints(TAG_FILESIZES) or []
    modes = header.ints(TAG_FILEMODES) or []
    inodes = header.ints(TAG_FILEINODES) or list(range(1, n + 1))
    devices = header.ints(TAG_FILEDEVICES) or [0] * n
    if not n == len(sizes) == len(modes) == len(inodes) == len(devices):
        raise PackageError(
            f"malformed rpm: the header lists {n} files but {len(sizes)} sizes, "
            f"{len(modes)} modes, {len(inodes)} inodes"
        )
    for path in paths:
        check_member_name(path, "the rpm header", absolute=True)
    return [
        FileEntry(p, s, m, i, d)
        for p, s, m, i, d in zip(paths, sizes, modes, inodes, devices, strict=True)
    ]


def check_member_name(name: str, where: str, *, absolute: bool = False) -> None:
    """Refuse a member name that climbs (".."), or is absolute where it must be relative.

    absolute=True: the name must be absolute (rpm header paths are).
    """
    if "\0" in name or ".." in name.split("/"):
        raise MalformedPackageError(
            f"malformed package: {where} holds the member {name!r} (a .. path)"
        )
    if absolute and not name.startswith("/"):
        raise MalformedPackageError(f"malformed package: {where} holds the relative path {name!r}")
    if not absolute and name.startswith("/"):
        raise MalformedPackageError(f"malformed package: {where} holds the absolute path {name!r}")


def kind_of(mode: int) -> str:
    """A file type in words, for messages."""
    for test, word in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return word
    return f"file of mode {mode:o}"


def normalise(name: str) -> str:
    """A payload (cpio) name as the absolute path the header lists: "./usr/x" -> "/usr/x"."""
    return "/" + posixpath.normpath(name.removeprefix("./")).lstrip("/")
