"""How soon the coverage site of a 20,000-kernel hub answers a search in headless chromium.

Builds, in a temporary directory, the hub of bench/catalog_bench.py (50
distributions x 40 releases x 2 architectures, 20,000 archived kernels and
one failed and one not yet archived per release and architecture), its
index.json rendered by generator/index.py (in memory: no archive files are
needed for the site), then times `btfhub site` and reports the size of each
file it writes. Then, in Debian's chromium (headless, through chromium-driver,
tests/kit/browser.py), opens the site from file:// and types a kernel's
uname -r into the search: the time from the navigation to the answer on the
page, against a baseline measured in the same browser and run, a page with
the same search box and no data. Goal: the answer within 2 s.

The clock stops when the answer is on the page: the kernel is typed as soon
as the page's script says the search is ready (driver.get does not wait for
the load event, which comes once the overview below the search is laid out;
that time is reported too).

    .venv/bin/python bench/site_bench.py [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.catalog_bench import ARCHIVED, DISTRIBUTIONS, RPM_ARCH, manifest
from generator.catalog import load_catalog
from generator.cli import main
from generator.fsutil import dump_json
from generator.index import build_index
from generator.model import (
    ArchiveEntry,
    Catalog,
    KernelId,
    KernelOutcome,
    KernelPackage,
    KernelState,
    ReleaseArch,
    archive_path,
)
from generator.state import HubState
from tests.kit.browser import chromium

GOAL_SECONDS = 2.0

BASELINE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>baseline</title></head><body>
<label for="kernel">Kernel</label><input id="kernel" type="search">
<p id="status" role="status"></p>
<script>
document.getElementById("kernel").addEventListener("input", function (e) {
  var status = document.getElementById("status");
  status.textContent = "1 kernel named \\u201c" + e.target.value + "\\u201d.";
});
document.documentElement.setAttribute("data-ready", "true");
</script></body></html>
"""


def hub_index(root: Path) -> tuple[Catalog, str]:
    """The 20,000-kernel hub's catalog and index.json; returns one archived uname to look for."""
    (root / "catalog").mkdir(parents=True)
    for d in range(DISTRIBUTIONS):
        (root / "catalog" / f"distro-{d:02d}.yaml").write_text(manifest(d))
    catalog = load_catalog(root)
    slots = [
        (distro, release, arch)
        for distro in catalog.distributions
        for release in distro.releases
        if release.hub
        for arch in release.architectures
    ]
    per_slot = [ARCHIVED // len(slots) + (i < ARCHIVED % len(slots)) for i in range(len(slots))]
    state = HubState()
    archive: list[ArchiveEntry] = []
    for (distro, release, arch), count in zip(slots, per_slot, strict=True):
        packages = []
        for k in range(count + 2):
            uname = f"{release.kernel}.{k}.el8.{RPM_ARCH[arch]}"
            name = f"kernel-debuginfo-{uname}.rpm"
            packages.append(
                KernelPackage(uname, arch, "kernel-debuginfo", uname.rsplit(".", 1)[0],
                              f"https://debug.example.org/{name}", 900_000_000,
                              hashlib.sha256(name.encode()).hexdigest(), "debug",
                              f"Packages/{name}", "rpm")
            )  # fmt: skip
            if k < count:
                path = archive_path(distro.archive_dir, release.directory, arch, uname)
                digest = hashlib.sha256(path.encode()).hexdigest()
                archive.append(ArchiveEntry(distro.archive_dir, release.directory, arch, uname,
                                            path, 975_776, digest, digest[:40]))  # fmt: skip
        target = ReleaseArch(distro.id, release.id, arch)
        state.record_listing(target, packages)
        failed = KernelId(distro.id, release.id, arch, packages[count].uname)
        state.record_outcome(KernelOutcome(failed, KernelState.FAILED, "pahole exited with 1"))
    (root / "index.json").write_bytes(dump_json(build_index(catalog, state, archive)))
    middle = archive[len(archive) // 2]
    return catalog, middle.uname


def answer_time(driver: WebDriver, url: str, uname: str) -> tuple[float, float, float]:
    """Seconds from navigation to the answer on the page, to the page loaded
    (driver.get returns at the load event), and to the page's own script ready."""
    # The bench's distributions share their unames: "50 kernels named ..." on the site.
    expected = f" named “{uname}”."
    start = time.perf_counter()
    driver.get(url)
    WebDriverWait(driver, 30, poll_frequency=0.01).until(
        lambda d: d.execute_script("return document.documentElement.dataset.ready === 'true';")
    )
    driver.find_element(By.ID, "kernel").send_keys(uname)
    WebDriverWait(driver, 30, poll_frequency=0.01).until(
        lambda d: expected in d.find_element(By.ID, "status").text
    )
    elapsed = time.perf_counter() - start
    WebDriverWait(driver, 60, poll_frequency=0.05).until(
        lambda d: d.execute_script("return document.readyState === 'complete';")
    )
    loaded, ready = driver.execute_script(
        "var n = performance.getEntriesByType('navigation')[0];"
        "return [n.loadEventEnd, window.btfhubSite ? window.btfhubSite.readyAt : 0];"
    )
    return elapsed, float(loaded) / 1000, float(ready or 0) / 1000


# What the hub's files will carry once issues 16 and 18 have landed: a
# provenance entry for every archived file (the shape of
# generator/provenance/record.py) and the BTF of a default list of modules.
MODULE_NAMES = ("nf_conntrack", "nf_tables", "overlay", "xfs", "btrfs", "ext4", "br_netfilter",
                "ip_tables", "x_tables", "nf_nat", "veth", "vxlan", "tun", "sctp", "tls",
                "bpfilter", "ipvlan", "macvlan", "wireguard", "zfs")  # fmt: skip


def with_maps(index_file: Path, output: Path) -> None:
    """index_file as a revision-2 index with provenance and modules for every archived kernel."""
    index = json.loads(index_file.read_text())
    index["revision"] = 2
    for d_id, distro in index["distributions"].items():
        key = hashlib.sha1(d_id.encode()).hexdigest().upper()
        for r_id, release in distro["releases"].items():
            for arch, entry in release["architectures"].items():
                provenance, modules = {}, {}
                for uname, kernel in entry["kernels"].items():
                    if kernel["state"] != "archived":
                        continue
                    package = kernel["package"]
                    provenance[uname] = {
                        "file_sha256": kernel["sha256"],
                        "package": {**package, "url": f"https://debug.example.org/"
                                    f"{package['filename']}", "format": "rpm"},
                        "vouched_by": {
                            "signed_index": {"url": f"https://debug.example.org/{d_id}/{r_id}/"
                                             f"{arch}/repodata/repomd.xml", "keys": [key]},
                            "rpm_header": {"keys": [key]},
                        },
                        "pahole": {"version": "1.30", "arguments": [
                            "-j2", "--skip_encoding_btf_enum64", "--btf_gen_floats",
                            "--btf_encode_detached={btf}", "{vmlinux}"]},
                        "btfhub": "0.1.0",
                    }  # fmt: skip
                    digest = hashlib.sha256(f"{uname} modules".encode()).hexdigest()
                    modules[uname] = {
                        "path": kernel["path"].replace(".btf.tar.xz", ".modules.tar.xz"),
                        "size": 1_500_000,
                        "sha256": digest,
                        "modules": {name: {"size": 60_000, "sha256": digest}
                                    for name in MODULE_NAMES[:-1]},
                        "absent": [MODULE_NAMES[-1]],
                    }  # fmt: skip
                entry["provenance"], entry["modules"] = provenance, modules
    output.write_text(json.dumps(index, sort_keys=True, separators=(",", ":")))


def build_site(hub: Path, index: Path, output: Path, label: str) -> None:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(["site", "--root", str(hub), "--index", str(index), "--output", str(output)])
    built = time.perf_counter() - start
    if code != 0:
        sys.exit(f"btfhub site: exit {code}\n{out.getvalue()}")
    print(f"btfhub site, {label}: {built:.2f} s")
    sizes = {p.name: p.stat().st_size for p in sorted(output.iterdir())}
    for name, size in sizes.items():
        print(f"  {name:<12} {size:>12,} bytes")
    print(f"  {'total':<12} {sum(sizes.values()):>12,} bytes")


def run(work: Path, runs: int) -> bool:
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    start = time.perf_counter()
    hub = work / "hub"
    catalog, uname = hub_index(hub)
    with_maps(hub / "index.json", work / "index-maps.json")
    print(f"hub: {len(catalog.distributions)} distributions, index.json "
          f"{(hub / 'index.json').stat().st_size:,} bytes, with provenance and modules "
          f"{(work / 'index-maps.json').stat().st_size:,} bytes "
          f"({time.perf_counter() - start:.1f} s to generate)")  # fmt: skip
    sites = {
        "the hub as today": work / "site",
        "with provenance and modules": work / "site-maps",
    }
    build_site(hub, hub / "index.json", sites["the hub as today"], "the hub as today")
    build_site(hub, work / "index-maps.json", sites["with provenance and modules"],
               "with provenance and modules for every archived kernel")  # fmt: skip
    (work / "baseline.html").write_text(BASELINE)
    pages = {"baseline page": work / "baseline.html"}
    pages.update({label: path / "index.html" for label, path in sites.items()})
    times: dict[str, list[float]] = {label: [] for label in pages}
    loaded: dict[str, list[float]] = {label: [] for label in sites}
    ready: dict[str, list[float]] = {label: [] for label in sites}
    with chromium(page_load="none") as browser:
        driver = browser.driver
        answer_time(driver, pages["baseline page"].as_uri(), uname)  # warm the browser up once
        for _ in range(runs):  # interleaved, so load on the machine hits all alike
            for label, page in pages.items():
                elapsed, page_loaded, page_ready = answer_time(driver, page.as_uri(), uname)
                times[label].append(elapsed)
                if label in sites:
                    loaded[label].append(page_loaded)
                    ready[label].append(page_ready)
    base = statistics.median(times["baseline page"])
    ok = True
    for label, values in times.items():
        runs_text = ", ".join(f"{v:.2f}" for v in values)
        median = statistics.median(values)
        print(f"  {label:<28} open -> answer: median {median:.2f} s ({runs_text})")
        if label in sites:
            verdict = "met" if median < GOAL_SECONDS else "MISSED"
            ok = ok and median < GOAL_SECONDS
            script, page = statistics.median(ready[label]), statistics.median(loaded[label])
            print(
                f"    its script ready (search usable) at {script:.2f} s, page loaded at "
                f"{page:.2f} s (medians); ratio to baseline {median / base:.1f}x; "
                f"goal < {GOAL_SECONDS:.0f} s: {verdict}"
            )
    return ok


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    work = Path(tempfile.mkdtemp(prefix="btfhub-site-bench-"))
    try:
        ok = run(work, args.runs)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)
