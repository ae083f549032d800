"""The verified merge of shard outputs into archive/ (`btfhub merge DIR...`).

Artifacts travel through a third party and the merge writes into a git
checkout, so it trusts nothing:

* each manifest is checked (schema and archive layout), every problem
  reported at once;
* only paths of the archive layout are accepted; symlinks are refused, in
  DIR and on the way into archive/; a file in DIR the manifest does not
  list is an error (the artifact is not what its manifest says, so none of
  it is merged);
* an archive file already there is skipped when identical and is an error
  when different: a merge never overwrites, but for a kernel's modules file
  (<uname>.modules.tar.xz), rebuilt when its release lists more modules,
  on the kernel's BTF file, which is never replaced;
* all or nothing: everything is checked before anything is moved. Each new
  file is read once, hashed while it is copied to a temporary file next to
  its destination; only when every copy matched its manifest are they
  renamed into place. A crash during the renames leaves some files in
  place; a rerun skips those as identical.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.model import MODULES_SUFFIX, FileDigest, KernelOutcome, ShardId
from generator.shards.files import (
    destination_problem,
    hash_file,
    open_no_follow,
    walk_files,
)
from generator.shards.manifest import (
    MANIFEST_NAME,
    ManifestError,
    ShardManifest,
    read_shard_manifest,
)
from generator.shards.outcomes import sorted_outcomes


@dataclass(frozen=True)
class MergeResult:
    added: tuple[str, ...]  # archive paths written
    unchanged: tuple[str, ...]  # already there with the same bytes
    outcomes: tuple[KernelOutcome, ...]  # from every manifest, sorted, deduplicated
    shards: tuple[ShardId, ...]  # merged, e.g. (1/3, 3/3)
    missing_shards: tuple[ShardId, ...]  # of the same split, not given (a failed job)


@dataclass
class _Pending:
    rel: str
    source: Path
    digest: FileDigest
    temp: Path | None = None


def merge_shards(root: Path, shard_dirs: Sequence[Path]) -> MergeResult:
    """Verify every shard output, then move the new files into root/archive (see module doc)."""
    problems: list[str] = []
    manifests: list[tuple[Path, ShardManifest]] = []
    for d in shard_dirs:
        try:
            manifests.append((d, read_shard_manifest(d)))
        except ManifestError as exc:
            problems += exc.problems

    labels: dict[ShardId, Path] = {}
    totals = set()
    for d, m in manifests:
        if m.shard in labels:
            problems.append(f"{d}: shard {m.shard.label} given twice (also {labels[m.shard]})")
        labels[m.shard] = d
        totals.add(m.shard.total)
    if len(totals) > 1:
        problems.append(f"shards of different splits given: totals {sorted(totals)}")

    pending: dict[str, _Pending] = {}
    unchanged: set[str] = set()
    seen: dict[str, FileDigest] = {}
    for d, m in manifests:
        present, walk_problems = walk_files(d)
        problems += walk_problems
        problems += [
            f"{d / p}: not listed in {MANIFEST_NAME}"
            for p in present
            if p not in m.files and p != MANIFEST_NAME
        ]
        for rel, digest in sorted(m.files.items()):
            if rel in seen:
                # Builds are reproducible: two shards may both have built a
                # kernel (upstream changed between jobs), but never differently.
                if seen[rel] != digest:
                    problems.append(f"{rel}: shards {_labels_of(manifests, rel)} disagree")
                continue
            seen[rel] = digest
            src = d / rel
            try:
                st = src.lstat()
            except FileNotFoundError:
                problems.append(f"{src}: listed in {MANIFEST_NAME} but missing")
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # a symlink or special file: reported by the walk
            if st.st_size != digest.size:
                problems.append(f"{src}: {st.st_size} bytes, manifest says {digest.size}")
                continue
            where = destination_problem(root, rel)
            if where is not None:
                problems.append(where)
                continue
            dest = root / rel
            if dest.exists():
                # Read only the existing file, and only when the sizes agree.
                if dest.stat().st_size == digest.size and hash_file(dest) == digest:
                    unchanged.add(rel)
                    continue
                if not rel.endswith(MODULES_SUFFIX):
                    problems.append(f"{dest}: already in the archive with different bytes")
                    continue
            pending[rel] = _Pending(rel, src, digest)
    if problems:
        raise ManifestError(problems)

    created_dirs: list[Path] = []
    completed = False
    try:
        for item in sorted(pending.values(), key=lambda p: p.rel):
            problem = _copy_verified(root, item, created_dirs)
            if problem:
                problems.append(problem)
        if problems:
            raise ManifestError(problems)
        # One sync for all the copies rather than an fsync per file (20,000
        # fsyncs dominate a large merge): the data is on disk before any
        # rename makes it visible, so a crash cannot leave a torn archive file.
        if pending:
            os.sync()
        for item in pending.values():
            assert item.temp is not None
            os.replace(item.temp, root / item.rel)
            item.temp = None
        completed = True
    finally:
        for item in pending.values():
            if item.temp is not None:
                item.temp.unlink(missing_ok=True)
        if not completed:
            for created in reversed(created_dirs):
                with contextlib.suppress(OSError):  # not empty: a file did land there
                    created.rmdir()

    all_outcomes = [o for _, m in manifests for o in m.outcomes]
    total = next(iter(totals), 0)
    expected = (ShardId(i, total) for i in range(1, total + 1))
    return MergeResult(
        added=tuple(sorted(pending)),
        unchanged=tuple(sorted(unchanged)),
        outcomes=sorted_outcomes(all_outcomes),
        shards=tuple(sorted(labels)),
        missing_shards=tuple(s for s in expected if s not in labels),
    )


def _labels_of(manifests: Sequence[tuple[Path, ShardManifest]], rel: str) -> str:
    return ", ".join(m.shard.label for _, m in manifests if rel in m.files)


def _copy_verified(root: Path, item: _Pending, created_dirs: list[Path]) -> str | None:
    """Copy the source next to its destination and check the copy; a problem or None."""
    dest = root / item.rel
    missing = []
    parent = dest.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        d.mkdir()
        created_dirs.append(d)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    item.temp = Path(tmp)
    with os.fdopen(fd, "wb") as out:
        try:
            src = open_no_follow(item.source)
        except OSError as exc:
            return f"{item.source}: cannot open: {exc}"
        with src:
            shutil.copyfileobj(src, out)
    os.chmod(tmp, 0o644)
    # The copy is hashed, not the source: what is checked is what will be published.
    got = hash_file(item.temp)
    if got != item.digest:
        return (
            f"{item.source}: sha256 {got.sha256} ({got.size} bytes) does not match the "
            f"manifest's {item.digest.sha256} ({item.digest.size} bytes)"
        )
    return None
