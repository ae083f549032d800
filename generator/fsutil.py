"""The one way btfhub writes files: atomically, and only when the bytes change.

A reader (or a crash) never sees a half-written README.md, index.json or
archive file: bytes go to a temporary file in the same directory, are
fsync'ed, then os.replace()d over the target.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write atomically unless the file already holds these bytes; True if written."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data, mode)
    return True


def dump_json(obj: Any) -> bytes:
    """The house JSON form: sorted keys, 2-space indent, trailing newline, no timestamps."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
