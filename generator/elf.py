"""Just enough ELF to list section headers: is there a .BTF section, where, and of what type.

A kernel built with CONFIG_DEBUG_INFO_BTF carries its own .BTF section and
exposes it at /sys/kernel/btf/vmlinux, so the hub need not build it; and a
vmlinux's relocation sections are never read by pahole, so a package reader
need not decode them (packages/xzblocks.py). This reads the ELF header and
section header table with struct (ELF32/ELF64, either byte order) instead
of pulling in pyelftools for a few lookups; from a file, or from an ELF
file that starts `base` bytes into another (a vmlinux inside a data.tar).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from generator.errors import EncodeError

ELF_MAGIC = b"\x7fELF"
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHN_XINDEX = 0xFFFF
MAX_SECTIONS = 1 << 16


@dataclass(frozen=True)
class ElfSection:
    name: str
    type: int
    offset: int
    size: int


@dataclass(frozen=True)
class _Layout:
    order: str  # struct byte-order prefix
    # ELF header: (format, offset) of e_shoff, then e_shentsize/e_shnum/e_shstrndx.
    shoff: tuple[str, int]
    shsizes_at: int
    # Section header: format of (sh_name, sh_type, sh_offset, sh_size, sh_link).
    section: str
    entsize: int


def _layout(ident: bytes, label: str) -> _Layout:
    if ident[:4] != ELF_MAGIC:
        raise EncodeError(f"{label} is not an ELF file")
    order = {1: "<", 2: ">"}.get(ident[5])
    if order is None:
        raise EncodeError(f"{label}: unknown ELF byte order {ident[5]}")
    if ident[4] == 2:  # ELFCLASS64
        # sh_name I, sh_type I, sh_flags Q, sh_addr Q, sh_offset Q, sh_size Q, sh_link I
        return _Layout(order, ("Q", 0x28), 0x3A, "II16xQQI", 64)
    if ident[4] == 1:  # ELFCLASS32
        return _Layout(order, ("I", 0x20), 0x2E, "II8xIII", 40)
    raise EncodeError(f"{label}: unknown ELF class {ident[4]}")


def _read_upto(f: BinaryIO, offset: int, size: int) -> bytes:
    """Up to size bytes at offset: f's reads are whole but at its end (a file, a BlockFile)."""
    f.seek(offset)
    return f.read(size)


def _read_at(f: BinaryIO, offset: int, size: int, label: str) -> bytes:
    data = _read_upto(f, offset, size)
    if len(data) != size:
        raise EncodeError(f"{label}: truncated ELF file (want {size} B at {offset})")
    return data


@dataclass(frozen=True)
class ElfLayout:
    sections: list[ElfSection]
    table: tuple[int, int]  # the section header table: offset, length


def elf_sections(path: Path) -> list[ElfSection]:
    """All sections of an ELF file, with names resolved."""
    with path.open("rb") as f:
        return layout_in(f, path.name).sections


def layout_in(f: BinaryIO, label: str, base: int = 0, size: int | None = None) -> ElfLayout:
    """The sections and section table of the ELF file that starts `base` bytes into seekable `f`.

    size: the ELF file's length, when f holds more than it; a section table
    or name table beyond it is an EncodeError. Offsets are the ELF file's own.
    """
    end = size if size is not None else 1 << 63

    def read(offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > end:
            raise EncodeError(f"{label}: ELF data at {offset} (+{n} B) lies beyond the file")
        return _read_at(f, base + offset, n, label)

    ident = _read_upto(f, base, min(0x40, end))
    if len(ident) < 0x34:
        raise EncodeError(f"{label} is not an ELF file (too short)")
    lay = _layout(ident, label)
    o = lay.order
    (shoff,) = struct.unpack_from(o + lay.shoff[0], ident, lay.shoff[1])
    shentsize, shnum, shstrndx = struct.unpack_from(o + "HHH", ident, lay.shsizes_at)
    if shoff == 0:
        return ElfLayout([], (0, 0))
    if shentsize < lay.entsize:
        raise EncodeError(f"{label}: bad ELF section header size {shentsize}")
    # Extended numbering: counts too big for the ELF header live in section 0.
    first = struct.unpack_from(o + lay.section, read(shoff, shentsize))
    if shnum == 0:
        shnum = first[3]
    if shstrndx == SHN_XINDEX:
        shstrndx = first[4]
    if shnum > MAX_SECTIONS or shstrndx >= shnum:
        raise EncodeError(f"{label}: implausible ELF section table ({shnum} sections)")
    table = read(shoff, shnum * shentsize)
    raw = [struct.unpack_from(o + lay.section, table, i * shentsize) for i in range(shnum)]
    strtab = raw[shstrndx]
    names = read(strtab[2], strtab[3]) if strtab[3] else b""
    sections = []
    for name_off, sh_type, offset, length, _link in raw:
        stop = names.find(b"\0", name_off)
        name = names[name_off : stop if stop >= 0 else len(names)].decode("ascii", "replace")
        sections.append(ElfSection(name, sh_type, offset, length))
    return ElfLayout(sections, (shoff, shnum * shentsize))


def find_section(path: Path, name: str) -> ElfSection | None:
    for section in elf_sections(path):
        if section.name == name:
            return section
    return None


def dump_section(path: Path, section: ElfSection, out: Path) -> None:
    """Copy a section's bytes to `out` (the llvm-objcopy --dump-section equivalent)."""
    if section.type == SHT_NOBITS:
        raise EncodeError(f"{path.name}: section {section.name} holds no file data")
    with path.open("rb") as f:  # a .BTF section: a few MB
        data = _read_at(f, section.offset, section.size, f"{path.name} section {section.name}")
    out.write_bytes(data)


def read_section(path: Path, name: str) -> bytes | None:
    """A small section's bytes (a BPF object's .BTF, .BTF.ext), None when there is none."""
    section = find_section(path, name)
    if section is None:
        return None
    if section.type == SHT_NOBITS:
        raise EncodeError(f"{path.name}: section {name} holds no file data")
    with path.open("rb") as f:
        return _read_at(f, section.offset, section.size, path.name)
