"""What rebuilding the whole public hub costs on GitHub's standard runners (issue 20, part 4).

Reads bench/data/rebuild-inputs.json (the public hub's kernels per folder and
the debug package btfhub downloads for one kernel there, each figure with its
source or marked as an assumption) and btfhub's CPU per kernel on the
reference package (the real Debian 6.1 cloud `-dbg`, 282 MB, vmlinux 590 MB):

- from the newest bench/results/fleet-*.json (bench/fleet_bench.py): its
  `floor` gives the CPU of each irreducible step alone (decoding to the
  vmlinux's end, pahole, the archive's xz); its best btfhub batch at
  unlimited bandwidth gives the CPU per kernel (the remainder over the floor,
  hashing and HTTP and the tar walk, is taken to grow with the package's
  bytes) and how busy it kept the machine's cores;
- or, with --per-kernel-cpu SECONDS, a measured CPU per kernel on that
  package split into the same steps in the proportions of
  shared/reference/upstream-formats.md (stream-and-stop decode 12 s, pahole
  8-15 s, xz about 1 s), with --efficiency for the cores' use.

Each kernel's cost is modelled from its package: the download at
--bandwidth, decoding in proportion to the bytes decoded before the vmlinux
ends (a .deb's vmlinux comes first; an RPM's cpio payload puts
.../modules/<r>/kernel/** before .../modules/<r>/vmlinux, so all of it is
decoded), pahole in proportion to the vmlinux's size, xz per kernel. A shard
overlaps downloads with pahole and xz (issue 20, part 2), so its time is the
larger of its network time and its CPU time on the runner's cores.

    .venv/bin/python bench/rebuild_estimate.py [--fleet FILE | --per-kernel-cpu S]
        [--bandwidth MB/S] [--runner public|private] [--json]

Prints the totals, the shard count that rebuilds everything within one hour
of workflow time and each shard's disk need, with the assumptions beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
INPUTS = REPO / "bench" / "data" / "rebuild-inputs.json"
RESULTS = REPO / "bench" / "results"
GB = 1e9
MB = 1e6

# GitHub's standard hosted runners (ubuntu-latest), read 2026-12-07:
# https://docs.github.com/en/actions/reference/runners/github-hosted-runners
# "Standard GitHub-hosted runners for public repositories": Linux x64, 4 CPU,
# 16 GB RAM, 14 GB SSD; "... for private repositories": Linux x64, 2 CPU,
# 8 GB RAM, 14 GB SSD (older copies of the page said 7 GB).
RUNNERS = {
    "public": {"cores": 4, "ram_gb": 16, "disk_gb": 14},
    "private": {"cores": 2, "ram_gb": 8, "disk_gb": 14},
}
# https://docs.github.com/en/actions/reference/limits: a matrix makes at most
# 256 jobs per run. https://docs.github.com/actions/learn-github-actions/usage-limits-billing-and-administration:
# a job runs at most 6 hours; concurrent jobs per account by plan, excess
# jobs queue: Free 20, Pro 40, Team 60 (the page's table, as kept in
# github/docs' content/actions/reference/usage-limits-billing-and-administration.md),
# Enterprise 500 (the figure github.com/orgs/community/discussions/212713
# quotes as documented today; the older table said 180).
MATRIX_LIMIT = 256
JOB_LIMIT_MINUTES = 360
CONCURRENCY = {"Free": 20, "Pro": 40, "Team": 60, "Enterprise": 500}

# Splitting a measured CPU per kernel when no fleet floor is at hand, in the
# proportions upstream-formats.md measured on the reference package: decode
# to the vmlinux's end 12 s, pahole 8-15 s (11.5), xz about 1 s.
DEFAULT_SPLIT = {"decode": 12.0, "pahole": 11.5, "xz": 1.0}
FLOOR_STEPS = {"decode to the vmlinux's end": "decode", "pahole": "pahole", "xz": "xz"}


@dataclass(frozen=True)
class Package:
    name: str
    order: str  # vmlinux-first | vmlinux-last
    package_bytes: int
    vmlinux_bytes: int
    payload_bytes: int

    @property
    def decoded_bytes(self) -> int:
        """The bytes decoded before the vmlinux has been written out."""
        if self.order == "vmlinux-first":
            return self.vmlinux_bytes
        if self.order == "vmlinux-last":
            return self.payload_bytes
        raise ValueError(f"{self.name}: order must be vmlinux-first or vmlinux-last")


@dataclass(frozen=True)
class Costs:
    """CPU seconds of each step on the reference package, and how busy the cores stayed."""

    decode: float
    pahole: float
    xz: float
    rest: float  # hashing, HTTP, the tar walk: grows with the package's bytes
    efficiency: float  # CPU used / (cores x wall) at the best width
    source: str

    @property
    def per_kernel(self) -> float:
        return self.decode + self.pahole + self.xz + self.rest


@dataclass(frozen=True)
class Runner:
    cores: int
    disk_gb: float
    bandwidth: float  # bytes per second, per runner
    speed: float  # runner core speed relative to the measuring machine's
    setup_minutes: float  # checkout, make setup, artifact up/download per build job
    budget_minutes: float  # the build jobs' share of the hour (plan and publish excluded)


@dataclass(frozen=True)
class Estimate:
    kernels: int
    download_bytes: float
    cpu_seconds: float
    cpu_runner_hours: float  # CPU work over a runner's cores
    network_runner_hours: float  # download time at the runner's bandwidth
    work_runner_hours: float  # the larger: downloads overlap pahole and xz
    bound: str  # cpu | network
    shards: int
    shard_minutes: float  # one shard's wall time, setup included
    runner_hours: float  # work plus every shard's setup
    shard_disk_bytes: float
    max_vmlinux_bytes: int


def kernel_cpu(pkg: Package, ref: Package, costs: Costs) -> float:
    """One kernel's CPU seconds on the measuring machine, scaled from the reference package."""
    return (
        costs.decode * pkg.decoded_bytes / ref.decoded_bytes
        + costs.pahole * pkg.vmlinux_bytes / ref.vmlinux_bytes
        + costs.xz
        + costs.rest * pkg.package_bytes / ref.package_bytes
    )


def estimate(
    folders: Sequence[tuple[str, int, Package]],
    ref: Package,
    costs: Costs,
    runner: Runner,
    btf_bytes: float,
    shards: int | None = None,
) -> Estimate:
    """Totals and the shard count finishing within runner.budget_minutes (pure arithmetic).

    With `shards`, that many shards instead: how long each then takes.
    """
    kernels = sum(n for _, n, _ in folders)
    download = sum(n * p.package_bytes for _, n, p in folders)
    cpu = sum(n * kernel_cpu(p, ref, costs) for _, n, p in folders)
    cpu_hours = cpu / (runner.cores * costs.efficiency * runner.speed) / 3600
    net_hours = download / runner.bandwidth / 3600
    work = max(cpu_hours, net_hours)
    room = runner.budget_minutes - runner.setup_minutes
    if room <= 0:
        raise ValueError("the setup takes the whole budget: no time left to build")
    if shards is None:
        shards = max(1, math.ceil(work * 60 / room))
    largest = max(p.vmlinux_bytes for _, _, p in folders)
    # A job holds at most one vmlinux at a time and one job runs per core
    # (`--jobs` defaults to the cores); the shard's finished files stay until upload.
    disk = runner.cores * largest + math.ceil(kernels / shards) * btf_bytes
    return Estimate(
        kernels=kernels,
        download_bytes=download,
        cpu_seconds=cpu,
        cpu_runner_hours=cpu_hours,
        network_runner_hours=net_hours,
        work_runner_hours=work,
        bound="cpu" if cpu_hours >= net_hours else "network",
        shards=shards,
        shard_minutes=runner.setup_minutes + work * 60 / shards,
        runner_hours=work + shards * runner.setup_minutes / 60,
        shard_disk_bytes=disk,
        max_vmlinux_bytes=largest,
    )


def waves(shards: int, concurrency: int) -> int:
    """How many rounds of jobs a plan's concurrency limit turns the matrix into."""
    return math.ceil(shards / concurrency)


# -- inputs --------------------------------------------------------------------------------


def load_inputs(path: Path) -> tuple[Package, list[tuple[str, int, Package]], dict[str, Any]]:
    doc = json.loads(path.read_text())
    ref_doc = doc["reference"]
    ref = Package(
        "reference",
        "vmlinux-first",
        ref_doc["package_bytes"],
        ref_doc["vmlinux_bytes"],
        ref_doc["vmlinux_bytes"],
    )
    packages = {
        name: Package(name, p["order"], p["package_bytes"], p["vmlinux_bytes"], p["payload_bytes"])
        for name, p in doc["packages"].items()
    }
    folders = [(f["folder"], f["kernels"], packages[f["package"]]) for f in doc["folders"]]
    return ref, folders, doc


def newest_fleet(results: Path) -> Path | None:
    found = sorted(results.glob("fleet-*.json"))
    return found[-1] if found else None


def costs_from_fleet(doc: Mapping[str, Any], name: str) -> Costs:
    """The floor's steps, the remainder of the best unlimited-bandwidth btfhub batch."""
    floor = {FLOOR_STEPS[k]: float(v) for k, v in doc["floor"].items() if k in FLOOR_STEPS}
    missing = set(FLOOR_STEPS.values()) - set(floor)
    if missing:
        raise ValueError(f"{name}: floor lacks {sorted(missing)}")
    ours = [b for b in doc["batches"] if b["side"] == "btfhub" and b["rate"] == 0]
    if not ours:
        raise ValueError(f"{name}: no btfhub batch at unlimited bandwidth")
    best = max(ours, key=lambda b: b["kernels"] / b["wall"])
    per_kernel = best["cpu"] / best["kernels"]
    busy = best["cpu"] / (doc["cores"] * best["wall"])
    return Costs(
        decode=floor["decode"],
        pahole=floor["pahole"],
        xz=floor["xz"],
        rest=max(0.0, per_kernel - sum(floor.values())),
        efficiency=min(1.0, busy),
        source=f"{name}: btfhub --jobs {best['jobs']} at unlimited bandwidth, "
        f"{per_kernel:.1f} CPU-s per kernel, cores {busy:.0%} busy",
    )


def costs_from_total(seconds: float, efficiency: float) -> Costs:
    total = sum(DEFAULT_SPLIT.values())
    share = {k: seconds * v / total for k, v in DEFAULT_SPLIT.items()}
    return Costs(
        decode=share["decode"],
        pahole=share["pahole"],
        xz=share["xz"],
        rest=0.0,
        efficiency=efficiency,
        source=f"--per-kernel-cpu {seconds:g} (split as upstream-formats.md measured), "
        f"--efficiency {efficiency:g}",
    )


# -- report --------------------------------------------------------------------------------


def by_distro(
    folders: Sequence[tuple[str, int, Package]], ref: Package, costs: Costs
) -> dict[str, tuple[int, float, float]]:
    rows: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for folder, n, pkg in folders:
        row = rows[folder.split("/")[0]]
        row[0] += n
        row[1] += n * pkg.package_bytes
        row[2] += n * kernel_cpu(pkg, ref, costs)
    return {d: (int(r[0]), r[1], r[2]) for d, r in rows.items()}


def report(est: Estimate, costs: Costs, runner: Runner, args: argparse.Namespace) -> list[str]:
    spec = RUNNERS[args.runner]
    label = "shards (as asked)" if args.shards else "shards for one hour"
    lines = [
        f"kernels                 {est.kernels:,}",
        f"downloaded              {est.download_bytes / GB:,.0f} GB",
        f"CPU (this machine)      {est.cpu_seconds / 3600:,.1f} CPU-hours",
        f"runner-hours            {est.runner_hours:,.1f} "
        f"(CPU {est.cpu_runner_hours:,.1f}, network {est.network_runner_hours:,.1f}: "
        f"{est.bound}-bound; setup {est.shards} x {runner.setup_minutes:g} min)",
        f"{label:<24}{est.shards} "
        f"(each {est.shard_minutes:.0f} min of build job, "
        f"disk {est.shard_disk_bytes / GB:.1f} GB of {spec['disk_gb']} GB)",
    ]
    for plan, limit in CONCURRENCY.items():
        w = waves(est.shards, limit)
        lines.append(
            f"  on GitHub {plan:<10} {limit:>3} concurrent jobs: {w} wave(s), "
            f"build phase {w * est.shard_minutes:.0f} min"
        )
    if est.shard_minutes > JOB_LIMIT_MINUTES:
        lines.append(f"  a shard takes longer than the {JOB_LIMIT_MINUTES}-minute job limit")
    if est.shards > MATRIX_LIMIT:
        lines.append(f"  more than the {MATRIX_LIMIT}-job matrix limit: split the run")
    lines += [
        "assumptions:",
        f"  runner: ubuntu-latest for {args.runner} repositories, {spec['cores']} vCPU, "
        f"{spec['ram_gb']} GB RAM, {spec['disk_gb']} GB SSD; cores {runner.speed:g}x this "
        "machine's",
        f"  bandwidth {runner.bandwidth / MB:g} MB/s per runner, downloads overlap pahole and xz",
        f"  per build job {runner.setup_minutes:g} min of setup; build jobs get "
        f"{runner.budget_minutes:g} of the 60 min (plan and publish take the rest)",
        f"  CPU per kernel on the reference package {costs.per_kernel:.1f} s "
        f"(decode {costs.decode:.1f}, pahole {costs.pahole:.1f}, xz {costs.xz:.1f}, "
        f"rest {costs.rest:.1f}), cores {costs.efficiency:.0%} busy: {costs.source}",
        f"  a built file {args.btf_mb:g} MB; per-package sizes: {args.inputs.name} "
        "(sources and assumptions there)",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--inputs", type=Path, default=INPUTS)
    parser.add_argument("--fleet", type=Path, help="a fleet bench result (default: the newest)")
    parser.add_argument(
        "--per-kernel-cpu",
        type=float,
        metavar="SECONDS",
        help="btfhub's CPU per kernel on the reference package, instead of a fleet result",
    )
    parser.add_argument(
        "--efficiency",
        type=float,
        default=243 * 28 / 7200,  # issue 20: 243 kernels/h at 28 CPU-s each on 2 cores
        help="share of the cores kept busy (with --per-kernel-cpu)",
    )
    parser.add_argument("--bandwidth", type=float, default=50, help="MB/s per runner")
    parser.add_argument("--runner", choices=sorted(RUNNERS), default="public")
    parser.add_argument("--speed", type=float, default=1.0, help="runner core vs this machine's")
    parser.add_argument("--setup-minutes", type=float, default=4)
    parser.add_argument("--budget-minutes", type=float, default=45)
    parser.add_argument("--btf-mb", type=float, default=2.0, help="one built .btf.tar.xz")
    parser.add_argument("--shards", type=int, help="this many shards: how long each takes")
    parser.add_argument("--json", action="store_true", help="the estimate as JSON")
    args = parser.parse_args(argv)

    ref, folders, _ = load_inputs(args.inputs)
    if args.per_kernel_cpu is not None:
        costs = costs_from_total(args.per_kernel_cpu, args.efficiency)
    else:
        fleet = args.fleet or newest_fleet(RESULTS)
        if fleet is None:
            parser.error("no bench/results/fleet-*.json yet: pass --per-kernel-cpu SECONDS")
        costs = costs_from_fleet(json.loads(fleet.read_text()), fleet.name)
    runner = Runner(
        cores=RUNNERS[args.runner]["cores"],
        disk_gb=RUNNERS[args.runner]["disk_gb"],
        bandwidth=args.bandwidth * MB,
        speed=args.speed,
        setup_minutes=args.setup_minutes,
        budget_minutes=args.budget_minutes,
    )
    est = estimate(folders, ref, costs, runner, args.btf_mb * MB, args.shards)
    if args.json:
        print(json.dumps({"estimate": asdict(est), "costs": asdict(costs)}, indent=2))
        return 0
    print(f"{'distro':<8} {'kernels':>7} {'GB':>7} {'CPU-h':>6}")
    for distro, (n, size, cpu) in sorted(by_distro(folders, ref, costs).items()):
        print(f"{distro:<8} {n:>7,} {size / GB:>7,.0f} {cpu / 3600:>6,.1f}")
    print("\n".join(report(est, costs, runner, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
