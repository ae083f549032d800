"""vmlinux's BTF and modules' split BTF made one raw BTF file, for btf_custom_path.

libbpf reads module BTF only from /sys/kernel/btf/<module> and takes one
file as btf_custom_path; kernels without BTF have no /sys/kernel/btf. So a
tool tracing a module needs one file holding vmlinux's types and the
module's. libbpf's own btf__add_btf() refuses split BTF (ENOTSUP in every
released libbpf, 1.1 to 1.6) and pahole encodes BTF from DWARF only, so
the merge is done here, as btf__add_btf() does it for a non-split source:

- the base's records and strings are kept byte for byte (type ids 1..N);
- each module's records are appended, every type id it refers to above N
  moved by the types appended before it (ids up to N are the base's and
  stay), every name offset past the base's strings moved to where its
  strings are appended;
- the result is checked (check_btf) as any archive file is.

A type two modules both carry (nf_nat's copy of nf_conntrack's structs)
stays twice; CO-RE relocation accepts candidates that agree, which copies
of one definition do.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from generator.btf.check import (
    ARRAY,
    DATASEC,
    ENUM,
    ENUM64,
    FUNC_PROTO,
    HEADER_LEN,
    REFERS_BY_TYPE,
    STRUCT,
    TRAILER,
    TYPE_LEN,
    UNION,
    BtfSummary,
    check_btf,
    sections,
)
from generator.errors import EncodeError

# Per vlen item of these kinds: (words per item, index of its name word or
# None, index of its type-id word or None).
_ITEMS: dict[int, tuple[int, int | None, int | None]] = {
    STRUCT: (3, 0, 1),
    UNION: (3, 0, 1),
    ENUM: (2, 0, None),
    ENUM64: (3, 0, None),
    FUNC_PROTO: (2, 0, 1),
    DATASEC: (3, None, 0),
}


def merge_split(base: bytes, modules: Sequence[bytes]) -> bytes:
    """One raw BTF: base's types (ids unchanged), then each module's, in order."""
    base_summary = check_btf(base)
    order, base_types_bytes, base_strings = sections(base)
    type_parts = [base_types_bytes]
    string_parts = [base_strings]
    types_so_far = base_summary.types
    strings_so_far = len(base_strings)
    for index, module in enumerate(modules):
        try:
            summary: BtfSummary = check_btf(module, base_summary)
        except EncodeError as exc:
            raise EncodeError(f"module BTF #{index + 1}: {exc}") from None
        module_order, types, strings = sections(module)
        if module_order != order:
            raise EncodeError(f"module BTF #{index + 1} is in another byte order than its base")
        # Own names: module offset o (>= len(base_strings)) -> o - base + strings_so_far.
        str_shift = strings_so_far - len(base_strings)
        id_shift = types_so_far - base_summary.types
        type_parts.append(
            _remap(types, order, base_summary.types, id_shift, len(base_strings), str_shift)
        )
        string_parts.append(strings)
        types_so_far += summary.types
        strings_so_far += len(strings)
    type_section = b"".join(type_parts)
    string_section = b"".join(string_parts)
    header = struct.pack(
        order + "HBBIIIII",
        0xEB9F,
        1,
        0,
        HEADER_LEN,
        0,
        len(type_section),
        len(type_section),
        len(string_section),
    )
    merged = header + type_section + string_section
    check_btf(merged)
    return merged


def _remap(
    types: bytes, order: str, base_types: int, id_shift: int, base_strings: int, str_shift: int
) -> bytes:
    """A split type section: own type ids moved by id_shift, own names by str_shift.

    Ids up to base_types name the base's types and stay, as do name offsets
    below base_strings (the base's strings).
    """
    words = list(struct.unpack(f"{order}{len(types) // 4}I", types))

    def name(i: int) -> None:
        if words[i] >= base_strings:
            words[i] += str_shift

    def ref(i: int) -> None:
        if words[i] > base_types:
            words[i] += id_shift

    i = 0
    while i < len(words):
        kind = (words[i + 1] >> 24) & 0x1F
        vlen = words[i + 1] & 0xFFFF
        name(i)
        if kind in REFERS_BY_TYPE:
            ref(i + 2)
        body = i + TYPE_LEN // 4
        if kind == ARRAY:
            ref(body)
            ref(body + 1)
        item = _ITEMS.get(kind)
        if item is not None:
            size, name_at, type_at = item
            for j in range(body, body + size * vlen, size):
                if name_at is not None:
                    name(j + name_at)
                if type_at is not None:
                    ref(j + type_at)
        fixed, per_item = TRAILER[kind]
        i = body + (fixed + per_item * vlen) // 4
    return struct.pack(f"{order}{len(words)}I", *words)
