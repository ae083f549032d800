"""Hostile manifests and plan files cannot reach outside the hub or off http(s).

A manifest is data a contributor sends in a pull request; CI runs
`reconcile` and `sync` on it with write access. Every name that becomes a
path and every URL that is fetched is checked before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.cli import main
from generator.errors import BtfhubError
from generator.model import UnsafeNameError, archive_path, is_archive_path
from generator.planner import plan_from_json
from tests.kit.manifests import edit, hub

HOSTILE_EDITS = [
    # (old text in GOOD, new text, expected message fragment)
    ("    url: http://deb.example/\n", "    url: file:///etc/\n", "is not a http(s) URL"),
    ("    url: http://deb.example/\n", "    url: ftp://deb.example/\n", "is not a http(s) URL"),
    (
        "    url: http://deb.example/\n",
        '    url: "http://deb.example/\\x01"\n',
        "control character '\\x01'",
    ),
    ('directory: "1"\n', 'directory: "../../etc"\n', "is not a directory name"),
    ('directory: "1"\n', 'directory: "a/b"\n', "is not a directory name"),
    ('directory: "1"\n', 'directory: ".."\n', "is not a directory name"),
    ('directory: "1"\n', 'directory: "1\\n"\n', "control character '\\n'"),
    ("archive_dir: example\n", 'archive_dir: "ex\\tample"\n', "control character '\\t'"),
    ("        suites: [one]\n", '        suites: ["../../x"]\n', "is not a suite or component"),
    ("        suites: [one]\n", '        suites: ["one/../.."]\n', "is not a suite or component"),
]


@pytest.mark.parametrize(("old", "new", "message"), HOSTILE_EDITS)
def test_validate_rejects_hostile_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, message: str
) -> None:
    root = hub(tmp_path, x=edit(old, new))
    assert main(["validate", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert message in out, out


@pytest.mark.parametrize(
    "path", ["../../etc/", "//evil.example/x/", "/srv/", "a/../../b/", "./x/", "a\\b"]
)
def test_rpm_md_paths_must_stay_below_the_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    text = edit("    kind: apt\n", "    kind: rpm-md\n")
    pattern = '    packages: ["linux-image-{uname}-dbg"]\n'
    text = edit(pattern, "    packages: [kernel-debuginfo]\n", text)
    text = edit("        suites: [one]\n", f"        paths: [{json.dumps(path)}]\n", text)
    root = hub(tmp_path, x=text)
    assert main(["validate", "--root", str(root)]) == 1
    assert "is not a relative path (no .., no leading /)" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["reconcile", "sync"])
def test_reconcile_and_sync_validate_before_writing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    root = hub(tmp_path, x=edit('directory: "1"\n', 'directory: "../../escape"\n'))
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    # Nothing listens on this port: a run that got past validation would fail
    # on the network, with another message.
    code = main(
        [command, "--root", str(root), "--mirror", "http://deb.example/=http://127.0.0.1:9/"]
    )
    assert code == 1
    assert "the catalog is invalid" in capsys.readouterr().err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert not (tmp_path.parent / "escape").exists()


@pytest.mark.parametrize(
    ("parts", "what"),
    [
        (("ubuntu", "..", "x86_64", "5.4.0-42-generic"), "release directory"),
        (("ubuntu", "20.04", "x86_64", "../../../etc/cron.d/x"), "kernel release"),
        (("ubuntu", "20.04", "x86_64", "5.4.0\n"), "kernel release"),
        (("ub/untu", "20.04", "x86_64", "5.4.0"), "archive directory"),
        (("ubuntu", "20.04", "x86 64", "5.4.0"), "architecture"),
        (("ubuntu", "20.04", "x86_64", ".hidden"), "kernel release"),
    ],
)
def test_archive_path_refuses_what_is_not_a_file_name(
    parts: tuple[str, str, str, str], what: str
) -> None:
    with pytest.raises(UnsafeNameError, match=f"refusing {what}"):
        archive_path(*parts)


def test_archive_path_shape() -> None:
    good = archive_path("ubuntu", "20.04", "x86_64", "5.4.0-42-generic")
    assert is_archive_path(good)
    for bad in (
        "archive/ubuntu/20.04/x86_64/../../../../etc/passwd.btf.tar.xz",
        "archive/ubuntu/20.04/amd64/5.4.0.btf.tar.xz",
        "archive/ubuntu/20.04/x86_64/5.4.0.btf",
        "/archive/ubuntu/20.04/x86_64/5.4.0.btf.tar.xz",
        "archive/ubuntu/20.04/x86_64/5.4.0\n.btf.tar.xz",
    ):
        assert not is_archive_path(bad), bad


def _plan_doc(archive: str, url: str) -> dict[str, object]:
    return {
        "errors": [],
        "kernels": [
            {
                "distro": "ubuntu",
                "release": "focal",
                "arch": "x86_64",
                "uname": "5.4.0-42-generic",
                "state": "missing",
                "archive_path": archive,
                "reason": None,
                "package": {
                    "name": "linux-image-5.4.0-42-generic-dbgsym",
                    "version": "1",
                    "url": url,
                    "size": 1,
                    "sha256": "0" * 64,
                    "repository": "ubuntu-ddebs",
                    "filename": "pool/x.ddeb",
                    "format": "deb",
                },
            }
        ],
    }


GOOD_PATH = "archive/ubuntu/20.04/x86_64/5.4.0-42-generic.btf.tar.xz"


def test_plan_file_is_checked_like_a_manifest() -> None:
    assert len(plan_from_json(_plan_doc(GOOD_PATH, "http://x/p.ddeb")).kernels) == 1
    with pytest.raises(BtfhubError, match="not of the archive layout"):
        plan_from_json(_plan_doc("archive/../../../root/.bashrc", "http://x/p.ddeb"))
    with pytest.raises(BtfhubError, match="is not http"):
        plan_from_json(_plan_doc(GOOD_PATH, "file:///etc/shadow"))
