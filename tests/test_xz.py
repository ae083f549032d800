"""xz package members decoded by the xz command, on streams written by the real xz tool."""

from __future__ import annotations

import functools
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.children import build_cores, usable_cores
from generator.errors import PackageError
from generator.packages import decompress
from generator.packages.decompress import XzReader, decompressed
from generator.packages.stream import Readable

BLOCK = 64 << 10


@pytest.fixture(autouse=True, params=["project", "system"])
def xz(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test twice: decoded by the project's xz 5.8 (.tools/), then by the system's."""
    if request.param == "system":
        monkeypatch.setattr(decompress, "PROJECT_XZ", Path("/nonexistent/xz"))
    elif decompress.xz_command() == "xz":
        pytest.skip("no xz in .tools/ (scripts/setup.sh installs it)")
    yield request.param


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


class CutShort(OneWay):
    """A stream whose transport fails part way (as a truncated download does)."""

    def read(self, n: int = -1, /) -> bytes:
        out = super().read(n)
        if not out:
            raise PackageError("truncated package: stream ended inside data.tar.xz")
        return out


@functools.cache
def payload(size: int = 600_000) -> bytes:
    """Half compressible text, half noise: blocks of different compressed sizes."""
    rng = random.Random(7)
    words = [b"vmlinux", b"btf", b"struct", b"task_struct", b"\n", b" "]
    text = b"".join(rng.choices(words, k=size // 12))
    return (text + rng.randbytes(size))[:size]


@functools.cache
def xz_tool(data: bytes, *args: str) -> bytes:
    return subprocess.run(
        ["xz", "-c", "-1", *args], input=data, capture_output=True, check=True
    ).stdout


def multi_block(data: bytes) -> bytes:
    # -T2: the multi-threaded encoder (Debian's data.tar.xz), blocks decodable in parallel.
    return xz_tool(data, "-T2", f"--block-size={BLOCK}")


def read_all(reader: Readable, n: int = 70_000) -> bytes:
    parts = []
    while chunk := reader.read(n):
        parts.append(chunk)
    return b"".join(parts)


def test_the_xz_in_use_is_the_one_chosen(xz: str) -> None:
    decompress.xz_version.cache_clear()
    try:
        version = decompress.xz_version()
    finally:
        decompress.xz_version.cache_clear()
    assert version.startswith("xz (XZ Utils) 5.")
    assert (decompress.xz_command() == "xz") == (xz == "system")


@pytest.mark.parametrize("threads", [1, 2])
def test_multi_block_stream_reads_whole(threads: int) -> None:
    data = payload()
    with XzReader(OneWay(multi_block(data)), "data.tar.xz", threads=threads) as reader:
        assert read_all(reader) == data


def test_single_threaded_stream_reads_whole() -> None:
    """rpm's xz payloads: one block without sizes in its header."""
    data = payload()
    with decompressed(OneWay(xz_tool(data, "-T1")), "xz", "the rpm payload") as reader:
        assert read_all(reader) == data


def test_bytes_after_the_stream_are_left_alone() -> None:
    data = payload(100_000)
    with XzReader(OneWay(multi_block(data) + b"\0" * 8 + b"trailer"), "data.tar.xz") as reader:
        assert read_all(reader) == data


def test_closing_stops_decoding_at_once_and_hands_the_stream_back() -> None:
    """What the build does at the end of vmlinux: the child is killed, no waiting for the tail."""
    data = payload(4_000_000)
    compressed = multi_block(data)
    stream = OneWay(compressed)
    reader = XzReader(stream, "data.tar.xz", threads=2)
    got = reader.read(1000)
    while len(got) < 200_000:
        got += reader.read(50_000)
    assert data.startswith(got)
    reader.close()
    assert reader._proc.poll() is not None  # the child is gone, killed
    # The feeding thread stopped: what it did not read is the caller's, in order.
    fed = stream.pos
    assert fed < len(compressed) // 2
    assert read_all(stream) == compressed[fed:]
    reader.close()  # twice is harmless


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
    with (
        XzReader(OneWay(corrupted(compressed, offset)), "data.tar.xz") as reader,
        pytest.raises(PackageError, match=r"corrupt compressed data in data\.tar\.xz"),
    ):
        read_all(reader)


def test_data_that_ends_early_is_truncated() -> None:
    compressed = multi_block(payload())
    with (
        XzReader(OneWay(compressed[: len(compressed) // 2]), "data.tar.xz") as reader,
        pytest.raises(PackageError, match=r"truncated package: compressed data\.tar\.xz"),
    ):
        read_all(reader)


def test_a_stream_that_fails_gives_its_own_error() -> None:
    compressed = multi_block(payload())
    with (
        XzReader(CutShort(compressed[: len(compressed) // 2]), "data.tar.xz") as reader,
        pytest.raises(PackageError, match=r"stream ended inside data\.tar\.xz"),
    ):
        read_all(reader)


def test_not_xz_is_a_package_error() -> None:
    with (
        XzReader(OneWay(b"\x28\xb5\x2f\xfd" + bytes(20)), "data.tar.xz") as reader,
        pytest.raises(PackageError, match=r"corrupt compressed data in data\.tar\.xz"),
    ):
        read_all(reader)


def test_a_build_decodes_with_its_share_of_the_cores() -> None:
    """Builds side by side split the cores for xz as for pahole: no more threads than cores."""
    data = payload(100_000)
    with build_cores(1), XzReader(OneWay(multi_block(data)), "data.tar.xz") as reader:
        assert "-T1" in reader._proc.args  # the tied command: setpriv ... xz -T1 -dc
        assert read_all(reader) == data
    with XzReader(OneWay(multi_block(data)), "data.tar.xz") as reader:
        assert f"-T{usable_cores()}" in reader._proc.args
        assert read_all(reader) == data
