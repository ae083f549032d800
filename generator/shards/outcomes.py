"""The outcomes file: the failed / ships-btf kernels `btfhub merge --outcomes FILE` hands on.

A JSON list (schemas/outcomes.schema.json), sorted, which `btfhub sync
--skip-build --outcomes FILE` records in index.json. A shard manifest's
"outcomes" holds the same list.
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

# The outcomes a shard hands on: a built kernel is its file, not an outcome.
HANDED_ON = (KernelState.FAILED, KernelState.SHIPS_BTF)


def sorted_outcomes(outcomes: Iterable[KernelOutcome]) -> tuple[KernelOutcome, ...]:
    """Deduplicated, sorted by kernel, then state and reason."""
    return tuple(sorted(set(outcomes), key=lambda o: (o.kernel, o.state.value, o.reason or "")))


def outcomes_to_json(outcomes: Iterable[KernelOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "distro": o.kernel.distro,
            "release": o.kernel.release,
            "arch": o.kernel.arch,
            "uname": o.kernel.uname,
            "state": o.state.value,
            "reason": o.reason,
        }
        for o in sorted_outcomes(outcomes)
    ]


def outcomes_from_json(raw: list[dict[str, Any]]) -> tuple[KernelOutcome, ...]:
    """The outcomes of a list already checked against schemas/outcomes.schema.json."""
    return sorted_outcomes(
        KernelOutcome(
            KernelId(item["distro"], item["release"], item["arch"], item["uname"]),
            KernelState(item["state"]),
            item["reason"],
        )
        for item in raw
    )


def write_outcomes(path: Path, outcomes: Iterable[KernelOutcome]) -> None:
    atomic_write(path, dump_json(outcomes_to_json(outcomes)))


def read_outcomes(path: Path) -> tuple[KernelOutcome, ...]:
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BtfhubError(f"{path}: cannot read outcomes: {exc}") from None
    jsonschemas.check(raw, jsonschemas.OUTCOMES_SCHEMA, str(path))
    return outcomes_from_json(raw)
