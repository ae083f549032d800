"""A digest of btfhub's own code: what a memo kept from one run to the next was made by.

A memo (upstream/sourcememo.py, hub/rendermemo.py) stands for work a run
did; another version of the code that did it may do it differently, so a
memo is used only by the very code that made it. The source files are read
and hashed (about a megabyte for the whole package, a few milliseconds),
not their modification times, which a fresh clone or a copied tree changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType


def code_digest(
    label: str,
    packages: Iterable[ModuleType],
    suffixes: tuple[str, ...] = (".py",),
    recursive: bool = False,
) -> str:
    """SHA-256 of label and each package's files with these suffixes (with recursive:
    its subpackages' and resources' too), each named by its path in the package."""
    digest = hashlib.sha256(label.encode())
    for package in packages:
        base = Path(package.__path__[0])
        found = base.rglob("*") if recursive else base.iterdir()
        files = sorted(
            (path.relative_to(base).as_posix(), path)
            for path in found
            if path.suffix in suffixes and "__pycache__" not in path.parts and path.is_file()
        )
        for name, path in files:
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
