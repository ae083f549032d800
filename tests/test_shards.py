"""split_plan / select_shard / shards_to_json: plain data in, plain data out."""

from __future__ import annotations

import json
import random

import pytest

from generator.model import (
    KernelId,
    KernelPackage,
    KernelState,
    PlannedKernel,
    ShardId,
    archive_path,
)
from generator.shards.split import (
    DEFAULT_COST,
    balance,
    expected_cost,
    select_shard,
    shards_to_json,
    split_plan,
)


def kernel(
    uname: str, size: int | None, arch: str = "x86_64", release: str = "focal"
) -> PlannedKernel:
    package = None
    if size is not None:
        package = KernelPackage(
            uname=uname,
            arch=arch,
            name=f"linux-image-{uname}-dbgsym",
            version="1",
            url=f"http://example.org/{uname}.ddeb",
            size=size,
            sha256="0" * 64,
            repository="ddebs",
            filename=f"{uname}.ddeb",
            format="deb",
        )
    return PlannedKernel(
        id=KernelId("ubuntu", release, arch, uname),
        state=KernelState.MISSING,
        package=package,
        archive_path=archive_path("ubuntu", "20.04", arch, uname),
    )


def many(n: int, seed: int = 7) -> list[PlannedKernel]:
    rng = random.Random(seed)
    return [kernel(f"5.4.0-{i}-generic", int(rng.lognormvariate(19.5, 0.5))) for i in range(n)]


def test_disjoint_and_covering() -> None:
    kernels = many(301)
    shards = split_plan(kernels, 7)
    assert [s.label for s in shards] == [f"{i}/7" for i in range(1, 8)]
    seen = [k for s in shards for k in s.kernels]
    assert len(seen) == len(kernels)
    assert set(seen) == set(kernels)
    for s in shards:
        assert s.cost == sum(expected_cost(k) for k in s.kernels)


def test_balanced_by_package_size() -> None:
    shards = split_plan(many(400), 8)
    assert balance(shards) <= 1.05


def test_longest_first_greedy_assignment() -> None:
    kernels = [kernel(n, size) for n, size in [("a", 10), ("b", 9), ("c", 8), ("d", 1), ("e", 1)]]
    shards = split_plan(kernels, 2)
    assert [sorted(k.id.uname for k in s.kernels) for s in shards] == [["a", "d", "e"], ["b", "c"]]
    assert [s.cost for s in shards] == [12, 17]
    assert balance(shards) == pytest.approx(17 / 12)


def test_deterministic_whatever_the_input_order() -> None:
    kernels = many(200)
    shuffled = kernels[:]
    random.Random(1).shuffle(shuffled)
    assert split_plan(kernels, 6) == split_plan(shuffled, 6)
    # Equal costs: ties are broken by archive path, not by input order.
    same = [kernel(f"5.4.0-{i}-generic", 100) for i in range(10)]
    assert split_plan(same, 3) == split_plan(list(reversed(same)), 3)


def test_kernels_sharing_an_archive_path_stay_together() -> None:
    twin_a = kernel("5.4.0-9-generic", 10**9, release="focal")
    twin_b = kernel("5.4.0-9-generic", 10**6, release="focal-updates")
    assert twin_a.archive_path == twin_b.archive_path
    shards = split_plan([twin_a, twin_b, *many(20)], 4)
    holding = [s for s in shards if twin_a in s.kernels or twin_b in s.kernels]
    assert len(holding) == 1 and {twin_a, twin_b} <= set(holding[0].kernels)


def test_unknown_size_costs_the_default() -> None:
    assert expected_cost(kernel("x", None)) == DEFAULT_COST
    assert expected_cost(kernel("x", 0)) == DEFAULT_COST
    assert expected_cost(kernel("x", 123)) == 123


def test_select_shard_recomputes_the_same_partition() -> None:
    kernels = many(97)
    shards = split_plan(kernels, 5)
    again = [select_shard(list(reversed(kernels)), ShardId(i, 5)) for i in range(1, 6)]
    assert [list(s.kernels) for s in shards] == again
    with pytest.raises(ValueError):
        ShardId(6, 5)
    with pytest.raises(ValueError):
        split_plan(kernels, 0)


def test_more_shards_than_kernels() -> None:
    kernels = [kernel("a", 5), kernel("b", 7)]
    shards = split_plan(kernels, 4)
    assert [len(s.kernels) for s in shards] == [1, 1, 0, 0]
    out = shards_to_json(shards)
    assert out["matrix"] == {"shard": ["1/4", "2/4"]}
    assert select_shard(kernels, ShardId(3, 4)) == []
    assert balance(shards) == pytest.approx(7 / 5)


def test_shards_to_json() -> None:
    kernels = many(10)
    out = shards_to_json(split_plan(kernels, 3))
    assert json.loads(json.dumps(out)) == out  # plain JSON
    assert out["matrix"] == {"shard": ["1/3", "2/3", "3/3"]}
    assert [s["shard"] for s in out["shards"]] == ["1/3", "2/3", "3/3"]
    listed = [k["archive_path"] for s in out["shards"] for k in s["kernels"]]
    assert sorted(listed) == sorted(k.archive_path for k in kernels)
    assert set(out["shards"][0]["kernels"][0]) == {
        "distro",
        "release",
        "arch",
        "uname",
        "archive_path",
    }
    assert out["balance"] >= 1.0
    assert shards_to_json(split_plan([], 4))["matrix"] == {"shard": []}


@pytest.mark.parametrize(
    ("text", "shard"),
    [("1/1", ShardId(1, 1)), ("2/5", ShardId(2, 5)), ("12/12", ShardId(12, 12))],
)
def test_shard_id_parses_i_of_n(text: str, shard: ShardId) -> None:
    assert ShardId.parse(text) == shard
    assert shard.label == text


@pytest.mark.parametrize("text", ["0/1", "6/5", "2", "a/b", "1/0", "-1/3", " 1/2", "1/2/3"])
def test_shard_id_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match=r"I/N|between 1 and N"):
        ShardId.parse(text)
