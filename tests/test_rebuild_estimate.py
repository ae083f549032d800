"""The full-rebuild estimate's arithmetic (bench/rebuild_estimate.py) and its inputs file."""

from __future__ import annotations

import json

import pytest

from tests.kit.benchmod import load_bench

est = load_bench("rebuild_estimate")
REF = est.Package("ref", "vmlinux-first", 300, 600, 600)
COSTS = est.Costs(decode=10, pahole=20, xz=1, rest=3, efficiency=0.5, source="test")


def runner(**over: float) -> object:
    base = dict(cores=4, disk_gb=14, bandwidth=100.0, speed=1.0, setup_minutes=5, budget_minutes=35)
    return est.Runner(**(base | over))


def test_an_rpm_decodes_its_whole_payload_a_deb_only_up_to_the_vmlinux() -> None:
    deb = est.Package("deb", "vmlinux-first", 300, 600, 4000)
    rpm = est.Package("rpm", "vmlinux-last", 300, 600, 4000)
    assert deb.decoded_bytes == 600 and rpm.decoded_bytes == 4000
    # decode 10 x 4000/600, pahole 20 x 1, xz 1, rest 3 x 1
    assert est.kernel_cpu(rpm, REF, COSTS) == pytest.approx(10 * 4000 / 600 + 20 + 1 + 3)
    assert est.kernel_cpu(deb, REF, COSTS) == pytest.approx(34)
    with pytest.raises(ValueError, match="order"):
        _ = est.Package("x", "sideways", 1, 1, 1).decoded_bytes


def test_cpu_bound_shards_fill_the_budget_left_after_setup() -> None:
    big = est.Package("big", "vmlinux-first", 600, 1200, 1200)  # 2x the reference everywhere
    # 3,600 kernels x (20 + 40 + 1 + 6) CPU-s = 67 CPU-h, over 4 cores 50% busy: 33.5 h
    r = est.estimate([("a/1/x86_64", 3600, big)], REF, COSTS, runner(), btf_bytes=1e6)
    assert r.kernels == 3600 and r.download_bytes == 3600 * 600
    assert r.cpu_runner_hours == pytest.approx(3600 * 67 / 2 / 3600)
    assert r.bound == "cpu"
    assert r.shards == 67  # ceil(33.5 h x 60 / (35 - 5) min)
    assert r.shard_minutes == pytest.approx(35)
    assert r.runner_hours == pytest.approx(33.5 + 67 * 5 / 60)
    # one vmlinux per core plus the shard's share of built files
    assert r.shard_disk_bytes == 4 * 1200 + 54 * 1e6  # ceil(3600 / 67) files


def test_a_slow_network_bounds_the_work_and_raises_the_shard_count() -> None:
    pkg = est.Package("p", "vmlinux-first", 10**9, 600, 600)
    costs = est.Costs(decode=10, pahole=20, xz=1, rest=0, efficiency=0.5, source="test")
    fast = est.estimate([("a", 100, pkg)], REF, costs, runner(bandwidth=1e9), 0)
    slow = est.estimate([("a", 100, pkg)], REF, costs, runner(bandwidth=1e7), 0)
    assert fast.bound == "cpu" and slow.bound == "network"
    assert slow.network_runner_hours == pytest.approx(100 * 100 / 3600)
    assert slow.shards > fast.shards
    with pytest.raises(ValueError, match="setup"):
        est.estimate([("a", 1, pkg)], REF, COSTS, runner(setup_minutes=40), 0)


def test_waves_under_a_concurrency_limit() -> None:
    assert [est.waves(n, 20) for n in (1, 20, 21, 40, 41)] == [1, 1, 2, 2, 3]


def test_costs_from_a_fleet_result_take_the_best_unlimited_btfhub_batch() -> None:
    doc = {
        "cores": 2,
        "floor": {"decode to the vmlinux's end": 5.0, "pahole": 9.0, "xz": 1.0},
        "batches": [
            {"side": "btfhub", "rate": 0, "jobs": 1, "kernels": 8, "wall": 200.0, "cpu": 160.0},
            {"side": "btfhub", "rate": 0, "jobs": 2, "kernels": 8, "wall": 100.0, "cpu": 144.0},
            {"side": "btfhub", "rate": 50, "jobs": 2, "kernels": 8, "wall": 90.0, "cpu": 80.0},
            {"side": "classic", "rate": 0, "jobs": 2, "kernels": 8, "wall": 50.0, "cpu": 80.0},
        ],
    }
    c = est.costs_from_fleet(doc, "fleet-x.json")
    assert (c.decode, c.pahole, c.xz) == (5.0, 9.0, 1.0)
    assert c.rest == pytest.approx(144 / 8 - 15)
    assert c.efficiency == pytest.approx(144 / (2 * 100))
    with pytest.raises(ValueError, match="floor lacks"):
        est.costs_from_fleet(doc | {"floor": {"pahole": 1.0}}, "f")


def test_a_total_is_split_in_the_documented_proportions() -> None:
    c = est.costs_from_total(49.0, 0.9)
    assert c.per_kernel == pytest.approx(49.0)
    assert c.decode == pytest.approx(24.0) and c.rest == 0 and c.efficiency == 0.9


def test_the_inputs_file_is_whole_and_sourced() -> None:
    ref, folders, doc = est.load_inputs(est.INPUTS)
    assert sum(n for _, n, _ in folders) == 4300
    for name, pkg in doc["packages"].items():
        assert pkg["order"] in ("vmlinux-first", "vmlinux-last"), name
        # every figure is either sourced or listed as assumed
        assert pkg["sources"] or pkg["assumed"], name
    assert ref.package_bytes == 281755500
    assert json.loads(est.INPUTS.read_text())["folder_sources"]["kernels"]


def test_the_script_prints_the_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    assert est.main(["--per-kernel-cpu", "28", "--bandwidth", "50"]) == 0
    out = capsys.readouterr().out
    assert "kernels                 4,300" in out and "shards for one hour" in out


def test_a_given_shard_count_says_how_long_each_shard_takes() -> None:
    pkg = est.Package("p", "vmlinux-first", 300, 600, 600)
    # 100 kernels x 34 CPU-s over 4 cores 50% busy: 1,700 s of work = 28.3 min
    r = est.estimate([("a", 100, pkg)], REF, COSTS, runner(), 0, shards=4)
    assert r.shards == 4
    assert r.shard_minutes == pytest.approx(5 + 100 * 34 / 2 / 60 / 4)
