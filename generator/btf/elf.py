"""Just enough ELF to list section headers: is there a .BTF section, and where.

A kernel built with CONFIG_DEBUG_INFO_BTF carries its own .BTF section and
exposes it at /sys/kernel/btf/vmlinux, so the hub need not build it. This
reads the ELF header and section header table with struct (ELF32/ELF64,
either byte order) instead of pulling in pyelftools for two lookups.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from generator.errors import EncodeError

ELF_MAGIC = b"\x7fELF"
SHT_NOBITS = 8
SHN_XINDEX = 0xFFFF
MAX_SECTIONS = 1 << 16
COPY_CHUNK = 1 << 20


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


def _layout(ident: bytes, path: Path) -> _Layout:
    if ident[:4] != ELF_MAGIC:
        raise EncodeError(f"{path.name} is not an ELF file")
    order = {1: "<", 2: ">"}.get(ident[5])
    if order is None:
        raise EncodeError(f"{path.name}: unknown ELF byte order {ident[5]}")
    if ident[4] == 2:  # ELFCLASS64
        # sh_name I, sh_type I, sh_flags Q, sh_addr Q, sh_offset Q, sh_size Q, sh_link I
        return _Layout(order, ("Q", 0x28), 0x3A, "II16xQQI", 64)
    if ident[4] == 1:  # ELFCLASS32
        return _Layout(order, ("I", 0x20), 0x2E, "II8xIII", 40)
    raise EncodeError(f"{path.name}: unknown ELF class {ident[4]}")


def _read_at(f: BinaryIO, offset: int, size: int, path: Path) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise EncodeError(f"{path.name}: truncated ELF file (want {size} B at {offset})")
    return data


def elf_sections(path: Path) -> list[ElfSection]:
    """All sections of an ELF file, with names resolved."""
    with path.open("rb") as f:
        ident = f.read(0x40)
        if len(ident) < 0x34:
            raise EncodeError(f"{path.name} is not an ELF file (too short)")
        lay = _layout(ident, path)
        o = lay.order
        (shoff,) = struct.unpack_from(o + lay.shoff[0], ident, lay.shoff[1])
        shentsize, shnum, shstrndx = struct.unpack_from(o + "HHH", ident, lay.shsizes_at)
        if shoff == 0:
            return []
        if shentsize < lay.entsize:
            raise EncodeError(f"{path.name}: bad ELF section header size {shentsize}")
        # Extended numbering: counts too big for the ELF header live in section 0.
        first = struct.unpack_from(o + lay.section, _read_at(f, shoff, shentsize, path))
        if shnum == 0:
            shnum = first[3]
        if shstrndx == SHN_XINDEX:
            shstrndx = first[4]
        if shnum > MAX_SECTIONS or shstrndx >= shnum:
            raise EncodeError(f"{path.name}: implausible ELF section table ({shnum} sections)")
        table = _read_at(f, shoff, shnum * shentsize, path)
        raw = [struct.unpack_from(o + lay.section, table, i * shentsize) for i in range(shnum)]
        strtab = raw[shstrndx]
        names = _read_at(f, strtab[2], strtab[3], path) if strtab[3] else b""
    sections = []
    for name_off, sh_type, offset, size, _link in raw:
        end = names.find(b"\0", name_off)
        name = names[name_off : end if end >= 0 else len(names)].decode("ascii", "replace")
        sections.append(ElfSection(name, sh_type, offset, size))
    return sections


def find_section(path: Path, name: str) -> ElfSection | None:
    for section in elf_sections(path):
        if section.name == name:
            return section
    return None


def dump_section(path: Path, section: ElfSection, out: Path) -> None:
    """Copy a section's bytes to `out` (the llvm-objcopy --dump-section equivalent)."""
    if section.type == SHT_NOBITS:
        raise EncodeError(f"{path.name}: section {section.name} holds no file data")
    with path.open("rb") as f, out.open("wb") as dst:
        f.seek(section.offset)
        left = section.size
        while left > 0:
            chunk = f.read(min(left, COPY_CHUNK))
            if not chunk:
                raise EncodeError(f"{path.name}: section {section.name} runs past end of file")
            dst.write(chunk)
            left -= len(chunk)


def read_section(path: Path, name: str) -> bytes | None:
    """A small section's bytes (a BPF object's .BTF, .BTF.ext), None when there is none."""
    section = find_section(path, name)
    if section is None:
        return None
    if section.type == SHT_NOBITS:
        raise EncodeError(f"{path.name}: section {name} holds no file data")
    with path.open("rb") as f:
        return _read_at(f, section.offset, section.size, path)
