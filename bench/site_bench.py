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
import os
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
from generator.index import build_index, dump_index
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
    (root / "index.json").write_bytes(dump_index(build_index(catalog, state, archive)))
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


def run(work: Path, runs: int) -> bool:
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    start = time.perf_counter()
    catalog, uname = hub_index(work / "hub")
    index_size = (work / "hub" / "index.json").stat().st_size
    print(f"hub: {len(catalog.distributions)} distributions, index.json {index_size:,} bytes "
          f"({time.perf_counter() - start:.1f} s to generate)")  # fmt: skip
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(["site", "--root", str(work / "hub"), "--output", str(work / "site")])
    built = time.perf_counter() - start
    if code != 0:
        sys.exit(f"btfhub site: exit {code}\n{out.getvalue()}")
    print(f"btfhub site: {built:.2f} s")
    sizes = {p.name: p.stat().st_size for p in sorted((work / "site").iterdir())}
    for name, size in sizes.items():
        print(f"  {name:<12} {size:>12,} bytes")
    print(f"  {'total':<12} {sum(sizes.values()):>12,} bytes")
    (work / "baseline.html").write_text(BASELINE)
    site_url = (work / "site" / "index.html").as_uri()
    baseline_url = (work / "baseline.html").as_uri()
    with chromium(page_load="none") as browser:
        driver = browser.driver
        answer_time(driver, baseline_url, uname)  # warm the browser up once
        base, site, loaded, ready = [], [], [], []
        for _ in range(runs):  # interleaved, so load on the machine hits both alike
            base.append(answer_time(driver, baseline_url, uname)[0])
            elapsed, page_loaded, page_ready = answer_time(driver, site_url, uname)
            site.append(elapsed)
            loaded.append(page_loaded)
            ready.append(page_ready)
    for label, values in (("baseline page", base), ("20,000-kernel site", site)):
        runs_text = ", ".join(f"{v:.2f}" for v in values)
        median = statistics.median(values)
        print(f"  {label:<20} open -> answer: median {median:.2f} s ({runs_text})")
    print(
        f"  the site: its script ready (search usable) at {statistics.median(ready):.2f} s, "
        f"the page loaded at {statistics.median(loaded):.2f} s (medians)"
    )
    median = statistics.median(site)
    ratio = median / statistics.median(base)
    verdict = "met" if median < GOAL_SECONDS else "MISSED"
    print(f"  ratio to baseline: {ratio:.1f}x; goal < {GOAL_SECONDS:.0f} s: {verdict}")
    return median < GOAL_SECONDS


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
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)
