"""Files of shard outputs, read without trusting them: hashes, a walk, safe opens.

Shard outputs travel through a third party (CI artifacts) and are merged
into a git checkout: a symlink, a special file or a path through a symlink
is refused, never followed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from generator.model import FileDigest


def hash_file(path: Path) -> FileDigest:
    """Size and SHA-256 of the bytes read (not of what stat said before)."""
    with open(path, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        return FileDigest(f.tell(), sha256)


def walk_files(top: Path) -> tuple[list[str], list[str]]:
    """(regular files, problems) under `top`, as POSIX paths relative to it; no symlinks."""
    files, problems = [], []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames + filenames):
            full = Path(dirpath, name)
            rel = full.relative_to(top).as_posix()
            mode = full.lstat().st_mode
            if stat.S_ISLNK(mode):
                problems.append(f"{full}: is a symlink")
            elif stat.S_ISREG(mode):
                files.append(rel)
            elif not stat.S_ISDIR(mode):
                problems.append(f"{full}: is not a regular file")
        # os.walk does not descend into symlinked directories; reported above.
    return sorted(files), problems


def open_no_follow(path: Path) -> BinaryIO:
    """Open a file for reading without following a symlink swapped in since the walk."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return os.fdopen(fd, "rb")


def destination_problem(root: Path, rel: str) -> str | None:
    """Why `rel` cannot be written under root (a symlink or non-directory on the way)."""
    parts = rel.split("/")
    current = root
    for i, part in enumerate(parts):
        current = current / part
        try:
            mode = current.lstat().st_mode
        except FileNotFoundError:
            return None
        last = i == len(parts) - 1
        if stat.S_ISLNK(mode):
            return f"{current}: is a symlink"
        if not last and not stat.S_ISDIR(mode):
            return f"{current}: is not a directory"
        if last and not stat.S_ISREG(mode):
            return f"{current}: exists and is not a regular file"
    return None
