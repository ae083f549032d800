"""Splitting the missing kernels into N balanced shards (pure, no I/O).

Each build job of the GitHub Actions matrix re-plans on its own and takes its
share with ``select_shard(missing, ShardId(I, N))``; the plan job hands it nothing but
"I/N". That works because the split is a deterministic function of the plan
alone: same missing kernels in, same partition out, whatever order they came
in. (If upstream changes between the plan job and a build job, the two plans
differ and a kernel may be built twice or not at all this run: builds are
byte-reproducible so a duplicate merges as identical, and a skipped kernel is
simply still missing next run.)

Balance is by expected work: the package's size in bytes when upstream
published one (download and decompression dominate a build), else a default.
Longest-processing-time-first greedy: largest first, each to the least-loaded
shard. Kernels sharing an archive path produce one file, so they are one item
and always land in the same shard.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from generator.model import PlannedKernel, ShardId

# A typical debug package (Debian cloud ~280 MB, Ubuntu 0.9-1.7 GB).
DEFAULT_COST = 500 * 1024 * 1024


def expected_cost(kernel: PlannedKernel) -> int:
    if kernel.package is not None and kernel.package.size:
        return kernel.package.size
    return DEFAULT_COST


@dataclass(frozen=True)
class Shard:
    id: ShardId
    kernels: tuple[PlannedKernel, ...]  # sorted by archive path
    cost: int  # expected work, bytes

    @property
    def label(self) -> str:
        return self.id.label


def _sort_key(k: PlannedKernel) -> tuple[str, str, str, str, str]:
    return (k.archive_path, *k.id)


def split_plan(
    kernels: Sequence[PlannedKernel],
    n: int,
    cost: Callable[[PlannedKernel], int] = expected_cost,
) -> list[Shard]:
    """Exactly `n` disjoint shards covering `kernels` (some empty if there are fewer items)."""
    if n < 1:
        raise ValueError(f"the number of shards must be at least 1, not {n}")
    groups: dict[str, list[PlannedKernel]] = {}
    for k in kernels:
        groups.setdefault(k.archive_path, []).append(k)
    items = sorted(
        ((max(cost(k) for k in ks), path) for path, ks in groups.items()),
        key=lambda item: (-item[0], item[1]),
    )
    # (load, shard number): equal loads go to the lowest-numbered shard.
    heap = [(0, i) for i in range(n)]
    members: list[list[str]] = [[] for _ in range(n)]
    loads = [0] * n
    for item_cost, path in items:
        load, i = heapq.heappop(heap)
        members[i].append(path)
        loads[i] = load + item_cost
        heapq.heappush(heap, (loads[i], i))
    return [
        Shard(
            id=ShardId(i + 1, n),
            kernels=tuple(sorted((k for p in members[i] for k in groups[p]), key=_sort_key)),
            cost=loads[i],
        )
        for i in range(n)
    ]


def balance(shards: Sequence[Shard]) -> float:
    """max/min expected work over the non-empty shards (1.0 is perfect)."""
    costs = [s.cost for s in shards if s.kernels]
    if not costs:
        return 1.0
    low = min(costs)
    return max(costs) / low if low else float("inf")


def select_shard(missing: Sequence[PlannedKernel], shard: ShardId) -> list[PlannedKernel]:
    """The kernels of `shard` in the same split `split_plan` makes."""
    return list(split_plan(missing, shard.total)[shard.index - 1].kernels)


def shards_to_json(shards: Sequence[Shard]) -> dict[str, Any]:
    """The `plan --json --shards N` keys: a GitHub Actions matrix and each shard's work.

    The matrix lists only shards with work, under their real "I/N" labels,
    so a job never starts for nothing and `select_shard` still agrees. With
    no work at all the list is empty: the workflow must skip the build job
    then (an empty matrix is an error in GitHub Actions).
    """
    busy = [s for s in shards if s.kernels]
    ratio = balance(shards)
    return {
        "matrix": {"shard": [s.label for s in busy]},
        "shards": [
            {
                "shard": s.label,
                "expected_bytes": s.cost,
                "kernels": [
                    {
                        "distro": k.id.distro,
                        "release": k.id.release,
                        "arch": k.id.arch,
                        "uname": k.id.uname,
                        "archive_path": k.archive_path,
                    }
                    for k in s.kernels
                ],
            }
            for s in busy
        ],
        # JSON has no infinity: None when some shard has work expected to cost 0.
        "balance": None if math.isinf(ratio) else round(ratio, 4),
    }
