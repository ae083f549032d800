"""A .deb's data.tar.xz spooled to disk, decoded block by block where it is read.

Half of a Debian 12 kernel's 590 MB debug vmlinux is relocation sections
(.rela.debug_info alone is 255 MB): the kernel is linked with --emit-relocs
to build its KASLR tables, and the -dbg package keeps them. pahole never
reads them: libdw relocates relocatable objects (ET_REL) only, and a vmlinux
is an executable. Debian 12's dpkg compresses with liblzma's multi-threaded
encoder, which cuts data.tar.xz into 24 MiB blocks that decode on their own
and lists them in the stream's index. So a vmlinux's blocks that hold
nothing but relocations are never decoded (11 of the real kernel's 24, a
third of the decoding's CPU: bench/README.md, "Session 12"); they stay
holes in the vmlinux file, zeros that take no disk.

Only for a .deb: the signed index's SHA-256 vouches for its whole file, so
the vmlinux needs no digest of its own, while an RPM's signed header lists
the vmlinux file's digest, which a file with holes cannot match.

The blocks are listed from the stream's index, at its end. When the
package's last bytes can be fetched ahead (packages/spool.py), the member
is spooled as it arrives, each block decoded once it is there, and nothing
after the vmlinux's last block is written to disk. Otherwise spooling waits
for the whole member, so a member whose first PROBE bytes arrive slower
than SPOOL_RATE is decoded as it downloads (spool_pays()).

No xz container is parsed here. The multi-threaded encoder writes each
block's compressed size into its header, which the single-threaded one
cannot: that one flag (multi_block(), read like a magic number) says
whether to spool, and a single-threaded stream is decoded as it downloads,
as before. `xz --robot --list -v` lists the blocks (where each begins and
ends, in the file and in the output) from the index alone; `xz -dc`
decodes one, given the stream's 12-byte header and the block's bytes: its
first `size` bytes out are the block's output (xz would go on to the
index, which it is not given). A listing this does not trust (more than
one stream, blocks that do not follow each other, one over MAX_BLOCK) has
the member decoded whole, as a stream.
"""

from __future__ import annotations

import bisect
import io
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from generator.children import run_child, tool_threads
from generator.elf import SHT_NOBITS, SHT_REL, SHT_RELA, layout_in
from generator.errors import EncodeError, PackageError
from generator.packages.decompress import XzReader, xz_command, xz_env
from generator.packages.stream import (
    LimitedReader,
    PrefixedReader,
    Readable,
    as_binary,
    move_exactly,
    read_upto,
    skip,
)

STREAM_HEADER = 12
COMPRESSED_SIZE_FLAG = 0x40  # in a block header's flags byte
PEEK = STREAM_HEADER + 2
# What a block read through BlockFile holds in memory, at most (two are open):
# liblzma's encoder makes blocks 3 dictionaries long, 24 MiB at dpkg's preset 6,
# 48 MiB at 7, 192 MiB at 9. A file of bigger blocks is decoded as a stream.
MAX_BLOCK = 64 << 20
# The ELF header and program headers: never left out.
ELF_HEAD = 4096
# How much of a member is read to time its arrival, and the rate from which
# it is spooled (bytes a second, for each decoding thread): spool_pays().
PROBE = 8 << 20
SPOOL_RATE = 60e6
LIST_TIMEOUT = 120
# A real package has about one 24 MiB block per 24 MiB: 75 in Debian 12's 1.7 GB.
MAX_BLOCKS = 1 << 16


def multi_block(head: bytes) -> bool:
    """True when an xz stream's first block header records its compressed size.

    head: the stream's first PEEK bytes. Only a multi-threaded encoder knows
    that size when it writes the header (the spec's "Block Flags", bit 6).
    """
    return (
        len(head) >= PEEK
        and head[STREAM_HEADER] != 0  # 0 would be the index: an empty stream
        and bool(head[STREAM_HEADER + 1] & COMPRESSED_SIZE_FLAG)
    )


def spool_pays(head: bytes, stream: Readable, size: int) -> tuple[bytes, bool]:
    """The member's first bytes read, and whether to spool it: multi-block and arriving fast.

    Only when the package's last bytes could not be read ahead (spool.py).
    head: the member's first PEEK bytes, read already; stream: the rest.
    A single-threaded stream (multi_block() false) is decided on head.
    Otherwise up to PROBE bytes are read and timed: spooling
    waits for the whole member (two thirds of it after the vmlinux) before a
    block is decoded; a stream is decoded as it arrives, paced by the
    decoder (about 15 MB/s of compressed input a thread) once the network
    is faster. So spooling pays only above a few times that: from SPOOL_RATE
    a decoding thread on, where it saves a third of the decoding, not below
    (the fleet bench at 50 MB/s built 30% fewer kernels an hour spooling
    everything). A whole member read already is spooled.
    """
    if not multi_block(head):
        return head, False
    started = time.monotonic()
    head += read_upto(stream, min(size, PROBE) - len(head))
    took = time.monotonic() - started
    return head, len(head) >= size or len(head) >= took * SPOOL_RATE * tool_threads()


@dataclass(frozen=True)
class Block:
    start: int  # where it begins in the file (its header)
    length: int  # its bytes in the file: header, data, padding, check
    offset: int  # where its output begins in the decoded stream
    size: int  # its output's length

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def stop(self) -> int:
        """Where it ends in the file."""
        return self.start + self.length


def list_blocks(path: Path) -> tuple[Block, ...] | None:
    """The blocks of a one-stream xz file, as its index lists them; None if odd.

    Only the stream's header, index and footer are read (`xz --robot --list
    -v`): the blocks themselves may not be there yet. Counted first: -v's
    line per block must stay small in memory (a hostile file of tiny blocks
    would make millions).
    """
    summary = _robot_list(path)
    if summary is None:
        return None
    files = [line.split("\t") for line in summary if line.startswith("file\t")]
    if len(files) != 1 or len(files[0]) < 3 or not files[0][2].isdigit():
        return None
    if not 0 < int(files[0][2]) <= MAX_BLOCKS:
        return None
    listing = _robot_list(path, "-v")
    if listing is None:
        return None
    blocks: list[Block] = []
    streams = 0
    for line in listing:
        fields = line.split("\t")
        streams += fields[0] == "stream"
        if fields[0] == "block":
            block = _block(fields)
            if block is None:
                return None
            blocks.append(block)
    start, offset = STREAM_HEADER, 0
    for block in blocks:  # each where the one before ends, in the file and in the output
        if block.start != start or block.offset != offset:
            return None
        start, offset = block.stop, block.end
    return tuple(blocks) if streams == 1 and blocks else None


def _robot_list(path: Path, *verbose: str) -> list[str] | None:
    """`xz --robot --list` of path, its lines; None when xz refuses the file or takes too long."""
    try:
        out = run_child(
            [xz_command(), "--robot", "--list", *verbose, "--", str(path)],
            env=xz_env(),
            timeout=LIST_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode("ascii", "replace").splitlines()


def _block(fields: list[str]) -> Block | None:
    # block, stream, block in stream, block in file, compressed offset,
    # uncompressed offset, total size, uncompressed size, ratio, check
    if len(fields) < 8:
        return None
    try:
        start, offset, length, size = (int(f) for f in fields[4:8])
    except ValueError:
        return None
    return Block(start, length, offset, size) if 0 < size <= MAX_BLOCK and length > 0 else None


class Arriving(Protocol):
    """A file being written from the start as its bytes arrive (packages/spool.py)."""

    def wait(self, end: int) -> None:
        """Return once the file holds its first `end` bytes; PackageError if it never will."""

    def keep_only(self, end: int) -> None:
        """Nothing past `end` will be read from the file: write no more than that."""

    def hand_back(self) -> None:
        """Stop reading the member: whoever reads the package next reads on from there."""


class BlockFile(io.RawIOBase):
    """The decoded stream of a spooled xz file: seekable, each block decoded as far as read.

    tarfile reads its headers through this. The two blocks read last stay
    open: their output so far in memory, their xz child waiting to go on
    (a tar header and the vmlinux's ELF header share the first). No block
    is decoded further than what is read of it: bytes after the vmlinux
    are only hashed, as when the package is decoded as a stream.
    """

    def __init__(
        self, path: Path, blocks: tuple[Block, ...], what: str, arriving: Arriving | None = None
    ) -> None:
        super().__init__()
        self.path = path
        self.blocks = blocks
        self.arriving = arriving
        self._what = what
        self._header = b""  # the stream's, read once its first block is there
        self._starts = [b.offset for b in blocks]
        self._position = 0
        self._open: dict[int, _Decoding] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.blocks[-1].end}
        self._position = max(0, base[whence] + offset)
        return self._position

    def read(self, n: int | None = -1, /) -> bytes:
        """n bytes (fewer only at the end), across blocks; to the block's end when n < 0."""
        whole = n is None or n < 0
        left = 0 if n is None or whole else n
        parts: list[bytes] = []
        while self._position < self.blocks[-1].end and (whole or left > 0):
            index = bisect.bisect_right(self._starts, self._position) - 1
            block = self.blocks[index]
            at = self._position - block.offset
            count = block.size - at if whole else min(left, block.size - at)
            data = self.decoding(index).upto(at + count)
            parts.append(bytes(data[at : at + count]))
            self._position += count
            if whole:
                break
            left -= count
        return b"".join(parts)

    def is_open(self, index: int) -> bool:
        return index in self._open

    def decoding(self, index: int) -> _Decoding:
        """Block `index` being decoded (the two used last are kept open)."""
        if index not in self._open:
            while len(self._open) >= 2:
                self._open.pop(next(iter(self._open))).close()
            self._open[index] = _Decoding(self.decoder(index), self.blocks[index].size, self._what)
        return self._open[index]

    def decoder(self, index: int) -> _BlockDecoder:
        """An xz child decoding block `index`, once the file holds all of it."""
        block = self.blocks[index]
        if self.arriving is not None:
            self.arriving.wait(block.stop)
        if not self._header:
            with self.path.open("rb") as f:
                self._header = f.read(STREAM_HEADER)
        return _BlockDecoder(self.path, self._header, block, self._what)

    def write_block(self, index: int, lo: int, hi: int, fd: int, at: int) -> None:
        """Decoded bytes [lo, hi) of block `index` (stream offsets) to fd at offset `at`."""
        block = self.blocks[index]
        if index in self._open:
            view = memoryview(self._open[index].upto(hi - block.offset))
            view = view[lo - block.offset : hi - block.offset]
            while view:
                written = os.pwrite(fd, view, at)
                view, at = view[written:], at + written
            return
        with self.decoder(index) as reader:
            skip(reader, lo - block.offset, self._what)
            os.lseek(fd, at, os.SEEK_SET)
            move_exactly(reader, fd, hi - lo, self._what)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()
        super().close()


class _BlockDecoder(XzReader):
    """One block's output, from `xz -dc` fed the stream's header and the block's bytes.

    Only the block's `size` bytes are ever read from it: xz, looking for the
    next block or the index after it, would find the end of its input.
    """

    def __init__(self, path: Path, header: bytes, block: Block, what: str) -> None:
        self._file = path.open("rb", buffering=0)
        try:
            self._file.seek(block.start)
            source = PrefixedReader(header, LimitedReader(self._file, block.length, what))
            super().__init__(source, what, threads=1)
        except BaseException:
            self._file.close()
            raise

    def close(self) -> None:
        try:
            super().close()  # the feeding thread has stopped reading the file once it returns
        finally:
            self._file.close()


class _Decoding:
    """A block's output so far, and the xz child that decodes more when it is wanted."""

    def __init__(self, reader: _BlockDecoder, size: int, what: str) -> None:
        self._reader = reader
        self._size = size
        self._what = what
        self.data = bytearray()

    def upto(self, n: int) -> bytearray:
        """The first n bytes (at least) of the block's output."""
        while len(self.data) < min(n, self._size):
            chunk = self._reader.read(min(n, self._size) - len(self.data))
            if not chunk:  # the child ended well, but early (an error would have raised)
                raise PackageError(f"corrupt compressed data in {self._what}: a block ends early")
            self.data += chunk
        return self.data

    def close(self) -> None:
        self._reader.close()


def extract_sparse(view: BlockFile, base: int, size: int, dest: Path, what: str) -> None:
    """Write the ELF file at [base, base + size) of the view to dest, holes where unread.

    A block is left out when its part of the file is relocation sections
    only; every other block is decoded and written, on this build's share
    of the cores. No partial dest is left behind. A member still arriving
    is written to disk no further than the file's last block, and handed
    back once the file is out.
    """
    touched = [i for i, b in enumerate(view.blocks) if b.offset < base + size and b.end > base]
    if view.arriving is not None and touched:
        view.arriving.keep_only(view.blocks[touched[-1]].stop)
    wanted = _wanted_blocks(view, touched, base, size, what)

    def write(index: int) -> None:
        block = view.blocks[index]
        lo, hi = max(block.offset, base), min(block.end, base + size)
        with dest.open("r+b", buffering=0) as out:  # a file offset of its own per thread
            view.write_block(index, lo, hi, out.fileno(), lo - base)

    try:
        with dest.open("wb") as out:
            out.truncate(size)
        # Blocks the view has open first, from this thread (the view is this
        # thread's); the rest decoded by xz children side by side.
        for index in [i for i in wanted if view.is_open(i)]:
            write(index)
        rest = [i for i in wanted if not view.is_open(i)]
        with ThreadPoolExecutor(max(1, tool_threads()), thread_name_prefix="xz-block") as pool:
            for _ in pool.map(write, rest):
                pass
        if view.arriving is not None:
            view.arriving.hand_back()
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _wanted_blocks(
    view: BlockFile, touched: list[int], base: int, size: int, what: str
) -> list[int]:
    """Of the blocks the file touches, those holding any of it but its relocation sections.

    All of them if its ELF is odd.
    """
    try:
        layout = layout_in(as_binary(view), what, base, size)
    except EncodeError:
        return touched  # pahole will say what is wrong with it
    dropped: list[tuple[int, int]] = []
    kept = [(0, ELF_HEAD), (layout.table[0], layout.table[0] + layout.table[1])]
    for s in layout.sections:
        if s.type in (SHT_REL, SHT_RELA):
            dropped.append((s.offset, s.offset + s.size))
        elif s.type != SHT_NOBITS and s.size:
            kept.append((s.offset, s.offset + s.size))
    wanted = []
    for i in touched:
        block = view.blocks[i]
        lo, hi = max(block.offset, base) - base, min(block.end, base + size) - base
        if any(a < hi and lo < b for a, b in kept) or not _covered(lo, hi, dropped):
            wanted.append(i)
    return wanted


def _covered(lo: int, hi: int, ranges: list[tuple[int, int]]) -> bool:
    """True when [lo, hi) lies wholly inside the union of ranges."""
    for a, b in sorted(ranges):
        if a > lo:
            return False
        lo = max(lo, b)
        if lo >= hi:
            return True
    return lo >= hi
