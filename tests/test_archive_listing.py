"""Listing archive/: layout, sizes and digests, and what does not fit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from generator import archive
from generator.archive import ArchiveLayoutError, list_archive, scan_archive


def put(root: Path, rel: str, data: bytes = b"btf") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("threads_above", [0, 1 << 40], ids=["threaded", "sequential"])
def test_lists_every_btf_file_sorted_with_size_and_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads_above: int
) -> None:
    monkeypatch.setattr(archive, "_THREADS_ABOVE_AVERAGE", threads_above)
    # More files than one hashing chunk, so that both ways of hashing run.
    rels = [f"archive/ubuntu/20.04/x86_64/5.4.0-{n}-generic.btf.tar.xz" for n in range(600)]
    rels.append("archive/centos/7/arm64/3.10.0-123.el7.aarch64.btf.tar.xz")
    for n, rel in enumerate(rels):
        put(tmp_path, rel, b"x" * n)
    # Larger than one read, so that the digest covers every chunk.
    big = bytes(range(256)) * 9000
    put(tmp_path, rels[-1], big)
    entries = list_archive(tmp_path)
    assert [e.path for e in entries] == sorted(rels)
    by_path = {e.path: e for e in entries}
    for n, rel in enumerate(rels[:-1]):
        assert by_path[rel].size == n
        assert by_path[rel].sha256 == hashlib.sha256(b"x" * n).hexdigest()
    assert by_path[rels[-1]].size == len(big)
    assert by_path[rels[-1]].sha256 == hashlib.sha256(big).hexdigest()
    e = by_path["archive/centos/7/arm64/3.10.0-123.el7.aarch64.btf.tar.xz"]
    assert (e.distro_dir, e.release_dir, e.arch, e.uname) == (
        "centos",
        "7",
        "arm64",
        "3.10.0-123.el7.aarch64",
    )


def test_dotfiles_and_an_absent_archive_are_ignored(tmp_path: Path) -> None:
    assert list_archive(tmp_path) == []
    put(tmp_path, "archive/.gitkeep")
    put(tmp_path, "archive/ubuntu/20.04/x86_64/.5.4.0-1.btf.tar.xz.abc.tmp")
    put(tmp_path, "archive/ubuntu/.hidden/x86_64/5.4.0-1.btf.tar.xz")
    assert list_archive(tmp_path) == []


def test_everything_that_does_not_fit_is_reported_at_once(tmp_path: Path) -> None:
    put(tmp_path, "archive/README.md")
    put(tmp_path, "archive/ubuntu/notes.txt")
    put(tmp_path, "archive/ubuntu/20.04/amd64/5.4.0-1.btf.tar.xz")
    put(tmp_path, "archive/ubuntu/20.04/x86_64/5.4.0-1.btf")
    put(tmp_path, "archive/ubuntu/20.04/x86_64/.btf.tar.xz.d/x")  # dotdir: skipped
    put(tmp_path, "archive/ubuntu/20.04/x86_64/sub.btf.tar.xz/x")
    put(tmp_path, "archive/ubuntu/20.04/x86_64/5.4.0-2.btf.tar.xz")
    (tmp_path / "archive/ubuntu/20.04/x86_64/link.btf.tar.xz").symlink_to("5.4.0-2.btf.tar.xz")
    scan = scan_archive(tmp_path)
    assert [e.uname for e in scan.entries] == ["5.4.0-2"]
    assert scan.problems == (
        "archive/README.md: expected a directory",
        "archive/ubuntu/20.04/amd64: unknown architecture (expected one of x86_64, arm64)",
        "archive/ubuntu/20.04/x86_64/5.4.0-1.btf: not a <uname>.btf.tar.xz file",
        "archive/ubuntu/20.04/x86_64/link.btf.tar.xz: expected a regular file",
        "archive/ubuntu/20.04/x86_64/sub.btf.tar.xz: expected a regular file",
        "archive/ubuntu/notes.txt: expected a directory",
    )
    with pytest.raises(ArchiveLayoutError, match="6 path"):
        list_archive(tmp_path)
