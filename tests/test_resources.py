"""Schemas and templates ship inside the package; hub files are found from a checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from generator import resources
from generator.errors import BtfhubError

REPO = Path(__file__).resolve().parent.parent


def test_schemas_and_templates_are_package_data() -> None:
    schema = json.loads(resources.read_package_text("schemas/manifest.schema.json"))
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert resources.package_file("templates/support-tables.md.j2").is_file()
    with pytest.raises(BtfhubError, match="shipped with btfhub"):
        resources.read_package_text("schemas/no-such.schema.json")


def test_top_level_dirs_point_at_the_package_data() -> None:
    # Editors read `$schema=../schemas/manifest.schema.json` from a manifest.
    assert (REPO / "schemas").resolve() == REPO / "generator" / "schemas"
    assert (REPO / "templates").resolve() == REPO / "generator" / "templates"


# What a build from a checkout must not see: setuptools writes build/ and
# *.egg-info into the tree it builds, so the test builds a copy in its temp dir.
NOT_SOURCE = (".git", ".venv", ".tools", "build", "*.egg-info", "__pycache__", ".*_cache")


# A PEP 517 frontend's one call for a wheel (pip's, without build isolation):
# the backend pyproject.toml names, in a process of its own, in the source tree.
# Without pip's own start and checks, a third of the CPU of `pip wheel`.
BUILD_WHEEL = """\
import importlib, sys, tomllib
with open("pyproject.toml", "rb") as f:
    backend = tomllib.load(f)["build-system"]["build-backend"]
importlib.import_module(backend).build_wheel(sys.argv[1])
"""


def test_a_built_wheel_carries_every_schema_and_template(tmp_path: Path) -> None:
    """What pip installs (pre-commit's environment, say) has them without the checkout."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE), symlinks=True)
    subprocess.run(
        [sys.executable, "-c", BUILD_WHEEL, str(tmp_path)],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("btfhub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"generator/{p.relative_to(REPO / 'generator').as_posix()}"
        for d in ("schemas", "templates", "site/static")
        for p in (REPO / "generator" / d).iterdir()
    }
    assert shipped and shipped <= names
    assert not any(n.startswith("tests/") for n in names)


def test_hub_files_are_found_beside_the_package_or_in_the_checkout_it_runs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = "catalog/hosts/os-release.yaml"
    assert resources.find_resource(rules) == REPO / rules
    # As under pre-commit: site-packages holds no catalog/, the cwd is the hub.
    monkeypatch.setattr(resources, "_SOURCE_TREE", tmp_path / "site-packages")
    monkeypatch.chdir(REPO)
    assert resources.find_resource(rules) == REPO / rules
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BtfhubError, match="cannot find catalog/hosts"):
        resources.find_resource(rules)
