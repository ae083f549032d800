"""RPMs the demo never builds: hard links and devices in the payload, V3 header signatures."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from generator.demokit.rpmpkg import rpmbuild, stage_rpm
from generator.demokit.signing import Signer

LEAD_LEN = 96
HEADER_MAGIC8 = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"


def build_odd_rpm(
    tmpdir: Path,
    name: str,
    version: str,
    release: str,
    arch: str,
    uname: str,
    vmlinux: Path | None,
    payload: str = "xz",
    *,
    extra: dict[str, bytes] | None = None,
    hardlinks: dict[str, str] | None = None,
    devices: tuple[str, ...] = (),
    signed: bool = True,
    signer: Signer | None = None,
) -> Path:
    """build_rpm() plus entries a hostile package may hold.

    hardlinks: new path -> a path among the files, made a hard link to it;
    devices: paths listed as character devices (%dev), e.g. a hostile vmlinux.
    """
    staging, listed = stage_rpm(tmpdir, name, arch, payload, uname, vmlinux, extra)
    for link, target in (hardlinks or {}).items():
        dest = staging / link.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(staging / target.lstrip("/"), dest)
    listed = sorted([*listed, *(hardlinks or {})])
    listed += [f"%dev(c, 1, 3) {path}" for path in devices]
    return rpmbuild(
        tmpdir, staging, listed, name, version, release, arch, payload, signed=signed, signer=signer
    )


def with_header_signature(rpm: bytes, signature: bytes) -> bytes:
    """The package with a signature header holding only RSAHEADER (tag 268) = `signature`.

    For signatures rpmsign cannot make (a V3 one, as EL7's packages carry);
    the main header and payload are kept byte for byte.
    """
    nindex, hsize = struct.unpack(">II", rpm[LEAD_LEN + 8 : LEAD_LEN + 16])
    old_end = LEAD_LEN + 16 + nindex * 16 + hsize
    old_end += (8 - hsize % 8) % 8
    entry = struct.pack(">IIII", 268, 7, 0, len(signature))  # RSAHEADER, BIN
    header = HEADER_MAGIC8 + struct.pack(">II", 1, len(signature)) + entry + signature
    header += b"\0" * ((8 - len(signature) % 8) % 8)
    return rpm[:LEAD_LEN] + header + rpm[old_end:]
