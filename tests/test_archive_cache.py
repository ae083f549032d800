"""Listing a large archive without reading it: digests reused by git blob id.

index.json records each archive file's size, sha256 and git blob id; git
knows, from its index and stat data, which tracked files are unchanged and
their blob ids. A file whose recorded blob is git's keeps its recorded
digest unread; anything else is read and hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from generator import gitops
from generator.archive import file_digest, list_archive
from generator.cli import main
from generator.model import FileDigest
from tests.kit.hubrepo import git

A = "archive/ubuntu/20.04/x86_64/5.4.0-1-generic.btf.tar.xz"
B = "archive/ubuntu/20.04/x86_64/5.4.0-2-generic.btf.tar.xz"
C = "archive/ubuntu/20.04/x86_64/5.4.0-3-generic.btf.tar.xz"
# A digest no real file has: seeing it in a listing proves the file was not read.
FAKE_SHA = "f" * 64
REPO = Path(__file__).resolve().parent.parent


def put(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    put(root, A, b"first file")
    put(root, B, b"second file")
    git(root, "add", "archive")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "x")
    return root


@pytest.mark.parametrize("data", [b"", b"btf", bytes(range(256)) * 5000])
def test_file_digest_blob_is_what_git_computes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    digest = file_digest(str(path))
    assert digest.size == len(data)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.blob == git(tmp_path, "hash-object", str(path))


def test_clean_blobs_are_the_tracked_unchanged_files(repo: Path) -> None:
    put(repo, C, b"untracked")
    put(repo, B, b"second file, edited")
    blobs = gitops.clean_blobs(repo)
    assert set(blobs) == {A}
    assert blobs[A] == git(repo, "hash-object", A)


def test_clean_blobs_outside_git_is_empty(tmp_path: Path) -> None:
    put(tmp_path, A, b"x")
    assert gitops.clean_blobs(tmp_path) == {}


def test_recorded_digest_is_reused_only_when_git_has_the_same_blob(repo: Path) -> None:
    blob_a = git(repo, "hash-object", A)
    blob_b = git(repo, "hash-object", B)
    recorded = {
        A: FileDigest(10, FAKE_SHA, blob_a),  # unchanged: reused as recorded
        B: FileDigest(11, FAKE_SHA, blob_b),  # edited below: must be hashed again
    }
    put(repo, B, b"second file, edited")
    put(repo, C, b"new and untracked")
    entries = {e.path: e for e in list_archive(repo, recorded, gitops.clean_blobs(repo))}
    assert entries[A].sha256 == FAKE_SHA
    assert entries[B].sha256 == hashlib.sha256(b"second file, edited").hexdigest()
    assert entries[B].blob == git(repo, "hash-object", B)
    assert entries[C].sha256 == hashlib.sha256(b"new and untracked").hexdigest()
    # A recorded blob git does not report (stale record) is never trusted.
    stale = {A: FileDigest(10, FAKE_SHA, "0" * 40)}
    entries = {e.path: e for e in list_archive(repo, stale, gitops.clean_blobs(repo))}
    assert entries[A].sha256 == hashlib.sha256(b"first file").hexdigest()


def test_same_size_edit_with_old_mtime_is_still_seen(repo: Path) -> None:
    """git re-reads a file whose stat changed: an edit keeping size and mtime shows up."""
    st = (repo / A).stat()
    put(repo, A, b"FIRST FILE")  # same length
    os.utime(repo / A, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert A not in gitops.clean_blobs(repo)


def _index_files(index: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    files = {f["path"]: f for f in index["unassigned"]}
    for d in index["distributions"].values():
        for r in d["releases"].values():
            for a in r["architectures"].values():
                for k in a["kernels"].values():
                    if "path" in k:
                        files[k["path"]] = k
    return files


def test_render_trusts_recorded_digests_of_unchanged_files_and_verify_rehashes(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(REPO / "catalog", repo / "catalog")
    shutil.copyfile(REPO / "README.md", repo / "README.md")
    assert main(["render", "--root", str(repo)]) == 0
    index_path = repo / "index.json"
    files = _index_files(json.loads(index_path.read_text()))
    assert files[A]["blob"] == git(repo, "hash-object", A)
    assert files[A]["sha256"] == hashlib.sha256(b"first file").hexdigest()

    # Forge the recorded sha256 of an unchanged file: render trusts the record
    # (git says the bytes did not change), render --verify reads the file.
    forged = index_path.read_text().replace(files[A]["sha256"], FAKE_SHA)
    index_path.write_text(forged)
    assert main(["render", "--root", str(repo), "--check"]) == 0
    capsys.readouterr()
    assert main(["render", "--root", str(repo), "--check", "--verify"]) == 1
    assert FAKE_SHA in capsys.readouterr().out
    assert main(["render", "--root", str(repo), "--verify"]) == 0
    files = _index_files(json.loads(index_path.read_text()))
    assert files[A]["sha256"] == hashlib.sha256(b"first file").hexdigest()
