"""What a command imports before it runs: the heavy libraries only where they are used.

GitPython and Jinja each take about 0.1 s to import. A reconcile imports
neither until it touches git (a git hub's scan of archive/, a commit) or
renders tables (README.md composed), so an OCI hub's no-op, a settled
render (hub/rendermemo.py) and a consumer's lookup never pay for them.
Checked in a fresh interpreter: this one has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

LAZY = ("git", "jinja2")


@pytest.mark.parametrize(
    "module",
    ["generator.cli", "generator.commands.reconcile", "generator.commands.lookup"],
)
def test_a_command_imports_neither_gitpython_nor_jinja_before_it_needs_them(
    module: str,
) -> None:
    script = f"import sys, {module}; print(*(m for m in {LAZY!r} if m in sys.modules))"
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert found == []


def test_their_names_are_there_when_asked_for() -> None:
    script = (
        "import sys\n"
        "from generator import gitops, render\n"
        "assert 'git' not in sys.modules\n"
        "print(gitops.clean_blobs.__module__, gitops.GitError.__name__)\n"
        "render._environment()\n"
        "print('git' in sys.modules, 'jinja2' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["generator.gitops.paths", "GitError", "True", "True"]


def test_a_name_gitops_does_not_have_is_an_attribute_error() -> None:
    from generator import gitops

    with pytest.raises(AttributeError, match="no_such_name"):
        gitops.no_such_name  # noqa: B018
