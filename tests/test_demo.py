"""The README's main job: `btfhub demo` runs offline, end to end, from a checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generator.cli import main
from generator.demo import table_of
from generator.errors import BtfhubError
from generator.render import BEGIN_MARKER, END_MARKER

REPO = Path(__file__).resolve().parent.parent


def test_demo_builds_both_example_kernels_and_keeps_them(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "generator", "demo", "--root", str(REPO), "--keep", str(keep)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "demo finished: every step succeeded" in out
    assert "bytes served by the mirror on the rerun: 0" in out
    # bpftool read the archived BTF back and found the fixture's struct.
    assert out.count("struct btfhub_fixture_task {") == 2
    hub = keep / "hub"
    built = sorted(p.relative_to(hub).as_posix() for p in (hub / "archive").rglob("*.btf.tar.xz"))
    assert built == [
        "archive/centos/7/x86_64/3.10.0-1160.99.1.el7.x86_64.btf.tar.xz",
        "archive/ubuntu/20.04/x86_64/5.4.0-1001-generic.btf.tar.xz",
    ]
    # The README sections printed are the two support tables, not the guide's
    # worked example whose heading also mentions Ubuntu.
    for title, heading in (("CentOS 7", "### [CentOS 7]("), ("Ubuntu", "### [Ubuntu](")):
        section = out.split(f"=== README.md: {title} ===\n", 1)[1].split("\n===", 1)[0]
        assert section.lstrip("\n").startswith(heading), section[:200]
        assert "| 20.04" in section if title == "Ubuntu" else "| 7.9.2009" in section
    # The demo works on a copy: the checkout's own archive and index stay untouched.
    assert not (REPO / "archive" / "ubuntu").exists()


def test_demo_refuses_a_non_empty_keep_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In process, through the same parsing and error handler (a second
    # interpreter proves nothing the test above does not).
    (tmp_path / "something").write_text("x")
    assert main(["demo", "--root", str(REPO), "--keep", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "must be empty" in err
    assert "Traceback" not in err


README = f"""# hub

### Worked example: a new Ubuntu HWE series

prose

{BEGIN_MARKER}
### [CentOS 7](https://example.org/centos)

| a |

### Ubuntu

| b |
{END_MARKER}
"""


@pytest.mark.parametrize(
    ("title", "table"),
    [
        ("Ubuntu", "### Ubuntu\n\n| b |"),
        ("CentOS 7", "### [CentOS 7](https://example.org/centos)\n\n| a |"),
    ],
)
def test_table_of_reads_the_generated_section_only(title: str, table: str) -> None:
    assert table_of(README, title) == table


def test_table_of_names_a_missing_table() -> None:
    with pytest.raises(BtfhubError, match="no 'Debian' table"):
        table_of(README, "Debian")
    with pytest.raises(BtfhubError, match="no generated support tables"):
        table_of("# hub\n", "Ubuntu")
