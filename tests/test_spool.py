"""A multi-block data.tar.xz whose blocks are listed from the package's last bytes, read ahead.

Each block is decoded once it has arrived, nothing after the vmlinux's last
block is written to disk, and the last bytes read ahead are held against the
package's own (tests/test_transport.py). The vmlinux is the one test_xzblocks
builds: relocation sections spanning whole 64 KiB blocks.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import tarfile
import threading
from pathlib import Path

import pytest

from generator.demokit.server import MirrorServer
from generator.elf import elf_sections
from generator.errors import PackageError
from generator.model import KernelPackage
from generator.packages import extract_vmlinux, spool, xzblocks
from generator.packages.spool import ArrivingSpool
from generator.packages.stream import CHUNK
from generator.packages.xzblocks import Block, list_blocks
from generator.upstream.http import UpstreamClient
from generator.verify import VerifiedPackage
from tests.kit.debpkg import incompressible, xz_deb
from tests.kit.elf import MULTI_BLOCK_XZ as MULTI
from tests.kit.streams import DEB_UNAME, OneWayStream, as_io

AFTER = 4 << 20  # a module's bytes after the vmlinux


def _layout(deb: bytes, work: Path) -> tuple[int, tuple[Block, ...], Block]:
    """Where data.tar.xz starts in the package, its blocks, and the vmlinux's last block."""
    start = deb.index(b"\xfd7zXZ\x00")
    member = deb[start:] if deb.endswith(b"YZ") else deb[start:-1]  # (ar's padding byte)
    path = work / "member.xz"
    path.write_bytes(member)
    blocks = list_blocks(path)
    assert blocks is not None
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(member))) as tar:
        info = tar.getmember(f"./usr/lib/debug/boot/vmlinux-{DEB_UNAME}")
    end = info.offset_data + info.size
    return start, blocks, next(b for b in blocks if b.offset < end <= b.end)


class GatedStream(OneWayStream):
    """A package whose bytes from `gate` on arrive only once `opened` is set."""

    def __init__(self, data: bytes, gate: int, opened: threading.Event) -> None:
        super().__init__(data)
        self._gate = gate
        self._opened = opened

    def read(self, n: int = -1, /) -> bytes:
        if self.bytes_read >= self._gate:
            assert self._opened.wait(10), "the rest was waited for before the vmlinux's blocks"
        elif n < 0 or self.bytes_read + n > self._gate:
            n = self._gate - self.bytes_read
        return super().read(n)


@pytest.mark.parametrize("opens", ["kept", "stopped"])
def test_blocks_are_decoded_as_they_arrive_and_nothing_past_the_vmlinux_is_spooled(
    tmp_path: Path, relocated: Path, monkeypatch: pytest.MonkeyPatch, opens: str
) -> None:
    """The rest of the member arrives once the spool keeps no more than the vmlinux's
    blocks (kept), or only once the vmlinux is out and the member handed back (stopped)."""
    monkeypatch.setattr(xzblocks, "SPOOL_RATE", float("inf"))  # too slow to spool whole
    original = relocated.read_bytes()
    data = xz_deb(tmp_path / "k.deb", DEB_UNAME, original, *MULTI, after=incompressible(AFTER))
    deb = data.read_bytes()
    start, _, last = _layout(deb, tmp_path)
    gate = threading.Event()
    spooled: list[int] = []
    keep_only, stop = ArrivingSpool.keep_only, ArrivingSpool.stop

    def keeping(self: ArrivingSpool, end: int) -> None:
        keep_only(self, end)
        assert end == last.stop
        if opens == "kept":
            gate.set()

    def stopping(self: ArrivingSpool) -> None:
        spooled.append(self.path.stat().st_blocks * 512)
        gate.set()
        stop(self)

    monkeypatch.setattr(ArrivingSpool, "keep_only", keeping)
    monkeypatch.setattr(ArrivingSpool, "stop", stopping)
    stream = GatedStream(deb, start + last.stop, gate)
    dest = tmp_path / "vmlinux"
    extract_vmlinux(
        as_io(stream), "deb", DEB_UNAME, dest, size=len(deb), read_tail=lambda n: deb[-n:]
    )
    assert dest.read_bytes() != original  # holes: decoded by blocks, not as a stream
    for s in elf_sections(relocated):
        if s.type not in (xzblocks.SHT_REL, xzblocks.SHT_RELA, xzblocks.SHT_NOBITS):
            assert (
                dest.read_bytes()[s.offset : s.offset + s.size]
                == original[s.offset : s.offset + s.size]
            )
    # Written: up to the vmlinux's last block, at most a chunk more, and the index at the end.
    assert spooled and spooled[0] <= last.stop + CHUNK + spool.TAIL + (64 << 10)
    assert spooled[0] < len(deb) - start - AFTER // 2
    assert not list(tmp_path.glob("vmlinux.*"))


@pytest.mark.parametrize("tail", ["none", "zeros", "short"])
def test_without_a_tail_it_trusts_the_member_is_spooled_whole(
    tmp_path: Path, relocated: Path, tail: str
) -> None:
    original = relocated.read_bytes()
    deb = xz_deb(tmp_path / "k.deb", DEB_UNAME, original, *MULTI).read_bytes()
    answers = {"none": lambda n: None, "zeros": bytes, "short": lambda n: deb[-8:]}
    stream = OneWayStream(deb)
    dest = tmp_path / "vmlinux"
    extract_vmlinux(as_io(stream), "deb", DEB_UNAME, dest, size=len(deb), read_tail=answers[tail])
    assert stream.bytes_read == len(deb)  # spooled whole (its blocks listed last)
    assert dest.read_bytes() != original  # and decoded by blocks
    assert not list(tmp_path.glob("vmlinux.*"))


def test_a_member_cut_short_while_arriving_is_a_package_error(
    tmp_path: Path, relocated: Path
) -> None:
    original = relocated.read_bytes()
    deb = xz_deb(tmp_path / "k.deb", DEB_UNAME, original, *MULTI).read_bytes()
    start, _, last = _layout(deb, tmp_path)
    stream = OneWayStream(deb[: start + last.start])  # ends inside the vmlinux's blocks
    dest = tmp_path / "vmlinux"
    with pytest.raises(PackageError, match="truncated package"):
        extract_vmlinux(
            as_io(stream), "deb", DEB_UNAME, dest, size=len(deb), read_tail=lambda n: deb[-n:]
        )
    assert not list(tmp_path.glob("vmlinux*"))


def test_a_package_from_a_mirror_is_read_ahead_and_verified_whole(
    tmp_path: Path, relocated: Path
) -> None:
    """The real path: the demo mirror answers the last bytes (Range), the build verifies all."""
    original = relocated.read_bytes()
    (tmp_path / "mirror").mkdir()
    path = xz_deb(
        tmp_path / "mirror" / "k.deb", DEB_UNAME, original, *MULTI, after=incompressible(AFTER)
    )
    deb = path.read_bytes()
    with MirrorServer(tmp_path / "mirror") as server:
        url = f"{server.url}k.deb"
        pkg = KernelPackage(
            DEB_UNAME,
            "x86_64",
            "k",
            "1",
            url,
            len(deb),
            hashlib.sha256(deb).hexdigest(),
            "r",
            "k.deb",
            "deb",
        )
        with (
            UpstreamClient(cache_dir=None, backoff=0.0) as client,
            client.open_stream(url, pkg.size, pkg.sha256) as stream,
            VerifiedPackage(stream, pkg, None, url) as verified,
        ):
            verified.extract_vmlinux(tmp_path / "vmlinux")
            verified.finish()
        ranges = [r.headers.get("Range") for r in server.requests_for("/k.deb")]
    padding = 0 if deb.endswith(b"YZ") else 1  # ar's, after an odd-sized member
    assert sorted(ranges, key=str) == [None, f"bytes=-{spool.TAIL + padding}"]
    assert verified.index_sha256 == pkg.sha256
    assert (tmp_path / "vmlinux").read_bytes() != original  # decoded by blocks, with holes
