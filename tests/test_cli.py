"""The command line: one error handler, and only the chosen command is imported."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.cli import COMMANDS, main

REPO = Path(__file__).resolve().parent.parent


def fresh_interpreter(code: str) -> str:
    """The last line `code` prints in a new interpreter: what it imports, nothing before."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return out.splitlines()[-1]


def test_validate_loads_neither_http_nor_git_nor_templates() -> None:
    # Nor jsonschema: it words the problems of a rejected manifest, and this one is valid.
    code = (
        "import sys\n"
        "from generator.cli import main\n"
        f"rc = main(['validate', '--root', {str(REPO)!r}])\n"
        "heavy = sorted({'requests', 'jinja2', 'git', 'jsonschema'} & set(sys.modules))\n"
        "print(rc, heavy)\n"
    )
    assert fresh_interpreter(code) == "0 []"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name, (_, help_text) in COMMANDS.items():
        assert name in out
        assert help_text in out


def test_help_imports_no_command() -> None:
    """`btfhub --help` lists the commands by their help lines: no command module loads."""
    code = (
        "import sys\n"
        "from generator.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    loaded = sorted(m for m in sys.modules if m.startswith('generator.commands.'))\n"
        "    print(exc.code, loaded)\n"
    )
    assert fresh_interpreter(code) == "0 []"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bogus"])
    assert exc.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_plan_file_goes_with_a_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"kernels": [], "errors": []}')
    hub = tmp_path / "hub"
    shutil.copytree(REPO / "catalog", hub / "catalog")  # manifests and their keys
    assert main(["reconcile", "--root", str(hub), "--plan", str(plan)]) == 1
    assert "--plan FILE goes with --shard I/N" in capsys.readouterr().err
    assert not (hub / "archive").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    args = ["--shard", "1/1", "--output", str(tmp_path / "out"), "--plan", str(bad)]
    assert main(["reconcile", "--root", str(hub), *args]) == 1
    assert f"--plan {bad}: cannot read it" in capsys.readouterr().err
