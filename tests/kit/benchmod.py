"""bench/ scripts imported by the tests that check them (bench/ is no package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent.parent / "bench"


def load_bench(stem: str, name: str | None = None) -> ModuleType:
    """bench/<stem>.py as module `name` (registered: dataclasses look their module up),
    loaded once. By path, not by name: PyPI has a `coverage` package too."""
    if (name or stem) in sys.modules:
        return sys.modules[name or stem]
    spec = importlib.util.spec_from_file_location(name or stem, BENCH / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
