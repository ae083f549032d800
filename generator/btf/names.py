"""Which named types a BTF holds, and which a CO-RE object's relocations look for.

min-core adds a kernel's modules to the BTF it minimizes only when the
objects need their types. libbpf resolves a CO-RE relocation by the local
type's kind and "essential" name (any ___flavour suffix cut off) and looks
in vmlinux first, in modules only when vmlinux has no candidate
(relo_core.c, libbpf.c bpf_core_find_cands); the same rule picks modules here.
The BTF read is one that check_btf has passed.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path

from generator.btf.check import (
    ENUM,
    ENUM64,
    FUNC,
    KIND_NAMES,
    TRAILER,
    TYPE_LEN,
    check_btf,
    sections,
)
from generator.elf import read_section
from generator.errors import EncodeError

# (kind, essential name): enum64 is looked for as enum, as libbpf matches them.
TypeKey = tuple[str, str]

BPF_CORE_TYPE_ID_LOCAL = 6  # relocations that never look at the target BTF
_FLAVOUR = re.compile(r"(?<=[^_])___(?=[^_])")


def _key(kind: int, name: str) -> TypeKey:
    match = list(_FLAVOUR.finditer(name))
    essential = name[: match[-1].start()] if match else name
    return KIND_NAMES[ENUM if kind == ENUM64 else kind], essential


def _records(data: bytes) -> Iterator[tuple[int, int]]:
    """(kind, name offset) of each type record, in id order (id 1 first)."""
    order, types, _ = sections(data)
    head = struct.Struct(order + "II")
    pos = 0
    while pos < len(types):
        name_off, info = head.unpack_from(types, pos)
        kind = (info >> 24) & 0x1F
        fixed, per_item = TRAILER[kind]
        pos += TYPE_LEN + fixed + per_item * (info & 0xFFFF)
        yield kind, name_off


def _name(strings: bytes, offset: int) -> str:
    return strings[offset : strings.index(b"\0", offset)].decode("utf-8", "replace")


def named_types(data: bytes, base: bytes | None = None) -> frozenset[TypeKey]:
    """The (kind, essential name) of every named type of raw BTF (split on base)."""
    base_strings = sections(base)[2] if base is not None else b""
    strings = sections(data)[2]
    keys = set()
    for kind, name_off in _records(data):
        if not name_off or kind == FUNC:
            continue
        if name_off < len(base_strings):
            name = _name(base_strings, name_off)
        else:
            name = _name(strings, name_off - len(base_strings))
        keys.add(_key(kind, name))
    return frozenset(keys)


def core_relocation_types(obj: Path) -> frozenset[TypeKey]:
    """The types a BPF object's CO-RE relocations resolve in the kernel's BTF.

    EncodeError when the object has no readable .BTF and .BTF.ext.
    """
    btf = read_section(obj, ".BTF")
    ext = read_section(obj, ".BTF.ext")
    if btf is None or ext is None:
        raise EncodeError(f"{obj.name}: no .BTF and .BTF.ext sections")
    check_btf(btf)
    order, _, strings = sections(btf)
    kinds = [(0, 0), *_records(btf)]  # type id -> (kind, name offset)
    wanted = set()
    for type_id, access_kind in _core_relocations(ext, order, obj.name):
        if access_kind == BPF_CORE_TYPE_ID_LOCAL:
            continue
        if type_id >= len(kinds):
            raise EncodeError(f"{obj.name}: a CO-RE relocation names missing type [{type_id}]")
        kind, name_off = kinds[type_id]
        if name_off:
            wanted.add(_key(kind, _name(strings, name_off)))
    return frozenset(wanted)


def _core_relocations(ext: bytes, order: str, what: str) -> Iterator[tuple[int, int]]:
    """(type id, relocation kind) of each bpf_core_relo record of a .BTF.ext section."""
    if len(ext) < 8:
        raise EncodeError(f"{what}: .BTF.ext too short")
    (hdr_len,) = struct.unpack_from(order + "I", ext, 4)
    if hdr_len < 32:  # no core_relo_off/len: a header from before CO-RE
        return
    off, length = struct.unpack_from(order + "II", ext, 24)
    section = ext[hdr_len + off : hdr_len + off + length]
    if len(section) != length:
        raise EncodeError(f"{what}: .BTF.ext's CO-RE section runs past its end")
    if not section:
        return
    (rec_size,) = struct.unpack_from(order + "I", section)
    if rec_size < 16:
        raise EncodeError(f"{what}: .BTF.ext CO-RE records of {rec_size} bytes")
    pos = 4
    while pos + 8 <= len(section):
        _sec_name, count = struct.unpack_from(order + "II", section, pos)
        pos += 8
        if pos + count * rec_size > len(section):
            raise EncodeError(f"{what}: .BTF.ext CO-RE records run past the section")
        for _ in range(count):
            _insn, type_id, _access, kind = struct.unpack_from(order + "4I", section, pos)
            pos += rec_size
            yield type_id, kind
