"""Streaming vmlinux extraction from real .deb/.ddeb and .rpm packages built at test time."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from generator.errors import PackageError
from generator.packages import ar, cpio, extract_vmlinux
from tests.kit.debpkg import (
    PADDED_LEVEL,
    build_kernel_deb,
    incompressible,
    tar_bytes,
    tar_file,
    tar_link,
    write_ar,
)
from tests.kit.shelf import build_deb, build_rpm
from tests.kit.streams import DEB_UNAME, RPM_UNAME, OneWayStream, as_io, stream_of

# Incompressible bytes after the vmlinux; half of them is more than any read-ahead.
# Not less: under load the xz child and its feeding thread were seen 1.3 MiB past
# the vmlinux before the reader closed them.
PADDING = 4 << 20


def extract(data: bytes, fmt: str, uname: str, dest: Path) -> OneWayStream:
    stream = stream_of(data)
    extract_vmlinux(as_io(stream), fmt, uname, dest)
    return stream


# -- .deb / .ddeb ----------------------------------------------------------


@pytest.mark.parametrize("compression", ["xz", "zst", "gz", "none"])
def test_deb_extracts_vmlinux_identical(
    tmp_path: Path, fixture_elf: Path, compression: str
) -> None:
    deb = build_kernel_deb(tmp_path, DEB_UNAME, fixture_elf, compression)
    members = subprocess.run(["ar", "t", str(deb)], capture_output=True, check=True).stdout
    expected_member = {"xz": "data.tar.xz", "zst": "data.tar.zst", "gz": "data.tar.gz"}
    assert expected_member.get(compression, "data.tar").encode() in members.split()
    dest = tmp_path / "vmlinux"
    extract(deb.read_bytes(), "deb", DEB_UNAME, dest)
    assert dest.read_bytes() == fixture_elf.read_bytes()


def test_ddeb_is_a_deb(tmp_path: Path, fixture_elf: Path) -> None:
    deb = build_kernel_deb(tmp_path, DEB_UNAME, fixture_elf, "xz")
    ddeb = deb.with_suffix(".ddeb")
    deb.rename(ddeb)
    dest = tmp_path / "vmlinux"
    extract(ddeb.read_bytes(), "ddeb", DEB_UNAME, dest)
    assert dest.read_bytes() == fixture_elf.read_bytes()


# xz: dpkg-deb's layout depends on its version (one block, or Debian 12's many,
# which are spooled whole); tests/test_xzblocks.py builds each layout explicitly.
@pytest.mark.parametrize("compression", ["zst", "gz", "none"])
def test_deb_stops_reading_after_vmlinux(
    tmp_path: Path, fixture_elf: Path, compression: str
) -> None:
    deb = build_kernel_deb(tmp_path, DEB_UNAME, fixture_elf, compression, padding_after=PADDING)
    data = deb.read_bytes()
    dest = tmp_path / "vmlinux"
    stream = extract(data, "deb", DEB_UNAME, dest)
    assert dest.read_bytes() == fixture_elf.read_bytes()
    # The padding sorted after vmlinux was never pulled off the wire.
    assert len(data) > PADDING
    assert stream.bytes_read < len(data) - PADDING // 2


def test_deb_symlink_only_stub_has_no_vmlinux(tmp_path: Path) -> None:
    deb = build_kernel_deb(tmp_path, DEB_UNAME, None)
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, check=True)
    assert b"vmlinux -> " in listing.stdout  # the decoy really is a symlink named vmlinux
    dest = tmp_path / "vmlinux"
    with pytest.raises(PackageError, match=f"no vmlinux for {DEB_UNAME}"):
        extract(deb.read_bytes(), "deb", DEB_UNAME, dest)
    assert not dest.exists()


def test_deb_other_kernel_is_not_taken(tmp_path: Path, fixture_elf: Path) -> None:
    deb = build_kernel_deb(tmp_path, DEB_UNAME, fixture_elf)
    with pytest.raises(PackageError, match=re.escape("no vmlinux for 5.4.0-42-lowlatency")):
        extract(deb.read_bytes(), "deb", "5.4.0-42-lowlatency", tmp_path / "vmlinux")


def test_deb_secondary_path_when_a_regular_file(tmp_path: Path, fixture_elf: Path) -> None:
    deb = build_deb(
        tmp_path,
        "linux-image-dbg",
        "1",
        "amd64",
        {f"usr/lib/debug/lib/modules/{DEB_UNAME}/vmlinux": fixture_elf},
    )
    dest = tmp_path / "vmlinux"
    extract(deb.read_bytes(), "deb", DEB_UNAME, dest)
    assert dest.read_bytes() == fixture_elf.read_bytes()


@pytest.mark.parametrize("compression", ["xz", "zst", "gz", "none"])
@pytest.mark.parametrize("where", ["ar-header", "control", "vmlinux"])
def test_deb_truncated(tmp_path: Path, fixture_elf: Path, compression: str, where: str) -> None:
    data = build_kernel_deb(tmp_path, DEB_UNAME, fixture_elf, compression).read_bytes()
    data_member = data.index(b"data.tar")
    cut = {
        "ar-header": 30,
        "control": data_member - 10,
        # The vmlinux is most of data.tar; halfway through the member is inside it.
        "vmlinux": data_member + (len(data) - data_member) // 2,
    }[where]
    dest = tmp_path / "vmlinux"
    with pytest.raises(PackageError, match="truncated"):
        extract(data[:cut], "deb", DEB_UNAME, dest)
    assert not dest.exists()  # no half-written vmlinux is left behind


def test_deb_corrupt_compressed_data(tmp_path: Path, fixture_elf: Path) -> None:
    data = bytearray(build_kernel_deb(tmp_path, DEB_UNAME, fixture_elf, "xz").read_bytes())
    start = data.index(b"data.tar.xz") + 60
    for i in range(start + 200, start + 260):
        data[i] ^= 0x55
    with pytest.raises(PackageError, match=r"corrupt|malformed|truncated"):
        extract(bytes(data), "deb", DEB_UNAME, tmp_path / "vmlinux")


def test_deb_damaged_header_in_a_compressed_tar_is_corrupt_not_a_stub(tmp_path: Path) -> None:
    """tarfile reads a damaged header as the archive's end: the decompressor's check decides.

    The vmlinux's header is damaged and the gzip trailer keeps the CRC of the
    tar before the damage, as when bytes change in transit.
    """
    boot = f"./usr/lib/debug/boot/vmlinux-{DEB_UNAME}"
    after = tar_file("./usr/share/doc/zz-after", incompressible(4 << 20))  # the check comes late
    tar = tar_bytes(
        [tar_file("./usr/share/doc/README", b"decoy\n" * 200), tar_file(boot, b"x"), after]
    )
    damaged = bytearray(tar)
    second = 512 + 1536  # the decoy's header, then its 1,200 bytes in three blocks
    assert tar[second : second + len(boot)] == boot.encode()
    damaged[second : second + 4] = b"JUNK"  # its checksum no longer holds
    gz = bytearray(gzip.compress(bytes(damaged), mtime=0))
    gz[-8:-4] = zlib.crc32(tar).to_bytes(4, "little")
    data = _deb_with_data(tmp_path / "p.deb", "data.tar.gz", bytes(gz))
    with pytest.raises(PackageError, match=r"corrupt|malformed|truncated"):
        extract(data, "deb", DEB_UNAME, tmp_path / "vmlinux")


@pytest.mark.parametrize("fmt", ["deb", "rpm"])
@pytest.mark.parametrize(
    "data",
    [b"", b"<html>404 Not Found</html>\n" * 10, incompressible(5000, seed=3)],
    ids=["empty", "html", "random"],
)
def test_garbage_is_rejected(tmp_path: Path, fmt: str, data: bytes) -> None:
    with pytest.raises(PackageError, match=r"not an? (\.deb|rpm) package"):
        extract(data, fmt, DEB_UNAME, tmp_path / "vmlinux")


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="unknown package format 'apk'"):
        extract(b"!<arch>\n", "apk", DEB_UNAME, tmp_path / "vmlinux")


@pytest.mark.parametrize("uname", ["", "..", "5.4/../../x"])
def test_invalid_uname(tmp_path: Path, uname: str) -> None:
    with pytest.raises(PackageError, match="invalid kernel release"):
        extract(b"!<arch>\n", "deb", uname, tmp_path / "vmlinux")


def _deb_with_data(path: Path, data_member: str, data: bytes, *, bsd: bool = False) -> bytes:
    members = [("debian-binary", b"2.0\n"), ("control.tar.gz", b""), (data_member, data)]
    return write_ar(path, members, bsd_names=bsd).read_bytes()


def test_deb_member_name_must_match_magic(tmp_path: Path) -> None:
    gz = subprocess.run(["gzip", "-c"], input=b"x" * 100, capture_output=True, check=True).stdout
    data = _deb_with_data(tmp_path / "p.deb", "data.tar.xz", gz)
    with pytest.raises(PackageError, match=re.escape("does not hold xz data (magic says gzip)")):
        extract(data, "deb", DEB_UNAME, tmp_path / "vmlinux")


def test_deb_unknown_data_compression(tmp_path: Path) -> None:
    data = _deb_with_data(tmp_path / "p.deb", "data.tar.lzma", b"\x5d\x00\x00")
    with pytest.raises(
        PackageError, match=re.escape("unknown compression of .deb member 'data.tar.lzma'")
    ):
        extract(data, "deb", DEB_UNAME, tmp_path / "vmlinux")


def test_deb_without_data_member(tmp_path: Path) -> None:
    data = write_ar(tmp_path / "p.deb", [("debian-binary", b"2.0\n")]).read_bytes()
    with pytest.raises(PackageError, match=re.escape("no data.tar member")):
        extract(data, "deb", DEB_UNAME, tmp_path / "vmlinux")


def test_hostile_member_names_are_refused_and_never_become_paths(
    tmp_path: Path, fixture_elf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elf = fixture_elf.read_bytes()
    boot = f"./usr/lib/debug/boot/vmlinux-{DEB_UNAME}"
    tar = tar_bytes(
        [
            tar_file("../../escaped-relative", b"owned"),
            tar_file("/tmp/btfhub-escaped-absolute", b"owned"),
            tar_link(boot, "../../../../etc/passwd", hard=True),
            tar_file(boot, elf),
        ]
    )
    data = _deb_with_data(tmp_path / "hostile.deb", "data.tar", tar)
    work = tmp_path / "deep" / "er" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    dest = work / "vmlinux"
    with pytest.raises(PackageError, match=r"member '\.\./\.\./escaped-relative' climbs out"):
        extract(data, "deb", DEB_UNAME, dest)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert written == ["deep", "deep/er", "deep/er/work", "hostile.deb"]
    assert not Path("/tmp/btfhub-escaped-absolute").exists()


def test_hardlink_named_vmlinux_is_refused(tmp_path: Path) -> None:
    tar = tar_bytes([tar_link(f"./usr/lib/debug/boot/vmlinux-{DEB_UNAME}", "./x", hard=True)])
    data = _deb_with_data(tmp_path / "p.deb", "data.tar", tar)
    with pytest.raises(PackageError, match="is a hard link"):
        extract(data, "deb", DEB_UNAME, tmp_path / "vmlinux")


@pytest.mark.parametrize("bsd", [False, True], ids=["gnu-names", "bsd-names"])
def test_ar_name_forms(tmp_path: Path, fixture_elf: Path, bsd: bool) -> None:
    elf = fixture_elf.read_bytes()
    tar = tar_bytes([tar_file(f"./usr/lib/debug/boot/vmlinux-{DEB_UNAME}", elf)])
    gz = subprocess.run(["gzip", "-c"], input=tar, capture_output=True, check=True).stdout
    data = _deb_with_data(tmp_path / "p.deb", "data.tar.gz", gz, bsd=bsd)
    dest = tmp_path / "vmlinux"
    extract(data, "deb", DEB_UNAME, dest)
    assert dest.read_bytes() == elf


def test_ar_gnu_long_names(tmp_path: Path) -> None:
    table = b"a-very-long-member-name.bin/\nanother-long-member-name.txt/\n"
    members = [("//", table), ("/0", b"first"), ("/29", b"second!"), ("short.txt", b"odd")]
    data = write_ar(tmp_path / "x.a", members).read_bytes()
    # With the archive's length given, each member is checked against what is left,
    # from where it really starts (not from its offset into the long-name table).
    found = [(m.name, m.data.read(100), m.end) for m in ar.iter_members(stream_of(data), len(data))]
    assert [(name, content) for name, content, _ in found] == [
        ("a-very-long-member-name.bin", b"first"),
        ("another-long-member-name.txt", b"second!"),
        ("short.txt", b"odd"),
    ]
    for _, content, end in found:
        assert data[end - len(content) : end] == content
    assert found[-1][2] == len(data) - 1  # an odd member is padded to an even length
    listed = subprocess.run(["ar", "t", str(tmp_path / "x.a")], capture_output=True, check=True)
    assert listed.stdout.split() == [
        b"a-very-long-member-name.bin",
        b"another-long-member-name.txt",
        b"short.txt",
    ]


# -- .rpm -------------------------------------------------------------------


@pytest.mark.parametrize("payload", ["xz", "zstd", "gzip", "bzip2"])
def test_rpm_extracts_vmlinux_identical(tmp_path: Path, fixture_elf: Path, payload: str) -> None:
    rpm = build_rpm(
        tmp_path, "kernel-debuginfo", "5.14.0", "70.el9", "x86_64", RPM_UNAME, fixture_elf, payload
    )
    compressor = subprocess.run(
        ["rpm", "-qp", "--qf", "%{PAYLOADCOMPRESSOR}", str(rpm)], capture_output=True, check=True
    ).stdout.decode()
    assert compressor == payload
    # Cross-check with libarchive: the decoys come first, vmlinux last (path order).
    listing = subprocess.run(["bsdtar", "-tf", str(rpm)], capture_output=True, check=True)
    names = listing.stdout.decode().split()
    assert names[-1] == f"./usr/lib/debug/lib/modules/{RPM_UNAME}/vmlinux"
    assert any(n.endswith(".ko.debug") for n in names[:-1])
    dest = tmp_path / "vmlinux"
    extract(rpm.read_bytes(), "rpm", RPM_UNAME, dest)
    assert dest.read_bytes() == fixture_elf.read_bytes()


def test_rpm_aarch64(tmp_path: Path, fixture_elf: Path) -> None:
    uname = "5.14.0-70.el9.aarch64"
    rpm = build_rpm(tmp_path, "kernel-debuginfo", "5.14.0", "70.el9", "aarch64", uname, fixture_elf)
    dest = tmp_path / "vmlinux"
    extract(rpm.read_bytes(), "rpm", uname, dest)
    assert dest.read_bytes() == fixture_elf.read_bytes()


@pytest.mark.parametrize("payload", ["xz", "zstd"])
def test_rpm_stops_reading_after_vmlinux(tmp_path: Path, fixture_elf: Path, payload: str) -> None:
    padding = {"/usr/lib/debug/usr/lib/zz-padding": incompressible(PADDING)}
    rpm = build_rpm(
        tmp_path,
        "kernel-debuginfo",
        "5.14.0",
        "70.el9",
        "x86_64",
        RPM_UNAME,
        fixture_elf,
        payload,
        extra=padding,
        level=PADDED_LEVEL[payload],
    )
    data = rpm.read_bytes()
    dest = tmp_path / "vmlinux"
    stream = extract(data, "rpm", RPM_UNAME, dest)
    assert dest.read_bytes() == fixture_elf.read_bytes()
    assert len(data) > PADDING
    assert stream.bytes_read < len(data) - PADDING // 2


def test_rpm_without_vmlinux(tmp_path: Path) -> None:
    rpm = build_rpm(
        tmp_path, "kernel-debuginfo-common", "5.14.0", "70.el9", "x86_64", RPM_UNAME, None
    )
    with pytest.raises(PackageError, match=f"no vmlinux for {RPM_UNAME}"):
        extract(rpm.read_bytes(), "rpm", RPM_UNAME, tmp_path / "vmlinux")


PAYLOAD_MAGIC = {
    "xz": b"\xfd7zXZ\x00",
    "zstd": b"\x28\xb5\x2f\xfd",
    "gzip": b"\x1f\x8b\x08",
    "bzip2": b"BZh9",
}


@pytest.mark.parametrize("payload", ["xz", "zstd", "gzip", "bzip2"])
@pytest.mark.parametrize("where", ["lead", "signature", "header", "payload"])
def test_rpm_truncated(tmp_path: Path, fixture_elf: Path, payload: str, where: str) -> None:
    rpm = build_rpm(
        tmp_path, "kernel-debuginfo", "5.14.0", "70.el9", "x86_64", RPM_UNAME, fixture_elf, payload
    )
    data = rpm.read_bytes()
    payload_at = data.index(PAYLOAD_MAGIC[payload], 96)
    cut = {
        "lead": 50,
        "signature": 200,
        "header": payload_at - 100,
        # The vmlinux is most of the payload: halfway through it is inside it.
        "payload": payload_at + (len(data) - payload_at) // 2,
    }[where]
    dest = tmp_path / "vmlinux"
    with pytest.raises(PackageError, match="truncated"):
        extract(data[:cut], "rpm", RPM_UNAME, dest)
    assert not dest.exists()


def test_rpm_bad_header_magic(tmp_path: Path, fixture_elf: Path) -> None:
    rpm = build_rpm(
        tmp_path, "kernel-debuginfo", "5.14.0", "70.el9", "x86_64", RPM_UNAME, fixture_elf
    )
    data = bytearray(rpm.read_bytes())
    data[96:100] = b"\0\0\0\0"
    with pytest.raises(PackageError, match="bad signature header magic"):
        extract(bytes(data), "rpm", RPM_UNAME, tmp_path / "vmlinux")


@pytest.mark.parametrize("cpio_format", ["newc", "crc"])
def test_cpio_reader_matches_gnu_cpio(tmp_path: Path, cpio_format: str) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "a.txt").write_bytes(b"abc")
    (root / "d" / "b.bin").write_bytes(incompressible(1001))
    (root / "link").symlink_to("d/a.txt")
    names = "d\nd/a.txt\nd/b.bin\nlink\n"
    archive = subprocess.run(
        ["cpio", "-o", "-H", cpio_format],
        input=names.encode(),
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    assert archive[:6] == (b"070701" if cpio_format == "newc" else b"070702")
    found = [
        (m.name, m.is_regular(), m.data.read(2000)) for m in cpio.iter_members(stream_of(archive))
    ]
    assert found == [
        ("d", False, b""),
        ("d/a.txt", True, b"abc"),
        ("d/b.bin", True, incompressible(1001)),
        ("link", False, b"d/a.txt"),
    ]


def test_rpm_fixture_matches_rpm2cpio(tmp_path: Path, fixture_elf: Path) -> None:
    """Our cpio walk over a real payload lists what rpm2cpio | cpio -t lists."""
    if shutil.which("rpm2cpio") is None:
        pytest.fail("rpm2cpio missing: run scripts/setup.sh")
    rpm = build_rpm(
        tmp_path, "kernel-debuginfo", "5.14.0", "70.el9", "x86_64", RPM_UNAME, fixture_elf
    )
    payload = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True).stdout
    listed = subprocess.run(["cpio", "-t"], input=payload, capture_output=True, check=True)
    ours = [m.name for m in cpio.iter_members(stream_of(payload))]
    assert ours == listed.stdout.decode().split()
