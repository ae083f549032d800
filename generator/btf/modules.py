"""A kernel's modules file: each module's split BTF on the kernel's own BTF, in one tarball.

archive/<distro>/<release>/<arch>/<uname>.modules.tar.xz sits beside
<uname>.btf.tar.xz, which stays exactly what it was. It is written like
that file (tarball.py: GNU tar, root, 0444, mtime 0, xz preset 6) and holds:

- modules.json first: {"uname", "base": {"size", "sha256"} of the raw
  <uname>.btf the modules were encoded on, "modules": {name: {"size",
  "sha256"}} of each member, "absent": [names listed but not in the package]}
  (schemas/modules-file.schema.json);
- <name>.btf for each module, sorted by name: raw split BTF whose type ids
  and string offsets continue the base's (pahole --btf_base; libbpf's
  btf__parse_split, bpftool's -B read it).

Split BTF is only meaningful on the exact base it was encoded on, so the
base's digest travels with the modules and every reader checks it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import jsonschemas
from generator.btf.check import BtfSummary, check_btf
from generator.btf.encode import encode_module, pahole
from generator.btf.tarball import read_tar_xz_members, reproducible_tar_xz_members
from generator.children import usable_cores
from generator.errors import EncodeError
from generator.model import FileDigest

MANIFEST_MEMBER = "modules.json"
SCHEMA = jsonschemas.MODULES_FILE_SCHEMA


@dataclass(frozen=True)
class ModulesManifest:
    """What a kernel's modules file holds (its modules.json)."""

    uname: str
    base: FileDigest  # the raw vmlinux BTF the modules are split on
    modules: Mapping[str, FileDigest]  # name -> its <name>.btf member, sorted by name
    absent: tuple[str, ...]  # listed in the catalog, not in the kernel's package

    def as_json(self) -> dict[str, Any]:
        return {
            "uname": self.uname,
            "base": _digest_json(self.base),
            "modules": {n: _digest_json(d) for n, d in sorted(self.modules.items())},
            "absent": sorted(self.absent),
        }


def _digest_json(digest: FileDigest) -> dict[str, Any]:
    return {"size": digest.size, "sha256": digest.sha256}


def digest_of(data: bytes) -> FileDigest:
    return FileDigest(len(data), hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class BuiltModules:
    tar_xz: bytes
    manifest: ModulesManifest
    seconds: dict[str, float]


def build_modules(
    uname: str,
    base_raw: bytes,
    base_summary: BtfSummary,
    modules: Mapping[str, Path],
    absent: Sequence[str],
    workdir: Path,
    *,
    threads: int | None = None,
    unpack: Callable[[Path, Path], None] | None = None,
) -> BuiltModules:
    """Encode each module (name -> its .ko) on base_raw, check it, pack them all.

    threads: modules encoded at once (default: every core this process may
    use). The bytes do not depend on it. Each file is deleted once encoded.
    unpack(given, ko): the files given are packed (the module sink's
    zstd-compressed .ko.zst): each is unpacked just before pahole reads it, so
    at most `threads` .ko are on disk at once.
    """
    started = time.monotonic()
    base = workdir / f"{uname}.base.btf"
    base.write_bytes(base_raw)
    tool = pahole()

    def encode(name: str) -> tuple[str, bytes]:
        out = workdir / f"{name}.btf"
        given = modules[name]
        ko = workdir / f"{name}.ko" if unpack is not None else given
        try:
            if unpack is not None:
                unpack(given, ko)
            encode_module(ko, base, out, tool=tool)
            data = out.read_bytes()
        finally:
            out.unlink(missing_ok=True)
            ko.unlink(missing_ok=True)
            given.unlink(missing_ok=True)
        try:
            summary = check_btf(data, base_summary)
        except EncodeError as exc:
            raise EncodeError(f"module {name}: {exc}") from None
        if summary.types == 0:
            raise EncodeError(f"module {name}: pahole encoded no type (no DWARF?)")
        return name, data

    workers = max(1, threads or usable_cores())
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="pahole-module") as pool:
            encoded = dict(pool.map(encode, sorted(modules)))
    finally:
        base.unlink(missing_ok=True)
    seconds = {"modules pahole": time.monotonic() - started}
    manifest = ModulesManifest(
        uname=uname,
        base=digest_of(base_raw),
        modules={n: digest_of(d) for n, d in sorted(encoded.items())},
        absent=tuple(sorted(absent)),
    )
    began = time.monotonic()
    members = [(MANIFEST_MEMBER, _manifest_bytes(manifest))]
    members += [(f"{n}.btf", d) for n, d in sorted(encoded.items())]
    tar_xz = reproducible_tar_xz_members(members)
    seconds["modules tar.xz"] = time.monotonic() - began
    return BuiltModules(tar_xz, manifest, seconds)


def _manifest_bytes(manifest: ModulesManifest) -> bytes:
    return (json.dumps(manifest.as_json(), indent=1, sort_keys=True) + "\n").encode()


def manifest_from_json(doc: Mapping[str, Any], what: str) -> ModulesManifest:
    """A modules.json (or index.json's modules entry) checked against its schema."""
    jsonschemas.check(doc, SCHEMA, what)

    def digest(d: Mapping[str, Any]) -> FileDigest:
        return FileDigest(int(d["size"]), str(d["sha256"]))

    return ModulesManifest(
        uname=str(doc["uname"]),
        base=digest(doc["base"]),
        modules={str(n): digest(d) for n, d in sorted(doc["modules"].items())},
        absent=tuple(sorted(doc["absent"])),
    )


def read_modules_file(data: bytes, what: str) -> tuple[ModulesManifest, dict[str, bytes]]:
    """The manifest and every module's raw split BTF, each checked against the manifest."""
    members = read_tar_xz_members(data)
    if not members or members[0][0] != MANIFEST_MEMBER:
        raise EncodeError(f"{what}: the modules file does not start with {MANIFEST_MEMBER}")
    try:
        doc = json.loads(members[0][1])
    except ValueError as exc:
        raise EncodeError(f"{what}: {MANIFEST_MEMBER} is not JSON: {exc}") from None
    manifest = manifest_from_json(doc, f"{what}: {MANIFEST_MEMBER}")
    found: dict[str, bytes] = {}
    for name, body in members[1:]:
        module = name.removesuffix(".btf")
        expected = manifest.modules.get(module)
        if not name.endswith(".btf") or expected is None or module in found:
            raise EncodeError(f"{what}: unexpected member {name!r}")
        if digest_of(body) != expected:
            raise EncodeError(f"{what}: {name} does not match {MANIFEST_MEMBER}")
        found[module] = body
    missing = sorted(set(manifest.modules) - set(found))
    if missing:
        raise EncodeError(f"{what}: {MANIFEST_MEMBER} lists {', '.join(missing)}, not in it")
    return manifest, found
