"""One embeddable tarball of minimized BTF files, in the archive's layout.

bcc's libbpf-tools and Inspektor Gadget embed such a tarball and find a
kernel's file by its name in the tar header. bcc matches only the 100-byte
ustar name field, so a longer name (which tar would split into the prefix
field) would silently never match: names are checked, never split. The
bytes are reproducible: ustar, sorted names, root-owned, mode 0444, mtime
0, and a gzip header with no name and mtime 0.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

from generator.errors import BtfhubError
from generator.fsutil import write_if_changed

USTAR_NAME_MAX = 100
MODE = 0o444


class BundleError(BtfhubError):
    """The tarball cannot be written as asked (e.g. names over the ustar limit)."""


def entry_name(name: str, dot_prefix: bool) -> str:
    return f"./{name}" if dot_prefix else name


def pack(directory: Path, names: Sequence[str], output: Path, *, dot_prefix: bool = False) -> bool:
    """Write directory's files `names` (relative, POSIX) as output.tar.gz; False if unchanged."""
    entries = sorted(entry_name(n, dot_prefix) for n in names)
    too_long = [e for e in entries if len(e.encode()) > USTAR_NAME_MAX]
    if too_long:
        listed = "\n".join(f"  {e} ({len(e.encode())} bytes)" for e in too_long)
        raise BundleError(
            f"{len(too_long)} name(s) exceed the {USTAR_NAME_MAX}-byte ustar name field, "
            f"which bcc's embedded lookup reads alone:\n{listed}"
        )
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for entry in entries:
            data = (directory / entry.removeprefix("./")).read_bytes()
            info = tarfile.TarInfo(entry)
            info.size = len(data)
            info.mode = MODE
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return write_if_changed(output, packed.getvalue())
