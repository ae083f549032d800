"""Benchmarks for sharding and merging at the scale of a full hub.

1. split_plan: 20,000 missing kernels (seeded lognormal package sizes around
   300 MB) into 20 shards: balance (max/min expected work, goal <= 1.1) and
   time, plus select_shard (what each build job recomputes).
2. merge_shards: 20 shard outputs of real files with real manifests, at two
   sizes (5,000 and 20,000 files), each in a fresh child process so its peak
   RSS is its own: time, files/s, peak RSS, and proof that each file is read
   once (opens per source file, and bytes read by the process vs bytes
   merged, from /proc/self/io).

Run: .venv/bin/python bench/shards_bench.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.model import (
    KernelId,
    KernelOutcome,
    KernelPackage,
    KernelState,
    PlannedKernel,
    ShardId,
    archive_path,
)
from generator.shards import merge
from generator.shards.manifest import write_shard_manifest
from generator.shards.split import balance, select_shard, split_plan

SHARDS = 20


def synthetic_plan(n: int, seed: int = 20240601) -> list[PlannedKernel]:
    rng = random.Random(seed)
    kernels = []
    for i in range(n):
        uname = f"5.{i // 1000}.0-{i % 1000}-generic"
        size = int(rng.lognormvariate(math.log(300e6), 0.6))
        pkg = KernelPackage(
            uname=uname,
            arch="x86_64",
            name=f"linux-image-unsigned-{uname}-dbgsym",
            version="1",
            url=f"http://example.invalid/{uname}.ddeb",
            size=size,
            sha256="0" * 64,
            repository="ddebs",
            filename=f"{uname}.ddeb",
            format="deb",
        )
        kernels.append(
            PlannedKernel(
                id=KernelId("ubuntu", f"r{i % 7}", "x86_64", uname),
                state=KernelState.MISSING,
                package=pkg,
                archive_path=archive_path("ubuntu", f"{i % 7}", "x86_64", uname),
            )
        )
    return kernels


def bench_split() -> None:
    kernels = synthetic_plan(20_000)
    t0 = time.perf_counter()
    shards = split_plan(kernels, SHARDS)
    split_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mine = select_shard(kernels, ShardId(7, SHARDS))
    select_s = time.perf_counter() - t0
    total = sum(s.cost for s in shards)
    counts = [len(s.kernels) for s in shards]
    print(f"split_plan: {len(kernels):,} kernels, {total / 1e12:.2f} TB expected, {SHARDS} shards")
    print(f"  balance (max/min expected bytes): {balance(shards):.4f}  (goal <= 1.1)")
    print(f"  kernels per shard: {min(counts)}..{max(counts)}")
    print(f"  split time: {split_s * 1000:.0f} ms; select_shard(7/20): {select_s * 1000:.0f} ms")
    assert len(mine) == counts[6]


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def merge_child(n_files: int) -> dict[str, float]:
    """Build 20 shard dirs holding n_files in all, merge them, report figures."""
    rng = random.Random(n_files)
    per_shard = n_files // SHARDS
    with tempfile.TemporaryDirectory(prefix="btfhub-merge-bench-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        root = base / "hub"
        (root / "archive").mkdir(parents=True)
        dirs = []
        total_bytes = 0
        for s in range(SHARDS):
            out = base / f"shard-{s + 1}"
            paths: dict[KernelId, str] = {}
            for j in range(per_shard):
                uname = f"6.1.0-{s}.{j}-cloud-amd64"
                rel = archive_path("debian", f"{10 + j % 3}", "x86_64", uname)
                data = rng.randbytes(rng.randint(2048, 8192))
                total_bytes += len(data)
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / rel).write_bytes(data)
                paths[KernelId("debian", "bookworm", "x86_64", uname)] = rel
            outcomes = [KernelOutcome(k, KernelState.ARCHIVED) for k in paths]
            write_shard_manifest(out, ShardId(s + 1, SHARDS), paths, outcomes)
            dirs.append(out)

        opens: Counter[str] = Counter()
        real_open: Callable[[Path], BinaryIO] = merge.open_no_follow

        def counting_open(path: Path) -> BinaryIO:
            opens[str(path)] += 1
            return real_open(path)

        merge.open_no_follow = counting_open
        # os.sync() flushes the whole machine's dirty pages, so its time depends
        # on what else runs here: timed apart from the merge's own work.
        sync_s = 0.0
        real_sync = os.sync

        def timed_sync() -> None:
            nonlocal sync_s
            t = time.perf_counter()
            real_sync()
            sync_s += time.perf_counter() - t

        os.sync = timed_sync
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rchar0 = _rchar()
        t0 = time.perf_counter()
        result = merge.merge_shards(root, dirs)
        merge_s = time.perf_counter() - t0
        read_bytes = _rchar() - rchar0
        merge_sync_s, sync_s = sync_s, 0.0
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        again = merge.merge_shards(root, dirs)
        remerge_s = time.perf_counter() - t0
        assert len(result.added) == SHARDS * per_shard and not again.added
        return {
            "files": len(result.added),
            "bytes": total_bytes,
            "merge_s": merge_s,
            "sync_s": merge_sync_s,
            "remerge_s": remerge_s,
            "rss_before_mb": rss_before / 1024,
            "rss_after_mb": rss_after / 1024,
            "max_opens": max(opens.values()),
            "sources_opened": len(opens),
            "read_ratio": read_bytes / total_bytes,
        }


def bench_merge() -> None:
    figures = {}
    for n in (5_000, 20_000):
        out = subprocess.run(
            [sys.executable, __file__, "--merge-child", str(n)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        f = json.loads(out)
        figures[n] = f
        print(
            f"merge_shards: {int(f['files']):,} files ({f['bytes'] / 1e6:.0f} MB) from {SHARDS} "
            f"shards in {f['merge_s']:.2f} s (of which os.sync {f['sync_s']:.2f} s) = "
            f"{f['files'] / f['merge_s']:,.0f} files/s; "
            f"peak RSS {f['rss_before_mb']:.0f} MB before, {f['rss_after_mb']:.0f} MB after; "
            f"idempotent re-merge {f['remerge_s']:.2f} s"
        )
        print(
            f"  reads: {int(f['sources_opened']):,} source files opened, at most "
            f"{int(f['max_opens'])} time(s) each; bytes read / bytes merged = "
            f"{f['read_ratio']:.3f} (manifests included)"
        )
    small, large = figures[5_000], figures[20_000]

    def per_file(f: dict[str, float]) -> float:
        return (f["merge_s"] - f["sync_s"]) / f["files"]

    print(
        f"  time per file without the sync, 20,000 vs 5,000: "
        f"x{per_file(large) / per_file(small):.2f} (1.0 = linear)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--merge-child", type=int)
    args = parser.parse_args()
    if args.merge_child:
        print(json.dumps(merge_child(args.merge_child)))
        return
    bench_split()
    bench_merge()


if __name__ == "__main__":
    main()
