"""Which paths btfhub may commit: archive files and the generated files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from generator.errors import BtfhubError
from generator.gitops.repo import open_repo

# index.json.asc: index.json's signature, when the run had the hub's signing key.
GENERATED_FILES = ("README.md", "index.json", "index.json.asc")
ARCHIVE_DIR = "archive"


def check_hub_paths(paths: Sequence[str]) -> list[str]:
    """The paths btfhub may commit, normalised; BtfhubError naming every bad one."""
    bad = []
    good: list[str] = []
    for p in paths:
        parts = p.split("/")
        ok = (
            bool(p)
            and "\\" not in p
            and "\0" not in p
            and not p.startswith("/")
            and all(part not in ("", ".", "..") for part in parts)
            and (p in GENERATED_FILES or (parts[0] == ARCHIVE_DIR and len(parts) > 1))
        )
        if ok:
            if p not in good:
                good.append(p)
        else:
            bad.append(p)
    if bad:
        raise BtfhubError(
            "btfhub only commits files under archive/, README.md, index.json and "
            "index.json.asc; refusing: " + ", ".join(repr(b) for b in bad)
        )
    return sorted(good)


def hub_changes(root: Path) -> list[str]:
    """Paths btfhub owns (archive/, README.md, index.json) that differ from HEAD."""
    with open_repo(root) as repo:
        out: str = repo.git.status(
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--",
            ARCHIVE_DIR,
            *GENERATED_FILES,
        )
    paths = {record[3:] for record in out.split("\0") if len(record) > 3}
    return sorted(paths)


def clean_blobs(root: Path, under: str = ARCHIVE_DIR) -> dict[str, str]:
    """Blob ids of the tracked files under `under` that the work tree has unchanged.

    `git ls-files -s` gives the index's blob for every tracked file without
    reading one; `git diff-files` then names those whose work-tree bytes
    differ from the index (git compares stat data and re-reads only files
    whose stat changed), and they are left out: the caller hashes them. An
    empty result, outside a git checkout or when git fails, just means
    "hash everything". (The index is read by git, not by GitPython: see repo.py.)
    """
    blobs: dict[str, str] = {}
    try:
        with open_repo(root) as repo:
            listed: str = repo.git.ls_files("-s", "-z", "--", under)
            # --refresh-free: diff-files itself trusts unchanged stat data and re-reads the rest.
            changed: str = repo.git.diff_files("--name-only", "-z", "--", under)
    except BtfhubError:
        return {}
    for record in listed.split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, sha, stage = meta.split()
        if stage == "0" and mode.startswith("100"):
            blobs[path] = sha
    for path in changed.split("\0"):
        blobs.pop(path, None)
    return blobs
