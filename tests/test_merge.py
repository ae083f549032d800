"""Shard manifests and `btfhub merge`, on real files in tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from generator.cli import main
from generator.model import KernelId, KernelOutcome, KernelState, ShardId
from generator.shards.manifest import (
    MANIFEST_NAME,
    ManifestError,
    read_shard_manifest,
    write_shard_manifest,
)
from generator.shards.merge import merge_shards
from generator.shards.outcomes import read_outcomes
from tests.kit.hub import archive_files


def kernel_at(rel: str) -> KernelId:
    """The kernel an archive path stands for (release ids as the directories, for brevity)."""
    _, distro, release, arch, name = rel.split("/")
    return KernelId(distro, release, arch, name.removesuffix(".btf.tar.xz"))


def built(*rels: str) -> tuple[dict[KernelId, str], list[KernelOutcome]]:
    """(archive paths, outcomes) of kernels built at these paths."""
    paths = {kernel_at(rel): rel for rel in rels}
    return paths, [KernelOutcome(k, KernelState.ARCHIVED) for k in paths]


def make_shard(
    base: Path,
    label: str,
    files: Mapping[str, bytes],
    failed: Mapping[str, str] | None = None,
) -> Path:
    out = base / f"shard-{label.replace('/', '-of-')}"
    for rel, data in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    paths, outcomes = built(*files)
    for rel, reason in (failed or {}).items():
        outcomes.append(KernelOutcome(kernel_at(rel), KernelState.FAILED, reason))
    out.mkdir(parents=True, exist_ok=True)
    write_shard_manifest(out, ShardId.parse(label), paths, outcomes)
    return out


U = "archive/ubuntu/20.04/x86_64"
C = "archive/centos/7/x86_64"


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    (root / "archive" / "ubuntu" / "20.04" / "x86_64").mkdir(parents=True)
    (root / f"{U}/5.4.0-1-generic.btf.tar.xz").write_bytes(b"already here")
    return root


@pytest.fixture
def shards(tmp_path: Path) -> list[Path]:
    base = tmp_path / "artifacts"
    return [
        make_shard(base, "1/3", {f"{U}/5.4.0-2-generic.btf.tar.xz": b"two" * 1000}),
        make_shard(
            base,
            "2/3",
            {
                f"{C}/3.10.0-1.el7.x86_64.btf.tar.xz": b"centos",
                "archive/ubuntu/20.04/arm64/5.4.0-2-generic.btf.tar.xz": b"arm",
            },
            failed={f"{U}/5.4.0-3-generic.btf.tar.xz": "pahole exited 1"},
        ),
        make_shard(base, "3/3", {f"{U}/5.4.0-1-generic.btf.tar.xz": b"already here"}),
    ]


def test_manifest_format(shards: list[Path]) -> None:
    raw = json.loads((shards[1] / MANIFEST_NAME).read_text())
    data = b"centos"
    assert raw == {
        "format": 1,
        "shard": "2/3",
        "files": {
            f"{C}/3.10.0-1.el7.x86_64.btf.tar.xz": {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            },
            "archive/ubuntu/20.04/arm64/5.4.0-2-generic.btf.tar.xz": {
                "sha256": hashlib.sha256(b"arm").hexdigest(),
                "size": 3,
            },
        },
        "outcomes": [
            {
                "arch": "x86_64",
                "distro": "ubuntu",
                "reason": "pahole exited 1",
                "release": "20.04",
                "state": "failed",
                "uname": "5.4.0-3-generic",
            }
        ],
    }
    m = read_shard_manifest(shards[1])
    assert (m.shard, m.shard.label) == (ShardId(2, 3), "2/3")


def test_good_merge_of_three_shards_and_idempotent_rerun(
    hub: Path, shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes_file = tmp_path / "outcomes.json"
    argv = ["merge", "--root", str(hub), "--outcomes", str(outcomes_file), *map(str, shards)]
    assert main(argv) == 0
    assert archive_files(hub) == {
        f"{C}/3.10.0-1.el7.x86_64.btf.tar.xz": b"centos",
        "archive/ubuntu/20.04/arm64/5.4.0-2-generic.btf.tar.xz": b"arm",
        f"{U}/5.4.0-1-generic.btf.tar.xz": b"already here",
        f"{U}/5.4.0-2-generic.btf.tar.xz": b"two" * 1000,
    }
    assert oct((hub / f"{C}/3.10.0-1.el7.x86_64.btf.tar.xz").stat().st_mode & 0o777) == "0o644"
    out, err = capsys.readouterr()
    assert "merged 3 shard(s): 3 file(s) added, 1 already there, 1 failed" in out
    assert "FAILED ubuntu/20.04/x86_64 5.4.0-3-generic: pahole exited 1" in err
    assert read_outcomes(outcomes_file) == (
        KernelOutcome(
            KernelId("ubuntu", "20.04", "x86_64", "5.4.0-3-generic"),
            KernelState.FAILED,
            "pahole exited 1",
        ),
    )
    assert not (hub / ".btfhub.lock").exists()

    again = merge_shards(hub, shards)
    assert again.added == ()
    assert len(again.unchanged) == 4
    assert again.missing_shards == ()
    assert not list(hub.rglob("*.tmp"))


def assert_nothing_moved(hub: Path) -> None:
    assert archive_files(hub) == {f"{U}/5.4.0-1-generic.btf.tar.xz": b"already here"}
    dirs = sorted(p.relative_to(hub).as_posix() for p in hub.rglob("*") if p.is_dir())
    assert dirs == ["archive", "archive/ubuntu", "archive/ubuntu/20.04", f"{U}"]


def test_a_tampered_file_fails_and_nothing_moves(
    hub: Path, shards: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    victim = shards[1] / f"{C}/3.10.0-1.el7.x86_64.btf.tar.xz"
    victim.write_bytes(b"CENTOS")  # same size, other bytes: only the hash can tell
    assert main(["merge", "--root", str(hub), *map(str, shards)]) == 1
    err = capsys.readouterr().err
    assert "does not match the manifest" in err and str(victim) in err
    assert_nothing_moved(hub)


def test_a_size_mismatch_is_found_before_reading(hub: Path, shards: list[Path]) -> None:
    (shards[0] / f"{U}/5.4.0-2-generic.btf.tar.xz").write_bytes(b"short")
    with pytest.raises(ManifestError, match="5 bytes, manifest says 3000"):
        merge_shards(hub, shards)
    assert_nothing_moved(hub)


def edit_manifest(shard: Path, change: dict[str, object]) -> None:
    path = shard / MANIFEST_NAME
    raw = json.loads(path.read_text())
    raw.update(change)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(
    "bad",
    [
        "archive/../catalog/ubuntu.yaml",
        "archive/ubuntu/20.04/x86_64/../../../../etc.btf.tar.xz",
        "/etc/passwd",
        "catalog/ubuntu.yaml",
        "README.md",
        "archive/ubuntu/20.04/x86_64/run.sh",
        "archive/ubuntu/20.04/sparc/k.btf.tar.xz",
        "archive/ubuntu/20.04/x86_64/.hidden.btf.tar.xz",
        "archive/ubuntu/x86_64/k.btf.tar.xz",
    ],
)
def test_paths_outside_the_layout_are_refused(hub: Path, tmp_path: Path, bad: str) -> None:
    shard = make_shard(tmp_path / "a", "1/1", {})
    edit_manifest(shard, {"files": {bad: {"sha256": "0" * 64, "size": 1}}})
    with pytest.raises(ManifestError, match="not archive/<distro>/<release>/<arch>/<uname>"):
        merge_shards(hub, [shard])
    assert_nothing_moved(hub)


def test_an_unlisted_file_is_an_error(hub: Path, shards: list[Path]) -> None:
    stray = shards[2] / "archive/ubuntu/20.04/x86_64/extra.btf.tar.xz"
    stray.write_bytes(b"who made me?")
    with pytest.raises(ManifestError, match=f"{stray}: not listed in {MANIFEST_NAME}"):
        merge_shards(hub, shards)
    assert_nothing_moved(hub)


def test_symlinks_are_refused(hub: Path, shards: list[Path], tmp_path: Path) -> None:
    target = shards[0] / f"{U}/5.4.0-2-generic.btf.tar.xz"
    secret = tmp_path / "secret"
    secret.write_bytes(b"two" * 1000)
    target.unlink()
    target.symlink_to(secret)
    with pytest.raises(ManifestError, match="is a symlink"):
        merge_shards(hub, shards)
    assert_nothing_moved(hub)


def test_a_symlink_inside_the_archive_is_not_followed(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (hub / "archive").mkdir(parents=True)
    (hub / "archive" / "centos").symlink_to(elsewhere)
    shard = make_shard(tmp_path / "a", "1/1", {f"{C}/k.btf.tar.xz": b"k"})
    with pytest.raises(ManifestError, match="archive/centos: is a symlink"):
        merge_shards(hub, [shard])
    assert list(elsewhere.iterdir()) == []


def test_an_existing_file_is_never_overwritten(hub: Path, tmp_path: Path) -> None:
    shard = make_shard(tmp_path / "a", "1/1", {f"{U}/5.4.0-1-generic.btf.tar.xz": b"rebuilt"})
    with pytest.raises(ManifestError, match="already in the archive with different bytes"):
        merge_shards(hub, [shard])
    assert_nothing_moved(hub)


def test_shards_that_disagree_about_a_file(hub: Path, tmp_path: Path) -> None:
    rel = f"{C}/k.btf.tar.xz"
    one = make_shard(tmp_path / "a", "1/2", {rel: b"one"})
    two = make_shard(tmp_path / "b", "2/2", {rel: b"two"})
    with pytest.raises(ManifestError, match=r"shards 1/2, 2/2 disagree"):
        merge_shards(hub, [one, two])
    # Identical duplicates (a kernel built by two jobs) merge once.
    three = make_shard(tmp_path / "c", "2/2", {rel: b"one"})
    result = merge_shards(hub, [one, three])
    assert result.added == (rel,)


def test_labels_must_belong_to_one_split(hub: Path, tmp_path: Path) -> None:
    one = make_shard(tmp_path / "a", "1/2", {})
    other = make_shard(tmp_path / "b", "1/3", {})
    same = make_shard(tmp_path / "c", "1/2", {})
    with pytest.raises(ManifestError) as err:
        merge_shards(hub, [one, other, same])
    text = str(err.value)
    assert "totals [2, 3]" in text and "shard 1/2 given twice" in text


def test_a_missing_shard_is_reported(
    hub: Path, shards: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["merge", "--root", str(hub), str(shards[0]), str(shards[2])]) == 0
    assert "no output from shard(s) 2/3" in capsys.readouterr().err
    assert merge_shards(hub, [shards[0]]).missing_shards == (ShardId(2, 3), ShardId(3, 3))


def test_every_manifest_problem_is_reported_at_once(hub: Path, tmp_path: Path) -> None:
    shard = make_shard(tmp_path / "a", "1/1", {})
    edit_manifest(
        shard,
        {
            "shard": "4/3",
            "format": 2,
            "extra": True,
            "files": {
                f"{U}/a.btf.tar.xz": {"sha256": "XYZ", "size": 1},
                f"{U}/b.btf.tar.xz": {"sha256": "0" * 64, "size": -1},
            },
            "outcomes": [
                {"distro": "u", "release": "r", "arch": "mips", "uname": "k", "state": "x"}
            ],
        },
    )
    with pytest.raises(ManifestError) as err:
        merge_shards(hub, [shard, tmp_path / "nowhere"])
    problems = err.value.problems
    joined = "\n".join(problems)
    for expected in (
        "$: Additional properties are not allowed ('extra' was unexpected)",
        "$.format: 1 was expected",
        "$.shard: shard 4/3: I must be between 1 and N",
        ".btf.tar.xz'].sha256: 'XYZ' does not match",
        ".btf.tar.xz'].size: -1 is less than the minimum of 0",
        "$.outcomes[0].arch: 'mips' is not one of",
        "$.outcomes[0].state: 'x' is not one of",
        "$.outcomes[0]: 'reason' is a required property",
        "nowhere/shard-manifest.json: missing",
    ):
        assert expected in joined
    assert_nothing_moved(hub)


def test_write_shard_manifest_refuses_what_it_did_not_build(tmp_path: Path) -> None:
    out = tmp_path / "out"
    rel = f"{U}/k.btf.tar.xz"
    (out / U).mkdir(parents=True)
    (out / rel).write_bytes(b"k")
    (out / f"{U}/.k.btf.tar.xz.123.tmp").write_bytes(b"half")
    with pytest.raises(ManifestError, match=r"\.tmp: not a built file"):
        write_shard_manifest(out, ShardId(1, 1), *built(rel))
    os.unlink(out / f"{U}/.k.btf.tar.xz.123.tmp")
    with pytest.raises(ManifestError, match="built but not found"):
        write_shard_manifest(out, ShardId(1, 1), *built(rel, f"{U}/gone.btf.tar.xz"))
    assert not (out / MANIFEST_NAME).exists()
