"""BTF encoding with the real pahole, validation, reproducible tarballs, the per-kernel build."""

from __future__ import annotations

import dataclasses
import io
import lzma
import os
import random
import re
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path
from typing import BinaryIO

import pytest

from generator.btf import (
    BuiltBtf,
    build_kernel_btf,
    check_btf,
    encode_btf,
    extract_btf_section,
    has_btf_section,
    read_tar_xz_member,
    reproducible_tar_xz,
)
from generator.btf import check as btf_check
from generator.btf.encode import (
    DETACHED_FLAG,
    PAHOLE_ENV,
    PAHOLE_VERSION,
    find_pahole,
    pahole,
    pahole_command,
)
from generator.btf.tarball import xz_block_size, xz_compress
from generator.demokit.bpftool import dump_c
from generator.demokit.elf import ENUM_NAME, STRUCT_NAMES, TYPEDEF_NAME, UNION_NAME
from generator.errors import EncodeError, MissingToolError
from generator.packages import extract_vmlinux
from tests.kit.debpkg import build_kernel_deb
from tests.kit.elf import build_many_units_elf
from tests.kit.shelf import build_rpm

UNAME = "5.4.0-42-generic"


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> Path:
    out = tmp_path_factory.mktemp("btf") / "fixture.btf"
    encode_btf(fixture_elf, out)
    return out


# -- encode ----------------------------------------------------------------


def test_encode_holds_fixture_types(encoded: Path) -> None:
    c = dump_c(encoded)
    for name in STRUCT_NAMES:
        assert f"struct {name} {{" in c
    assert f"union {UNION_NAME} {{" in c
    assert f"enum {ENUM_NAME} {{" in c
    assert f"typedef int (*{TYPEDEF_NAME})(struct btfhub_fixture_list *, int);" in c
    assert "char comm[16];" in c


def test_encode_summary(encoded: Path) -> None:
    summary = check_btf(encoded.read_bytes())
    assert set(STRUCT_NAMES) <= summary.struct_names
    assert summary.unions >= 1 and summary.enums >= 1
    assert summary.byte_order == "little"
    assert summary.types == sum(n for _, n in summary.kinds)
    # bpftool numbers types from 1; its last id is our count.
    raw = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(encoded)], capture_output=True, check=True, text=True
    ).stdout
    ids = [int(m) for m in re.findall(r"^\[(\d+)\]", raw, re.MULTILINE)]
    assert max(ids) == summary.types
    if "--btf_gen_floats" in pahole().options:  # double as_double became a FLOAT
        assert summary.count("float") == 1
    if "--skip_encoding_btf_enum64" in pahole().options:
        assert summary.count("enum64") == 0


def test_encode_is_deterministic(tmp_path: Path, fixture_elf: Path, encoded: Path) -> None:
    again = tmp_path / "again.btf"
    encode_btf(fixture_elf, again)
    assert again.read_bytes() == encoded.read_bytes()


def test_pahole_flags_follow_help_text(tmp_path: Path) -> None:
    tool = pahole()
    assert tool.version == PAHOLE_VERSION
    cmd = pahole_command(Path("vmlinux"), tmp_path / "o.btf", tool)
    assert cmd[0] == tool.path and cmd[-1] == "vmlinux"
    help_text = subprocess.run([tool.path, "--help"], capture_output=True, text=True).stdout
    for flag in ("--skip_encoding_btf_enum64", "--btf_gen_floats", "--btf_gen_optimized"):
        assert (flag in cmd) == (flag in help_text)
    if DETACHED_FLAG in help_text:
        assert f"{DETACHED_FLAG}={tmp_path / 'o.btf'}" in cmd
    # One thread per core this process may use; one thread means no -j at all.
    cores = len(os.sched_getaffinity(0))
    assert [a for a in cmd if a.startswith("-j")] == ([f"-j{cores}"] if cores > 1 else [])
    assert pahole_command(Path("v"), Path("o"), tool, threads=3)[-3] == "-j3"
    serial = pahole_command(Path("v"), Path("o"), tool, threads=1)
    assert not any(a.startswith("-j") for a in serial)
    stripped = dataclasses.replace(tool, options=frozenset())
    assert pahole_command(Path("v"), Path("o"), stripped) == [tool.path, "-J", "v"]


def test_threaded_encoding_is_reproducible(tmp_path: Path) -> None:
    """pahole's -j gives a serial run's bytes, whatever the thread count and run.

    24 different compile units with a clashing struct name: Debian 12's
    pahole 1.24 gave 6 different outputs in 6 -j2 runs on this ELF.
    """
    elf = build_many_units_elf(tmp_path / "units")
    tool = pahole()
    outputs = []
    for threads in (1, 2, 4, 2):
        out = tmp_path / f"j{threads}.btf"
        subprocess.run(
            pahole_command(elf, out, tool, threads=threads), check=True, capture_output=True
        )
        outputs.append(out.read_bytes())
    assert len(outputs[0]) > 10_000
    assert all(out == outputs[0] for out in outputs[1:])
    # The 24 layouts of the clashing struct all stay apart (not merged into one).
    raw = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(tmp_path / "j4.btf")],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert raw.count("STRUCT 'clash' ") == 24


def test_pahole_of_another_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian 12's pahole 1.24 is not taken instead of the pinned one, nor is a missing one."""
    system = shutil.which("pahole")
    assert system is not None and system != pahole().path
    version = subprocess.run([system, "--version"], capture_output=True, text=True).stdout.strip()
    if version == PAHOLE_VERSION:
        pytest.skip(f"the system's pahole is {PAHOLE_VERSION} too")
    monkeypatch.setenv(PAHOLE_ENV, system)
    with pytest.raises(MissingToolError) as err:
        find_pahole()
    message = str(err.value)
    assert f"pahole {PAHOLE_VERSION}" in message and f"{system}: {version}" in message
    assert "scripts/setup.sh" in message and PAHOLE_ENV in message
    monkeypatch.setenv(PAHOLE_ENV, str(tmp_path / "no-such-pahole"))
    with pytest.raises(MissingToolError, match="no-such-pahole: missing or does not run"):
        find_pahole()
    monkeypatch.setenv(PAHOLE_ENV, pahole().path)
    assert find_pahole() == (pahole().path, PAHOLE_VERSION)


def test_fallback_without_detached_matches(
    tmp_path: Path, fixture_elf: Path, encoded: Path
) -> None:
    """Old pahole: -J on a copy plus llvm-objcopy --dump-section gives the same BTF."""
    tool = pahole()
    old = dataclasses.replace(tool, options=tool.options - {DETACHED_FLAG})
    out = tmp_path / "fallback.btf"
    before = fixture_elf.read_bytes()
    encode_btf(fixture_elf, out, tool=old)
    assert out.read_bytes() == encoded.read_bytes()
    assert fixture_elf.read_bytes() == before  # the input was not modified
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fallback.btf"]


def test_encode_non_elf_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "vmlinux-junk"
    junk.write_bytes(b"not an elf at all\n" * 10)
    with pytest.raises(EncodeError) as err:
        encode_btf(junk, tmp_path / "o.btf")
    message = str(err.value)
    assert "pahole" in message and "exited 1" in message
    assert "ELF file with DWARF" in message
    assert "stderr:" in message and "stdout:" in message


def test_encode_stripped_elf_fails(tmp_path: Path, fixture_elf: Path) -> None:
    stripped = tmp_path / "vmlinux-stripped"
    subprocess.run(["strip", "-o", str(stripped), str(fixture_elf)], check=True)
    with pytest.raises(EncodeError, match="exited 1: pahole found nothing to encode"):
        encode_btf(stripped, tmp_path / "o.btf")


# -- ELF sections ----------------------------------------------------------


def test_has_btf_section(fixture_elf: Path, fixture_elf_with_btf: Path) -> None:
    assert has_btf_section(fixture_elf_with_btf)
    assert not has_btf_section(fixture_elf)


def test_extract_btf_section_matches_objcopy(tmp_path: Path, fixture_elf_with_btf: Path) -> None:
    ours, theirs = tmp_path / "ours.btf", tmp_path / "objcopy.btf"
    extract_btf_section(fixture_elf_with_btf, ours)
    subprocess.run(
        ["llvm-objcopy", f"--dump-section=.BTF={theirs}", str(fixture_elf_with_btf)], check=True
    )
    assert ours.read_bytes() == theirs.read_bytes()
    assert set(STRUCT_NAMES) <= check_btf(ours.read_bytes()).struct_names


def test_extract_btf_section_absent(tmp_path: Path, fixture_elf: Path) -> None:
    with pytest.raises(EncodeError, match=r"has no \.BTF section"):
        extract_btf_section(fixture_elf, tmp_path / "o.btf")


@pytest.mark.parametrize("target", ["elf32-i386", "elf64-powerpc", "elf32-powerpc"])
def test_elf_reader_other_classes_and_byte_orders(
    tmp_path: Path, fixture_elf: Path, encoded: Path, target: str
) -> None:
    obj = tmp_path / "fixture.o"
    src = fixture_elf.with_name("fixture.c")
    subprocess.run(["gcc", "-c", "-g", "-o", str(obj), str(src)], check=True)
    plain, with_btf = tmp_path / "plain.o", tmp_path / "btf.o"
    subprocess.run(["llvm-objcopy", "-O", target, str(obj), str(plain)], check=True)
    subprocess.run(
        ["llvm-objcopy", f"--add-section=.BTF={encoded}", str(plain), str(with_btf)], check=True
    )
    header = subprocess.run(["readelf", "-h", str(with_btf)], capture_output=True, text=True)
    assert ("ELF32" in header.stdout) == target.startswith("elf32")
    assert ("big endian" in header.stdout) == ("powerpc" in target)
    assert not has_btf_section(plain)
    assert has_btf_section(with_btf)
    extract_btf_section(with_btf, tmp_path / "out.btf")
    assert (tmp_path / "out.btf").read_bytes() == encoded.read_bytes()


def test_elf_reader_rejects_non_elf(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELG" + b"\0" * 100)
    with pytest.raises(EncodeError, match="not an ELF file"):
        has_btf_section(junk)


# -- check_btf -------------------------------------------------------------

HDR = struct.Struct("<HBBIIIII")


def _fields(data: bytes | bytearray) -> list[int]:
    return list(HDR.unpack_from(data))


def _with_header(data: bytes, **changes: int) -> bytes:
    names = ["magic", "version", "flags", "hdr_len", "type_off", "type_len", "str_off", "str_len"]
    values = dict(zip(names, _fields(data), strict=True))
    values.update(changes)
    return HDR.pack(*values.values()) + data[HDR.size :]


def test_check_accepts_pahole_output(encoded: Path) -> None:
    data = encoded.read_bytes()
    hdr_len, type_len, str_len = _fields(data)[3], _fields(data)[5], _fields(data)[7]
    assert len(data) == hdr_len + type_len + str_len
    assert check_btf(data).size == len(data)


@pytest.mark.parametrize("cut", [1, 4, 100])
def test_check_rejects_truncated(encoded: Path, cut: int) -> None:
    with pytest.raises(EncodeError, match="malformed BTF"):
        check_btf(encoded.read_bytes()[:-cut])


def test_check_rejects_short_and_bad_magic(encoded: Path) -> None:
    data = encoded.read_bytes()
    with pytest.raises(EncodeError, match="shorter than the 24-byte header"):
        check_btf(data[:20])
    with pytest.raises(EncodeError, match="bad magic"):
        check_btf(b"\x9f\xea" + data[2:])
    with pytest.raises(EncodeError, match="unsupported version 2"):
        check_btf(_with_header(data, version=2))


def test_check_rejects_section_layout(encoded: Path) -> None:
    data = encoded.read_bytes()
    f = _fields(data)
    type_len, str_off, str_len = f[5], f[6], f[7]
    with pytest.raises(EncodeError, match="malformed BTF"):
        check_btf(_with_header(data, type_len=type_len + 100))
    with pytest.raises(EncodeError, match="runs past the end"):
        check_btf(_with_header(data, str_len=str_len + 100))
    with pytest.raises(EncodeError, match="unexplained bytes"):
        check_btf(data + b"\0\0\0\0")
    with pytest.raises(EncodeError, match="gap before the string section"):
        check_btf(_with_header(data, str_off=str_off + 4, str_len=str_len - 4))
    with pytest.raises(EncodeError, match="not 4-aligned"):
        check_btf(_with_header(data, type_off=2))


def test_check_rejects_bad_strings(encoded: Path) -> None:
    data = bytearray(encoded.read_bytes())
    f = _fields(data)
    str_at = f[3] + f[6]
    data[str_at] = ord("x")
    with pytest.raises(EncodeError, match="start and end with a NUL"):
        check_btf(bytes(data))


def test_check_rejects_name_offset_out_of_range(encoded: Path) -> None:
    data = bytearray(encoded.read_bytes())
    f = _fields(data)
    first_type = f[3] + f[4]
    struct.pack_into("<I", data, first_type, f[7] + 5)
    with pytest.raises(EncodeError, match=r"type \[1\] name offset .* outside strings"):
        check_btf(bytes(data))


@pytest.mark.parametrize("kind", [0, 20, 31])
def test_check_rejects_unknown_kind(encoded: Path, kind: int) -> None:
    data = bytearray(encoded.read_bytes())
    f = _fields(data)
    first_type = f[3] + f[4]
    (info,) = struct.unpack_from("<I", data, first_type + 4)
    struct.pack_into("<I", data, first_type + 4, (info & ~(0x1F << 24)) | (kind << 24))
    with pytest.raises(EncodeError, match=f"unknown kind {kind}"):
        check_btf(bytes(data))


# A hand-made BTF holding one record of each of the 19 kinds. bpftool (libbpf)
# must read it in both byte orders: that checks the record sizes the checker
# assumes against libbpf's, not against themselves.
STRINGS = b"\0int\0s\0a\0b\0u\0x\0e\0A\0B\0f\0t\0p\0fn\0v\0.data\0float\0tag\0ttag\0e64\0C\0"


def _name(s: str) -> int:
    return STRINGS.index(b"\0" + s.encode() + b"\0") + 1


def _info(kind: int, vlen: int = 0, kflag: int = 0) -> int:
    return (kflag << 31) | (kind << 24) | vlen


def all_kinds_btf(order: str) -> bytes:
    records = [
        (_name("int"), _info(1), 4, [0x01000020]),  # 1 INT signed 32 bits
        (0, _info(2), 1, []),  # 2 PTR -> int
        (0, _info(3), 0, [1, 1, 4]),  # 3 ARRAY int[4]
        (_name("s"), _info(4, 2), 8, [_name("a"), 1, 0, _name("b"), 1, 32]),  # 4 STRUCT
        (_name("u"), _info(5, 1), 4, [_name("x"), 1, 0]),  # 5 UNION
        (_name("e"), _info(6, 2), 4, [_name("A"), 0, _name("B"), 1]),  # 6 ENUM
        (_name("f"), _info(7), 0, []),  # 7 FWD struct f
        (_name("t"), _info(8), 1, []),  # 8 TYPEDEF t -> int
        (0, _info(9), 1, []),  # 9 VOLATILE
        (0, _info(10), 1, []),  # 10 CONST
        (0, _info(11), 2, []),  # 11 RESTRICT -> ptr
        (0, _info(13, 1), 1, [_name("p"), 1]),  # 12 FUNC_PROTO int (int p)
        (_name("fn"), _info(12, 1), 12, []),  # 13 FUNC fn, global linkage
        (_name("v"), _info(14), 1, [1]),  # 14 VAR v, global
        (_name(".data"), _info(15, 1), 4, [14, 0, 4]),  # 15 DATASEC
        (_name("float"), _info(16), 4, []),  # 16 FLOAT
        (_name("tag"), _info(17), 4, [0xFFFFFFFF]),  # 17 DECL_TAG on struct s
        (_name("ttag"), _info(18), 1, []),  # 18 TYPE_TAG
        (_name("e64"), _info(19, 1), 8, [_name("C"), 1, 2]),  # 19 ENUM64
    ]
    types = b"".join(
        struct.pack(f"{order}III{len(extra)}I", name, info, size, *extra)
        for name, info, size, extra in records
    )
    header = struct.pack(
        f"{order}HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(STRINGS)
    )
    return header + types + STRINGS


@pytest.mark.parametrize("order", ["<", ">"])
def test_check_walks_all_kinds_like_libbpf(tmp_path: Path, order: str) -> None:
    data = all_kinds_btf(order)
    summary = check_btf(data)
    assert summary.types == 19
    assert dict(summary.kinds) == {
        "int": 1, "ptr": 1, "array": 1, "struct": 1, "union": 1, "enum": 1, "fwd": 1,
        "typedef": 1, "volatile": 1, "const": 1, "restrict": 1, "func": 1, "func_proto": 1,
        "var": 1, "datasec": 1, "float": 1, "decl_tag": 1, "type_tag": 1, "enum64": 1,
    }  # fmt: skip
    assert summary.struct_names == {"s"}
    assert summary.byte_order == ("little" if order == "<" else "big")
    path = tmp_path / "kinds.btf"
    path.write_bytes(data)
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "[19] ENUM64 'e64'" in dump
    assert "[17] DECL_TAG 'tag' type_id=4 component_idx=-1" in dump


@pytest.mark.parametrize("which", ["pahole's", "all kinds <", "all kinds >"])
def test_the_fast_walk_answers_for_well_formed_btf_as_the_exact_one(
    encoded: Path, which: str
) -> None:
    data = encoded.read_bytes() if which == "pahole's" else all_kinds_btf(which[-1])
    order, hdr_len, type_off, type_len, _, str_len = btf_check._header(data)
    words = btf_check._words(data, hdr_len + type_off, type_len, order)
    fast = btf_check._fast_walk(words, type_len, str_len, 0)
    assert fast is not None  # taken, not fallen back from
    assert fast == btf_check._walk(words, type_len, str_len, 0, None)
    # Every malformed case (the tests around) falls back to the exact walk's words.
    assert btf_check._fast_walk(words[:-1], type_len - 4, str_len, 0) is None


def test_check_rejects_dangling_type_reference() -> None:
    data = bytearray(all_kinds_btf("<"))
    struct.pack_into("<I", data, 24 + 12 + 4 + 8, 99)  # PTR (type 2) -> [99]
    with pytest.raises(EncodeError, match=r"type \[2\] refers to missing type \[99\]"):
        check_btf(bytes(data))


@pytest.mark.parametrize(
    ("offset", "was", "referrer"),
    [
        (24 + 40, 1, 3),  # ARRAY's element type
        (24 + 68, 1, 4),  # STRUCT's first member
        (24 + 216, 1, 12),  # FUNC_PROTO's parameter
        (24 + 260, 14, 15),  # DATASEC's variable
    ],
)
def test_check_names_who_refers_to_a_missing_type(offset: int, was: int, referrer: int) -> None:
    data = bytearray(all_kinds_btf("<"))
    assert struct.unpack_from("<I", data, offset) == (was,)  # the field meant
    struct.pack_into("<I", data, offset, 20)  # one past the last type
    with pytest.raises(EncodeError, match=rf"type \[{referrer}\] refers to missing type \[20\]"):
        check_btf(bytes(data))


def test_check_rejects_vlen_on_kind_without_members() -> None:
    data = bytearray(all_kinds_btf("<"))
    struct.pack_into("<I", data, 24 + 16 + 4, _info(2, 3))  # PTR with vlen 3
    with pytest.raises(EncodeError, match=r"type \[2\] \(ptr\) has vlen 3"):
        check_btf(bytes(data))


def test_check_rejects_record_past_type_section() -> None:
    data = bytearray(all_kinds_btf("<"))
    enum64 = len(data) - len(STRINGS) - 24  # last record: 12 + 12 bytes
    struct.pack_into("<I", data, enum64 + 4, _info(19, 2))  # claims two values
    with pytest.raises(EncodeError, match=r"type \[19\] \(enum64\) runs past the type section"):
        check_btf(bytes(data))


# -- tarball ---------------------------------------------------------------


def test_tarball_is_reproducible(encoded: Path) -> None:
    data = encoded.read_bytes()
    first = reproducible_tar_xz(f"{UNAME}.btf", data)
    assert reproducible_tar_xz(f"{UNAME}.btf", data) == first
    assert reproducible_tar_xz(f"{UNAME}.btf", data + b"x") != first


def test_tarball_member_attributes(encoded: Path) -> None:
    data = encoded.read_bytes()
    blob = reproducible_tar_xz(f"{UNAME}.btf", data)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:xz") as tar:
        (member,) = tar.getmembers()
        assert tar.pax_headers == {}
    assert member.name == f"{UNAME}.btf"
    assert member.isreg() and member.size == len(data)
    assert (member.mode, member.uid, member.gid, member.mtime) == (0o444, 0, 0, 0)
    assert (member.uname, member.gname) == ("root", "root")
    assert member.pax_headers == {}
    raw = lzma.decompress(blob)
    assert raw[257:265] == b"ustar  \0"  # GNU magic, no pax "x" header blocks
    assert raw[156:157] == b"0"
    assert read_tar_xz_member(blob) == (f"{UNAME}.btf", data)


def test_tarball_readable_by_tar_and_xz(tmp_path: Path, encoded: Path) -> None:
    blob = reproducible_tar_xz(f"{UNAME}.btf", encoded.read_bytes())
    path = tmp_path / f"{UNAME}.btf.tar.xz"
    path.write_bytes(blob)
    subprocess.run(["xz", "-t", str(path)], check=True)
    info = subprocess.run(["xz", "--robot", "-lv", str(path)], capture_output=True, text=True)
    assert "CRC64" in info.stdout
    listing = subprocess.run(
        ["tar", "--numeric-owner", "-tvJf", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert listing.startswith("-r--r--r-- 0/0")
    assert "1970-01-01 00:00" in listing and f"{UNAME}.btf" in listing
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "-xJf", str(path), "-C", str(out)], check=True)
    assert (out / f"{UNAME}.btf").read_bytes() == encoded.read_bytes()


def test_tarball_rejects_path_names() -> None:
    with pytest.raises(ValueError, match="plain file name"):
        reproducible_tar_xz("../x.btf", b"")


def test_read_tar_xz_member_rejects_garbage_and_many_members() -> None:
    with pytest.raises(EncodeError, match="unreadable BTF tarball"):
        read_tar_xz_member(b"not xz")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:xz") as tar:
        for name in ("a.btf", "b.btf"):
            info = tarfile.TarInfo(name)
            tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(EncodeError, match="exactly one regular file, not 2 members"):
        read_tar_xz_member(raw.getvalue())


# -- build_kernel_btf ------------------------------------------------------


def build_from(stream: BinaryIO, fmt: str, uname: str, work: Path, force: bool = False) -> BuiltBtf:
    """What the hub does with a package: vmlinux out of it, then its BTF built."""
    work.mkdir(parents=True, exist_ok=True)
    vmlinux = work / f"vmlinux-{uname}"
    extract_vmlinux(stream, fmt, uname, vmlinux)
    return build_kernel_btf(vmlinux, uname, work, force=force)


def test_build_from_deb(tmp_path: Path, fixture_elf: Path, encoded: Path) -> None:
    deb = build_kernel_deb(tmp_path, UNAME, fixture_elf, "zst")
    work = tmp_path / "work"
    with deb.open("rb") as stream:
        built = build_from(stream, "deb", UNAME, work)
    assert not built.ships_btf and built.tar_xz is not None and built.summary is not None
    assert built.member_name == f"{UNAME}.btf"
    name, btf = read_tar_xz_member(built.tar_xz)
    assert (name, btf) == (f"{UNAME}.btf", encoded.read_bytes())
    assert set(STRUCT_NAMES) <= built.summary.struct_names
    assert list(work.iterdir()) == []  # vmlinux and raw BTF are gone
    with deb.open("rb") as stream:
        again = build_from(stream, "deb", UNAME, tmp_path / "work2")
    assert again.tar_xz == built.tar_xz  # byte-identical rebuild


def test_build_from_rpm(tmp_path: Path, fixture_elf: Path) -> None:
    uname = "3.10.0-1160.el7.x86_64"
    rpm = build_rpm(
        tmp_path, "kernel-debuginfo", "3.10.0", "1160.el7", "x86_64", uname, fixture_elf
    )
    with rpm.open("rb") as stream:
        built = build_from(stream, "rpm", uname, tmp_path / "work")
    assert built.tar_xz is not None
    name, btf = read_tar_xz_member(built.tar_xz)
    assert name == f"{uname}.btf"
    assert set(STRUCT_NAMES) <= check_btf(btf).struct_names


def test_build_detects_shipped_btf(tmp_path: Path, fixture_elf_with_btf: Path) -> None:
    deb = build_kernel_deb(tmp_path, UNAME, fixture_elf_with_btf, "xz")
    work = tmp_path / "work"
    with deb.open("rb") as stream:
        built = build_from(stream, "deb", UNAME, work)
    assert built.ships_btf and built.tar_xz is None and built.summary is None
    assert list(work.iterdir()) == []
    with deb.open("rb") as stream:
        forced = build_from(stream, "deb", UNAME, work, force=True)
    assert forced.ships_btf and forced.tar_xz is not None
    assert set(STRUCT_NAMES) <= check_btf(read_tar_xz_member(forced.tar_xz)[1]).struct_names


def test_build_cleans_up_on_failure(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF but not really" * 100)
    deb = build_kernel_deb(tmp_path, UNAME, junk, "gz")
    work = tmp_path / "work"
    with deb.open("rb") as stream, pytest.raises(EncodeError):
        build_from(stream, "deb", UNAME, work)
    assert list(work.iterdir()) == []


def test_encoder_tools_installed() -> None:
    """The encoder's tools are installed (scripts/setup.sh): fail loudly, never skip."""
    for tool in ("pahole", "bpftool", "llvm-objcopy", "readelf"):
        assert shutil.which(tool), f"{tool} missing: run scripts/setup.sh"


def test_check_accepts_the_running_kernels_btf() -> None:
    """A real kernel's BTF (every kind a kernel uses) walks to bpftool's type count."""
    vmlinux = Path("/sys/kernel/btf/vmlinux")
    if not vmlinux.exists():
        pytest.skip("this machine's kernel exposes no BTF")
    data = vmlinux.read_bytes()
    summary = check_btf(data)
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(vmlinux)], capture_output=True, check=True
    ).stdout
    assert summary.types == len(re.findall(rb"^\[\d+\]", dump, re.MULTILINE))
    assert "task_struct" in summary.struct_names


def test_tarball_compression_uses_two_blocks_and_ignores_the_core_count(tmp_path: Path) -> None:
    # A BTF-sized input (2 MiB and a bit): two xz blocks, so two cores compress
    # it; the bytes equal xz's with 4 or 8 threads, so a rebuild on a bigger
    # machine gives the same archive file. 256 random bytes in every 4 KiB: each
    # block has bytes to encode, at a fifth of the CPU all-random bytes take.
    rng = random.Random(7)
    pages = [rng.randbytes(256) + bytes(3840) for _ in range(((2 << 20) + (128 << 10)) // 4096)]
    data = b"".join(pages)
    assert len(data) == (2 << 20) + (128 << 10)
    block = (1 << 20) + (64 << 10)
    assert xz_block_size(len(data)) == block
    assert xz_block_size(len(data) + 1) == block + (64 << 10)  # rounded up to 64 KiB
    assert xz_block_size(10) == 1 << 20
    ours = xz_compress(data)
    assert lzma.decompress(ours) == data
    for threads in ("4", "8"):
        theirs = subprocess.run(
            ["xz", "-6", "--check=crc64", f"-T{threads}", f"--block-size={block}", "-c"],
            input=data,
            capture_output=True,
            check=True,
        ).stdout
        assert theirs == ours
    path = tmp_path / "x.xz"
    path.write_bytes(ours)
    listing = subprocess.run(
        ["xz", "--robot", "-l", str(path)], capture_output=True, text=True, check=True
    ).stdout
    totals = next(line.split("\t") for line in listing.splitlines() if line.startswith("totals"))
    assert totals[2] == "2"  # blocks


def test_tarball_compression_ignores_xz_environment(
    monkeypatch: pytest.MonkeyPatch, encoded: Path
) -> None:
    data = encoded.read_bytes()
    expected = reproducible_tar_xz(f"{UNAME}.btf", data)
    monkeypatch.setenv("XZ_OPT", "-9e")
    monkeypatch.setenv("XZ_DEFAULTS", "--check=sha256")
    assert reproducible_tar_xz(f"{UNAME}.btf", data) == expected
