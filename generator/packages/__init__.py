"""Streaming readers of distribution kernel debug packages (.deb/.ddeb, .rpm).

walk_package() reads a forward-only byte stream (an HTTP body), writes the
vmlinux regular file to a path the caller chose and yields; closed there,
it reads no further (extract_vmlinux() does just that). Resumed, it hands
the kernel modules a ModuleSink wants to it as they stream past, in the
same read. Member names never become filesystem paths, links are never
followed and nothing is extracted but vmlinux and the wanted modules.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import BinaryIO

from generator.errors import MalformedPackageError, PackageError
from generator.packages.deb import walk_deb
from generator.packages.modules import ModuleSink
from generator.packages.rpm import walk_rpm
from generator.packages.rpmsig import RpmHeaders

FORMATS = ("deb", "ddeb", "rpm")


def walk_package(
    stream: BinaryIO,
    fmt: str,
    uname: str,
    dest: Path,
    *,
    package: str = "",
    size: int | None = None,
    rpm_headers: RpmHeaders | None = None,
    modules: ModuleSink | None = None,
    read_tail: Callable[[int], bytes | None] | None = None,
) -> Generator[None, None, None]:
    """Write the kernel's vmlinux from package `stream` to `dest`, yield, then the modules.

    fmt: "deb" (".ddeb" is the same format) or "rpm". Raises PackageError
    for anything but a package holding that kernel's vmlinux;
    MalformedPackageError, naming `package` (its file name) and the member,
    for a package dpkg or rpm would refuse. size: the package's length as
    its index lists it, checked against what its own headers say.
    rpm_headers: an RPM's lead and headers, already read off `stream` (to
    check their signature); they are not read again. read_tail: the
    package's last n bytes, read ahead (a .deb's multi-block data.tar.xz
    lists its blocks there); the caller checks them against the package's own.
    """
    if not uname or "/" in uname or uname in (".", ".."):
        raise PackageError(f"invalid kernel release {uname!r}")
    try:
        if fmt in ("deb", "ddeb"):
            yield from walk_deb(stream, uname, dest, size, modules, read_tail)
        elif fmt == "rpm":
            yield from walk_rpm(stream, uname, dest, size, rpm_headers, modules)
        else:
            raise PackageError(f"unknown package format {fmt!r} (expected one of {FORMATS})")
    except MalformedPackageError as exc:
        if not package:
            raise
        raise MalformedPackageError(f"{package}: {exc}") from exc


def extract_vmlinux(
    stream: BinaryIO,
    fmt: str,
    uname: str,
    dest: Path,
    *,
    package: str = "",
    size: int | None = None,
    rpm_headers: RpmHeaders | None = None,
    read_tail: Callable[[int], bytes | None] | None = None,
) -> None:
    """Write the kernel's vmlinux to `dest` and read no further (walk_package's errors)."""
    walk = walk_package(
        stream,
        fmt,
        uname,
        dest,
        package=package,
        size=size,
        rpm_headers=rpm_headers,
        read_tail=read_tail,
    )
    next(walk)
    walk.close()


__all__ = ["FORMATS", "ModuleSink", "extract_vmlinux", "walk_package"]
