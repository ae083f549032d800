"""Real .deb/.ddeb packages built with dpkg-deb for the demo's mirror (and the tests)."""

from __future__ import annotations

import os
from pathlib import Path

from generator.demokit.tools import run

# dpkg-deb -Z names for the compressions the tests cover.
DPKG_COMPRESSION = {"xz": "xz", "zst": "zstd", "gz": "gzip", "none": "none"}


def build_deb(
    tmpdir: Path,
    package: str,
    version: str,
    arch: str,
    files: dict[str, bytes | Path],
    symlinks: dict[str, str] | None = None,
    compression: str = "xz",
    level: int | None = None,
) -> Path:
    """Build <package>_<version>_<arch>.deb with dpkg-deb; paths are relative to /.

    level: dpkg-deb's -z, the compressor's level (its default otherwise).
    """
    root = tmpdir / f"{package}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: {arch}\n"
        "Maintainer: btfhub tests <tests@example.invalid>\n"
        "Description: btfhub test fixture\n"
    )
    for rel, content in files.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.read_bytes() if isinstance(content, Path) else content)
    for rel, target in (symlinks or {}).items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
    out = tmpdir / f"{package}_{version}_{arch}.deb"
    run(
        [
            "dpkg-deb",
            "--root-owner-group",
            f"-Z{DPKG_COMPRESSION[compression]}",
            *([f"-z{level}"] if level is not None else []),
            "--build",
            str(root),
            str(out),
        ]
    )
    return out
