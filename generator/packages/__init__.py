"""Streaming readers of distribution kernel debug packages (.deb/.ddeb, .rpm).

The one entry point, extract_vmlinux(), reads a forward-only byte stream
(an HTTP body), writes the vmlinux regular file to a path the caller chose
and stops reading as soon as it is written. Member names never become
filesystem paths, links are never followed and nothing is extracted but
that one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from generator.errors import MalformedPackageError, PackageError
from generator.packages.deb import extract_deb_vmlinux
from generator.packages.rpm import extract_rpm_vmlinux
from generator.packages.rpmsig import RpmHeaders

FORMATS = ("deb", "ddeb", "rpm")


def extract_vmlinux(
    stream: BinaryIO,
    fmt: str,
    uname: str,
    dest: Path,
    *,
    package: str = "",
    size: int | None = None,
    rpm_headers: RpmHeaders | None = None,
) -> None:
    """Write the kernel's vmlinux from package `stream` to `dest`.

    fmt: "deb" (".ddeb" is the same format) or "rpm". Raises PackageError
    for anything but a package holding that kernel's vmlinux;
    MalformedPackageError, naming `package` (its file name) and the member,
    for a package dpkg or rpm would refuse. size: the package's length as
    its index lists it, checked against what its own headers say.
    rpm_headers: an RPM's lead and headers, already read off `stream` (to
    check their signature); they are not read again.
    """
    if not uname or "/" in uname or uname in (".", ".."):
        raise PackageError(f"invalid kernel release {uname!r}")
    try:
        if fmt in ("deb", "ddeb"):
            extract_deb_vmlinux(stream, uname, dest, size)
        elif fmt == "rpm":
            extract_rpm_vmlinux(stream, uname, dest, size, rpm_headers)
        else:
            raise PackageError(f"unknown package format {fmt!r} (expected one of {FORMATS})")
    except MalformedPackageError as exc:
        if not package:
            raise
        raise MalformedPackageError(f"{package}: {exc}") from exc


__all__ = ["FORMATS", "extract_vmlinux"]
