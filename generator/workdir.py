"""Work directories: one per run under ROOT/.btfhub-cache/work/, and nothing left by dead runs.

A build writes a vmlinux of up to 6 GB and its BTF before the archive file
exists. In $TMPDIR those files outlived every killed run (four kill -9 left
1.5 GB that no later run removed). Here each run works in
ROOT/.btfhub-cache/work/<pid>-<random>/, holding a flock on the `.owner`
file inside for as long as it lives (generator.lock.claim); every run first
removes the directories whose owner is gone, so a kill costs disk until
the next run at most. The directory is on the hub's own file system, so a
finished archive file is renamed from it into archive/ rather than copied,
and a run killed mid-write leaves its temporary file here, not in archive/.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from generator.lock import claim, is_claimed, pid_alive

WORK_DIR = Path(".btfhub-cache") / "work"
OWNER = ".owner"


def _owner_alive(directory: Path) -> bool:
    owner = directory / OWNER
    if owner.exists():
        return is_claimed(owner)
    # Between a run's mkdir and its claim: judge by the pid in the name.
    pid_text = directory.name.split("-", 1)[0]
    return pid_text.isdigit() and pid_alive(int(pid_text))


def sweep(base: Path) -> list[Path]:
    """Remove the work directories under `base` whose run is gone; what was removed."""
    removed: list[Path] = []
    try:
        entries = sorted(base.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink(missing_ok=True)  # nothing but run directories belongs here
            removed.append(entry)
        elif not _owner_alive(entry):
            shutil.rmtree(entry, ignore_errors=True)  # never follows a link inside
            removed.append(entry)
    return removed


# What fsutil.atomic_write and the shard merge leave behind when killed mid-write:
# ".<file name>.<8 random characters from mkstemp>.tmp".
STALE_WRITE_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
ROOT_FILES = ("README.md", "index.json")
ROOT_FILES_DOT = tuple(f".{name}." for name in ROOT_FILES)


def sweep_stale_writes(root: Path) -> list[Path]:
    """Remove temporary files a killed writer left in archive/ or beside README.md/index.json.

    Only safe while holding the hub's lock (no other writer can be mid-write).
    """
    candidates = [p for p in Path(root).glob(".*.tmp") if p.name.startswith(ROOT_FILES_DOT)]
    candidates.extend(_dot_files(str(Path(root) / "archive")))
    removed = []
    for path in sorted(candidates):
        if STALE_WRITE_RE.match(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _dot_files(directory: str) -> Iterator[Path]:
    """Every file named .* under directory, at any depth (symlinks not followed).

    os.scandir rather than os.walk: half the cost over the 3,500 directories
    of a public-hub-sized archive/, which every reconcile sweeps.
    """
    try:
        with os.scandir(directory) as it:
            entries = list(it)
    except OSError:
        return  # as os.walk: a directory that cannot be read holds nothing to sweep
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _dot_files(entry.path)
        elif entry.name.startswith("."):
            yield Path(entry.path)


class WorkArea:
    """This run's work directory; entering it first sweeps the dead runs' ones.

    Enter it holding the hub's lock (reconcile and sync do): it also removes
    the temporary files of writes a killed run left unfinished.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.base = self.root / WORK_DIR
        self._path: Path | None = None
        self._fd: int | None = None
        self.swept: list[Path] = []

    @property
    def path(self) -> Path:
        if self._path is None:
            raise RuntimeError("WorkArea used outside its with block")
        return self._path

    def __enter__(self) -> WorkArea:
        self.swept = sweep(self.base) + sweep_stale_writes(self.root)
        self.base.mkdir(parents=True, exist_ok=True)
        self._path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=self.base))
        self._fd = claim(self._path / OWNER)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
        self._path, self._fd = None, None

    @contextmanager
    def kernel_dir(self) -> Iterator[Path]:
        """A fresh directory for one kernel's build, removed afterwards whatever happens."""
        directory = Path(tempfile.mkdtemp(prefix="kernel-", dir=self.path))
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)
