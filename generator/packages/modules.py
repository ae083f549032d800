"""Kernel modules taken out of a debug package in the same read as its vmlinux.

A kernel's debug package carries every module's DWARF beside vmlinux, under
usr/lib/debug/lib/modules/<uname>/ (Debian and Ubuntu: kernel/.../<name>.ko;
Red Hat and SUSE: <name>.ko.debug). The package readers hand each regular
member after (deb) or around (rpm) the vmlinux to a ModuleSink, which keeps
the wanted ones as files in a directory of the build's own: no member name
ever becomes a path, each module is written as <name>.ko.zst. zstd at its
fastest level (about 4x smaller for a module's DWARF, for a few seconds of CPU
per GB) because the modules wait on disk until the whole package has
verified: for `modules: all`, every .ko of a Debian 6.1 kernel, 1.2 GB raw.
btf/modules.py has each decompressed (unspool) just before pahole reads it.

A module's name is the kernel's: the file name up to ".ko", "-" made "_"
(dm-mod.ko is dm_mod), as lsmod and /sys/kernel/btf/<name> spell it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from generator.errors import PackageError
from generator.model import MODULE_NAME_RE, ModuleSelection
from generator.packages.stream import CHUNK, Readable, skip

MODULE_SUFFIXES = (".ko", ".ko.debug")
SPOOL_SUFFIX = ".ko.zst"  # unpacked by unspool
SPOOL_LEVEL = 1  # zstd's fastest: the spool is about saving disk, not bytes at any cost


def module_name(file_name: str) -> str:
    """nf_conntrack.ko, dm-mod.ko.debug -> nf_conntrack, dm_mod."""
    return file_name.split(".ko", 1)[0].replace("-", "_")


def modules_dir(uname: str) -> str:
    """Where a debug package keeps the kernel's modules (no leading "/", no "./")."""
    return f"usr/lib/debug/lib/modules/{uname}/"


@dataclass
class FoundModule:
    name: str
    member: str  # its path in the package, normalised (no leading "./" or "/")
    path: Path  # the file written: <name>.ko.zst, the module zstd-compressed
    digest: str  # of the bytes written, by the sink's algorithm (an RPM header lists it)
    size: int


@dataclass
class ModuleSink:
    """The wanted modules of one kernel, written into directory as they stream past."""

    uname: str
    selection: ModuleSelection
    directory: Path
    # hashlib's name of the digest taken of each module as it is written: an
    # RPM from a signed repository lists its files' digests in that algorithm.
    algorithm: str = "sha256"
    found: dict[str, FoundModule] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)  # members skipped: a name seen before

    def wanted(self, member: str) -> str | None:
        """The module name when `member` (a normalised path) is a module this sink keeps."""
        prefix = modules_dir(self.uname)
        if not member.startswith(prefix):
            return None
        base = member.rsplit("/", 1)[-1]
        if not base.endswith(MODULE_SUFFIXES):
            return None
        name = module_name(base)
        if not MODULE_NAME_RE.fullmatch(name) or not self.selection.wants(name):
            return None
        return name

    def take(self, name: str, member: str, data: Readable, size: int) -> None:
        """Write `size` bytes of data as the module `name`, compressed (hashed as they are read)."""
        if name in self.found:
            # Two files with one module name (an out-of-tree build under extra/ or
            # updates/ beside the kernel's own): the first in the package's order
            # is kept, the other skipped (and listed); the kernel does not fail.
            self.duplicates.append(member)
            skip(data, size, member)
            return
        dest = self.directory / f"{name}{SPOOL_SUFFIX}"
        digest = hashlib.new(self.algorithm)
        written = 0
        compressor = zstandard.ZstdCompressor(level=SPOOL_LEVEL)
        try:
            with dest.open("wb") as raw, compressor.stream_writer(raw, closefd=False) as out:
                while written < size:
                    chunk = data.read(min(CHUNK, size - written))
                    if not chunk:
                        raise PackageError(f"truncated package: stream ended inside {member}")
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        self.found[name] = FoundModule(name, member, dest, digest.hexdigest(), size)

    def absent(self) -> tuple[str, ...]:
        """The modules named in the selection that the package does not hold, sorted."""
        return tuple(n for n in self.selection.names if n not in self.found)


def unspool(src: Path, dest: Path) -> None:
    """A module file the sink zstd-compressed, decompressed to dest."""
    with src.open("rb") as packed, dest.open("wb") as out:
        try:
            zstandard.ZstdDecompressor().copy_stream(packed, out)
        except zstandard.ZstdError as exc:
            raise PackageError(f"corrupt compressed data in {src.name}: {exc}") from None
