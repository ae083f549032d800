"""What a whole hub costs: kernels per hour on real packages over a runner's network.

N kernels (8 by default) whose packages have the real layout: the real
Debian 6.1 cloud `-dbg` package (bench/real_kernel_bench.py's, ~283 MB, the
590 MB vmlinux and then ~1.1 GB of module debug info, xz in 24 MiB blocks)
re-served under N unames (bench/fleet_packages.py; cached next to the real
package), published as one signed bookworm repository by the demo mirror,
which sends at most --rates MB/s in all (0: loopback's speed; default 0,
200 and 50, a runner's network from fast to slow).

At each rate, in the same run:
- btfhub: `btfhub reconcile --force --jobs J` into a fresh hub (J in --jobs,
  default 1 2 4), with the same full verification as always (every byte
  of every package hashed against the signed index);
- classic: the public hub's steps (download the whole package, `dpkg-deb
  -x`, pahole with btfhub's flags single-threaded, `tar -cJf`;
  bench/real_kernel_bench.py's worker), J kernels at a time.
Each batch runs as one watched child process: wall time, kernels per hour,
CPU (user+sys of the whole tree, getrusage around the child), bytes the
mirror sent, peak disk under its directories and peak RSS of its tree.

The floor, measured alone on the real package just before each rate's
batches (a shared machine's speed drifts over the hour a full run takes):
decoding its data.tar.xz up to the vmlinux's end (the project's xz, as
btfhub runs it), pahole on the vmlinux (one thread) and the archive's xz on
its BTF, each the least CPU of --floor-runs runs. btfhub's CPU per kernel at
a rate is judged against the sum measured beside it.

Goals (exit status 1 when one is missed):
- at each rate, btfhub's kernels per hour at its best width >= 2x classic's
  at its best width;
- btfhub's CPU per kernel at its best width <= 1.15x the floor;
- btfhub's default --jobs on this machine (generator.hub.build.default_jobs)
  within 10% of its best width's kernels per hour, where that width ran.

    .venv/bin/python bench/fleet_bench.py [--rates 0 200 50] [--jobs 1 2 4]
        [--classic-jobs 1 2 4] [--kernels 8] [--json FILE] [--workdir DIR]

The figures go to bench/results/fleet-<date>.json unless --json says where.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The repository root, for tests.kit (test machinery kept out of the package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet_packages import fleet_unames, renamed_package
from real_kernel_bench import children_cpu, exit_on_sigterm, floor, watch

from generator.children import usable_cores
from generator.demokit.mirror import AptPackage, pool_dir, write_apt_repo
from generator.demokit.server import MirrorServer
from generator.hub.build import default_jobs
from generator.progress import TIMINGS_ENV
from tests.kit.realkernel import SUITE, RealKernel, cache_dir, fetch, reconcile_args

REPO = Path(__file__).resolve().parent.parent
BTFHUB = REPO / ".venv" / "bin" / "btfhub"
REAL_BENCH = REPO / "bench" / "real_kernel_bench.py"
RESULTS = REPO / "bench" / "results"
MB = 1_000_000

GOAL_THROUGHPUT = 2.0  # btfhub's best kernels/hour over classic's best, at each rate
GOAL_FLOOR = 1.15  # btfhub's CPU per kernel over the floor's
GOAL_DEFAULT_JOBS = 0.9  # the default --jobs' kernels/hour over the best width's


@dataclass
class Batch:
    side: str  # btfhub | classic
    rate: int  # MB/s, 0: unlimited
    jobs: int
    kernels: int
    wall: float
    cpu: float
    sent: int  # bytes the mirror sent
    peak_disk: int
    peak_rss: int  # the whole process tree's
    cpu_by_command: dict[str, float]  # sampled from /proc (real_kernel_bench.Watch)

    @property
    def per_hour(self) -> float:
        return self.kernels / self.wall * 3600

    @property
    def cpu_per_kernel(self) -> float:
        return self.cpu / self.kernels


# -- packages ------------------------------------------------------------------------------


def packages(kernel: RealKernel, count: int) -> list[tuple[str, Path]]:
    """(uname, .deb) of count real-layout packages, made once and cached."""
    cache = cache_dir() / "fleet-real" / kernel.path.stem
    cache.mkdir(parents=True, exist_ok=True)
    version = kernel.path.stem.split("_")[1]
    out = []
    for uname in fleet_unames(kernel.uname, count):
        deb = cache / f"linux-image-{uname}-dbg_{version}_amd64.deb"
        if not deb.exists():
            print(f"  making {deb.name} (once; cached in {cache})", flush=True)
            renamed_package(kernel.path, kernel.uname, uname, deb)
        out.append((uname, deb))
    return out


def publish(debs: list[Path], mirror_root: Path) -> list[str]:
    """One signed bookworm repository listing all the packages; their pool paths."""
    listed, paths = [], []
    for deb in debs:
        pkg = AptPackage.from_deb(deb)
        rel = Path("debian") / pool_dir("main", pkg.source_name) / deb.name
        dest = mirror_root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            os.link(deb, dest)
        listed.append(AptPackage(dest, pkg.package, pkg.version, pkg.architecture, pkg.source))
        paths.append(rel.as_posix())
    write_apt_repo(mirror_root, "debian", SUITE, "main", "amd64", listed)
    write_apt_repo(mirror_root, "debian", SUITE, "main", "arm64", [])
    return paths


# -- the batches ---------------------------------------------------------------------------


def watched(
    side: str,
    rate: int,
    jobs: int,
    kernels: int,
    cmd: list[str],
    env: dict[str, str],
    dirs: list[Path],
    server: MirrorServer,
) -> Batch:
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    sent, cpu, start = server.bytes_sent, children_cpu(), time.monotonic()
    log = dirs[0].parent / f"{side}-{rate}-{jobs}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        seen = watch(proc, dirs, 0)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{side} {jobs} wide failed:\n{log.read_text(errors='replace')}")
    server.wait_done()
    return Batch(
        side,
        rate,
        jobs,
        kernels,
        wall,
        children_cpu() - cpu,
        server.bytes_sent - sent,
        seen.disk,
        seen.tree_rss,
        seen.cpu_by_command(),
    )


def run_btfhub(
    rate: int, jobs: int, count: int, work: Path, server: MirrorServer
) -> tuple[Batch, dict[str, Any]]:
    hub = work / "hub"
    hub.mkdir(parents=True)
    shutil.copytree(REPO / "catalog", hub / "catalog")
    shutil.copyfile(REPO / "README.md", hub / "README.md")
    timings = work / "timings.json"
    cmd = [str(BTFHUB), *reconcile_args(hub, server.url), "--jobs", str(jobs)]
    env = dict(os.environ, TMPDIR=str(work / "tmp"), **{TIMINGS_ENV: str(timings)})
    batch = watched("btfhub", rate, jobs, count, cmd, env, [work / "tmp", hub], server)
    built = list((hub / "archive" / "debian" / "12" / "x86_64").glob("*.btf.tar.xz"))
    if len(built) != count:
        raise SystemExit(f"btfhub --jobs {jobs} built {len(built)} of {count} kernels")
    return batch, json.loads(timings.read_text())


def run_classic(
    rate: int, jobs: int, kernels: list[tuple[str, str]], work: Path, server: MirrorServer
) -> Batch:
    cmd = [sys.executable, __file__, "--classic-fleet", str(jobs), str(work / "classic")]
    cmd += [f"{server.url}{path}={uname}" for uname, path in kernels]
    env = dict(os.environ, TMPDIR=str(work / "classic"))
    return watched("classic", rate, jobs, len(kernels), cmd, env, [work / "classic"], server)


def classic_fleet(jobs: int, work: Path, kernels: list[str]) -> None:
    """The classic pipeline for each URL=UNAME, `jobs` at a time (run as the watched child)."""

    running: list[subprocess.Popen[bytes]] = []
    stopping = threading.Event()

    def one(i: int) -> None:
        if stopping.is_set():
            return
        url, uname = kernels[i].rsplit("=", 1)
        out = work / f"kernel-{i}"
        out.mkdir(parents=True)
        cmd = [sys.executable, str(REAL_BENCH), "--classic-worker", url, str(out), uname]
        with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
            running.append(proc)
            _, err = proc.communicate()
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=err)
        shutil.rmtree(out)  # as the classic scripts do once a kernel is stored

    pool = ThreadPoolExecutor(jobs)
    try:
        list(pool.map(one, range(len(kernels))))
    except BaseException:  # stopped (a SIGTERM) or failed: the other workers stop too
        stopping.set()
        for proc in running:
            proc.terminate()
        raise
    finally:
        pool.shutdown(cancel_futures=True)


def overlap(doc: dict[str, Any]) -> float:
    """Seconds in which one kernel's download ran while another's pahole or xz did."""
    spans = []
    for record in doc["kernels"].values():
        marks = record["marks"]
        spans.append((marks["started"], marks["vmlinux out"], marks["stored"]))
    total = 0.0
    for start, out, _ in spans:
        for other_start, other_out, other_stored in spans:
            if other_start != start:
                total += max(0.0, min(out, other_stored) - max(start, other_out))
    return total


# -- report --------------------------------------------------------------------------------


def rate_name(rate: int) -> str:
    return f"{rate} MB/s" if rate else "unlimited"


def show(b: Batch, vmlinux: int) -> None:
    print(
        f"  {b.side:<8} {b.jobs} wide: {b.wall:7.1f} s  {b.per_hour:6.0f} kernels/h  "
        f"CPU {b.cpu_per_kernel:5.1f} s/kernel  read {b.sent / MB:7,.0f} MB  "
        f"peak disk {b.peak_disk / MB:6,.0f} MB ({b.peak_disk / vmlinux / b.jobs:.2f}x vmlinux "
        f"a job)  peak RSS {b.peak_rss / MB:5,.0f} MB",
        flush=True,
    )
    split = ", ".join(f"{c} {s / b.kernels:.1f}" for c, s in b.cpu_by_command.items() if s >= 0.1)
    print(f"           CPU per kernel by command (s): {split}", flush=True)


def goals(
    batches: list[Batch], floors: dict[int, float], rates: list[int], default: int
) -> list[tuple[str, bool, str]]:
    out = []
    for rate in rates:
        ours = max(
            (b for b in batches if b.rate == rate and b.side == "btfhub"), key=lambda b: b.per_hour
        )
        theirs = max(
            (b for b in batches if b.rate == rate and b.side == "classic"), key=lambda b: b.per_hour
        )
        ratio = ours.per_hour / theirs.per_hour
        out.append(
            (
                f"{rate_name(rate)}: btfhub's best >= {GOAL_THROUGHPUT}x classic's best kernels/h",
                ratio >= GOAL_THROUGHPUT,
                f"{ratio:.2f}x ({ours.per_hour:.0f} at {ours.jobs} wide vs "
                f"{theirs.per_hour:.0f} at {theirs.jobs} wide)",
            )
        )
        share = ours.cpu_per_kernel / floors[rate]
        out.append(
            (
                f"{rate_name(rate)}: btfhub's CPU per kernel <= {GOAL_FLOOR}x the floor",
                share <= GOAL_FLOOR,
                f"{share:.2f}x ({ours.cpu_per_kernel:.1f} s vs {floors[rate]:.1f} s beside it)",
            )
        )
        at_default = [
            b for b in batches if b.rate == rate and b.side == "btfhub" and b.jobs == default
        ]
        if at_default:
            share = at_default[0].per_hour / ours.per_hour
            out.append(
                (
                    f"{rate_name(rate)}: default --jobs ({default}) within 10% of the best width",
                    share >= GOAL_DEFAULT_JOBS,
                    f"{share:.2f}x the best",
                )
            )
    return out


def main() -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        type=int,
        nargs="+",
        default=[0, 200, 50],
        help="the mirror's MB/s for all downloads together (0: unlimited)",
    )
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--classic-jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--kernels", type=int, default=8)
    parser.add_argument("--floor-runs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="figures here (default bench/results/)")
    parser.add_argument("--workdir", type=Path, help="work here (default: a new temp dir)")
    parser.add_argument("--classic-fleet", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.classic_fleet:
        jobs, work, *kernels = args.classic_fleet
        classic_fleet(int(jobs), Path(work), kernels)
        return 0

    kernel = fetch()
    cores = usable_cores()
    print(
        f"cores: {cores}, load average {os.getloadavg()[0]:.2f}; "
        f"btfhub's default --jobs here: {default_jobs()}",
        flush=True,
    )
    made = packages(kernel, args.kernels)
    size = sum(deb.stat().st_size for _, deb in made)
    print(
        f"{len(made)} packages with the real layout of {kernel.path.name} "
        f"({size / MB:,.0f} MB in all)",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="btfhub-fleet-bench-", dir=args.workdir))
    batches: list[Batch] = []
    overlaps: dict[str, float] = {}
    floors: dict[int, dict[str, float]] = {}
    try:
        paths = publish([deb for _, deb in made], work / "mirror")
        kernels = [(uname, path) for (uname, _), path in zip(made, paths, strict=True)]
        for rate in args.rates:
            print(f"\n== {rate_name(rate)}", flush=True)
            floors[rate], vmlinux = floor(kernel, work, args.floor_runs)
            print(
                f"  floor beside it (CPU, each step alone on the real package, least of "
                f"{args.floor_runs}): "
                + ", ".join(f"{k} {v:.1f} s" for k, v in floors[rate].items())
                + f"; sum {sum(floors[rate].values()):.1f} s",
                flush=True,
            )
            with MirrorServer(work / "mirror", rate=rate * MB or None) as server:
                for jobs in args.jobs:
                    run = work / f"run-{rate}-btfhub-{jobs}"
                    batch, timings = run_btfhub(rate, jobs, len(kernels), run, server)
                    overlaps[f"{rate}/{jobs}"] = overlap(timings)
                    batches.append(batch)
                    show(batch, vmlinux)
                    shutil.rmtree(run)
                for jobs in args.classic_jobs:
                    run = work / f"run-{rate}-classic-{jobs}"
                    batch = run_classic(rate, jobs, kernels, run, server)
                    batches.append(batch)
                    show(batch, vmlinux)
                    shutil.rmtree(run)
        sums = {rate: sum(steps.values()) for rate, steps in floors.items()}
        results = goals(batches, sums, args.rates, default_jobs())
        print("\ngoals:")
        for label, ok, value in results:
            print(f"  {'PASS' if ok else 'MISS'}  {label}: {value}")
        doc = {
            "date": datetime.date.today().isoformat(),
            "cores": cores,
            "load_average_at_start": os.getloadavg()[0],
            "package": kernel.path.name,
            "kernels": len(kernels),
            "default_jobs": default_jobs(),
            # The first rate's floor (bench/rebuild_estimate.py reads it), then each one's.
            "floor": floors[args.rates[0]],
            "floor_by_rate": {rate_name(rate): steps for rate, steps in floors.items()},
            "batches": [asdict(b) | {"per_hour": b.per_hour} for b in batches],
            "download_overlap_seconds": overlaps,
            "goals": {label: {"pass": ok, "value": value} for label, ok, value in results},
        }
        out = args.json or RESULTS / f"fleet-{doc['date']}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"figures written to {out}")
        return 0 if all(ok for _, ok, _ in results) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
