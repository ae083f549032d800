"""A multi-block data.tar.xz: spooled, only the vmlinux's blocks pahole reads decoded.

The vmlinux here is a gcc -g executable linked with --emit-relocs, as a
kernel is: its .rela.* sections are most of its bytes. Packages are
compressed by the real xz in both layouts (one block as dpkg before Debian
12, many blocks as Debian 12's dpkg), and the BTF is encoded by real pahole.
"""

from __future__ import annotations

import io
import itertools
import lzma
import subprocess
import tarfile
from pathlib import Path

import pytest

from generator.btf.encode import encode_btf
from generator.elf import SHT_NOBITS, SHT_REL, SHT_RELA, elf_sections
from generator.errors import PackageError
from generator.packages import extract_vmlinux, xzblocks
from generator.packages.xzblocks import PEEK, list_blocks, multi_block
from tests.kit.debpkg import incompressible, xz_deb
from tests.kit.elf import MULTI_BLOCK_XZ, XZ_BLOCK
from tests.kit.streams import DEB_UNAME, as_io, stream_of

BLOCK = XZ_BLOCK
MULTI = MULTI_BLOCK_XZ


def _extract(deb: Path, dest: Path) -> int:
    """Extract; how many bytes of the package were read."""
    stream = stream_of(deb.read_bytes())
    extract_vmlinux(as_io(stream), "deb", DEB_UNAME, dest)
    return stream.bytes_read


def _content(elf: Path) -> list[tuple[int, int]]:
    """The byte ranges of every section pahole may read (all but relocations)."""
    return [
        (s.offset, s.offset + s.size)
        for s in elf_sections(elf)
        if s.type not in (SHT_REL, SHT_RELA, SHT_NOBITS) and s.size
    ]


def test_only_the_blocks_pahole_reads_are_decoded(tmp_path: Path, relocated: Path) -> None:
    original = relocated.read_bytes()
    deb = xz_deb(tmp_path / "k.deb", DEB_UNAME, original, *MULTI, after=incompressible(BLOCK))
    dest = tmp_path / "vmlinux"
    assert _extract(deb, dest) == deb.stat().st_size  # spooled whole: its blocks are listed last
    sparse = dest.read_bytes()
    assert len(sparse) == len(original)
    for lo, hi in _content(relocated):
        assert sparse[lo:hi] == original[lo:hi]
    # Whole blocks of .rela.data were never decoded: they are zeros (holes) here.
    (rela,) = [s for s in elf_sections(relocated) if s.name == ".rela.data"]
    middle = slice(rela.offset + BLOCK, rela.offset + rela.size - BLOCK)
    assert sparse[middle] == bytes(middle.stop - middle.start)
    assert original[middle] != sparse[middle]
    assert dest.stat().st_blocks * 512 < len(original) - 4 * BLOCK  # holes take no disk
    assert not list(tmp_path.glob("vmlinux.*"))  # the spooled data.tar.xz is gone


def test_pahole_writes_the_same_btf_from_the_file_with_holes(
    tmp_path: Path, relocated: Path
) -> None:
    deb = xz_deb(tmp_path / "k.deb", DEB_UNAME, relocated.read_bytes(), *MULTI)
    dest = tmp_path / "vmlinux"
    _extract(deb, dest)
    assert dest.read_bytes() != relocated.read_bytes()
    encode_btf(relocated, tmp_path / "whole.btf")
    encode_btf(dest, tmp_path / "holes.btf")
    assert (tmp_path / "holes.btf").read_bytes() == (tmp_path / "whole.btf").read_bytes()


def test_a_one_block_stream_is_decoded_as_it_downloads(tmp_path: Path, relocated: Path) -> None:
    padding = incompressible(4 << 20)
    deb = xz_deb(tmp_path / "k.deb", DEB_UNAME, relocated.read_bytes(), "-T1", "-0", after=padding)
    dest = tmp_path / "vmlinux"
    read = _extract(deb, dest)
    assert dest.read_bytes() == relocated.read_bytes()  # no holes: every byte decoded
    assert read < deb.stat().st_size - len(padding) // 2  # the module after it never read


def test_a_member_arriving_slowly_is_decoded_as_it_downloads(
    tmp_path: Path, relocated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below SPOOL_RATE the network is the limit: no waiting for the whole member."""
    monkeypatch.setattr(xzblocks, "PROBE", 4096)
    monkeypatch.setattr(xzblocks, "SPOOL_RATE", float("inf"))  # every stream is slow now
    padding = incompressible(4 << 20)
    deb = xz_deb(tmp_path / "k.deb", DEB_UNAME, relocated.read_bytes(), *MULTI, "-0", after=padding)
    dest = tmp_path / "vmlinux"
    read = _extract(deb, dest)
    assert dest.read_bytes() == relocated.read_bytes()  # no holes: every byte decoded
    assert read < deb.stat().st_size - len(padding) // 2  # the module after it never read
    monkeypatch.setattr(xzblocks, "SPOOL_RATE", 0.0)  # and every stream fast enough
    assert _extract(deb, dest) == deb.stat().st_size
    assert dest.read_bytes() != relocated.read_bytes()  # holes


def test_a_listing_it_does_not_trust_is_decoded_whole(
    tmp_path: Path, relocated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xzblocks, "MAX_BLOCK", BLOCK - 1)  # every block is too big now
    deb = xz_deb(tmp_path / "k.deb", DEB_UNAME, relocated.read_bytes(), *MULTI)
    dest = tmp_path / "vmlinux"
    _extract(deb, dest)
    assert dest.read_bytes() == relocated.read_bytes()
    assert not list(tmp_path.glob("vmlinux.*"))


def test_multi_block_tells_the_encoders_apart(tmp_path: Path) -> None:
    data = incompressible(3 * BLOCK)

    def head(*args: str) -> bytes:
        out = subprocess.run(["xz", "-c", *args], input=data, capture_output=True, check=True)
        return out.stdout[:PEEK]

    assert multi_block(head(*MULTI))
    assert not multi_block(head("-T1"))
    assert not multi_block(head(*MULTI)[: PEEK - 1])
    empty = subprocess.run(["xz", "-c", "-T2"], input=b"", capture_output=True, check=True)
    assert not multi_block(empty.stdout[:PEEK])


def test_list_blocks_reads_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.xz"
    data = incompressible(3 * BLOCK + 5)
    path.write_bytes(subprocess.run(["xz", "-c", *MULTI], input=data, capture_output=True).stdout)
    blocks = list_blocks(path)
    assert blocks is not None
    assert [b.size for b in blocks] == [BLOCK, BLOCK, BLOCK, 5]
    assert [b.offset for b in blocks] == [0, BLOCK, 2 * BLOCK, 3 * BLOCK]
    assert blocks[0].start == 12  # just after the stream's header, each after the one before
    assert all(a.stop == b.start for a, b in itertools.pairwise(blocks))
    # Listed from the index alone: a file holding only the header and the end lists the same.
    skeleton = bytearray(path.stat().st_size)
    skeleton[:12] = path.read_bytes()[:12]
    skeleton[blocks[-1].stop :] = path.read_bytes()[blocks[-1].stop :]
    (tmp_path / "skeleton.xz").write_bytes(bytes(skeleton))
    assert list_blocks(tmp_path / "skeleton.xz") == blocks
    two = tmp_path / "two.xz"  # two streams: not one index to trust
    two.write_bytes(path.read_bytes() * 2)
    assert list_blocks(two) is None
    (tmp_path / "bad.xz").write_bytes(b"not xz at all")
    assert list_blocks(tmp_path / "bad.xz") is None
    monkeypatch.setattr(xzblocks, "MAX_BLOCKS", 3)  # more blocks than that: not listed at all
    assert list_blocks(path) is None


def _damaged(deb: Path, relocated: Path) -> bytes:
    """The package with a byte of the .debug_info's block changed (so it must be decoded)."""
    data = bytearray(deb.read_bytes())
    spool = deb.with_name("data.xz")
    start = bytes(data).index(b"\xfd7zXZ\x00")
    spool.write_bytes(bytes(data[start:]))
    blocks = list_blocks(spool)
    assert blocks is not None
    (info,) = [s for s in elf_sections(relocated) if s.name == ".debug_info"]
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(spool.read_bytes()))) as tar:
        base = tar.getmember(f"./usr/lib/debug/boot/vmlinux-{DEB_UNAME}").offset_data
    target = next(b for b in blocks if b.offset <= base + info.offset < b.end)
    data[start + target.start + target.length // 2] ^= 0x55
    return bytes(data)


def test_a_damaged_block_is_a_package_error(tmp_path: Path, relocated: Path) -> None:
    deb = xz_deb(tmp_path / "k.deb", DEB_UNAME, relocated.read_bytes(), *MULTI)
    dest = tmp_path / "vmlinux"
    stream = stream_of(_damaged(deb, relocated))
    with pytest.raises(PackageError, match=r"corrupt compressed data|truncated"):
        extract_vmlinux(as_io(stream), "deb", DEB_UNAME, dest)
    assert not dest.exists()
    assert not list(tmp_path.glob("vmlinux*"))


def test_bytes_after_the_vmlinux_are_not_decoded(tmp_path: Path, relocated: Path) -> None:
    """Damage after the vmlinux, even in its last block, is left to the package's SHA-256."""
    for shift in range(0, BLOCK, BLOCK // 8):  # until the vmlinux ends well inside a block
        deb = xz_deb(
            tmp_path / "k.deb",
            DEB_UNAME,
            relocated.read_bytes(),
            *MULTI,
            before=b"x" * (shift + 1),
            after=_text(3 * BLOCK),  # compressed: damage to it is a decoding error
        )
        data = bytearray(deb.read_bytes())
        start = bytes(data).index(b"\xfd7zXZ\x00")
        spool = tmp_path / "data.xz"
        spool.write_bytes(bytes(data[start:]))
        blocks = list_blocks(spool)
        assert blocks is not None
        with tarfile.open(fileobj=io.BytesIO(lzma.decompress(spool.read_bytes()))) as tar:
            member = tar.getmember(f"./usr/lib/debug/boot/vmlinux-{DEB_UNAME}")
        end = member.offset_data + member.size
        last = next(b for b in blocks if b.offset < end <= b.end)
        if last.end - end > BLOCK // 4:
            break
    else:
        pytest.fail("the vmlinux never ended inside a block")
    for block in (last, blocks[-1]):  # its last block's tail, and a block only of module
        data[start + block.stop - 100] ^= 0x55
    (tmp_path / "damaged.deb").write_bytes(bytes(data))
    dest = tmp_path / "vmlinux"
    _extract(tmp_path / "damaged.deb", dest)
    for lo, hi in _content(relocated):
        assert dest.read_bytes()[lo:hi] == relocated.read_bytes()[lo:hi]


def _text(size: int) -> bytes:
    lines = (f"ffffffff{i:08x} T symbol_{i}\n".encode() for i in range(size // 16))
    return b"".join(lines)[:size]
