"""Minimized BTF for given CO-RE objects (BTFGen): `bpftool gen min_core_btf`.

For every selected kernel the full BTF is fetched (verified, cached) and cut
down to the types and members the objects' CO-RE relocations use, a few KB
instead of a few MB, which is what tools embed. manifest.json records the
inputs (each object's and each source file's sha256) and outputs, so a
rerun with the same index and objects does no work at all. This module is
the only code that runs bpftool.

A kernel whose modules the hub built (issue 16) is minimized together with
the modules that define a type the objects' CO-RE relocations look for and
vmlinux lacks (libbpf's rule: vmlinux first, modules only for what it lacks;
generator/btf/names.py): the modules file is verified, those modules'
split BTF merged onto vmlinux's (btf/merge.py), and bpftool minimizes that,
so the output relocates a program reading module structs as btf_custom_path.
Kernels without modules, or objects needing none of theirs, are minimized
from vmlinux's BTF alone, as before.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import jsonschemas
from generator.btf.check import check_btf
from generator.btf.merge import merge_split
from generator.btf.names import TypeKey, core_relocation_types, named_types
from generator.children import run_child
from generator.consumer.btffile import read_btf_member
from generator.consumer.download import file_sha256
from generator.consumer.fetch import FileSource
from generator.consumer.hubindex import HubFile, find_modules
from generator.elf import find_section
from generator.errors import BtfhubError, EncodeError
from generator.fsutil import dump_json, write_if_changed
from generator.model import ModuleSelection

BPFTOOL = "bpftool"
MANIFEST = "manifest.json"
GENERATED_BY = "btfhub min-core"


class MinCoreError(BtfhubError):
    """min-core cannot run as asked (bad input: no usable object, --jobs 0)."""


class BpftoolMissing(BtfhubError):
    """bpftool is not installed: no kernel can be minimized."""


@dataclass(frozen=True)
class BpfObject:
    path: Path
    sha256: str
    core_types: frozenset[TypeKey] = frozenset()  # what its CO-RE relocations look for

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class RejectedObject:
    path: Path
    reason: str


def check_objects(paths: Sequence[Path]) -> tuple[list[BpfObject], list[RejectedObject]]:
    """Objects bpftool can use, and the others with why (it would only say
    "section .BTF.ext not found" and stop)."""
    usable: list[BpfObject] = []
    rejected: list[RejectedObject] = []
    for path in paths:
        try:
            section = find_section(path, ".BTF.ext")
        except (OSError, EncodeError) as exc:
            rejected.append(RejectedObject(path, f"not a readable ELF object: {exc}"))
            continue
        if section is None or section.size == 0:
            rejected.append(
                RejectedObject(
                    path,
                    "has no .BTF.ext section, so no CO-RE relocations to keep "
                    "(compile with clang -g -O2 -target bpf and preserve_access_index types)",
                )
            )
            continue
        try:
            core_types = core_relocation_types(path)
        except EncodeError as exc:
            rejected.append(RejectedObject(path, f"unreadable CO-RE relocations: {exc}"))
            continue
        usable.append(BpfObject(path, file_sha256(path)[1], core_types))
    return usable, rejected


@dataclass(frozen=True)
class MinimizedKernel:
    file: HubFile
    full_size: int
    size: int | None  # None: failed
    sha256: str | None
    reused: bool  # nothing to do: the manifest and the file were current
    reason: str | None = None
    modules: tuple[str, ...] = ()  # the kernel's modules minimized with vmlinux
    modules_sha256: str | None = None  # of the modules file they came from


@dataclass(frozen=True)
class MinCoreReport:
    objects: tuple[BpfObject, ...]
    rejected: tuple[RejectedObject, ...]
    kernels: tuple[MinimizedKernel, ...]
    manifest: Path

    @property
    def failures(self) -> tuple[MinimizedKernel, ...]:
        return tuple(k for k in self.kernels if k.size is None)

    @property
    def full_size(self) -> int:
        return sum(k.full_size for k in self.kernels if k.size is not None)

    @property
    def size(self) -> int:
        return sum(k.size or 0 for k in self.kernels)

    def size_report(self) -> list[str]:
        """Lines of the size report: per kernel, then the total (full vs minimized)."""
        lines = []
        for k in self.kernels:
            if k.size is None:
                lines.append(f"FAILED {k.file.btf_name}: {k.reason}")
            else:
                lines.append(
                    f"{k.file.btf_name}: {k.full_size:,} -> {k.size:,} bytes "
                    f"({_percent(k.size, k.full_size)})"
                    + (f" with modules {', '.join(k.modules)}" if k.modules else "")
                    + (" (unchanged)" if k.reused else "")
                )
        done = [k for k in self.kernels if k.size is not None]
        lines.append(
            f"total: {len(done)} kernel(s), {self.full_size:,} -> {self.size:,} bytes "
            f"({_percent(self.size, self.full_size)}), {len(self.failures)} failed"
        )
        return lines


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.3g}%" if whole else "-"


def _bpftool(*args: str) -> None:
    """Run bpftool; EncodeError with its exit code and output when it fails."""
    try:
        proc = run_child([BPFTOOL, *args])  # dies with btfhub, like pahole
    except FileNotFoundError:
        raise BpftoolMissing(f"{BPFTOOL} is not installed (run scripts/setup.sh)") from None
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise EncodeError(
            f"bpftool {' '.join(args[:2])} exited {proc.returncode}: {output[-1500:]}"
        )


def bpftool_min_core(full: Path, out: Path, objects: Sequence[BpfObject]) -> None:
    _bpftool("gen", "min_core_btf", str(full), str(out), *(str(o.path) for o in objects))


def bpftool_parses(btf: Path) -> None:
    """EncodeError unless bpftool reads the raw BTF file whole (`btf dump file`)."""
    _bpftool("btf", "dump", "file", str(btf))


def _load_manifest(path: Path) -> dict[str, Any]:
    """The previous run's manifest, or {} when there is none or it is not one of ours."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if jsonschemas.problems(data, jsonschemas.MIN_CORE_MANIFEST_SCHEMA, str(path)):
        return {}  # hand-edited or damaged: redo everything rather than trust it
    return data if isinstance(data, dict) else {}


def _current(
    previous: dict[str, Any], file: HubFile, modules_sha256: str | None, out: Path
) -> dict[str, Any] | None:
    entry = previous.get(file.btf_name)
    if not isinstance(entry, dict) or entry.get("source_sha256") != file.sha256:
        return None
    if entry.get("modules_sha256") != modules_sha256:
        return None
    try:
        if file_sha256(out) != (entry.get("size"), entry.get("sha256")):
            return None
    except FileNotFoundError:
        return None
    return entry


def min_core(
    source: FileSource,
    files: Sequence[HubFile],
    objects: Sequence[BpfObject],
    rejected: Sequence[RejectedObject],
    output: Path,
    *,
    jobs: int = 1,
    progress: Callable[[MinimizedKernel], None] | None = None,
) -> MinCoreReport:
    """Minimize every file for objects into output/<distro>/<release>/<arch>/<uname>.btf."""
    if not objects:
        raise MinCoreError("no BPF object with CO-RE relocations (.BTF.ext) to minimize for")
    if jobs < 1:
        raise MinCoreError(f"--jobs must be 1 or more, not {jobs}")
    manifest_path = output / MANIFEST
    previous = _load_manifest(manifest_path)
    object_list = [{"name": o.name, "sha256": o.sha256} for o in objects]
    same_objects = previous.get("objects") == object_list
    kept = previous.get("kernels", {}) if same_objects else {}

    wanted = frozenset().union(*(o.core_types for o in objects))

    def one(file: HubFile) -> MinimizedKernel:
        out = output / file.btf_name
        full_size = 0
        used: tuple[str, ...] = ()
        try:
            answer = find_modules(source.index.document, file)
            modules_sha256 = answer.file.sha256 if answer is not None else None
            entry = _current(kept, file, modules_sha256, out)
            if entry is not None:
                return MinimizedKernel(
                    file, entry["full_size"], entry["size"], entry["sha256"], True, None,
                    tuple(entry.get("modules", ())), modules_sha256,
                )  # fmt: skip
            archive, _ = source.archive_file(file)
            full = read_btf_member(archive, file.uname)
            if answer is not None:
                chosen = _needed_modules(source, file, full, wanted)
                used = tuple(chosen)
                full = merge_split(full, list(chosen.values())) if chosen else full
            full_size = len(full)
            with tempfile.TemporaryDirectory(prefix="btfhub-min-core.") as tmp:
                full_path = Path(tmp) / "full.btf"
                full_path.write_bytes(full)
                small_path = Path(tmp) / "min.btf"
                bpftool_min_core(full_path, small_path, objects)
                small = small_path.read_bytes()
            if check_btf(small).types == 0:
                # bpftool succeeds with an empty file when no type matches.
                raise EncodeError("none of the objects' CO-RE types is in this kernel's BTF")
        except (BtfhubError, OSError) as exc:
            if isinstance(exc, BpftoolMissing):
                raise
            return MinimizedKernel(file, full_size, None, None, False, str(exc), used)
        write_if_changed(out, small)
        size, sha256 = file_sha256(out)
        return MinimizedKernel(file, full_size, size, sha256, False, None, used, modules_sha256)

    outcomes: list[MinimizedKernel] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for outcome in pool.map(one, files):
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    report = MinCoreReport(tuple(objects), tuple(rejected), tuple(outcomes), manifest_path)
    write_if_changed(manifest_path, dump_json(_manifest(report, object_list)))
    return report


def _needed_modules(
    source: FileSource, file: HubFile, vmlinux: bytes, wanted: frozenset[TypeKey]
) -> dict[str, bytes]:
    """The kernel's archived modules defining a type wanted and not in vmlinux, by name."""
    missing = wanted - named_types(vmlinux)
    if not missing:
        return {}
    every = source.module_map(file, ModuleSelection(all=True), vmlinux)
    return {n: btf for n, btf in every.items() if named_types(btf, vmlinux) & missing}


def _manifest(report: MinCoreReport, object_list: list[dict[str, str]]) -> dict[str, Any]:
    done = {
        k.file.btf_name: {
            "source": k.file.path,
            "source_sha256": k.file.sha256,
            "full_size": k.full_size,
            "size": k.size,
            "sha256": k.sha256,
            **({"modules": list(k.modules)} if k.modules else {}),
            **({"modules_sha256": k.modules_sha256} if k.modules_sha256 else {}),
        }
        for k in report.kernels
        if k.size is not None
    }
    return {
        "generated_by": GENERATED_BY,
        "objects": object_list,
        "rejected_objects": [{"name": r.path.name, "reason": r.reason} for r in report.rejected],
        "kernels": done,
        "failures": {k.file.btf_name: k.reason for k in report.failures},
        "totals": {
            "kernels": len(done),
            "failed": len(report.failures),
            "full_size": report.full_size,
            "size": report.size,
        },
    }
