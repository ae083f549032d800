"""Reading a machine: /etc/os-release, `uname -r`, `uname -m` and its own BTF.

os-release(5) is a list of shell-style assignments; values may be quoted
with " or ' and use backslash escapes, which shlex undoes the way a shell
would (bcc and Inspektor Gadget keep the quotes, a known source of misses).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from generator.errors import BtfhubError

# os-release(5): /etc/os-release first, /usr/lib/os-release as the fallback.
OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")
KERNEL_BTF = "sys/kernel/btf/vmlinux"


class HostInputError(BtfhubError):
    """Bad input describing a machine (unreadable os-release, no ID ...): exit 2."""


@dataclass(frozen=True)
class OsRelease:
    """The os-release fields a lookup uses, unquoted (values as the file says)."""

    id: str
    version_id: str | None = None
    version_codename: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Host:
    """A machine as the hub sees it: os-release, kernel release and machine name."""

    os_release: OsRelease
    uname: str  # uname -r
    machine: str  # uname -m, e.g. x86_64, aarch64
    has_kernel_btf: bool  # /sys/kernel/btf/vmlinux exists: the hub is not needed


def parse_os_release(text: str, source: str = "os-release") -> OsRelease:
    """The fields of an os-release file; HostInputError when it names no ID."""
    fields: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, raw = stripped.partition("=")
        if not sep or not key.isidentifier():
            raise HostInputError(f"{source}:{number}: not a KEY=value line: {line!r}")
        try:
            words = shlex.split(raw, comments=False, posix=True)
        except ValueError as exc:
            raise HostInputError(f"{source}:{number}: {exc}: {line!r}") from None
        if len(words) > 1:
            # os-release(5) values are one shell word: "7 (Core)" must be quoted.
            raise HostInputError(f"{source}:{number}: value must be quoted: {line!r}")
        fields[key] = words[0] if words else ""
    ident = fields.get("ID", "").strip()
    if not ident:
        raise HostInputError(f"{source}: no ID= line (is it an os-release file?)")
    return OsRelease(
        id=ident,
        version_id=fields.get("VERSION_ID") or None,
        version_codename=fields.get("VERSION_CODENAME") or None,
        name=fields.get("NAME") or None,
    )


def read_os_release(path: Path) -> OsRelease:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HostInputError(f"cannot read {path}: {exc}") from None
    return parse_os_release(text, str(path))


def find_os_release(host_root: Path) -> Path:
    """The os-release file of the machine mounted at host_root (/ for this one)."""
    for rel in OS_RELEASE_PATHS:
        candidate = host_root / rel
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(host_root / rel) for rel in OS_RELEASE_PATHS)
    raise HostInputError(f"no os-release file (tried {tried})")


def detect_host(host_root: Path = Path("/")) -> Host:
    """This machine, or the one whose root is mounted at host_root (a container's /host).

    The kernel release and machine come from uname either way: a container
    runs on its host's kernel.
    """
    uname = os.uname()
    return Host(
        os_release=read_os_release(find_os_release(host_root)),
        uname=uname.release,
        machine=uname.machine,
        has_kernel_btf=(host_root / KERNEL_BTF).exists(),
    )
