"""DWARF -> BTF with pahole: the only code in btfhub that runs pahole.

Which pahole is decided here, and only here: exactly PAHOLE_VERSION, from
$BTFHUB_PAHOLE when set, else the project's own (.tools/pahole-1.30,
installed by scripts/setup.sh), else `pahole` on PATH; any other version
is an error, never a fallback. The version is pinned because the archive's
bytes depend on it, and it is 1.30 because from 1.29 on pahole's threaded
encoding is reproducible: -j with any number of threads gives the same
bytes as a serial run (Debian 12's 1.24 gives different types on each -j
run; bench/README.md has the figures). So pahole runs with one thread per
available core.

Flags are chosen from what that pahole says it supports in its --help
text (probed once per process): a flag pahole does not know is a hard error.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.children import run_child, usable_cores
from generator.elf import dump_section, find_section
from generator.errors import EncodeError, MissingToolError

PAHOLE = "pahole"
PAHOLE_VERSION = "v1.30"
PAHOLE_ENV = "BTFHUB_PAHOLE"
# Where scripts/install-pahole.sh puts it, beside the package's source tree.
PROJECT_PAHOLE = Path(__file__).resolve().parents[2] / ".tools" / "pahole-1.30" / "bin" / "pahole"
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
JOBS_FLAG = "--jobs"
# How index.json's provenance spells the paths in pahole's arguments.
VMLINUX_ARG = "{vmlinux}"
BTF_ARG = "{btf}"
THREADS_RE = re.compile(r"^-j[1-9][0-9]{0,3}$")


@dataclass(frozen=True)
class PaholeRun:
    """Which pahole encoded a file, with which arguments (paths as VMLINUX_ARG, BTF_ARG;
    the thread count, which changes nothing in the output, left out)."""

    version: str
    arguments: tuple[str, ...]


@dataclass(frozen=True)
class Pahole:
    """Which pahole btfhub runs, and what it can do."""

    path: str  # what is executed
    version: str  # e.g. "v1.30"
    options: frozenset[str]  # long options its --help lists

    @property
    def detached(self) -> bool:
        return DETACHED_FLAG in self.options

    @property
    def threads(self) -> int:
        """How many threads to encode with: every core this process may use."""
        return usable_cores() if JOBS_FLAG in self.options else 1

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


def _version(path: str) -> str | None:
    """What `path --version` says, or None when it cannot be run."""
    try:
        proc = run_child([path, "--version"])
    except FileNotFoundError:
        return None
    return proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else None


def pahole_candidates() -> list[str]:
    """Where the pahole to run may be, in order: $BTFHUB_PAHOLE alone when it is set."""
    chosen = os.environ.get(PAHOLE_ENV)
    if chosen:
        return [chosen]
    return [str(PROJECT_PAHOLE), PAHOLE]


def find_pahole() -> tuple[str, str]:
    """The first candidate that is PAHOLE_VERSION: (path, version), else a MissingToolError."""
    seen = []
    for path in pahole_candidates():
        version = _version(path)
        if version == PAHOLE_VERSION:
            return path, version
        seen.append(f"{path}: {version or 'missing or does not run'}")
    raise MissingToolError(
        f"btfhub encodes with pahole {PAHOLE_VERSION} (its threaded output is reproducible, "
        f"and the archive's bytes depend on the version), found none ({'; '.join(seen)}): "
        f"run scripts/setup.sh, which installs it into {PROJECT_PAHOLE.parents[1]}, "
        f"or set {PAHOLE_ENV} to a pahole {PAHOLE_VERSION}"
    )


@functools.cache
def pahole() -> Pahole:
    """Find the pahole to run (once per process): its version and supported long options."""
    path, version = find_pahole()
    proc = run_tool([path, "--help"])
    help_text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    options = frozenset(re.findall(r"--[a-z0-9_]+", help_text))
    if "--btf_encode" not in options:
        raise EncodeError(f"{path} {version} cannot encode BTF (no --btf_encode in its --help)")
    return Pahole(path=path, version=version, options=options)


def pahole_command(
    vmlinux: Path, out: Path, tool: Pahole, *, threads: int | None = None
) -> list[str]:
    """The pahole command line that encodes vmlinux's DWARF as raw BTF at out.

    threads: tool.threads by default; 1 runs pahole without -j.
    """
    flags = list(tool.encode_flags())
    threads = tool.threads if threads is None else threads
    if threads > 1:
        flags.append(f"-j{threads}")
    if tool.detached:
        return [tool.path, *flags, f"{DETACHED_FLAG}={out}", str(vmlinux)]
    return [tool.path, *flags, "-J", str(vmlinux)]


BASE_FLAG = "--btf_base"


def module_command(module: Path, base: Path, out: Path, tool: Pahole) -> list[str]:
    """pahole encoding a module's DWARF as split BTF on its kernel's raw BTF at base.

    The flags are vmlinux's (tool.encode_flags()), so both halves agree on
    what they encode; one thread: a module is small, and the modules of a
    kernel are encoded side by side instead.
    """
    if not tool.detached or BASE_FLAG not in tool.options:
        raise EncodeError(f"{tool.path} {tool.version} cannot encode split BTF (no {BASE_FLAG})")
    return [
        tool.path,
        *tool.encode_flags(),
        f"{BASE_FLAG}={base}",
        f"{DETACHED_FLAG}={out}",
        str(module),
    ]


def encode_module(module: Path, base: Path, out: Path, *, tool: Pahole | None = None) -> None:
    """Encode a kernel module's DWARF as split BTF on base (raw BTF) at `out`."""
    tool = tool or pahole()
    out.unlink(missing_ok=True)
    run_tool(module_command(module, base, out, tool), hint=_NO_DWARF_HINT)
    if not out.is_file():
        raise EncodeError(f"{tool.path} {tool.version} wrote no BTF for {module.name}")


_NO_DWARF_HINT = (
    "pahole found nothing to encode: is it an ELF file with DWARF debug info"
    " (not stripped, not a signed-flavour stub)?"
)


def recorded_command(arguments: Sequence[str], vmlinux: Path, out: Path, tool: Pahole) -> list[str]:
    """The command of recorded arguments (a rebuild's); EncodeError for one btfhub never passes.

    index.json is input here: only the flags btfhub itself passes are run,
    so a doctored provenance cannot make pahole write elsewhere.
    """
    allowed = {*OPTIONAL_FLAGS, f"{DETACHED_FLAG}={BTF_ARG}", VMLINUX_ARG}
    odd = [a for a in arguments if a not in allowed and not THREADS_RE.match(a)]
    if odd or arguments.count(VMLINUX_ARG) != 1 or not tool.detached:
        raise EncodeError(
            f"cannot rerun pahole with the recorded arguments {' '.join(arguments)!r}: "
            f"{', '.join(odd) or 'not the form btfhub runs'}"
        )
    paths = {VMLINUX_ARG: str(vmlinux), f"{DETACHED_FLAG}={BTF_ARG}": f"{DETACHED_FLAG}={out}"}
    threads = [f"-j{tool.threads}"] if tool.threads > 1 else []  # the same bytes for any
    return [tool.path, *threads, *(paths.get(a, a) for a in arguments if not THREADS_RE.match(a))]


def encode_btf(
    vmlinux: Path,
    out: Path,
    *,
    tool: Pahole | None = None,
    threads: int | None = None,
    arguments: Sequence[str] | None = None,
) -> PaholeRun:
    """Encode vmlinux's DWARF as a raw BTF file at `out` (deterministic); what ran.

    tool: the pahole capabilities to assume; the probed installed one by default.
    threads: pahole's -j (tool.threads by default); the bytes are the same for any.
    arguments: a recorded run's (PaholeRun.arguments) instead of btfhub's choice.
    """
    tool = tool or pahole()
    out.unlink(missing_ok=True)
    if arguments is not None:
        cmd = recorded_command(arguments, vmlinux, out, tool)
    else:
        cmd = pahole_command(vmlinux, out, tool, threads=threads)
    paths = {str(vmlinux): VMLINUX_ARG, f"{DETACHED_FLAG}={out}": f"{DETACHED_FLAG}={BTF_ARG}"}
    # -j is left out: pahole 1.30 writes the same bytes for any thread count,
    # and recording the machine's would make index.json depend on the runner.
    recorded = (paths.get(a, a) for a in cmd[1:] if not THREADS_RE.match(a))
    run = PaholeRun(tool.version, tuple(recorded))
    if tool.detached:
        run_tool(cmd, hint=_NO_DWARF_HINT)
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
            f"{tool.path} {tool.version} wrote no BTF for {vmlinux.name}: {_NO_DWARF_HINT}"
        )
    return run


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
