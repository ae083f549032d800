"""`btfhub sync` end to end: real packages from a local mirror, real git remotes and clones.

Every run goes through `generator.cli.main` as a user (or the workflow)
types it; the hubs are clones of a bare remote in tmp_path.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from generator import gitops
from generator.cli import main
from generator.gitops import push_with_retry
from generator.model import KernelId, KernelOutcome, KernelState
from generator.shards.outcomes import write_outcomes
from tests.kit.hub import archive_files, mirror_args
from tests.kit.hubrepo import (
    BOT,
    HOSTS,
    archive_file,
    clone,
    committed,
    git,
    make_remote,
    publish,
)
from tests.kit.mirror import FaultyMirror

REPO = Path(__file__).resolve().parent.parent
FOCAL_1 = "5.4.0-1-generic"
FOCAL_2 = "5.4.0-2-generic"
FOCAL_BAD = "5.4.0-3-generic"
JAMMY_1 = "5.15.0-1-generic"
BUSTER_1 = "4.19.0-1-cloud-amd64"
NO_VMLINUX = f"package holds no vmlinux for {FOCAL_BAD} (a signed-flavour dbgsym stub?)"


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return make_remote(tmp_path, extra={"NOTES.md": "maintainers' notes\n"})


def sync(root: Path, server: FaultyMirror, *extra: str) -> int:
    return main(["sync", "--root", str(root), *mirror_args(server, HOSTS), *extra])


def kernel(root: Path, distro: str, release: str, uname: str, rev: str | None = None) -> Any:
    """One kernel's index.json entry, in the work tree or at a commit."""
    text = (
        (root / "index.json").read_text() if rev is None else git(root, "show", f"{rev}:index.json")
    )
    arch = json.loads(text)["distributions"][distro]["releases"][release]["architectures"]
    return arch["x86_64"]["kernels"][uname]


def test_nothing_to_do_makes_no_commit(
    tmp_path: Path,
    remote: Path,
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(mirror_server.directory, tmp_path, fixture_elf, [FOCAL_1])
    hub = clone(remote, "hub")
    assert sync(hub, mirror_server, "--commit") == 0
    head = git(hub, "rev-parse", "HEAD")
    assert git(hub, "rev-list", "--count", "HEAD") == "2"
    capsys.readouterr()

    mirror_server.clear_log()
    assert sync(hub, mirror_server, "--commit") == 0
    out = capsys.readouterr().out
    assert "nothing to commit" in out
    assert "summary: 0 built, 1 already there" in out
    assert git(hub, "rev-parse", "HEAD") == head
    assert git(hub, "status", "--porcelain") == ""
    # Nothing rebuilt: no package was fetched, only (conditional) index requests.
    assert not [r for r in mirror_server.log if r.path.endswith(".deb")]


def test_commit_holds_exactly_the_new_files(
    tmp_path: Path,
    remote: Path,
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(mirror_server.directory, tmp_path, fixture_elf, [FOCAL_1, FOCAL_2, BUSTER_1])
    hub = clone(remote, "hub")
    seed = git(hub, "rev-parse", "HEAD")
    assert sync(hub, mirror_server, "--commit") == 0
    assert git(hub, "rev-parse", "HEAD^") == seed  # one commit
    assert committed(hub) == sorted(
        [
            f"A\t{archive_file(FOCAL_1)}",
            f"A\t{archive_file(FOCAL_2)}",
            f"A\t{archive_file(BUSTER_1)}",
            "M\tREADME.md",
            "A\tindex.json",
        ]
    )
    assert git(hub, "log", "-1", "--format=%B") == (
        "btfhub: add 3 BTF files\n"
        "\n"
        "Added:\n"
        "  debian:\n"
        f"    buster/x86_64 {BUSTER_1}\n"
        "  ubuntu:\n"
        f"    focal/x86_64 {FOCAL_1}\n"
        f"    focal/x86_64 {FOCAL_2}"
    )
    assert git(hub, "log", "-1", "--format=%an <%ae>") == BOT
    assert f"committed {git(hub, 'rev-parse', 'HEAD')[:12]}" in capsys.readouterr().out
    assert git(hub, "status", "--porcelain") == ""
    assert kernel(hub, "ubuntu", "focal", FOCAL_1)["state"] == "archived"
    assert main(["render", "--root", str(hub), "--check"]) == 0


def test_dirty_work_tree_is_left_alone(
    tmp_path: Path, remote: Path, mirror_server: FaultyMirror, fixture_elf: Path
) -> None:
    publish(mirror_server.directory, tmp_path, fixture_elf, [FOCAL_1])
    hub = clone(remote, "hub")
    # A local edit of a tracked file, a staged unrelated change, an untracked file.
    manifest = hub / "catalog" / "ubuntu.yaml"
    edited = manifest.read_text() + "# a local comment, not for this commit\n"
    manifest.write_text(edited)
    (hub / "NOTES.md").write_text("staged notes\n")
    git(hub, "add", "NOTES.md")
    (hub / "scratch.txt").write_text("untracked\n")
    before = git(hub, "status", "--porcelain")

    assert sync(hub, mirror_server, "--commit") == 0
    assert committed(hub) == sorted(
        [f"A\t{archive_file(FOCAL_1)}", "M\tREADME.md", "A\tindex.json"]
    )
    # Everything else is exactly as it was: modified, staged, untracked.
    assert git(hub, "status", "--porcelain") == before
    assert sorted(before.splitlines()) == [
        " M catalog/ubuntu.yaml",
        "?? scratch.txt",
        "M  NOTES.md",
    ]
    assert manifest.read_text() == edited
    assert git(hub, "show", ":NOTES.md") == "staged notes"
    assert git(hub, "show", "HEAD:NOTES.md") == "maintainers' notes"
    assert (hub / "scratch.txt").read_text() == "untracked\n"


def test_push_race_both_kernels_land_and_are_rendered(
    tmp_path: Path,
    remote: Path,
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A's rejected push is retried at once: the race, its fetch and rebuild are the
    # same, without the seconds of jittered backoff a runner waits between them.
    monkeypatch.setattr(gitops, "push_with_retry", functools.partial(push_with_retry, backoff=0))
    publish(mirror_server.directory, tmp_path, fixture_elf, [FOCAL_1, BUSTER_1])
    a = clone(remote, "a")
    b = clone(remote, "b")
    # B builds and pushes Debian's kernel while A's clone still has the seed...
    assert sync(b, mirror_server, "--distro", "debian", "--push") == 0
    b_head = git(b, "rev-parse", "HEAD")
    capsys.readouterr()
    # ...then A builds Ubuntu's on the stale base: its first push is rejected.
    assert sync(a, mirror_server, "--distro", "ubuntu", "--push") == 0
    assert "pushed to origin (branch main)" in capsys.readouterr().out

    fresh = clone(remote, "fresh")
    log = git(fresh, "log", "--format=%H %s").splitlines()
    assert len(log) == 3 and log[1] == f"{b_head} btfhub: add 1 BTF file"
    assert committed(fresh) == sorted(
        [f"A\t{archive_file(FOCAL_1)}", "M\tREADME.md", "M\tindex.json"]
    )
    assert f"focal/x86_64 {FOCAL_1}" in git(fresh, "log", "-1", "--format=%B")
    assert set(archive_files(fresh)) == {archive_file(FOCAL_1), archive_file(BUSTER_1)}
    # The generated files were re-rendered from both runs' state, not hand-merged.
    for distro, release, uname in (("ubuntu", "focal", FOCAL_1), ("debian", "buster", BUSTER_1)):
        entry = kernel(fresh, distro, release, uname)
        assert entry["state"] == "archived" and entry["path"] == archive_file(uname)
        assert entry["package"]["filename"].endswith(".deb")
    readme = (fresh / "README.md").read_text()
    assert "| Focal      | 5.4.0  | Y   | -   | Y   |" in readme
    assert "| Jammy      | 5.15.0 | Y   | -   | 0/0 |" in readme  # discovered by A: no kernel
    assert "| 10 (Buster) | 4.19.0 | Y   | -   | Y   |" in readme
    assert main(["render", "--root", str(fresh), "--check"]) == 0
    # A's checkout is the remote's tip, with nothing left over.
    assert git(a, "rev-parse", "HEAD") == git(fresh, "rev-parse", "HEAD")
    assert git(a, "status", "--porcelain") == ""


def test_a_failed_kernel_exits_1_and_is_committed(
    tmp_path: Path,
    remote: Path,
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(mirror_server.directory, tmp_path, fixture_elf, [FOCAL_1], bad=[FOCAL_BAD])
    hub = clone(remote, "hub")
    assert sync(hub, mirror_server, "--push") == 1
    err = capsys.readouterr().err
    assert f"FAILED ubuntu/focal/x86_64 {FOCAL_BAD}: {NO_VMLINUX}" in err
    fresh = clone(remote, "fresh")  # committed and pushed all the same
    assert git(fresh, "log", "-1", "--format=%B") == (
        "btfhub: add 1 BTF file (1 failed)\n"
        "\n"
        "Added:\n"
        "  ubuntu:\n"
        f"    focal/x86_64 {FOCAL_1}\n"
        "\n"
        "Failed:\n"
        "  ubuntu:\n"
        f"    focal/x86_64 {FOCAL_BAD}: {NO_VMLINUX}"
    )
    failed = kernel(fresh, "ubuntu", "focal", FOCAL_BAD, rev="HEAD")
    assert failed["state"] == "failed" and failed["reason"] == NO_VMLINUX
    assert "| Focal      | 5.4.0  | Y   | -   | 1/2 |" in (fresh / "README.md").read_text()


HOLDER = """
import sys
from pathlib import Path
from generator.lock import HubLock
with HubLock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_run_fails_naming_the_holder(
    tmp_path: Path,
    remote: Path,
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(mirror_server.directory, tmp_path, fixture_elf, [FOCAL_1])
    hub = clone(remote, "hub")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(hub)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        for argv in (
            ["sync", "--root", str(hub), *mirror_args(mirror_server, HOSTS), "--commit"],
            ["reconcile", "--root", str(hub), *mirror_args(mirror_server, HOSTS)],
            ["render", "--root", str(hub)],
        ):
            assert main(argv) == 1
            err = capsys.readouterr().err
            assert f"another btfhub (pid {holder.pid}, started " in err, argv
        assert not (hub / "archive").exists() and not (hub / "index.json").exists()
        assert mirror_server.log == []  # refused before reading upstream
        assert git(hub, "rev-list", "--count", "HEAD") == "1"
        # A check writes nothing: it runs beside the holder.
        assert main(["render", "--root", str(hub), "--check"]) == 1
        assert "stale: README.md, index.json" in capsys.readouterr().out
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    assert sync(hub, mirror_server, "--commit") == 0  # free again


def test_skip_build_records_outcomes_and_renders(
    tmp_path: Path,
    remote: Path,
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(mirror_server.directory, tmp_path, fixture_elf, [FOCAL_1, BUSTER_1], bad=[FOCAL_BAD])
    hub = clone(remote, "hub")
    outcomes = tmp_path / "outcomes.json"
    write_outcomes(
        outcomes,
        [
            KernelOutcome(
                KernelId("ubuntu", "focal", "x86_64", FOCAL_BAD), KernelState.FAILED, "pahole: 1"
            ),
            KernelOutcome(
                KernelId("debian", "buster", "x86_64", BUSTER_1), KernelState.SHIPS_BTF, "has .BTF"
            ),
            # Upstream dropped it since the build: warned about, not recorded.
            KernelOutcome(
                KernelId("ubuntu", "jammy", "x86_64", JAMMY_1), KernelState.FAILED, "gone"
            ),
        ],
    )
    code = sync(hub, mirror_server, "--skip-build", "--outcomes", str(outcomes), "--commit")
    assert code == 1  # a kernel failed
    out, err = capsys.readouterr()
    assert f"FAILED ubuntu/focal/x86_64 {FOCAL_BAD}: pahole: 1" in err
    assert f"ubuntu/jammy/x86_64 {JAMMY_1}: not listed by discovery" in err
    assert "summary: recorded 2 failed and 1 shipping their own BTF" in out
    # Discovery ran, nothing was built or downloaded.
    assert not (hub / "archive").exists()
    assert not [r for r in mirror_server.log if r.path.endswith(".deb")]
    assert kernel(hub, "ubuntu", "focal", FOCAL_BAD) == {
        "state": "failed",
        "reason": "pahole: 1",
        "package": kernel(hub, "ubuntu", "focal", FOCAL_BAD)["package"],
    }
    assert kernel(hub, "ubuntu", "focal", FOCAL_1)["state"] == "missing"
    assert "reason" not in kernel(hub, "debian", "buster", BUSTER_1)
    assert kernel(hub, "debian", "buster", BUSTER_1)["state"] == "ships-btf"
    readme = (hub / "README.md").read_text()
    assert "| Focal      | 5.4.0  | Y   | -   | 0/2 |" in readme
    assert "| 10 (Buster) | 4.19.0 | Y   | -   | Y   |" in readme
    assert committed(hub) == ["A\tindex.json", "M\tREADME.md"]
    assert git(hub, "log", "-1", "--format=%B").splitlines()[:5] == [
        "btfhub: record 2 failed kernels",
        "",
        "Failed:",
        "  ubuntu:",
        f"    focal/x86_64 {FOCAL_BAD}: pahole: 1",
    ]
    assert main(["render", "--root", str(hub), "--check"]) == 0


def test_outcomes_need_skip_build(
    tmp_path: Path, remote: Path, mirror_server: FaultyMirror, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = clone(remote, "hub")
    assert sync(hub, mirror_server, "--outcomes", str(tmp_path / "o.json")) == 1
    assert "--outcomes FILE goes with --skip-build" in capsys.readouterr().err


def test_commit_outside_a_checkout_fails_before_building(
    tmp_path: Path, remote: Path, mirror_server: FaultyMirror, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = clone(remote, "hub")
    git(hub, "checkout", "-q", "--detach")
    assert sync(hub, mirror_server, "--push") == 1
    assert "HEAD is detached" in capsys.readouterr().err
    assert mirror_server.log == []
