"""The archive store on disk: archive/<distro>/<release>/<arch>/<uname>.btf.tar.xz.

Beside a kernel's file may be its modules file, <uname>.modules.tar.xz
(generator/btf/modules.py), listed apart (ArchiveScan.modules) with what its
modules.json says: index.json lists each module under its kernel.

This module is the only reader of archive/'s layout. Listing is strict: the
archive is written by btfhub alone, so a file that does not fit the layout is
a mistake (a hand-copied file, a misspelt arch) and is reported rather than
silently left out of index.json. Dotfiles are skipped: they are
fsutil.atomic_write's temporary files and .gitkeep-style markers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.btf.modules import read_modules_file
from generator.errors import BtfhubError
from generator.model import (
    ARCHITECTURES,
    ARCHIVE_DIR,
    BTF_SUFFIX,
    MODULES_SUFFIX,
    ArchiveEntry,
    FileDigest,
    archive_path,
    modules_path,
)

# Hashing big files is I/O plus hashlib, which both release the GIL: threads
# overlap them. For small files the threads only fight over the GIL (20,000
# 200-byte files hash 4x slower on two workers), so they start only when the
# files average at least this size.
_HASH_WORKERS = min(8, (os.cpu_count() or 1) + 1)
_THREADS_ABOVE_AVERAGE = 256 << 10
_READ_SIZE = 1 << 20
_CHUNK = 256  # files per pool task, so the pool's overhead stays small


@dataclass(frozen=True)
class ModulesFile:
    """A kernel's modules file and what it holds, as index.json lists it."""

    entry: ArchiveEntry  # the file (uname: its kernel's)
    listing: Mapping[str, Any]  # {"modules": {name: {"size", "sha256"}}, "absent": [names]}


@dataclass(frozen=True)
class ArchiveScan:
    entries: tuple[ArchiveEntry, ...]  # sorted by path
    problems: tuple[str, ...]  # "archive/...: why it does not fit", sorted
    modules: tuple[ModulesFile, ...] = ()  # sorted by path


class ArchiveLayoutError(BtfhubError):
    def __init__(self, problems: tuple[str, ...]) -> None:
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"{len(problems)} path(s) in {ARCHIVE_DIR}/ do not fit "
            f"{ARCHIVE_DIR}/<distro>/<release>/<arch>/<uname>{BTF_SUFFIX}; "
            f"move or delete them:\n{listed}"
        )
        self.problems = problems


def _visible(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        return [e for e in it if not e.name.startswith(".")]


def file_digest(path: str) -> FileDigest:
    """Size, sha256 and git blob id of a file, from one open file and one read of it."""
    # os.read on a raw fd: hashlib.file_digest would allocate and zero a
    # 256 KiB buffer per call, which dominates for small BTF tarballs.
    fd = os.open(path, os.O_RDONLY)
    try:
        # git's blob header needs the size before the data: take it from the
        # open file and insist the bytes read agree (a file being rewritten
        # under us must not get a digest that describes neither version).
        expected = os.fstat(fd).st_size
        sha256 = hashlib.sha256()
        blob = hashlib.sha1(f"blob {expected}\0".encode(), usedforsecurity=False)
        size = 0
        while chunk := os.read(fd, _READ_SIZE):
            sha256.update(chunk)
            blob.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size != expected:
        raise BtfhubError(f"{path} changed while it was read ({expected} then {size} bytes)")
    return FileDigest(size, sha256.hexdigest(), blob.hexdigest())


def _hash_chunk(paths: list[str]) -> list[FileDigest]:
    return [file_digest(p) for p in paths]


def scan_archive(
    root: Path,
    recorded: Mapping[str, FileDigest] | None = None,
    clean_blobs: Mapping[str, str] | None = None,
    recorded_modules: Mapping[str, Mapping[str, Any]] | None = None,
) -> ArchiveScan:
    """Every BTF file under root/archive with its size and sha256, plus layout problems.

    recorded: what index.json says of each file's bytes; clean_blobs: the
    blob id git has for each file it knows to be unchanged in the work tree.
    A file whose recorded blob is the one git reports keeps its recorded size
    and sha256 without being read: with 20,000 files of the public hub's
    sizes, hashing them all would cost minutes on every run. Any other file
    (new, modified, untracked, recorded without a blob) is read and hashed.
    """
    recorded = recorded or {}
    clean_blobs = clean_blobs or {}
    recorded_modules = recorded_modules or {}
    base = root / ARCHIVE_DIR
    if not base.is_dir():
        return ArchiveScan((), ())
    problems: list[str] = []
    found: list[tuple[str, str, str, str, str]] = []  # distro, release, arch, uname, fs path
    module_files: list[tuple[str, str, str, str, str]] = []  # the same, of modules files

    def rel(*parts: str) -> str:
        return "/".join((ARCHIVE_DIR, *parts))

    def expect_dir(entry: os.DirEntry[str], *parts: str) -> bool:
        if entry.is_dir(follow_symlinks=False):
            return True
        problems.append(f"{rel(*parts)}: expected a directory")
        return False

    for d in _visible(str(base)):
        if not expect_dir(d, d.name):
            continue
        for r in _visible(d.path):
            if not expect_dir(r, d.name, r.name):
                continue
            for a in _visible(r.path):
                if not expect_dir(a, d.name, r.name, a.name):
                    continue
                if a.name not in ARCHITECTURES:
                    problems.append(
                        f"{rel(d.name, r.name, a.name)}: unknown architecture "
                        f"(expected one of {', '.join(ARCHITECTURES)})"
                    )
                    continue
                for f in _visible(a.path):
                    if not f.is_file(follow_symlinks=False):
                        where = rel(d.name, r.name, a.name, f.name)
                        problems.append(f"{where}: expected a regular file")
                    elif f.name.endswith(MODULES_SUFFIX) and f.name != MODULES_SUFFIX:
                        uname = f.name[: -len(MODULES_SUFFIX)]
                        module_files.append((d.name, r.name, a.name, uname, f.path))
                    elif not f.name.endswith(BTF_SUFFIX) or f.name == BTF_SUFFIX:
                        where = rel(d.name, r.name, a.name, f.name)
                        problems.append(f"{where}: not a <uname>{BTF_SUFFIX} file")
                    else:
                        uname = f.name[: -len(BTF_SUFFIX)]
                        found.append((d.name, r.name, a.name, uname, f.path))

    known: dict[int, FileDigest] = {}
    for i, (distro, release, arch, uname, _) in enumerate(found):
        rel_path = archive_path(distro, release, arch, uname)
        digest = recorded.get(rel_path)
        if digest is not None and clean_blobs.get(rel_path) == digest.blob:
            known[i] = digest
    paths = [fs_path for i, (*_, fs_path) in enumerate(found) if i not in known]
    # The first chunk, hashed in this thread, tells whether the files are big
    # enough for threads to pay (without a stat() of every file up front).
    digests = _hash_chunk(paths[:_CHUNK])
    rest = [paths[i : i + _CHUNK] for i in range(_CHUNK, len(paths), _CHUNK)]
    if rest and sum(d.size for d in digests) >= _THREADS_ABOVE_AVERAGE * len(digests):
        with ThreadPoolExecutor(_HASH_WORKERS) as pool:
            digests += [d for chunk in pool.map(_hash_chunk, rest) for d in chunk]
    else:
        digests += [d for chunk in rest for d in _hash_chunk(chunk)]
    hashed = iter(digests)
    entries = []
    for i, (distro, release, arch, uname, _) in enumerate(found):
        digest = known[i] if i in known else next(hashed)
        # Hashed here (file_digest) or reused because git's blob id matched it.
        assert digest.blob is not None
        entries.append(
            ArchiveEntry(
                distro_dir=distro,
                release_dir=release,
                arch=arch,
                uname=uname,
                path=archive_path(distro, release, arch, uname),
                size=digest.size,
                sha256=digest.sha256,
                blob=digest.blob,
            )
        )
    entries.sort(key=lambda e: e.path)
    modules, orphans = _modules_files(module_files, {e.path for e in entries}, recorded_modules)
    problems += orphans
    return ArchiveScan(tuple(entries), tuple(sorted(problems)), modules)


def _modules_files(
    found: list[tuple[str, str, str, str, str]],
    kernels: set[str],
    recorded: Mapping[str, Mapping[str, Any]],
) -> tuple[tuple[ModulesFile, ...], list[str]]:
    """Each modules file hashed, its listing read (or reused while its bytes are recorded)."""
    files: list[ModulesFile] = []
    problems: list[str] = []
    for distro, release, arch, uname, fs_path in found:
        btf_path = archive_path(distro, release, arch, uname)
        path = modules_path(btf_path)
        if btf_path not in kernels:
            problems.append(f"{path}: modules of a kernel whose {BTF_SUFFIX} file is not there")
            continue
        digest = file_digest(fs_path)
        listing = recorded.get(path)
        if listing is None or listing.get("sha256") != digest.sha256:
            with open(fs_path, "rb") as f:
                manifest, _ = read_modules_file(f.read(), path)
            listing = manifest.as_json()
        assert digest.blob is not None
        entry = ArchiveEntry(
            distro_dir=distro,
            release_dir=release,
            arch=arch,
            uname=uname,
            path=path,
            size=digest.size,
            sha256=digest.sha256,
            blob=digest.blob,
        )
        listing = {"modules": listing["modules"], "absent": listing["absent"]}
        files.append(ModulesFile(entry, listing))
    return tuple(sorted(files, key=lambda m: m.entry.path)), problems


def list_archive(
    root: Path,
    recorded: Mapping[str, FileDigest] | None = None,
    clean_blobs: Mapping[str, str] | None = None,
) -> list[ArchiveEntry]:
    """The archive's BTF files, sorted by path; ArchiveLayoutError lists every misfit."""
    scan = scan_archive(root, recorded, clean_blobs)
    if scan.problems:
        raise ArchiveLayoutError(scan.problems)
    return list(scan.entries)
