"""What kernel-module BTF costs per kernel: a real Debian 12 kernel without modules, then with
the default list, then with `modules: all`.

The package is the one bench/real_kernel_bench.py builds (the newest
linux-image-6.1.0-<N>-cloud-amd64-dbg, cached in ~/.cache/btfhub-real),
served from a local mirror. Each configuration is a fresh hub whose
bookworm release says nothing (the baseline, measured in the same run),
`modules: default` (catalog/modules/default.yaml) or `modules: all`, built by
`btfhub reconcile --force` in a child process watched as the real-kernel
bench watches it (wall, CPU of the whole tree, peak disk under its TMPDIR
and hub). Printed: each figure, its ratio to the baseline, the extra time and
CPU per kernel, the modules file's size (what the archive gains), how many
modules it holds, and the load average before and after (the machine is shared:
only the ratios of one run are comparable).

    .venv/bin/python bench/modules_bench.py [--only default|all] [--keep] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_kernel_bench import BTFHUB, REPO, Result, mb, run_watched, show

from generator.btf.modules import read_modules_file
from generator.demokit.mirror import MirrorServer
from tests.kit.realkernel import RealKernel, fetch, publish, reconcile_args

CONFIGS = {"none": None, "default": "default", "all": "all"}


def build(kernel: RealKernel, work: Path, server: MirrorServer, modules: str | None) -> Result:
    name = f"modules-{modules or 'none'}"
    hub = work / name / "hub"
    hub.mkdir(parents=True)
    shutil.copytree(REPO / "catalog", hub / "catalog")
    shutil.copyfile(REPO / "README.md", hub / "README.md")
    if modules is not None:
        manifest = hub / "catalog" / "debian.yaml"
        text, n = re.subn(
            r"(\n    id: bookworm\n)", rf"\1    modules: {modules}\n", manifest.read_text()
        )
        if n != 1:
            raise SystemExit("catalog/debian.yaml: no bookworm release to add modules to")
        manifest.write_text(text)
    cmd = [str(BTFHUB), *reconcile_args(hub, server.url)]
    result, _ = run_watched(name, cmd, work / name / "tmp", hub, server)
    return result


def archive_figures(hub: Path, uname: str) -> dict[str, int]:
    base = hub / "archive" / "debian" / "12" / "x86_64" / uname
    vmlinux = Path(f"{base}.btf.tar.xz")
    modules = Path(f"{base}.modules.tar.xz")
    figures = {"vmlinux_file": vmlinux.stat().st_size, "modules_file": 0, "modules": 0}
    if modules.is_file():
        data = modules.read_bytes()
        manifest, found = read_modules_file(data, modules.name)
        figures.update(
            modules_file=len(data),
            modules=len(found),
            absent=len(manifest.absent),
            modules_raw=sum(len(b) for b in found.values()),
        )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["default", "all"], help="the baseline and this one")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--workdir", type=Path, help="work here (default: a new temp dir)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    configs = {k: v for k, v in CONFIGS.items() if args.only in (None, k) or k == "none"}
    kernel = fetch()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="btfhub-modules-bench."))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    print(f"kernel {kernel.uname} ({kernel.path.name}), {os.cpu_count()} CPUs")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    results: dict[str, tuple[Result, dict[str, int]]] = {}
    try:
        publish(kernel, work / "mirror")
        with MirrorServer(work / "mirror") as server:
            for key, modules in configs.items():
                result = build(kernel, work, server, modules)
                hub = work / f"modules-{modules or 'none'}" / "hub"
                results[key] = (result, archive_figures(hub, kernel.uname))
                show(result)
                print(f"  archive: {json.dumps(results[key][1])}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    base, base_files = results["none"]
    print("\nper kernel, against the baseline (no modules) of this run:")
    for key in (k for k in configs if k != "none"):
        r, files = results[key]
        print(
            f"  {key:>7}: {files['modules']} modules ({files.get('absent', 0)} absent); "
            f"wall {r.wall:.1f} s ({r.wall / base.wall:.2f}x, +{r.wall - base.wall:.1f} s), "
            f"CPU {r.cpu:.1f} s ({r.cpu / base.cpu:.2f}x, +{r.cpu - base.cpu:.1f} s), "
            f"peak disk {mb(r.watch.disk)} ({r.watch.disk / max(1, base.watch.disk):.2f}x); "
            f"archive +{mb(files['modules_file'])} "
            f"({files['modules_file'] / base_files['vmlinux_file']:.2f}x the vmlinux file; "
            f"{mb(files.get('modules_raw', 0))} raw)"
        )
        if files["vmlinux_file"] != base_files["vmlinux_file"]:
            print(f"  {key}: the vmlinux file differs from the baseline's!")
            return 1
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    if args.json:
        doc = {
            k: {"wall": r.wall, "cpu": r.cpu, "disk": r.watch.disk, "tree_rss": r.watch.tree_rss}
            | f
            for k, (r, f) in results.items()
        }
        doc["load"] = {"before": list(load_before), "after": list(load_after)}
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
