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

from generator.errors import PackageError
from generator.packages.deb import extract_deb_vmlinux
from generator.packages.rpm import extract_rpm_vmlinux

FORMATS = ("deb", "ddeb", "rpm")


def extract_vmlinux(stream: BinaryIO, fmt: str, uname: str, dest: Path) -> None:
    """Write the kernel's vmlinux from package `stream` to `dest`.

    fmt: "deb" (".ddeb" is the same format) or "rpm". Raises PackageError
    for anything but a package holding that kernel's vmlinux.
    """
    if not uname or "/" in uname or uname in (".", ".."):
        raise PackageError(f"invalid kernel release {uname!r}")
    if fmt in ("deb", "ddeb"):
        extract_deb_vmlinux(stream, uname, dest)
    elif fmt == "rpm":
        extract_rpm_vmlinux(stream, uname, dest)
    else:
        raise PackageError(f"unknown package format {fmt!r} (expected one of {FORMATS})")


__all__ = ["FORMATS", "extract_vmlinux"]
