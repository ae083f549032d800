"""Fleet throughput: `btfhub reconcile --jobs N` against the classic pipeline run N wide.

Eight kernels of realistic size: the real Debian 6.1 cloud vmlinux (590 MB
of DWARF ELF, from the package bench/real_kernel_bench.py uses) packed
under eight different uname labels into eight linux-image-<uname>-dbg
packages (data.tar.zst, zstd level 3, as Ubuntu's ddebs are compressed;
cached next to the real package, so later runs skip the packing), published
as one signed bookworm apt repository and served by the real HTTP server
of generator/demokit/mirror.py.

For each N in --jobs (default 1, 2, 4), in the same run:
- btfhub: `btfhub reconcile --force --jobs N` into a fresh hub, all eight;
- classic: the original hub's steps (download, `dpkg-deb -x`, pahole,
  `tar -cJf`, the worker of bench/real_kernel_bench.py), eight kernels
  through N at a time.
Both report wall time, kernels per minute and CPU seconds (user+sys of the
whole process tree, from getrusage(RUSAGE_CHILDREN) around each).

The packages hold only the vmlinux, while a real one holds ~1.1 GB of
module debug info after it, which classic decompresses and btfhub only
hashes: the comparison favours classic.

    .venv/bin/python bench/fleet_bench.py [--jobs 1 2 4] [--kernels 8] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The repository root, for tests.kit (test machinery kept out of the package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.demokit.mirror import AptPackage, pool_dir, write_apt_repo
from generator.demokit.server import MirrorServer
from generator.progress import TIMINGS_ENV
from tests.kit.realkernel import SUITE, RealKernel, cache_dir, fetch, reconcile_args

REPO = Path(__file__).resolve().parent.parent
BTFHUB = REPO / ".venv" / "bin" / "btfhub"
REAL_BENCH = REPO / "bench" / "real_kernel_bench.py"
ABI_BASE = 900  # generated unames: 6.1.0-900-cloud-amd64, 6.1.0-901-..., never a real one


@dataclass
class Batch:
    name: str
    jobs: int
    kernels: int
    wall: float
    cpu: float

    @property
    def per_minute(self) -> float:
        return self.kernels / self.wall * 60


def uname_for(i: int) -> str:
    return f"6.1.0-{ABI_BASE + i}-cloud-amd64"


def extract_vmlinux(kernel: RealKernel, dest: Path) -> Path:
    """The real vmlinux, out of the package with dpkg-deb and tar (no btfhub code)."""
    member = f"./usr/lib/debug/boot/vmlinux-{kernel.uname}"
    with dest.open("wb") as out:
        fsys = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(kernel.path)], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-xOf", "-", member], stdin=fsys.stdout, stdout=out, check=True)
        if fsys.wait() != 0:
            raise SystemExit(f"dpkg-deb --fsys-tarfile {kernel.path} failed")
    return dest


def packages(kernel: RealKernel, count: int, work: Path) -> list[Path]:
    """count packages of the real vmlinux under generated unames (cached between runs)."""
    cache = cache_dir() / "fleet" / kernel.path.stem
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [cache / f"linux-image-{uname_for(i)}-dbg_6.1.0-1_amd64.deb" for i in range(count)]
    missing = [(i, p) for i, p in enumerate(wanted) if not p.exists()]
    if missing:
        vmlinux = extract_vmlinux(kernel, work / "vmlinux")
        for i, out in missing:
            uname = uname_for(i)
            root = work / f"pkg-{i}"
            (root / "DEBIAN").mkdir(parents=True)
            (root / "DEBIAN" / "control").write_text(
                f"Package: linux-image-{uname}-dbg\nSource: linux\nVersion: 6.1.0-1\n"
                "Architecture: amd64\nMaintainer: btfhub bench <bench@example.invalid>\n"
                "Description: the Debian 6.1 cloud vmlinux under another uname\n"
            )
            boot = root / "usr" / "lib" / "debug" / "boot"
            boot.mkdir(parents=True)
            os.link(vmlinux, boot / f"vmlinux-{uname}")  # no 590 MB copy per package
            partial = out.with_suffix(".partial")
            subprocess.run(
                [
                    "dpkg-deb",
                    "--root-owner-group",
                    "-Zzstd",
                    "-z3",
                    "--build",
                    str(root),
                    str(partial),
                ],
                check=True,
                capture_output=True,
            )
            partial.rename(out)
            shutil.rmtree(root)
        vmlinux.unlink()
    return wanted


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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_btfhub(jobs: int, count: int, work: Path, server: MirrorServer) -> Batch:
    hub = work / f"hub-j{jobs}"
    hub.mkdir()
    shutil.copytree(REPO / "catalog", hub / "catalog")
    shutil.copyfile(REPO / "README.md", hub / "README.md")
    cmd = [str(BTFHUB), *reconcile_args(hub, server.url), "--jobs", str(jobs)]
    timings = work / f"timings-j{jobs}.json"
    env = dict(os.environ, TMPDIR=str(work), **{TIMINGS_ENV: str(timings)})
    cpu, start = children_cpu(), time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"btfhub --jobs {jobs} failed:\n{proc.stdout}{proc.stderr}")
    built = sorted((hub / "archive" / "debian" / "12" / "x86_64").glob("*.btf.tar.xz"))
    if len(built) != count:
        raise SystemExit(f"btfhub --jobs {jobs} built {len(built)} of {count} kernels")
    batch = Batch("btfhub", jobs, count, wall, children_cpu() - cpu)
    shutil.rmtree(hub)
    show_timings(json.loads(timings.read_text()), start)
    return batch


def show_timings(doc: dict[str, Any], start: float) -> None:
    """Each kernel's build on the run's clock: when it started, got vmlinux out, was stored."""
    print(f"    btfhub build started at {doc['build_started'] - start:5.1f} s")
    for label, record in sorted(doc["kernels"].items()):
        marks, steps = record["marks"], record["steps"]
        at = {name: t - start for name, t in marks.items()}
        print(
            f"    {label:<40} start {at['started']:5.1f}  vmlinux out {at['vmlinux out']:5.1f}  "
            f"pahole {steps['pahole']:4.1f}  tar.xz {steps['tar.xz']:4.1f}  "
            f"stored {at['stored']:5.1f}"
        )


def run_classic(jobs: int, paths: list[str], work: Path, server: MirrorServer) -> Batch:
    def one(i: int) -> None:
        out = work / f"classic-j{jobs}-{i}"
        out.mkdir()
        cmd = [sys.executable, str(REAL_BENCH), "--classic-worker"]
        cmd += [server.url + paths[i], str(out), uname_for(i)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"classic kernel {i} failed:\n{proc.stdout}{proc.stderr}")
        shutil.rmtree(out)  # as the classic scripts do once a kernel is stored

    cpu, start = children_cpu(), time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, range(len(paths))))
    wall = time.monotonic() - start
    return Batch("classic", jobs, len(paths), wall, children_cpu() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--kernels", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON too")
    parser.add_argument("--workdir", type=Path, help="work here (default: a new temp dir)")
    args = parser.parse_args()

    kernel = fetch()
    work = Path(tempfile.mkdtemp(prefix="btfhub-fleet-bench-", dir=args.workdir))
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    try:
        started = time.monotonic()
        debs = packages(kernel, args.kernels, work)
        size = sum(d.stat().st_size for d in debs)
        print(
            f"{len(debs)} packages of the {kernel.uname} vmlinux ({size / 1e6:,.0f} MB in all) "
            f"ready in {time.monotonic() - started:.0f} s"
        )
        paths = publish(debs, work / "mirror")
        results: list[tuple[Batch, Batch]] = []
        with MirrorServer(work / "mirror") as server:
            for jobs in args.jobs:
                ours = run_btfhub(jobs, len(debs), work, server)
                classic = run_classic(jobs, paths, work, server)
                results.append((ours, classic))
                for b in (ours, classic):
                    print(
                        f"  {b.name:<8} {jobs} wide: {b.wall:6.1f} s, "
                        f"{b.per_minute:5.2f} kernels/min, CPU {b.cpu:6.1f} s "
                        f"({b.cpu / b.kernels:.1f} s a kernel)"
                    )
                print(
                    f"  ratio btfhub/classic at {jobs}: wall {ours.wall / classic.wall:.2f}x, "
                    f"throughput {ours.per_minute / classic.per_minute:.2f}x, "
                    f"CPU {ours.cpu / classic.cpu:.2f}x"
                )
        if args.json:
            doc = [
                {"jobs": o.jobs, "kernels": o.kernels, side.name: vars(side)}
                for o, c in results
                for side in (o, c)
            ]
            args.json.write_text(json.dumps(doc, indent=2) + "\n")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
