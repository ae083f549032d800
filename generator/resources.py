"""The files btfhub ships with its code, and the hub files it finds in a checkout.

Schemas and templates are package data (generator/schemas, generator/templates,
listed in pyproject's package-data), read through importlib.resources, so a
regular `pip install` (pre-commit's, say) has them wherever it puts the
package. The top-level schemas/ and templates/ of the repository are symlinks
to them, so manifests' `$schema=../schemas/...` lines keep working in editors.

find_resource is for files of the hub itself (the catalog's host rules):
beside the package in a checkout, else in the current directory (a command
run inside the hub's checkout).
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from generator.errors import BtfhubError

_SOURCE_TREE = Path(__file__).resolve().parent.parent
PACKAGE = "generator"


def package_file(relative: str) -> Traversable:
    """A file shipped inside the package, e.g. "schemas/index.schema.json"."""
    return resources.files(PACKAGE).joinpath(*relative.split("/"))


def read_package_text(relative: str) -> str:
    """The text of a shipped file; BtfhubError naming it when it cannot be read."""
    try:
        return package_file(relative).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BtfhubError(f"cannot read {relative} shipped with btfhub: {exc}") from None


def find_resource(relative: str) -> Path:
    candidates = (_SOURCE_TREE / relative, Path.cwd() / relative)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise BtfhubError(f"cannot find {relative} (tried {tried}); run btfhub from the hub's checkout")
