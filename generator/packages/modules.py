"""Kernel modules taken out of a debug package in the same read as its vmlinux.

A kernel's debug package carries every module's DWARF beside vmlinux, under
usr/lib/debug/lib/modules/<uname>/ (Debian and Ubuntu: kernel/.../<name>.ko;
Red Hat and SUSE: <name>.ko.debug). The package readers hand each regular
member after (deb) or around (rpm) the vmlinux to a ModuleSink, which keeps
the wanted ones as files in a directory of the build's own: no member name
ever becomes a path, each module is written as <name>.ko.

A module's name is the kernel's: the file name up to ".ko", "-" made "_"
(dm-mod.ko is dm_mod), as lsmod and /sys/kernel/btf/<name> spell it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from generator.errors import MalformedPackageError, PackageError
from generator.model import MODULE_NAME_RE, ModuleSelection
from generator.packages.stream import CHUNK, Readable

MODULE_SUFFIXES = (".ko", ".ko.debug")


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
    path: Path  # the file written
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
        """Write `size` bytes of data as the module `name` (hashed as they are written)."""
        earlier = self.found.get(name)
        if earlier is not None:
            raise MalformedPackageError(
                f"malformed package: module {name} is both {earlier.member} and {member}"
            )
        dest = self.directory / f"{name}.ko"
        digest = hashlib.new(self.algorithm)
        written = 0
        try:
            with dest.open("wb") as out:
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
