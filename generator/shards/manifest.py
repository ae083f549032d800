"""The shard manifest: what a build job (`reconcile --shard I/N --output DIR`) built.

    DIR/archive/<distro>/<release>/<arch>/<uname>.btf.tar.xz ...
    DIR/shard-manifest.json

with the manifest (schemas/shard-manifest.schema.json)::

    {
      "format": 1,
      "shard": "2/4",
      "files": {"archive/ubuntu/20.04/x86_64/5.4.0-42-generic.btf.tar.xz":
                {"sha256": "<64 hex>", "size": 1234}},
      "outcomes": [{"distro": "ubuntu", "release": "focal", "arch": "x86_64",
                    "uname": "5.4.0-42-generic", "state": "failed",
                    "reason": "pahole exited 1"}]
    }

(outcomes: the kernels that failed or ship their own BTF, and the built ones
with their file's provenance, see outcomes.py). The manifest is
checked against its schema, then its paths against the archive layout;
every problem is reported at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import jsonschemas
from generator.errors import BtfhubError
from generator.fsutil import atomic_write, dump_json
from generator.model import (
    ARCHITECTURES,
    ARCHIVE_DIR,
    BTF_SUFFIX,
    MODULES_SUFFIX,
    FileDigest,
    KernelId,
    KernelOutcome,
    KernelState,
    ShardId,
    modules_path,
)
from generator.shards.files import hash_file, walk_files
from generator.shards.outcomes import (
    handed_on,
    outcomes_from_json,
    outcomes_to_json,
    sorted_outcomes,
)

MANIFEST_NAME = "shard-manifest.json"
MANIFEST_FORMAT = 1

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._+~-]*"
ARCHIVE_FILE_RE = re.compile(
    rf"^{ARCHIVE_DIR}/{_SEGMENT}/{_SEGMENT}/(?:{'|'.join(ARCHITECTURES)})/"
    rf"{_SEGMENT}(?:{re.escape(BTF_SUFFIX)}|{re.escape(MODULES_SUFFIX)})$"
)


class ManifestError(BtfhubError):
    """One or more problems with shard outputs; the message lists them all."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            f"{len(problems)} problem(s) with the shard outputs, nothing merged:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


@dataclass(frozen=True)
class ShardManifest:
    shard: ShardId
    files: Mapping[str, FileDigest]  # archive path -> digest
    outcomes: tuple[KernelOutcome, ...]  # failed / ships-btf / built with provenance, sorted

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "shard": self.shard.label,
            "files": {
                p: {"sha256": d.sha256, "size": d.size} for p, d in sorted(self.files.items())
            },
            "outcomes": outcomes_to_json(self.outcomes),
        }


def is_archive_file(path: str) -> bool:
    return ARCHIVE_FILE_RE.match(path) is not None


def write_shard_manifest(
    out_dir: Path,
    shard: ShardId,
    archive_paths: Mapping[KernelId, str],
    outcomes: Sequence[KernelOutcome],
) -> ShardManifest:
    """Describe what a shard job built into `out_dir`, and write DIR/shard-manifest.json.

    archive_paths maps each kernel of the shard to its archive path. Every
    built kernel's file must be in out_dir at that path, and nothing else
    may be there: a stray file would make the merge refuse this shard, so it
    is better to fail here, in the job that made it.
    """
    problems: list[str] = []
    files: dict[str, FileDigest] = {}
    passed: list[KernelOutcome] = []
    for o in outcomes:
        if o.state is KernelState.ARCHIVED:
            rel = archive_paths[o.kernel]
            if not is_archive_file(rel):
                problems.append(f"{rel}: not a path of the archive layout")
                continue
            path = out_dir / rel
            if path.is_symlink() or not path.is_file():
                problems.append(f"{path}: built but not found as a regular file")
                continue
            if rel not in files:
                files[rel] = hash_file(path)
            modules = modules_path(rel)  # the kernel's modules file, when it has one
            if (out_dir / modules).is_file() and modules not in files:
                files[modules] = hash_file(out_dir / modules)
        if handed_on(o):
            passed.append(o)
    if out_dir.exists():
        present, walk_problems = walk_files(out_dir)
        problems += walk_problems
        problems += [
            f"{out_dir / p}: not a built file"
            for p in present
            if p not in files and p != MANIFEST_NAME
        ]
    if problems:
        raise ManifestError(problems)
    manifest = ShardManifest(shard, files, sorted_outcomes(passed))
    atomic_write(out_dir / MANIFEST_NAME, dump_json(manifest.to_json()))
    return manifest


def read_shard_manifest(shard_dir: Path) -> ShardManifest:
    """DIR/shard-manifest.json, checked; ManifestError listing every problem."""
    path = shard_dir / MANIFEST_NAME
    try:
        if path.is_symlink():
            raise ManifestError([f"{path}: is a symlink"])
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError([f"{path}: missing (is {shard_dir} a shard output?)"]) from None
    except (OSError, ValueError) as exc:
        raise ManifestError([f"{path}: not readable JSON: {exc}"]) from None
    problems = jsonschemas.problems(raw, jsonschemas.SHARD_MANIFEST_SCHEMA, str(path))
    # The rules beyond the schema, wherever the schema let the value through,
    # so that every problem is reported at once.
    doc = raw if isinstance(raw, dict) else {}
    shard: ShardId | None = None
    if isinstance(doc.get("shard"), str):
        try:
            shard = ShardId.parse(doc["shard"])
        except ValueError as exc:
            problems.append(f"{path}: $.shard: {exc}")
    raw_files = doc.get("files")
    for name in sorted(raw_files if isinstance(raw_files, dict) else ()):
        if not is_archive_file(name):
            problems.append(
                f"{path}: $.files[{name!r}]: not {ARCHIVE_DIR}/<distro>/<release>/<arch>/"
                f"<uname>{BTF_SUFFIX}"
            )
    if problems:
        raise ManifestError(problems)
    assert shard is not None
    files = {name: FileDigest(e["size"], e["sha256"]) for name, e in doc["files"].items()}
    return ShardManifest(shard, files, outcomes_from_json(doc["outcomes"]))
