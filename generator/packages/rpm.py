"""vmlinux out of an .rpm stream: lead -> signature -> header -> compressed cpio.

`rpmfile` (PyPI) is not used: it buffers a zstd payload whole in memory and
wants a seekable file. Lead and headers are read once (rpmsig.read_headers:
a caller that checked the header signature passes them on). The main
header is parsed for its file list, which
names every member of the payload with its size, mode and inode: a package
whose vmlinux is listed twice, is a hard link or a device, or whose payload
disagrees with its header is refused, as rpm refuses it ("archive file not
in header"), before the payload is read. The payload compression is taken
from its magic bytes rather than the header tag (the bytes cannot lie
about themselves), and the cpio stream is read until the vmlinux regular
file is written.
"""

from __future__ import annotations

import stat
from collections.abc import Generator
from pathlib import Path

from generator.errors import MalformedPackageError, PackageError
from generator.packages.cpio import iter_members
from generator.packages.decompress import decompressed, sniffed
from generator.packages.modules import ModuleSink
from generator.packages.rpmheader import (
    LEAD_LEN,
    SIGTAG_LONGSIZE,
    SIGTAG_SIZE,
    FileEntry,
    Header,
    check_member_name,
    file_list,
    kind_of,
    normalise,
)
from generator.packages.rpmsig import RpmHeaders, read_headers
from generator.packages.stream import Readable, copy_to_file


def vmlinux_path(uname: str) -> str:
    return f"usr/lib/debug/lib/modules/{uname}/vmlinux"


def vmlinux_paths(uname: str) -> tuple[str, str, str]:
    """Where kernel debuginfo RPMs keep vmlinux: Photon, Red Hat family, then SUSE.

    Photon's linux-debuginfo holds vmlinux-<uname> beside a symlink named
    vmlinux (for perf), so its own name comes first: no other family has it.
    """
    modules = f"usr/lib/debug/lib/modules/{uname}"
    return (
        f"{modules}/vmlinux-{uname}",
        vmlinux_path(uname),
        f"usr/lib/debug/boot/vmlinux-{uname}.debug",
    )


def _vmlinux_entry(files: list[FileEntry], uname: str) -> FileEntry:
    """The header's one vmlinux entry, refusing two, a link, a device or a hard link.

    The first candidate path the header lists is the vmlinux (a package
    holds one of them); that path listed twice is refused.
    """
    listed = {f.path for f in files}
    candidates = ["/" + p for p in vmlinux_paths(uname)]
    wanted = next((p for p in candidates if p in listed), candidates[0])
    found = [f for f in files if f.path == wanted]
    if not found:
        raise PackageError(
            f"package holds no vmlinux for {uname} (not a kernel-debuginfo package?)"
        )
    if len(found) > 1:
        raise MalformedPackageError(
            f"malformed package: the rpm header lists {wanted} {len(found)} times"
        )
    entry = found[0]
    if not stat.S_ISREG(entry.mode):
        raise MalformedPackageError(
            f"malformed package: {wanted} is a {kind_of(entry.mode)} in the rpm header, "
            "not a regular file"
        )
    links = [f.path for f in files if (f.inode, f.device) == (entry.inode, entry.device)]
    if len(links) > 1:
        others = ", ".join(p for p in links if p != wanted)
        raise MalformedPackageError(f"malformed package: {wanted} is a hard link (with {others})")
    return entry


def _check_size(signature: Header, size: int | None) -> None:
    """The signature header's size of header + payload against the package's length."""
    if size is None:
        return
    declared = signature.ints(SIGTAG_LONGSIZE) or signature.ints(SIGTAG_SIZE)
    if not declared:
        return  # rpm makes the tag optional
    rest = size - LEAD_LEN - signature.length
    if declared[0] != rest:
        raise MalformedPackageError(
            f"malformed package: the rpm signature header says {declared[0]} bytes of header "
            f"and payload, the package holds {rest}"
        )


def walk_rpm(
    stream: Readable,
    uname: str,
    dest: Path,
    size: int | None = None,
    headers: RpmHeaders | None = None,
    modules: ModuleSink | None = None,
) -> Generator[None, None, None]:
    """vmlinux out of the payload, then a yield; headers: lead and headers already read.

    Modules come before vmlinux in Red Hat's payloads (lib/modules/<uname>/
    kernel/ sorts before .../vmlinux) and after it in SUSE's (boot/ first):
    a sink takes them wherever they are, and a generator closed at its
    yield stops decoding there.
    """
    if headers is None:
        headers = read_headers(stream)
    _check_size(headers.signature.header, size)
    files = file_list(headers.main.header)
    listed = {f.path: f for f in files}
    entry = _vmlinux_entry(files, uname)
    compression, payload = sniffed(stream, "the rpm payload")
    seen: set[str] = set()
    found = False
    with decompressed(payload, compression, "the rpm payload") as reader:
        for member in iter_members(reader):
            check_member_name(member.name, "the rpm payload")
            path = normalise(member.name)
            header_entry = listed.get(path)
            if header_entry is None:
                raise MalformedPackageError(
                    f"malformed package: payload member {member.name!r} is not in the rpm header"
                )
            if path in seen:
                raise MalformedPackageError(
                    f"malformed package: payload member {member.name!r} twice"
                )
            seen.add(path)
            if stat.S_IFMT(member.mode) != stat.S_IFMT(header_entry.mode):
                raise MalformedPackageError(
                    f"malformed package: payload member {member.name!r} is a "
                    f"{kind_of(member.mode)}, the rpm header says {kind_of(header_entry.mode)}"
                )
            if header_entry is not entry:
                name = modules.wanted(path) if modules else None
                if modules is not None and name is not None and member.is_regular():
                    modules.take(name, path, member.data, member.size)
                continue
            if member.size != entry.size or member.nlink != 1:
                raise MalformedPackageError(
                    f"malformed package: payload member {member.name!r} holds {member.size} "
                    f"bytes with {member.nlink} links, the rpm header says {entry.size} bytes"
                )
            copy_to_file(member.data, member.size, dest, f"cpio member {member.name!r}")
            found = True
            yield
            if modules is None:
                return
    if found:
        return
    raise MalformedPackageError(
        f"malformed package: the rpm header lists {entry.path}, the payload does not hold it"
    )
