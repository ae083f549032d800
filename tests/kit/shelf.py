"""Packages built once per test run: dpkg-deb and rpmbuild run once for each distinct package.

build_deb() and build_rpm() take the demokit builders' arguments and return
the same path. The first call for a package (its name, fields, compression
and the bytes of every file in it) builds it onto the run's shelf, a session
temp directory conftest opens; every call, the first included, then copies
the shelf's file where the builder would have written it, so a test may cut
or corrupt its copy freely. Without an open shelf (bench scripts) they build
as the demokit does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from generator.demokit import debpkg, rpmpkg
from generator.demokit.signing import Signer

_shelf: list[Path] = []  # the open shelf's directory, if any


def open_shelf(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _shelf[:] = [directory]


def close_shelf() -> None:
    _shelf.clear()


def _content(value: bytes | Path) -> str:
    """What a package member holds, for the shelf's key: the bytes' digest, wherever they are."""
    if isinstance(value, Path):
        with value.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    return hashlib.sha256(value).hexdigest()


def _from_shelf(key: object, out: Path, build: Callable[[Path], Path]) -> Path:
    """Copy the shelved package for `key` to `out`, building it first (into the shelf) if new."""
    if not _shelf:
        return build(out.parent)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    shelved = _shelf[0] / digest / out.name
    if not shelved.is_file():
        built = build(shelved.parent)
        assert built == shelved, (built, shelved)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shelved, out)
    return out


def build_deb(
    tmpdir: Path,
    package: str,
    version: str,
    arch: str,
    files: dict[str, bytes | Path],
    symlinks: dict[str, str] | None = None,
    compression: str = "xz",
) -> Path:
    """debpkg.build_deb, built once per run for the same package and contents."""
    key = [
        "deb",
        package,
        version,
        arch,
        {path: _content(value) for path, value in files.items()},
        symlinks or {},
        compression,
    ]
    return _from_shelf(
        key,
        tmpdir / f"{package}_{version}_{arch}.deb",
        lambda where: debpkg.build_deb(where, package, version, arch, files, symlinks, compression),
    )


def build_rpm(
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
    signed: bool = True,
    signer: Signer | None = None,
) -> Path:
    """rpmpkg.build_rpm, built (and signed) once per run for the same package and contents."""
    key = [
        "rpm",
        name,
        version,
        release,
        arch,
        uname,
        None if vmlinux is None else _content(vmlinux),
        payload,
        {path: _content(data) for path, data in (extra or {}).items()},
        # Who signs it (a signer's home is its own), if anyone.
        (str(signer.home) if signer is not None else "default") if signed else None,
    ]
    return _from_shelf(
        key,
        tmpdir / f"{name}-{version}-{release}.{arch}.rpm",
        lambda where: rpmpkg.build_rpm(
            where,
            name,
            version,
            release,
            arch,
            uname,
            vmlinux,
            payload,
            extra=extra,
            signed=signed,
            signer=signer,
        ),
    )
