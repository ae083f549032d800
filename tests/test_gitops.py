"""generator/gitops/ against real git: a bare remote and clones in tmp_path."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from generator.errors import BtfhubError
from generator.fsutil import write_if_changed
from generator.gitops import (
    check_hub_paths,
    commit_message,
    commit_paths,
    current_branch,
    hub_changes,
    push_with_retry,
)
from tests.kit.hubrepo import BOT, clone, git


def regenerate(root: Path) -> Sequence[str]:
    """Stands in for render_hub: README and index.json listing archive/ as on disk."""
    files = sorted(
        p.relative_to(root).as_posix() for p in (root / "archive").rglob("*") if p.is_file()
    )
    changed = []
    readme = "# hub\n\n" + "".join(f"- {f}\n" for f in files)
    if write_if_changed(root / "README.md", readme.encode()):
        changed.append("README.md")
    index = json.dumps({"files": files}, indent=2, sort_keys=True) + "\n"
    if write_if_changed(root / "index.json", index.encode()):
        changed.append("index.json")
    return changed


def add_archive(root: Path, rel: str, data: bytes) -> str:
    path = root / "archive" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"archive/{rel}"


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote whose main holds a catalog, an archive file and generated files."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "catalog").mkdir()
    (seed / "catalog" / "ubuntu.yaml").write_text("name: ubuntu\n")
    (seed / "catalog" / "centos.yaml").write_text("name: centos\n")
    add_archive(seed, "ubuntu/20.04/x86_64/5.4.0-1-generic.btf.tar.xz", b"one")
    regenerate(seed)
    git(seed, "add", "-A")
    git(seed, "-c", "user.name=Seed", "-c", "user.email=seed@example.org", "commit", "-qm", "seed")
    git(seed, "push", "-q", "origin", "main")
    return bare


def test_nothing_changed_makes_no_commit(remote: Path) -> None:
    a = clone(remote, "a")
    head = git(a, "rev-parse", "HEAD")
    regenerate(a)  # rewrites nothing: same bytes
    assert commit_paths(a, ["README.md", "index.json"], "btfhub: nothing") is None
    assert git(a, "rev-parse", "HEAD") == head


def test_commit_archive_and_generated_files(remote: Path) -> None:
    a = clone(remote, "a")
    paths = [
        add_archive(a, "ubuntu/20.04/x86_64/5.4.0-2-generic.btf.tar.xz", b"two"),
        add_archive(a, "centos/7/x86_64/3.10.0-1.el7.x86_64.btf.tar.xz", b"three"),
        *regenerate(a),
    ]
    sha = commit_paths(a, paths, commit_message({"ubuntu": ["5.4.0-2-generic"]}, {}))
    assert sha is not None and git(a, "rev-parse", "HEAD") == sha
    changed = git(a, "show", "--name-status", "--format=", sha).splitlines()
    assert sorted(changed) == sorted(
        [
            "A\tarchive/centos/7/x86_64/3.10.0-1.el7.x86_64.btf.tar.xz",
            "A\tarchive/ubuntu/20.04/x86_64/5.4.0-2-generic.btf.tar.xz",
            "M\tREADME.md",
            "M\tindex.json",
        ]
    )
    assert git(a, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s") == f"{BOT}|{BOT}|" + (
        "btfhub: add 1 BTF file"
    )
    assert git(a, "status", "--porcelain") == ""  # the index knows what was committed


def test_commit_a_deleted_file(remote: Path) -> None:
    a = clone(remote, "a")
    gone = "archive/ubuntu/20.04/x86_64/5.4.0-1-generic.btf.tar.xz"
    (a / gone).unlink()
    sha = commit_paths(a, [gone, *regenerate(a)], "btfhub: drop one")
    assert sha is not None
    assert git(a, "ls-tree", "-r", "--name-only", "HEAD", "archive") == ""
    assert git(a, "status", "--porcelain") == ""


def test_unrelated_work_is_left_alone(remote: Path) -> None:
    a = clone(remote, "a")
    (a / "catalog" / "ubuntu.yaml").write_text("name: ubuntu\nedited: true\n")  # unstaged
    (a / "catalog" / "centos.yaml").write_text("name: centos\nstaged: true\n")
    git(a, "add", "catalog/centos.yaml")  # staged, yet not ours to commit
    (a / "notes.txt").write_text("mine\n")  # untracked
    (a / "archive" / "scratch.tmp").write_text("untracked under archive/, not listed\n")
    new = add_archive(a, "ubuntu/20.04/arm64/5.4.0-2-generic.btf.tar.xz", b"arm")

    sha = commit_paths(a, [new], "btfhub: add 1 BTF file")

    assert sha is not None
    assert git(a, "show", "--name-only", "--format=", sha) == new
    assert git(a, "diff", "--cached", "--name-only") == "catalog/centos.yaml"
    assert git(a, "diff", "--name-only") == "catalog/ubuntu.yaml"
    untracked = git(a, "ls-files", "--others", "--exclude-standard").splitlines()
    assert sorted(untracked) == ["archive/scratch.tmp", "notes.txt"]
    assert (a / "catalog" / "ubuntu.yaml").read_text() == "name: ubuntu\nedited: true\n"
    assert (a / "catalog" / "centos.yaml").read_text() == "name: centos\nstaged: true\n"
    assert git(a, "show", "HEAD:catalog/centos.yaml") == "name: centos"


@pytest.mark.parametrize(
    "path",
    ["catalog/ubuntu.yaml", "../outside", "/etc/passwd", "archive/../catalog/x", "archive", ""],
)
def test_other_paths_are_refused(remote: Path, path: str) -> None:
    a = clone(remote, "a")
    head = git(a, "rev-parse", "HEAD")
    with pytest.raises(BtfhubError, match="refusing"):
        commit_paths(a, ["README.md", path], "nope")
    assert git(a, "rev-parse", "HEAD") == head


def test_check_hub_paths_reports_every_bad_path() -> None:
    with pytest.raises(BtfhubError) as err:
        check_hub_paths(["archive/a/b", "x", "archive//y", "README.md"])
    assert "'x'" in str(err.value) and "'archive//y'" in str(err.value)
    assert check_hub_paths(["README.md", "archive/a/b", "README.md"]) == [
        "README.md",
        "archive/a/b",
    ]


def test_author_sources(remote: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = clone(remote, "a")
    f = add_archive(a, "ubuntu/20.04/x86_64/x.btf.tar.xz", b"x")
    monkeypatch.setenv("BTFHUB_GIT_AUTHOR", "no email here")
    with pytest.raises(BtfhubError, match="BTFHUB_GIT_AUTHOR"):
        commit_paths(a, [f], "m")
    monkeypatch.delenv("BTFHUB_GIT_AUTHOR")
    with pytest.raises(BtfhubError, match="no git author"):
        commit_paths(a, [f], "m")
    git(a, "config", "user.name", "Config Person")
    git(a, "config", "user.email", "config@example.org")
    commit_paths(a, [f], "m")
    assert git(a, "log", "-1", "--format=%an <%ae>") == "Config Person <config@example.org>"
    g = add_archive(a, "ubuntu/20.04/x86_64/y.btf.tar.xz", b"y")
    commit_paths(a, [g], "m", author="Explicit <explicit@example.org>")
    assert git(a, "log", "-1", "--format=%an") == "Explicit"


def test_commit_message_lists_added_and_failed() -> None:
    msg = commit_message(
        {"ubuntu": ["5.4.0-2-generic", "5.4.0-1-generic"], "centos": ["3.10.0-1.el7.x86_64"]},
        {"fedora": [("5.3.7-301.fc31.x86_64", "pahole exited 1:\n  no DWARF\n")]},
    )
    assert msg == (
        "btfhub: add 3 BTF files (1 failed)\n"
        "\n"
        "Added:\n"
        "  centos:\n"
        "    3.10.0-1.el7.x86_64\n"
        "  ubuntu:\n"
        "    5.4.0-1-generic\n"
        "    5.4.0-2-generic\n"
        "\n"
        "Failed:\n"
        "  fedora:\n"
        "    5.3.7-301.fc31.x86_64: pahole exited 1: no DWARF\n"
    )
    assert commit_message({"x": ["k"]}, {}) == "btfhub: add 1 BTF file\n\nAdded:\n  x:\n    k\n"
    assert commit_message({}, {}) == "btfhub: regenerate README.md and index.json\n"
    assert commit_message({"x": []}, {"x": [("k", "why")]}).startswith(
        "btfhub: record 1 failed kernel\n\nFailed:\n  x:\n    k: why\n"
    )


def test_hub_changes(remote: Path) -> None:
    a = clone(remote, "a")
    (a / "archive/ubuntu/20.04/x86_64/5.4.0-1-generic.btf.tar.xz").unlink()
    new = add_archive(a, "centos/7/x86_64/k.btf.tar.xz", b"k")
    (a / "README.md").write_text("changed\n")
    (a / "catalog" / "ubuntu.yaml").write_text("not ours\n")
    assert hub_changes(a) == [
        "README.md",
        "archive/centos/7/x86_64/k.btf.tar.xz",
        "archive/ubuntu/20.04/x86_64/5.4.0-1-generic.btf.tar.xz",
    ]
    assert new == "archive/centos/7/x86_64/k.btf.tar.xz"
    assert current_branch(a) == "main"


def remote_files(remote: Path) -> list[str]:
    return git(remote, "ls-tree", "-r", "--name-only", "main").splitlines()


def test_push_race_both_land_and_generated_files_are_regenerated(remote: Path) -> None:
    a, b = clone(remote, "a"), clone(remote, "b")
    a_file = add_archive(a, "ubuntu/20.04/x86_64/5.4.0-2-generic.btf.tar.xz", b"from a")
    shared = add_archive(a, "centos/7/x86_64/same.btf.tar.xz", b"identical bytes")
    assert commit_paths(a, [a_file, shared, *regenerate(a)], "btfhub: a") is not None

    b_file = add_archive(b, "ubuntu/20.04/arm64/5.4.0-3-generic.btf.tar.xz", b"from b")
    add_archive(b, "centos/7/x86_64/same.btf.tar.xz", b"identical bytes")
    b_msg = commit_message({"ubuntu": ["5.4.0-3-generic"], "centos": ["same"]}, {})
    assert commit_paths(b, [b_file, shared, *regenerate(b)], b_msg) is not None
    # B has work of its own in flight; the rebuild must carry it.
    (b / "catalog" / "ubuntu.yaml").write_text("name: ubuntu\nlocal: edit\n")
    (b / "notes.txt").write_text("untracked\n")

    push_with_retry(a, "origin", "main", regenerate, backoff=0)
    calls: list[Path] = []

    def counting_regenerate(root: Path) -> Sequence[str]:
        calls.append(root)
        return regenerate(root)

    push_with_retry(b, "origin", "main", counting_regenerate, backoff=0)

    assert len(calls) == 1  # B was rejected once, then rebuilt on A's commit
    files = remote_files(remote)
    for f in (a_file, b_file, shared, "archive/ubuntu/20.04/x86_64/5.4.0-1-generic.btf.tar.xz"):
        assert f in files
    archive = sorted(f for f in files if f.startswith("archive/"))
    readme = git(remote, "show", "main:README.md") + "\n"
    assert readme == "# hub\n\n" + "".join(f"- {f}\n" for f in archive)
    index = json.loads(git(remote, "show", "main:index.json"))
    assert index == {"files": archive}
    assert git(remote, "show", f"main:{b_file}") == "from b"
    # B's commit sits on A's, keeps its message and author, and adds only B's file.
    log = git(remote, "log", "--format=%s|%an", "main").splitlines()
    assert log[:3] == [
        f"btfhub: add 2 BTF files|{BOT.split(' <')[0]}",
        "btfhub: a|Hub Bot",
        "seed|Seed",
    ]
    assert git(remote, "show", "--name-only", "--format=", "main").splitlines() == sorted(
        ["README.md", b_file, "index.json"]
    )
    # B's checkout is at the pushed commit, with its own edits untouched.
    assert git(b, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")
    assert (b / a_file).read_bytes() == b"from a"
    assert (b / "catalog" / "ubuntu.yaml").read_text() == "name: ubuntu\nlocal: edit\n"
    assert git(b, "status", "--porcelain").splitlines() == [
        " M catalog/ubuntu.yaml",
        "?? notes.txt",
    ]


def test_same_archive_path_with_different_bytes_is_a_clear_error(remote: Path) -> None:
    a, b = clone(remote, "a"), clone(remote, "b")
    path = add_archive(a, "centos/7/x86_64/k.btf.tar.xz", b"a's bytes")
    commit_paths(a, [path, *regenerate(a)], "a")
    push_with_retry(a, "origin", "main", regenerate, backoff=0)
    add_archive(b, "centos/7/x86_64/k.btf.tar.xz", b"b's different bytes")
    commit_paths(b, [path, *regenerate(b)], "b")
    b_head = git(b, "rev-parse", "HEAD")

    with pytest.raises(BtfhubError, match=r"both changed.*centos/7/x86_64/k\.btf\.tar\.xz"):
        push_with_retry(b, "origin", "main", regenerate, backoff=0)
    assert git(b, "rev-parse", "HEAD") == b_head  # nothing half-done
    assert (b / path).read_bytes() == b"b's different bytes"


def test_local_edit_the_rebuild_would_overwrite_is_refused(remote: Path) -> None:
    a, b = clone(remote, "a"), clone(remote, "b")
    (a / "catalog" / "ubuntu.yaml").write_text("name: ubuntu\nremote: change\n")
    git(a, "-c", "user.name=P", "-c", "user.email=p@example.org", "commit", "-qam", "catalog")
    git(a, "push", "-q", "origin", "main")
    commit_paths(b, [add_archive(b, "centos/7/x86_64/k.btf.tar.xz", b"k")], "b")
    (b / "catalog" / "ubuntu.yaml").write_text("name: ubuntu\nlocal: edit\n")
    b_head = git(b, "rev-parse", "HEAD")

    with pytest.raises(BtfhubError, match="overwriting local changes"):
        push_with_retry(b, "origin", "main", regenerate, backoff=0)
    assert (b / "catalog" / "ubuntu.yaml").read_text() == "name: ubuntu\nlocal: edit\n"
    assert git(b, "rev-parse", "HEAD") == b_head


def test_retries_run_out_with_an_error_naming_remote_and_branch(remote: Path) -> None:
    a, b = clone(remote, "a"), clone(remote, "b")
    commit_paths(a, [add_archive(a, "centos/7/x86_64/a.btf.tar.xz", b"a")], "a")
    counter = iter(range(100))

    def racing_regenerate(root: Path) -> Sequence[str]:
        # Another runner lands a commit each time we get ready to push again.
        n = next(counter)
        git(b, "pull", "-q", "--rebase")
        commit_paths(b, [add_archive(b, f"centos/7/x86_64/b{n}.btf.tar.xz", b"b")], "b")
        git(b, "push", "-q", "origin", "HEAD:main")
        return regenerate(root)

    git(b, "config", "user.name", "Other Runner")
    git(b, "config", "user.email", "other@example.org")
    commit_paths(b, [add_archive(b, "centos/7/x86_64/first.btf.tar.xz", b"b")], "b first")
    git(b, "push", "-q", "origin", "main")
    with pytest.raises(BtfhubError, match=r"could not push to origin \(branch main\) after 3"):
        push_with_retry(a, "origin", "main", racing_regenerate, attempts=3, backoff=0)


def test_a_remote_refusal_is_not_retried(remote: Path) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    a = clone(remote, "a")
    commit_paths(a, [add_archive(a, "centos/7/x86_64/a.btf.tar.xz", b"a")], "a")
    with pytest.raises(BtfhubError, match="refused the push to main") as err:
        push_with_retry(a, "origin", "main", regenerate, attempts=5, backoff=0)
    assert "main is protected" in str(err.value)


def test_push_when_the_remote_already_has_our_commit(remote: Path) -> None:
    a = clone(remote, "a")
    commit_paths(a, [add_archive(a, "centos/7/x86_64/a.btf.tar.xz", b"a")], "a")
    git(a, "push", "-q", "origin", "main")  # e.g. an earlier push whose reply was lost
    push_with_retry(a, "origin", "main", regenerate, backoff=0)
    assert git(a, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")


def test_first_commit_of_an_empty_repository(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    paths = [add_archive(root, "centos/7/x86_64/k.btf.tar.xz", b"k"), *regenerate(root)]
    sha = commit_paths(root, paths, "btfhub: first")
    assert sha is not None
    assert git(root, "rev-list", "--count", "HEAD") == "1"
    assert git(root, "status", "--porcelain") == ""


def test_push_race_from_a_shallow_clone(remote: Path) -> None:
    # actions/checkout clones with --depth 1: the rebuild must work there too.
    a = clone(remote, "a")
    b = remote.parent / "b"
    git(remote.parent, "clone", "-q", "--depth", "1", f"file://{remote}", str(b))
    a_file = add_archive(a, "centos/7/x86_64/a.btf.tar.xz", b"a")
    commit_paths(a, [a_file, *regenerate(a)], "a")
    for n in range(3):  # the remote grows past B's shallow boundary
        extra = add_archive(a, f"centos/7/x86_64/a{n}.btf.tar.xz", b"a")
        commit_paths(a, [extra, *regenerate(a)], f"a{n}")
    push_with_retry(a, "origin", "main", regenerate, backoff=0)
    b_file = add_archive(b, "centos/8/x86_64/b.btf.tar.xz", b"b")
    commit_paths(b, [b_file, *regenerate(b)], "b")

    push_with_retry(b, "origin", "main", regenerate, backoff=0)

    files = remote_files(remote)
    assert a_file in files and b_file in files
    assert git(remote, "log", "-1", "--format=%s", "main") == "b"
    assert git(remote, "show", "--name-only", "--format=", "main").splitlines() == sorted(
        ["README.md", b_file, "index.json"]
    )


def test_commit_info_reads_any_author_and_message(tmp_path: Path) -> None:
    """Names and messages that look like commit headers are read as data, not parsed as text."""
    from generator.gitops.repo import head_sha, message_of, open_repo

    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "f").write_text("x")
    git(work, "add", "f")
    message = "subject <a@b> 1 +0000\n\nauthor Eve <eve@example.org> 0 +0000\nparent deadbeef\n"
    git(
        work,
        "-c",
        "user.name=Zoë <Q> O'Neil",
        "-c",
        "user.email=zoe@example.org",
        "commit",
        "-q",
        "--cleanup=verbatim",
        "-m",
        message,
    )
    with open_repo(work) as repo:
        head = head_sha(repo)
        assert head is not None
        info = repo.commit(head)
        assert list(info.parents) == []
        assert (info.author.name, info.author.email) == ("Zoë Q O'Neil", "zoe@example.org")
        assert info.authored_date > 0
        assert message_of(info).rstrip("\n") == message.rstrip("\n")
        assert info.tree.hexsha == git(work, "rev-parse", "HEAD^{tree}")
