"""The one way btfhub writes files: atomically, and only when the bytes change.

A reader (or a crash) never sees a half-written README.md, index.json or
archive file: bytes go to a temporary file in the same directory, are
fsync'ed, then os.replace()d over the target.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

from generator.errors import StorageError

_HOUSE_FORM = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE

# errno values that mean "no room to write", whatever the file.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def storage_error(exc: OSError, where: Path) -> StorageError | None:
    """A StorageError for a full disk (or file size limit), None for any other OSError."""
    if exc.errno not in DISK_FULL:
        return None
    return StorageError(
        f"cannot write {where}: {exc.strerror or exc}; free some space and run again "
        "(nothing partial was left behind)"
    )


def atomic_write(path: Path, data: bytes, mode: int = 0o644, tmp_dir: Path | None = None) -> None:
    """Write `data` to `path` all at once (temporary file, fsync, rename).

    tmp_dir: where the temporary file goes (a run's work directory, so that a
    kill mid-write leaves it there rather than next to `path`); it falls back
    to path's directory when the two are on different file systems.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    directory = tmp_dir if tmp_dir is not None else path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            Path(tmp).unlink(missing_ok=True)
            atomic_write(path, data, mode)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        full = storage_error(exc, path)
        if full is not None:
            raise full from exc
        raise
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
    """The house JSON form: sorted keys, 2-space indent, trailing newline, no timestamps.

    Byte for byte json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False)
    + "\n" (tests/test_render.py holds it), through orjson: json.dumps falls
    back to its pure-Python encoder whenever indent is set, 1.2 s for a
    20,000-kernel index.json against orjson's 0.1 s (bench/catalog_bench.py).
    """
    return orjson.dumps(obj, option=_HOUSE_FORM)
