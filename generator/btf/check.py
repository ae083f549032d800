"""Validate a raw BTF file before it enters the archive.

pahole has shipped versions that write broken BTF (dwz partial units,
duplicated types), and a truncated file must never be published. This
walks the header and every type record the way the kernel and libbpf do
(Documentation/bpf/btf.rst; libbpf btf.c btf_parse_hdr/btf_type_size):

- header: magic 0xEB9F in either byte order, version 1, hdr_len >= 24 with
  any extra header bytes zero;
- sections: type and string sections lie back to back from offset 0 after
  the header (types first, type_off 4-aligned) and end exactly at the end
  of the file, so file size == hdr_len + type_len + str_len;
- strings: non-empty, starting and ending with NUL;
- types: every record's kind is known (1..19) and its trailing data fits;
  kinds without members have vlen 0; every name offset lies inside the
  string section; every referenced type id exists.

Split BTF (a kernel module's, on top of its kernel's: `base`) numbers its
types after the base's and its string offsets after the base's strings, as
libbpf's btf__parse_split reads it; its own string section may be empty.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

from generator.errors import EncodeError

BTF_MAGIC = 0xEB9F
HEADER_LEN = 24
TYPE_LEN = 12  # struct btf_type: name_off, info, size|type
MAX_TYPES = 0x000FFFFF  # BTF_MAX_TYPE
MAX_NAME_OFFSET = 0x00FFFFFF  # BTF_MAX_NAME_OFFSET

KIND_NAMES = {
    1: "int",
    2: "ptr",
    3: "array",
    4: "struct",
    5: "union",
    6: "enum",
    7: "fwd",
    8: "typedef",
    9: "volatile",
    10: "const",
    11: "restrict",
    12: "func",
    13: "func_proto",
    14: "var",
    15: "datasec",
    16: "float",
    17: "decl_tag",
    18: "type_tag",
    19: "enum64",
}
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC = 9, 10, 11, 12, 13, 14, 15
FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = 16, 17, 18, 19

# Trailing data after struct btf_type: (fixed bytes, bytes per vlen item).
#   int: u32 encoding; array: btf_array {type, index_type, nelems};
#   struct/union: btf_member {name_off, type, offset} per member;
#   enum: btf_enum {name_off, val}; func_proto: btf_param {name_off, type};
#   var: btf_var {linkage}; datasec: btf_var_secinfo {type, offset, size};
#   decl_tag: btf_decl_tag {component_idx}; enum64: {name_off, val_lo32, val_hi32}.
TRAILER: dict[int, tuple[int, int]] = {
    INT: (4, 0),
    PTR: (0, 0),
    ARRAY: (12, 0),
    STRUCT: (0, 12),
    UNION: (0, 12),
    ENUM: (0, 8),
    FWD: (0, 0),
    TYPEDEF: (0, 0),
    VOLATILE: (0, 0),
    CONST: (0, 0),
    RESTRICT: (0, 0),
    FUNC: (0, 0),
    FUNC_PROTO: (0, 8),
    VAR: (4, 0),
    DATASEC: (0, 12),
    FLOAT: (0, 0),
    DECL_TAG: (4, 0),
    TYPE_TAG: (0, 0),
    ENUM64: (0, 12),
}
# Kinds whose third word is a type id (the others hold a size).
REFERS_BY_TYPE = {
    PTR,
    TYPEDEF,
    VOLATILE,
    CONST,
    RESTRICT,
    FUNC,
    FUNC_PROTO,
    VAR,
    DECL_TAG,
    TYPE_TAG,
}
# Kinds where vlen must be 0 (FUNC keeps its linkage in vlen).
NO_VLEN = {INT, PTR, ARRAY, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, VAR, FLOAT, DECL_TAG, TYPE_TAG}


@dataclass(frozen=True)
class BtfSummary:
    """What a valid BTF file holds."""

    size: int  # bytes
    byte_order: str  # "little" | "big"
    types: int  # type records, not counting the implicit void (id 0) nor a base's
    strings: int  # bytes of the string section
    kinds: tuple[tuple[str, int], ...]  # (kind name, count), by kind number
    struct_names: frozenset[str]  # named structs (a split BTF's own, named in either table)
    # Its string section, so that split BTF on it can name what it names from there.
    string_data: bytes = field(default=b"", repr=False, compare=False)

    def count(self, kind: str) -> int:
        return dict(self.kinds).get(kind, 0)

    @property
    def structs(self) -> int:
        return self.count("struct")

    @property
    def unions(self) -> int:
        return self.count("union")

    @property
    def enums(self) -> int:
        return self.count("enum") + self.count("enum64")


def _malformed(message: str) -> EncodeError:
    return EncodeError(f"malformed BTF: {message}")


def _header(data: bytes) -> tuple[str, int, int, int, int, int]:
    """(struct byte order, hdr_len, type_off, type_len, str_off, str_len), validated."""
    if len(data) < HEADER_LEN:
        raise _malformed(f"{len(data)} bytes, shorter than the {HEADER_LEN}-byte header")
    if struct.unpack_from("<H", data)[0] == BTF_MAGIC:
        order = "<"
    elif struct.unpack_from(">H", data)[0] == BTF_MAGIC:
        order = ">"
    else:
        raise _malformed(f"bad magic {data[:2].hex()}")
    _, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        order + "HBBIIIII", data
    )
    if version != 1:
        raise _malformed(f"unsupported version {version}")
    if hdr_len < HEADER_LEN or hdr_len > len(data):
        raise _malformed(f"header length {hdr_len} outside {HEADER_LEN}..{len(data)}")
    if any(data[HEADER_LEN:hdr_len]):
        raise _malformed("unknown non-zero header fields")
    if type_off % 4:
        raise _malformed(f"type section offset {type_off} not 4-aligned")
    if type_off + type_len > str_off:
        raise _malformed(f"type section {type_off}+{type_len} overlaps strings at {str_off}")
    # As the kernel's btf_check_sec_info: sorted by offset, the sections
    # leave no gap and no overlap, start at 0 and end at the end of the file.
    body = len(data) - hdr_len
    total = 0
    for name, off, length in sorted(
        [("type", type_off, type_len), ("string", str_off, str_len)], key=lambda s: s[1]
    ):
        if off != total:
            what = "gap before" if off > total else "overlap at"
            raise _malformed(f"{what} the {name} section (offset {off}, expected {total})")
        if length > body - total:
            raise _malformed(
                f"{name} section {off}+{length} runs past the end of the file ({body} bytes)"
            )
        total += length
    if total != body:
        raise _malformed(f"{body - total} unexplained bytes after the sections")
    return order, hdr_len, type_off, type_len, str_off, str_len


def sections(data: bytes) -> tuple[str, bytes, bytes]:
    """(struct byte order, type section, string section) of raw BTF checked before."""
    order = "<" if struct.unpack_from("<H", data)[0] == BTF_MAGIC else ">"
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(order + "5I", data, 4)
    types = data[hdr_len + type_off : hdr_len + type_off + type_len]
    return order, types, data[hdr_len + str_off : hdr_len + str_off + str_len]


def check_btf(data: bytes, base: BtfSummary | None = None) -> BtfSummary:
    """Validate raw BTF bytes (split BTF on `base`); EncodeError("malformed BTF: ...")."""
    order, hdr_len, type_off, type_len, str_off, str_len = _header(data)
    strings_at = hdr_len + str_off
    strings = data[strings_at : strings_at + str_len]
    first_id, names_below = (base.types, base.strings) if base else (0, 0)
    if base is not None and base.byte_order != ("little" if order == "<" else "big"):
        raise _malformed("split BTF in another byte order than its base")
    if base is not None and strings and strings[-1] != 0:
        raise _malformed("string section must end with a NUL byte")
    if base is None and (not strings or strings[0] != 0 or strings[-1] != 0):
        raise _malformed("string section must start and end with a NUL byte")
    str_len += names_below  # name offsets continue the base's strings
    if str_len - 1 > MAX_NAME_OFFSET:
        raise _malformed(f"string section of {str_len} bytes exceeds the name offset limit")

    kinds: Counter[int] = Counter()
    struct_names: set[str] = set()
    referenced: list[tuple[int, int]] = []  # (type id, referenced id)
    word = struct.Struct(order + "III")
    pos = hdr_len + type_off
    end = pos + type_len
    type_id = first_id
    while pos < end:
        type_id += 1
        if pos + TYPE_LEN > end:
            raise _malformed(f"type [{type_id}] header runs past the type section")
        name_off, info, size_or_type = word.unpack_from(data, pos)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        trailer = TRAILER.get(kind)
        if trailer is None:
            raise _malformed(f"type [{type_id}] has unknown kind {kind}")
        if vlen and kind in NO_VLEN:
            raise _malformed(f"type [{type_id}] ({KIND_NAMES[kind]}) has vlen {vlen}")
        extra = trailer[0] + trailer[1] * vlen
        if pos + TYPE_LEN + extra > end:
            raise _malformed(f"type [{type_id}] ({KIND_NAMES[kind]}) runs past the type section")
        if name_off >= str_len:
            raise _malformed(f"type [{type_id}] name offset {name_off} outside strings")
        if kind in REFERS_BY_TYPE:
            referenced.append((type_id, size_or_type))
        body = pos + TYPE_LEN
        if trailer[1]:
            items = struct.unpack_from(f"{order}{extra // 4}I", data, body)
            _check_items(kind, type_id, items, str_len, referenced)
        elif kind == ARRAY:
            elem, index, _nelems = struct.unpack_from(order + "III", data, body)
            referenced += [(type_id, elem), (type_id, index)]
        kinds[kind] += 1
        if kind == STRUCT and name_off:
            if name_off >= names_below:
                struct_names.add(_string(strings, name_off - names_below))
            elif base is not None and base.string_data:  # pahole reuses the base's strings
                struct_names.add(_string(base.string_data, name_off))
        pos += TYPE_LEN + extra
    if type_id > MAX_TYPES:
        raise _malformed(f"{type_id} types exceed the limit of {MAX_TYPES}")
    for referrer, target in referenced:
        if target > type_id:
            raise _malformed(f"type [{referrer}] refers to missing type [{target}]")
    return BtfSummary(
        size=len(data),
        byte_order="little" if order == "<" else "big",
        types=type_id - first_id,
        strings=str_len - names_below,
        kinds=tuple((KIND_NAMES[k], kinds[k]) for k in sorted(kinds)),
        struct_names=frozenset(struct_names),
        string_data=strings,
    )


def _check_items(
    kind: int,
    type_id: int,
    items: tuple[int, ...],
    str_len: int,
    referenced: list[tuple[int, int]],
) -> None:
    """Per-member records: name offsets in range, member/param/var type ids noted."""
    if kind in (STRUCT, UNION, ENUM64):  # name_off, type|val_lo, offset|val_hi
        names = items[0::3]
        if kind != ENUM64:
            referenced.extend((type_id, t) for t in items[1::3])
    elif kind in (ENUM, FUNC_PROTO):  # name_off, val|type
        names = items[0::2]
        if kind == FUNC_PROTO:
            referenced.extend((type_id, t) for t in items[1::2])
    else:  # DATASEC: type, offset, size; no names
        names = ()
        referenced.extend((type_id, t) for t in items[0::3])
    if names and max(names) >= str_len:
        raise _malformed(f"type [{type_id}] member name offset {max(names)} outside strings")


def _string(strings: bytes, offset: int) -> str:
    return strings[offset : strings.index(b"\0", offset)].decode("utf-8", "replace")
