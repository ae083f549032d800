"""A .deb's data.tar.xz written to disk by a thread as it downloads, its blocks listed ahead.

A multi-block xz stream lists its blocks in the index at its very end. With
the package's last bytes fetched ahead (PackageStream.read_tail, which
holds them against the package's own at its end, like its SHA-256), the
spool file starts as a skeleton: the stream's header at the start, those
last bytes at the end, holes between. `xz --robot --list -v` reads only
those, so the blocks are known before any has arrived. A thread then
writes the member into the file as it arrives, and each block is decoded
(xzblocks.BlockFile) as soon as the file holds it, while the rest is still
downloading: the network and the decoding overlap as when a stream is
decoded, and the blocks that hold only relocations are still never decoded.

Once the vmlinux's last block is known (keep_only), nothing past it is
written: the thread only reads on, which hashes the package, until the
vmlinux is out and the member is handed back to the caller (hand_back),
who reads the rest through the hash as for any other package.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from generator.errors import PackageError
from generator.packages.stream import CHUNK, Readable, move_to_fd, skip
from generator.packages.xzblocks import STREAM_HEADER, Block, list_blocks

# The package's last bytes fetched ahead: the xz index and footer of its last
# member. An index takes a few bytes a block: 64 KiB lists thousands of blocks,
# where Debian 12's 1.7 GB packages have 75.
TAIL = 64 << 10


class ArrivingSpool:
    """The member's bytes written to `path` by a thread as they are read (see the module)."""

    def __init__(self, path: Path, size: int, what: str) -> None:
        self.path = path
        self._size = size
        self._what = what
        self._changed = threading.Condition()
        self._arrived = 0  # bytes read off the member
        self._limit = size  # of which those before this are written to the file
        self._stop = False
        self._ended = False  # the thread is done: every byte read, stopped or failed
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def skeleton(self, header: bytes, tail: bytes) -> tuple[Block, ...] | None:
        """Write the stream's header and its last bytes; the blocks its index lists, or None.

        The file is removed again when it lists none (or cannot be written).
        """
        try:
            with self.path.open("wb") as out:
                out.truncate(self._size)
                os.pwrite(out.fileno(), header[:STREAM_HEADER], 0)
                os.pwrite(out.fileno(), tail, self._size - len(tail))
            blocks = list_blocks(self.path)
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        if blocks is None:
            self.path.unlink(missing_ok=True)
        return blocks

    def start(self, member: Readable) -> None:
        """Read `member` (all `size` bytes, from the start) into the file, in a thread."""
        self._thread = threading.Thread(target=self._run, args=(member,), name="spool", daemon=True)
        self._thread.start()

    def _run(self, member: Readable) -> None:
        try:
            with self.path.open("r+b", buffering=0) as out:
                while True:
                    with self._changed:
                        arrived, limit, stop = self._arrived, self._limit, self._stop
                    if stop or arrived >= self._size:
                        break
                    if arrived < limit:  # written where the file's offset stands: at `arrived`
                        n = move_to_fd(member, out.fileno(), min(CHUNK, limit - arrived))
                        if not n:
                            raise PackageError(
                                f"truncated package: stream ended inside {self._what}"
                            )
                    else:  # past what is read from the file: only hashed on the way
                        n = min(CHUNK, self._size - arrived)
                        skip(member, n, self._what)
                    with self._changed:
                        self._arrived += n
                        self._changed.notify_all()
        except BaseException as exc:  # raised in the reader's thread by wait() and hand_back()
            self._error = exc
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def wait(self, end: int) -> None:
        """Return once the file holds its first `end` bytes."""
        with self._changed:
            if end > self._limit:
                raise PackageError(f"{self._what}: a block past the part kept was wanted")
            while self._arrived < end and not self._ended:
                self._changed.wait()
            if self._arrived < end:
                raise self._error or PackageError(
                    f"truncated package: stream ended inside {self._what}"
                )

    def keep_only(self, end: int) -> None:
        """Write nothing past `end` to the file: the rest is only read (and so hashed)."""
        with self._changed:
            self._limit = min(self._limit, max(end, self._arrived))

    def hand_back(self) -> None:
        """Stop reading the member; raise what went wrong reading it, if anything did."""
        self.stop()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def stop(self) -> None:
        """Stop reading the member (once the current chunk is in)."""
        with self._changed:
            self._stop = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
