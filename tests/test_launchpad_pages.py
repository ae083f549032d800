"""bench/launchpad_pages.py: what asking Launchpad per flavour saves, counted on the stand-in."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    path = REPO / "bench" / "launchpad_pages.py"
    spec = importlib.util.spec_from_file_location("launchpad_pages_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


pages = _load()


def test_flavour_queries_cost_fewer_pages_and_still_hold_every_wanted_dbgsym(
    tmp_path: Path,
) -> None:
    result = pages.measure(tmp_path)
    by = result["strategies"]
    wanted = {"generic", "aws", "azure", "gcp", "gke", "gkeop"}
    builds = sum(last - first + 1 for _, f, first, last in pages.BUILDS if f in wanted)
    # Both dbgsyms (signed and unsigned) of every wanted build, in both pockets.
    assert by["flavour"]["entries"] == builds * 2 * 2
    assert by["prefix"]["entries"] == result["publications"]
    assert by["flavour"]["pages"] * 3 < by["prefix"]["pages"]
    assert by["flavour"]["pages"] < by["series"]["pages"] < by["prefix"]["pages"]
