"""The outcomes file: what `btfhub merge --outcomes FILE` hands on to `sync`.

A JSON list (schemas/outcomes.schema.json), sorted, which `btfhub sync
--skip-build --outcomes FILE` records in index.json: failed and ships-btf
kernels, and built ones with their file's provenance (a built file is
otherwise just its file). A shard manifest's "outcomes" holds the same list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from generator import jsonschemas
from generator.errors import BtfhubError
from generator.fsutil import atomic_write, dump_json
from generator.model import KernelId, KernelOutcome, KernelState
from generator.provenance.record import provenance_from_json, provenance_to_json

# The outcomes a shard hands on; a built kernel only with its provenance.
HANDED_ON = (KernelState.FAILED, KernelState.SHIPS_BTF)


def handed_on(outcome: KernelOutcome) -> bool:
    return outcome.state in HANDED_ON or outcome.provenance is not None


def sorted_outcomes(outcomes: Iterable[KernelOutcome]) -> tuple[KernelOutcome, ...]:
    """Deduplicated, sorted by kernel, then state and reason."""
    return tuple(sorted(set(outcomes), key=lambda o: (o.kernel, o.state.value, o.reason or "")))


def _outcome_json(o: KernelOutcome) -> dict[str, Any]:
    item: dict[str, Any] = {
        "distro": o.kernel.distro,
        "release": o.kernel.release,
        "arch": o.kernel.arch,
        "uname": o.kernel.uname,
        "state": o.state.value,
        "reason": o.reason,
    }
    if o.provenance is not None:
        item["provenance"] = provenance_to_json(o.provenance)
    return item


def outcomes_to_json(outcomes: Iterable[KernelOutcome]) -> list[dict[str, Any]]:
    return [_outcome_json(o) for o in sorted_outcomes(outcomes)]


def outcomes_from_json(raw: list[dict[str, Any]]) -> tuple[KernelOutcome, ...]:
    """The outcomes of a list already checked against schemas/outcomes.schema.json."""
    outcomes = []
    for item in raw:
        kernel = KernelId(item["distro"], item["release"], item["arch"], item["uname"])
        prov = provenance_from_json(kernel, item["provenance"]) if "provenance" in item else None
        outcomes.append(KernelOutcome(kernel, KernelState(item["state"]), item["reason"], prov))
    return sorted_outcomes(outcomes)


def write_outcomes(path: Path, outcomes: Iterable[KernelOutcome]) -> None:
    atomic_write(path, dump_json(outcomes_to_json(outcomes)))


def read_outcomes(path: Path) -> tuple[KernelOutcome, ...]:
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BtfhubError(f"{path}: cannot read outcomes: {exc}") from None
    jsonschemas.check(raw, jsonschemas.OUTCOMES_SCHEMA, str(path))
    return outcomes_from_json(raw)
