"""Shard outputs: the manifest a build job writes, and the verified merge of many.

A build job (`reconcile --shard I/N --output DIR`) leaves

    DIR/archive/<distro>/<release>/<arch>/<uname>.btf.tar.xz ...
    DIR/shard-manifest.json

with the manifest::

    {
      "format": 1,
      "shard": "2/4",
      "files": {"archive/ubuntu/20.04/x86_64/5.4.0-42-generic.btf.tar.xz":
                {"sha256": "<64 hex>", "size": 1234}},
      "outcomes": [{"distro": "ubuntu", "release": "focal", "arch": "x86_64",
                    "uname": "5.4.0-42-generic", "state": "failed",
                    "reason": "pahole exited 1"}]
    }

(outcomes: the kernels that failed or ship their own BTF; state is
"failed" or "ships-btf"). The publish job merges the downloaded artifacts
into archive/ with ``merge_shards``. Artifacts travel through a third party
and the merge writes into a git checkout, so it trusts nothing:

* the manifest is checked field by field, every problem reported at once;
* only paths of the archive layout are accepted (no "..", no absolute path,
  no other directory or name); symlinks are refused, in DIR and on the way
  into archive/; a file in DIR the manifest does not list is an error (the
  artifact is not what its manifest says, so none of it is merged);
* an archive file already there is skipped when identical and is an error
  when different: a merge never overwrites;
* all or nothing: everything is checked before anything is moved. Each new
  file is read once, hashed while it is copied to a temporary file next to
  its destination; only when every copy matched its manifest are they
  renamed into place. A crash during the renames leaves some files in
  place; a rerun skips those as identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from generator.errors import BtfhubError
from generator.fsutil import atomic_write, dump_json
from generator.model import ARCHITECTURES, KernelState, PlannedKernel

MANIFEST_NAME = "shard-manifest.json"
MANIFEST_FORMAT = 1
CHUNK = 1024 * 1024

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._+~-]*"
ARCHIVE_FILE_RE = re.compile(
    rf"^archive/{_SEGMENT}/{_SEGMENT}/(?:{'|'.join(ARCHITECTURES)})/{_SEGMENT}\.btf\.tar\.xz$"
)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_LABEL_RE = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")
_OUTCOME_STATES = (KernelState.FAILED, KernelState.SHIPS_BTF)


class ManifestError(BtfhubError):
    """One or more problems with shard outputs; the message lists them all."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            f"{len(problems)} problem(s) with the shard outputs, nothing merged:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str


@dataclass(frozen=True)
class ShardOutcome:
    distro: str
    release: str
    arch: str
    uname: str
    state: KernelState  # FAILED or SHIPS_BTF
    reason: str | None = None


@dataclass(frozen=True)
class ShardManifest:
    shard: str  # "I/N"
    files: Mapping[str, FileDigest]
    outcomes: tuple[ShardOutcome, ...]

    @property
    def index(self) -> int:
        return int(self.shard.split("/")[0])

    @property
    def total(self) -> int:
        return int(self.shard.split("/")[1])

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "shard": self.shard,
            "files": {
                p: {"sha256": d.sha256, "size": d.size} for p, d in sorted(self.files.items())
            },
            "outcomes": outcomes_to_json(self.outcomes),
        }


class BuildResult(Protocol):
    """What a build reports per kernel (generator.reconcile.KernelResult fits)."""

    @property
    def kernel(self) -> PlannedKernel: ...
    @property
    def state(self) -> KernelState: ...
    @property
    def reason(self) -> str | None: ...


@dataclass(frozen=True)
class MergeResult:
    added: tuple[str, ...]  # archive paths written
    unchanged: tuple[str, ...]  # already there with the same bytes
    outcomes: tuple[ShardOutcome, ...]  # from every manifest, sorted, deduplicated
    shards: tuple[str, ...]  # labels merged, e.g. ("1/3", "3/3")
    missing_shards: tuple[str, ...]  # labels of the same run not given (a failed job)


def is_archive_file(path: str) -> bool:
    return ARCHIVE_FILE_RE.match(path) is not None


def _parse_label(label: str) -> tuple[int, int] | None:
    m = _LABEL_RE.match(label)
    if m is None or int(m.group(1)) > int(m.group(2)):
        return None
    return int(m.group(1)), int(m.group(2))


def outcomes_to_json(outcomes: Iterable[ShardOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "distro": o.distro,
            "release": o.release,
            "arch": o.arch,
            "uname": o.uname,
            "state": o.state.value,
            "reason": o.reason,
        }
        for o in _sorted_outcomes(outcomes)
    ]


def _sorted_outcomes(outcomes: Iterable[ShardOutcome]) -> tuple[ShardOutcome, ...]:
    return tuple(
        sorted(
            set(outcomes),
            key=lambda o: (o.distro, o.release, o.arch, o.uname, o.state.value, o.reason or ""),
        )
    )


def _outcomes_from_json(raw: Any, where: str, problems: list[str]) -> list[ShardOutcome]:
    if not isinstance(raw, list):
        problems.append(f"{where}: must be a list")
        return []
    found = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{at}: must be an object")
            continue
        keys = {"distro", "release", "arch", "uname", "state", "reason"}
        for extra in sorted(set(item) - keys):
            problems.append(f"{at}: unknown key {extra!r}")
        ok = True
        for key in ("distro", "release", "uname"):
            if not isinstance(item.get(key), str) or not item[key]:
                problems.append(f"{at}.{key}: must be a non-empty string")
                ok = False
        if item.get("arch") not in ARCHITECTURES:
            problems.append(f"{at}.arch: must be one of {', '.join(ARCHITECTURES)}")
            ok = False
        states = [s.value for s in _OUTCOME_STATES]
        if item.get("state") not in states:
            problems.append(f"{at}.state: must be one of {', '.join(states)}")
            ok = False
        reason = item.get("reason")
        if reason is not None and not isinstance(reason, str):
            problems.append(f"{at}.reason: must be a string or null")
            ok = False
        if ok:
            found.append(
                ShardOutcome(
                    item["distro"],
                    item["release"],
                    item["arch"],
                    item["uname"],
                    KernelState(item["state"]),
                    reason,
                )
            )
    return found


def write_outcomes(path: Path, outcomes: Iterable[ShardOutcome]) -> None:
    """The outcomes `btfhub merge --outcomes FILE` hands on (a JSON list)."""
    atomic_write(path, dump_json(outcomes_to_json(outcomes)))


def read_outcomes(path: Path) -> tuple[ShardOutcome, ...]:
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BtfhubError(f"{path}: cannot read outcomes: {exc}") from None
    problems: list[str] = []
    found = _outcomes_from_json(raw, str(path), problems)
    if problems:
        raise ManifestError(problems)
    return _sorted_outcomes(found)


def _hash_file(path: Path) -> FileDigest:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return FileDigest(size, h.hexdigest())


def _walk_files(top: Path) -> tuple[list[str], list[str]]:
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


def write_shard_manifest(
    out_dir: Path, shard: str, results: Sequence[BuildResult]
) -> ShardManifest:
    """Describe what a shard job built into `out_dir`, and write DIR/shard-manifest.json.

    Every archived result's file must be in out_dir at its archive path, and
    nothing else may be there: a stray file would make the merge refuse this
    shard, so it is better to fail here, in the job that made it.
    """
    if _parse_label(shard) is None:
        raise BtfhubError(f"shard label {shard!r} is not of the form I/N")
    problems: list[str] = []
    files: dict[str, FileDigest] = {}
    outcomes: list[ShardOutcome] = []
    for r in results:
        k = r.kernel
        if r.state is KernelState.ARCHIVED:
            if not is_archive_file(k.archive_path):
                problems.append(f"{k.archive_path}: not a path of the archive layout")
                continue
            path = out_dir / k.archive_path
            if path.is_symlink() or not path.is_file():
                problems.append(f"{path}: built but not found as a regular file")
                continue
            if k.archive_path not in files:
                files[k.archive_path] = _hash_file(path)
        elif r.state in _OUTCOME_STATES:
            outcomes.append(ShardOutcome(k.distro, k.release, k.arch, k.uname, r.state, r.reason))
        else:
            problems.append(f"{k.archive_path}: unexpected build state {r.state.value!r}")
    if out_dir.exists():
        present, walk_problems = _walk_files(out_dir)
        problems += walk_problems
        problems += [
            f"{out_dir / p}: not a built file"
            for p in present
            if p not in files and p != MANIFEST_NAME
        ]
    if problems:
        raise ManifestError(problems)
    manifest = ShardManifest(shard, files, _sorted_outcomes(outcomes))
    atomic_write(out_dir / MANIFEST_NAME, dump_json(manifest.to_json()))
    return manifest


def read_shard_manifest(shard_dir: Path) -> ShardManifest:
    """DIR/shard-manifest.json, checked; ManifestError listing every problem."""
    path = shard_dir / MANIFEST_NAME
    problems: list[str] = []
    try:
        if path.is_symlink():
            raise ManifestError([f"{path}: is a symlink"])
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError([f"{path}: missing (is {shard_dir} a shard output?)"]) from None
    except (OSError, ValueError) as exc:
        raise ManifestError([f"{path}: not readable JSON: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ManifestError([f"{path}: must be a JSON object"])
    for extra in sorted(set(raw) - {"format", "shard", "files", "outcomes"}):
        problems.append(f"{path}: unknown key {extra!r}")
    if raw.get("format") != MANIFEST_FORMAT:
        problems.append(f"{path}: format: must be {MANIFEST_FORMAT}, not {raw.get('format')!r}")
    shard = raw.get("shard")
    if not isinstance(shard, str) or _parse_label(shard) is None:
        problems.append(f"{path}: shard: must be 'I/N' with 1 <= I <= N, not {shard!r}")
    files: dict[str, FileDigest] = {}
    raw_files = raw.get("files")
    if not isinstance(raw_files, dict):
        problems.append(f"{path}: files: must be an object")
        raw_files = {}
    for name, entry in sorted(raw_files.items()):
        at = f"{path}: files[{name!r}]"
        if not is_archive_file(name):
            problems.append(f"{at}: not archive/<distro>/<release>/<arch>/<uname>.btf.tar.xz")
            continue
        if not isinstance(entry, dict) or set(entry) != {"sha256", "size"}:
            problems.append(f"{at}: must be an object with exactly sha256 and size")
            continue
        size, sha = entry["size"], entry["sha256"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            problems.append(f"{at}.size: must be a non-negative integer")
        elif not isinstance(sha, str) or not _SHA256_RE.match(sha):
            problems.append(f"{at}.sha256: must be 64 lowercase hex digits")
        else:
            files[name] = FileDigest(size, sha)
    outcomes = _outcomes_from_json(raw.get("outcomes"), f"{path}: outcomes", problems)
    if problems:
        raise ManifestError(problems)
    assert isinstance(shard, str)
    return ShardManifest(shard, files, _sorted_outcomes(outcomes))


def _open_source(path: Path) -> BinaryIO:
    """Open a shard file for reading without following a symlink swapped in since the walk."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return os.fdopen(fd, "rb")


def _destination_problem(root: Path, rel: str) -> str | None:
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

    labels: dict[str, Path] = {}
    totals = set()
    for d, m in manifests:
        if m.shard in labels:
            problems.append(f"{d}: shard {m.shard} given twice (also {labels[m.shard]})")
        labels[m.shard] = d
        totals.add(m.total)
    if len(totals) > 1:
        problems.append(f"shards of different splits given: totals {sorted(totals)}")

    pending: dict[str, _Pending] = {}
    unchanged: set[str] = set()
    seen: dict[str, FileDigest] = {}
    for d, m in manifests:
        present, walk_problems = _walk_files(d)
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
            where = _destination_problem(root, rel)
            if where is not None:
                problems.append(where)
                continue
            dest = root / rel
            if dest.exists():
                # Read only the existing file, and only when the sizes agree.
                if dest.stat().st_size == digest.size and _hash_file(dest) == digest:
                    unchanged.add(rel)
                else:
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
    missing = tuple(f"{i}/{total}" for i in range(1, total + 1) if f"{i}/{total}" not in labels)
    return MergeResult(
        added=tuple(sorted(pending)),
        unchanged=tuple(sorted(unchanged)),
        outcomes=_sorted_outcomes(all_outcomes),
        shards=tuple(sorted(labels, key=lambda s: int(s.split("/")[0]))),
        missing_shards=missing,
    )


def _labels_of(manifests: Sequence[tuple[Path, ShardManifest]], rel: str) -> str:
    return ", ".join(m.shard for _, m in manifests if rel in m.files)


def _copy_verified(root: Path, item: _Pending, created_dirs: list[Path]) -> str | None:
    """Copy the source next to its destination, hashing on the way; a problem or None."""
    dest = root / item.rel
    missing = []
    parent = dest.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        d.mkdir()
        created_dirs.append(d)
    h = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    item.temp = Path(tmp)
    with os.fdopen(fd, "wb") as out:
        try:
            src = _open_source(item.source)
        except OSError as exc:
            return f"{item.source}: cannot open: {exc}"
        with src:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
    os.chmod(tmp, 0o644)
    got = FileDigest(size, h.hexdigest())
    if got != item.digest:
        return (
            f"{item.source}: sha256 {got.sha256} ({got.size} bytes) does not match the "
            f"manifest's {item.digest.sha256} ({item.digest.size} bytes)"
        )
    return None
