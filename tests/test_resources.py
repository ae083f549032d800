"""Schema and templates are found from an installed (non-editable) package too."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import resources
from generator.errors import BtfhubError

REPO = Path(__file__).resolve().parent.parent


def test_found_beside_the_package_in_a_checkout() -> None:
    assert resources.find_resource("schemas/manifest.schema.json") == (
        REPO / "schemas" / "manifest.schema.json"
    )


def test_installed_package_falls_back_to_the_checkout_it_runs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As under pre-commit: site-packages holds no schemas/, the cwd is the hub.
    monkeypatch.setattr(resources, "_SOURCE_TREE", tmp_path / "site-packages")
    monkeypatch.chdir(REPO)
    assert resources.find_resource("templates") == REPO / "templates"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BtfhubError, match="cannot find templates"):
        resources.find_resource("templates")
