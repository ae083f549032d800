"""The multi-threaded xz reader, on streams written by the real xz tool."""

from __future__ import annotations

import lzma
import random
import subprocess
from collections.abc import Iterator

import pytest

from generator.errors import PackageError
from generator.packages import liblzma, xz
from generator.packages.stream import DecompressingReader, Readable
from generator.packages.xz import ParallelXzReader, xz_reader

BLOCK = 64 << 10


@pytest.fixture(autouse=True, params=["newer", "system"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test twice: blocks decoded by the project's newer liblzma, then by Python's."""
    if request.param == "system":
        monkeypatch.setenv(liblzma.LIBLZMA_ENV, "system")
    liblzma._library.cache_clear()
    if request.param == "newer" and liblzma._library() is None:
        pytest.skip("no liblzma >= 5.6 in .tools/ (scripts/setup.sh installs it)")
    yield request.param
    liblzma._library.cache_clear()


class OneWay:
    """A forward-only stream that counts what was read and returns short reads."""

    def __init__(self, data: bytes, max_read: int = 50_000) -> None:
        self.data = data
        self.pos = 0
        self.max_read = max_read

    def read(self, n: int = -1, /) -> bytes:
        if n < 0:
            n = len(self.data)
        out = self.data[self.pos : self.pos + min(n, self.max_read)]
        self.pos += len(out)
        return out


def payload(size: int = 600_000) -> bytes:
    """Half compressible text, half noise: blocks of different compressed sizes."""
    rng = random.Random(7)
    words = [b"vmlinux", b"btf", b"struct", b"task_struct", b"\n", b" "]
    text = b"".join(rng.choice(words) for _ in range(size // 12))
    return (text + rng.randbytes(size))[:size]


def xz_tool(data: bytes, *args: str) -> bytes:
    return subprocess.run(
        ["xz", "-c", "-6", *args], input=data, capture_output=True, check=True
    ).stdout


def multi_block(data: bytes) -> bytes:
    # -T2: the multi-threaded encoder, which writes both sizes in each block header.
    return xz_tool(data, "-T2", f"--block-size={BLOCK}")


def read_all(reader: Readable, n: int = 70_000) -> bytes:
    parts = []
    while chunk := reader.read(n):
        parts.append(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_multi_block_stream_reads_whole(threads: int) -> None:
    data = payload()
    reader = ParallelXzReader(OneWay(multi_block(data)), "data.tar.xz", threads=threads)
    try:
        assert read_all(reader) == data
        assert len(reader._records) == -(-len(data) // BLOCK)  # the index was checked
    finally:
        reader.close()


def test_single_threaded_stream_falls_back() -> None:
    data = payload()
    reader = ParallelXzReader(OneWay(xz_tool(data, "-T1")), "data.tar.xz", threads=2)
    assert read_all(reader) == data
    assert reader._fallback is not None


def test_big_blocks_are_decoded_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xz, "MAX_PARALLEL_BLOCK", 1000)
    data = payload()
    reader = ParallelXzReader(OneWay(multi_block(data)), "data.tar.xz", threads=2)
    assert read_all(reader, 1000) == data
    assert reader._pool is None  # no block went to a worker


def test_reads_ahead_at_most_max_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xz, "MAX_AHEAD", 2 * BLOCK)
    data = payload(2_000_000)
    compressed = multi_block(data)
    stream = OneWay(compressed)
    reader = ParallelXzReader(stream, "data.tar.xz", threads=2)
    try:
        assert reader.read(1000) == data[:1000]
        # Only the first block is being read (in place): nothing beyond it yet.
        assert stream.pos < 2 * BLOCK
        got = reader.read(BLOCK)
        while len(got) < 3 * BLOCK:
            got += reader.read(BLOCK)
        assert data[1000 : 1000 + len(got)] == got
        # Queued blocks are bounded: the stream is not read to the end.
        assert stream.pos < len(compressed) // 2
    finally:
        reader.close()  # with blocks still queued: returns, nothing hangs


def corrupted(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x55]) + data[offset + 1 :]


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda n: n // 2, id="block-data"),
        pytest.param(lambda n: n - 30, id="index"),
        pytest.param(lambda n: n - 4, id="footer"),
    ],
)
def test_corruption_is_a_package_error(where: object) -> None:
    compressed = multi_block(payload())
    offset = where(len(compressed))  # type: ignore[operator]
    reader = ParallelXzReader(OneWay(corrupted(compressed, offset)), "data.tar.xz", threads=2)
    with pytest.raises(PackageError, match=r"corrupt compressed data in data\.tar\.xz"):
        read_all(reader)
    reader.close()


def test_truncation_is_a_package_error() -> None:
    compressed = multi_block(payload())
    reader = ParallelXzReader(OneWay(compressed[: len(compressed) // 2]), "data.tar.xz")
    with pytest.raises(PackageError, match="truncated package"):
        read_all(reader)
    reader.close()


def test_not_xz_is_a_package_error() -> None:
    with pytest.raises(PackageError, match="not xz data"):
        ParallelXzReader(OneWay(b"\x28\xb5\x2f\xfd" + bytes(20)), "data.tar.xz")


def test_one_core_uses_the_single_threaded_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xz, "THREADS", 1)
    data = payload(100_000)
    reader = xz_reader(OneWay(multi_block(data)), "data.tar.xz")
    assert isinstance(reader, DecompressingReader)
    assert read_all(reader) == data


def test_the_decoder_in_use_is_the_one_chosen(decoder: str) -> None:
    assert liblzma.version().startswith("liblzma 5." if decoder == "newer" else "Python's lzma")


@pytest.mark.parametrize("max_length", [1, 4096, 1 << 20, -1])
def test_newer_decoder_answers_as_pythons_does(decoder: str, max_length: int) -> None:
    """Same bytes and same needs_input, piece by piece, fed in uneven chunks."""
    compressed = multi_block(payload(300_000))

    def run(d: liblzma.Decompressor) -> list[tuple[bytes, bool]]:
        answers, pos = [], 0
        while not d.eof:
            data = b""
            if d.needs_input:
                data, pos = compressed[pos : pos + 7_777], pos + 7_777
                if not data:
                    break
            out = d.decompress(data, max_length)
            answers.append((out, d.needs_input))
        return answers

    ours = run(liblzma.xz_decompressor())
    pythons = run(lzma.LZMADecompressor(format=lzma.FORMAT_XZ))
    assert b"".join(o for o, _ in ours) == payload(300_000)
    assert ours == pythons


def test_no_room_keeps_the_input_for_later(decoder: str) -> None:
    compressed = multi_block(payload(100_000))
    for d in (liblzma.xz_decompressor(), lzma.LZMADecompressor(format=lzma.FORMAT_XZ)):
        assert d.decompress(compressed, 0) == b"" and not d.needs_input
        assert d.decompress(b"") == payload(100_000)


def test_newer_decoder_rejects_corrupt_data(decoder: str) -> None:
    compressed = corrupted(multi_block(payload()), 5_000)
    d = liblzma.xz_decompressor()
    with pytest.raises(lzma.LZMAError):
        d.decompress(compressed)
