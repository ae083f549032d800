"""What the optional maps of index.json (revision 2) say of a kernel, as the page shows it.

Beside `kernels`, an architecture of index.json may carry maps keyed by the
same uname that other features own: `provenance` (issue 18: how an archived
file was built) and `modules` (issue 16: the kernel's modules' BTF). Old
readers ignore them; the site shows them when present and skips what it does
not recognise (an index from a newer btfhub must still give a site).

Pure. The words are made here, once, not in the page's script. Values that
many kernels share (a release's signing keys, pahole's arguments, a module
list) are stored once in a table the kernels point into: a 20,000-kernel
hub's provenance would otherwise repeat the same few hundred bytes per file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


class Shared:
    """Values stored once for every kernel that has them; a kernel names one by position."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._positions: dict[str, int] = {}

    def ref(self, value: Any) -> int:
        key = json.dumps(value, sort_keys=True)
        if key not in self._positions:
            self._positions[key] = len(self.values)
            self.values.append(value)
        return self._positions[key]


def _keys(keys: Sequence[str]) -> str:
    return f"key{'s' if len(keys) > 1 else ''} {', '.join(keys) or 'not recorded'}"


def voucher_words(vouched: Mapping[str, Any]) -> str:
    """What vouched for the source package, in words."""
    if vouched.get("unsigned") is True:
        return "nothing: its repository is marked unsigned in the catalog"
    parts = []
    signed = _obj(vouched.get("signed_index"))
    if signed:
        parts.append(
            f"the signed index {signed.get('url')} ({_keys(_strings(signed.get('keys')))})"
        )
    header = _obj(vouched.get("rpm_header"))
    if header:
        parts.append(f"the package's signed RPM header ({_keys(_strings(header.get('keys')))})")
    return "; ".join(parts) or "not recorded"


def builder_words(entry: Mapping[str, Any]) -> str:
    """The tools that built the file: pahole with its exact arguments, and btfhub."""
    pahole = _obj(entry.get("pahole"))
    command = " ".join(
        ["pahole", str(pahole.get("version", "?")), *_strings(pahole.get("arguments"))]
    )
    return f"{command}; btfhub {entry.get('btfhub', '?')}"


# A kernel row's provenance: [RECORDED or LEGACY, the other file's sha256 or None, then for
# RECORDED: the package URL up to its last "/" (shared), the rest, its size, its sha256,
# its format, what vouched for it (shared), what built the file (shared)]. Arrays, not
# objects: 20,000 kernels' keys would be megabytes of the page's data.
LEGACY, RECORDED = 0, 1


def provenance_extra(entry: Any, file_sha256: Any, shared: Shared) -> list[Any] | None:
    """The page's view of one provenance entry (None: there is none)."""
    entry = _obj(entry)
    if not entry:
        return None
    recorded = entry.get("file_sha256")
    # An entry describes given bytes; one for other bytes than the index's says so.
    other = recorded if recorded is not None and recorded != file_sha256 else None
    if entry.get("legacy") is True:
        return [LEGACY, other]
    package = _obj(entry.get("package"))
    url = str(package.get("url") or "")
    cut = url.rfind("/") + 1
    return [
        RECORDED,
        other,
        shared.ref(url[:cut]),
        url[cut:],
        package.get("size"),
        package.get("sha256"),
        package.get("format"),
        shared.ref(voucher_words(_obj(entry.get("vouched_by")))),
        shared.ref(builder_words(entry)),
    ]


def modules_extra(entry: Any, shared: Shared) -> list[Any] | None:
    """[the file's path, size, sha256, the modules in it (shared), those the package lacked
    (shared), and, when its last modules build failed, why] for one kernel's modules map
    entry (None: there is none; path None: a failure and no file)."""
    entry = _obj(entry)
    if not entry:
        return None
    found = [
        entry.get("path"),
        entry.get("size"),
        entry.get("sha256"),
        shared.ref(sorted(str(name) for name in _obj(entry.get("modules")))),
        shared.ref(sorted(_strings(entry.get("absent")))),
    ]
    reason = _obj(entry.get("failed")).get("reason")
    return [*found, str(reason)] if reason is not None else found


def kernel_extras(
    arch_entry: Mapping[str, Any], uname: str, file_sha256: Any, shared: Shared
) -> list[Any]:
    """What the architecture's optional maps say of this kernel: [provenance, modules],
    trailing Nones left out (a kernel without either adds nothing to its row)."""
    found = [
        provenance_extra(_obj(arch_entry.get("provenance")).get(uname), file_sha256, shared),
        modules_extra(_obj(arch_entry.get("modules")).get(uname), shared),
    ]
    while found and found[-1] is None:
        found.pop()
    return found
