"""DWARF -> BTF with pahole: the only code in btfhub that runs pahole.

Flags are chosen from what the installed pahole says it supports in its
--help text (probed once per process) rather than from its version number:
distributions backport options, and a flag pahole does not know is a hard
error. No -j: pahole 1.24 emits type ids in a different order on each
threaded run, and the archive must be reproducible.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.btf.elf import dump_section, find_section
from generator.children import run_child
from generator.errors import EncodeError

PAHOLE = "pahole"
OBJCOPY = "llvm-objcopy"
# How much of a tool's output an error message carries.
OUTPUT_TAIL = 2000

# Optional flags, in the order they are passed, each used only when the
# installed pahole lists it: readable by older libbpf (no ENUM64), floats
# as FLOAT (not dropped), and the hub's choices for optimised-out functions.
OPTIONAL_FLAGS = (
    "--skip_encoding_btf_enum64",
    "--btf_gen_floats",
    "--skip_encoding_btf_inconsistent_proto",
    "--btf_gen_optimized",
)
DETACHED_FLAG = "--btf_encode_detached"


@dataclass(frozen=True)
class Pahole:
    """What the installed pahole is and can do."""

    version: str  # e.g. "v1.24"
    options: frozenset[str]  # long options its --help lists

    @property
    def detached(self) -> bool:
        return DETACHED_FLAG in self.options

    def encode_flags(self) -> tuple[str, ...]:
        return tuple(flag for flag in OPTIONAL_FLAGS if flag in self.options)


def _trim(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text if len(text) <= OUTPUT_TAIL else "..." + text[-OUTPUT_TAIL:]


def run_tool(cmd: Sequence[str], *, hint: str = "") -> subprocess.CompletedProcess[bytes]:
    """Run a tool; a failure is an EncodeError naming the command, code and output."""
    try:
        proc = run_child(cmd)
    except FileNotFoundError as exc:
        raise EncodeError(f"{cmd[0]} is not installed (run scripts/setup.sh)") from exc
    if proc.returncode != 0:
        stdout, stderr = _trim(proc.stdout), _trim(proc.stderr)
        message = f"{' '.join(cmd)} exited {proc.returncode}"
        if hint:
            message += f": {hint}"
        message += f"\nstdout: {stdout or '(empty)'}\nstderr: {stderr or '(empty)'}"
        raise EncodeError(message)
    return proc


@functools.cache
def pahole() -> Pahole:
    """Probe the installed pahole once: version and supported long options."""
    version = run_tool([PAHOLE, "--version"]).stdout.decode().strip()
    proc = run_tool([PAHOLE, "--help"])
    help_text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    options = frozenset(re.findall(r"--[a-z0-9_]+", help_text))
    if "--btf_encode" not in options:
        raise EncodeError(f"{PAHOLE} {version} cannot encode BTF (no --btf_encode in its --help)")
    return Pahole(version=version, options=options)


def pahole_command(vmlinux: Path, out: Path, tool: Pahole) -> list[str]:
    """The pahole command line that encodes vmlinux's DWARF as raw BTF at out."""
    flags = list(tool.encode_flags())
    if tool.detached:
        return [PAHOLE, *flags, f"{DETACHED_FLAG}={out}", str(vmlinux)]
    return [PAHOLE, *flags, "-J", str(vmlinux)]


_NO_DWARF_HINT = (
    "pahole found nothing to encode: is it an ELF file with DWARF debug info"
    " (not stripped, not a signed-flavour stub)?"
)


def encode_btf(vmlinux: Path, out: Path, *, tool: Pahole | None = None) -> None:
    """Encode vmlinux's DWARF as a raw BTF file at `out` (deterministic).

    tool: the pahole capabilities to assume; the probed installed one by default.
    """
    tool = tool or pahole()
    out.unlink(missing_ok=True)
    if tool.detached:
        run_tool(pahole_command(vmlinux, out, tool), hint=_NO_DWARF_HINT)
    else:
        # Old pahole only adds .BTF to the ELF it reads: work on a copy, then
        # cut the section out (objcopy -O binary would mangle it).
        copy = out.with_name(out.name + ".elf")
        try:
            shutil.copyfile(vmlinux, copy)
            run_tool(pahole_command(copy, out, tool), hint=_NO_DWARF_HINT)
            run_tool([OBJCOPY, f"--dump-section=.BTF={out}", str(copy)])
        finally:
            copy.unlink(missing_ok=True)
    if not out.is_file() or out.stat().st_size == 0:
        raise EncodeError(
            f"{PAHOLE} {tool.version} wrote no BTF for {vmlinux.name}: {_NO_DWARF_HINT}"
        )


def has_btf_section(vmlinux: Path) -> bool:
    """True when the ELF already carries a .BTF section (the kernel ships its own BTF)."""
    section = find_section(vmlinux, ".BTF")
    return section is not None and section.size > 0


def extract_btf_section(vmlinux: Path, out: Path) -> None:
    """Write the ELF's own .BTF section to `out` as a raw BTF file."""
    section = find_section(vmlinux, ".BTF")
    if section is None:
        raise EncodeError(f"{vmlinux.name} has no .BTF section")
    dump_section(vmlinux, section, out)
