"""Where the schema and the templates are found.

They live at the top of the hub's repository (schemas/, templates/), beside
the generator package in a checkout or an editable install. A regular
install (pre-commit installs the repository with `pip install .` into its
own environment) leaves them behind, but then the command runs inside the
checkout, so the current directory is tried next.
"""

from __future__ import annotations

from pathlib import Path

from generator.errors import BtfhubError

_SOURCE_TREE = Path(__file__).resolve().parent.parent


def find_resource(relative: str) -> Path:
    candidates = (_SOURCE_TREE / relative, Path.cwd() / relative)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise BtfhubError(f"cannot find {relative} (tried {tried}); run btfhub from the hub's checkout")
