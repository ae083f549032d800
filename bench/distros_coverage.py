"""What the distributions no public hub covers add: kernels per release and flavour.

bench/coverage.py measures the catalog against the public hub's file list;
this does the same for the distributions and flavours the public hub does not
carry (issue 21): it takes a list of archive paths (by default
tests/data/added-kernels.txt, whose header says where each part comes from),
lays them out as Photon OS, openSUSE Leap and openEuler publish them (indexes
only, through bench/coverage.py's machinery), runs the real `btfhub plan`
against the shipped catalog and prints, per distribution, release directory,
architecture and flavour, how many of the listed kernels the catalog plans
and how many of those the public hub's list (tests/data/public-hub-files.txt)
already has: the rest is what this hub adds.

    .venv/bin/python bench/distros_coverage.py [LIST] [--root DIR] [--json]

A kernel the plan lists is one the hub builds, unless its vmlinux turns out
to ship BTF (Photon's linux from 5.10.175-7.ph4 and 6.1.41-4.ph5): those are
recorded as shipping BTF at build time, which no index can tell beforehand.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.demokit.mirror import IndexedRpm
from generator.errors import BtfhubError
from tests.kit.benchmod import load_bench

# bench/coverage.py, beside this file, under the name its own test loads it by.
cov = load_bench("coverage", "coverage_bench")

DEFAULT_LIST = cov.ROOT / "tests" / "data" / "added-kernels.txt"
PHOTON_UNAME = re.compile(
    r"^(?P<ver>\d+\.\d+\.\d+)-(?P<rel>\d+\.ph(?P<n>\d))(?:-(?P<flavour>\w+))?$"
)
SUSE_UNAME = re.compile(r"^(?P<ver>\d+\.\d+\.\d+)-(?P<rel>[\w.]+)-(?P<flavour>[a-z0-9]+)$")
EULER_UNAME = re.compile(
    r"^4\.19\.90-(?P<rel>(?P<yymm>\d{4})\.[\d.]+\.oe1)\.(?P<arch>x86_64|aarch64)$"
)


def _rpm(name: str, ver: str, rel: str, uarch: str, href_dir: str) -> IndexedRpm:
    filename = f"{name}-{ver}-{rel}.{uarch}.rpm"
    return IndexedRpm(
        name, ver, rel, uarch, 300_000_000, cov._digest(filename), href_dir + filename
    )


def _publish(mirror: Path, repos: dict[str, list[IndexedRpm]]) -> list[str]:
    cov._write_rpm_repos(mirror, repos)
    return sorted({root.split("/")[0] for root in repos})


# -- Photon OS: packages.broadcom.com ------------------------------------------------------

PHOTON_HOST = "packages.broadcom.com"


def publish_photon(mirror: Path, kernels: Sequence[cov.ArchivedKernel]) -> list[str]:
    """One debuginfo repository per release and arch, photon/<v>/photon_debuginfo_<v>_<arch>/,
    every flavour's linux[-<flavour>]-debuginfo in <arch>/ below it (photon-debuginfo.repo)."""
    repos: dict[str, list[IndexedRpm]] = {}
    for version in ("3.0", "4.0", "5.0"):
        for uarch in cov.RPM_ARCH.values():
            repos[f"{PHOTON_HOST}/photon/{version}/photon_debuginfo_{version}_{uarch}"] = []
    for k in kernels:
        m = PHOTON_UNAME.match(k.uname)
        if m is None or f"{m['n']}.0" != k.release_dir:
            raise cov._fail(k, f"not a Photon {k.release_dir} kernel (<ver>-<rel>.phN[-flavour])")
        name = f"linux-{m['flavour']}-debuginfo" if m["flavour"] else "linux-debuginfo"
        uarch = cov.RPM_ARCH[k.arch]
        root = f"{PHOTON_HOST}/photon/{k.release_dir}/photon_debuginfo_{k.release_dir}_{uarch}"
        repos[root].append(_rpm(name, m["ver"], m["rel"], uarch, f"{uarch}/"))
    return _publish(mirror, repos)


# -- openSUSE Leap: download.opensuse.org ----------------------------------------------------

OPENSUSE_HOST = "download.opensuse.org"


# The kernel each release shipped with (its release tree's); every later one is an update.
LEAP_GA = {
    "15.0": {"lp150.11"},
    "15.1": {"lp151.26", "lp151.27"},  # x86_64, and the aarch64 port's own build
    "15.2": {"lp152.19"},
    "15.3": {"57", "36"},  # default and its flavours; azure
}


def _leap_tree(k: cov.ArchivedKernel, rel: str) -> str:
    """Where Leap publishes a kernel: the release's own kernel in its release tree,
    updates of 15.0-15.2 in update/leap/<v>/oss, 15.3's (SLE kernels) in
    update/leap/15.3/sle; aarch64 before 15.3 is a port whose debug tree keeps
    the release's kernel only."""
    v = k.release_dir
    if k.arch == "arm64" and v != "15.3":
        return f"{OPENSUSE_HOST}/ports/aarch64/debug/distribution/leap/{v}/repo/oss"
    if rel in LEAP_GA.get(v, ()):
        return f"{OPENSUSE_HOST}/debug/distribution/leap/{v}/repo/oss"
    return f"{OPENSUSE_HOST}/debug/update/leap/{v}/{'sle' if v == '15.3' else 'oss'}"


def publish_leap(mirror: Path, kernels: Sequence[cov.ArchivedKernel]) -> list[str]:
    """kernel-<flavour>-debuginfo <ver>-<uname release>.1 (the rebuild number uname drops),
    in <arch>/ below each tree; every tree the catalog's Leap rows read is there."""
    repos: dict[str, list[IndexedRpm]] = {}
    for v in ("15.0", "15.1", "15.2", "15.3"):
        repos[f"{OPENSUSE_HOST}/debug/distribution/leap/{v}/repo/oss"] = []
        repos[f"{OPENSUSE_HOST}/debug/update/leap/{v}/oss"] = []
        if v == "15.3":
            repos[f"{OPENSUSE_HOST}/debug/update/leap/{v}/sle"] = []
        else:
            repos[f"{OPENSUSE_HOST}/ports/aarch64/debug/distribution/leap/{v}/repo/oss"] = []
    for k in kernels:
        m = SUSE_UNAME.match(k.uname)
        if m is None:
            raise cov._fail(k, "not a SUSE kernel release (<ver>-<rel>-<flavour>)")
        uarch = cov.RPM_ARCH[k.arch]
        name = f"kernel-{m['flavour']}-debuginfo"
        repos[_leap_tree(k, m["rel"])].append(
            _rpm(name, m["ver"], f"{m['rel']}.1", uarch, f"{uarch}/")
        )
    return _publish(mirror, repos)


# -- openEuler: repo.openeuler.org ---------------------------------------------------------

OPENEULER_HOST = "repo.openeuler.org"
# (first build month YYMM, tree) of 20.03 LTS and its service packs: a stated
# assumption, no public index of which update tree holds which kernel was found.
EULER_PACKS = (("2003", ""), ("2012", "-SP1"), ("2106", "-SP2"), ("2112", "-SP3"), ("2311", "-SP4"))


def publish_openeuler(mirror: Path, kernels: Sequence[cov.ArchivedKernel]) -> list[str]:
    """openEuler-20.03-LTS[-SPn]/{debuginfo,update}/<arch>/Packages/: the GA kernel
    (2003.4.0.0036) in the GA release's debuginfo tree, any later one in the update
    tree of the newest pack released before its build month (YYMM of its release)."""
    repos: dict[str, list[IndexedRpm]] = {}
    for _, pack in EULER_PACKS:
        for tree in ("debuginfo", "update"):
            for uarch in cov.RPM_ARCH.values():
                repos[f"{OPENEULER_HOST}/openEuler-20.03-LTS{pack}/{tree}/{uarch}"] = []
    for k in kernels:
        m = EULER_UNAME.match(k.uname)
        if m is None or k.release_dir != "20.03" or cov.ARCH_OF_RPM[m["arch"]] != k.arch:
            raise cov._fail(k, "not an openEuler 20.03 kernel (4.19.90-<rel>.oe1.<arch>)")
        pack = [p for month, p in EULER_PACKS if month <= m["yymm"]][-1]
        tree = "debuginfo" if m["rel"].startswith("2003.") else "update"
        root = f"{OPENEULER_HOST}/openEuler-20.03-LTS{pack}/{tree}/{m['arch']}"
        repos[root].append(_rpm("kernel-debuginfo", "4.19.90", m["rel"], m["arch"], "Packages/"))
    return _publish(mirror, repos)


PUBLISHERS: dict[str, cov.Publisher] = {
    "photon": publish_photon,
    "opensuse-leap": publish_leap,
    "openEuler": publish_openeuler,
}


def flavour(k: cov.ArchivedKernel) -> str:
    """The kernel flavour a uname names (Photon's generic kernel is `linux`)."""
    if k.distro == "photon":
        m = PHOTON_UNAME.match(k.uname)
        return (m["flavour"] if m else None) or "linux"
    if k.distro == "openEuler":
        return "default"
    return k.uname.rsplit("-", 1)[-1]


def added(result: cov.Coverage, public: set[str]) -> dict[tuple[str, str, str, str], list[int]]:
    """(distro, release dir, arch, flavour) -> [listed, planned, planned and in the public hub]."""
    groups: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for k in result.wanted:
        counts = groups[(k.distro, k.release_dir, k.arch, flavour(k))]
        counts[0] += 1
        if k.path in result.planned:
            counts[1] += 1
            counts[2] += k.path.removeprefix("archive/") in public
    return dict(sorted(groups.items()))


def report(groups: dict[tuple[str, str, str, str], list[int]], result: cov.Coverage) -> str:
    lines = ["DISTRO/RELEASE/ARCH FLAVOUR          LISTED  PLANNED  IN PUBLIC HUB  ADDED"]
    totals = [0, 0, 0]
    for (distro, release, arch, flav), (listed, planned, public) in groups.items():
        totals = [a + b for a, b in zip(totals, (listed, planned, public), strict=True)]
        name = f"{distro}/{release}/{arch} {flav}"
        lines.append(f"{name:<36} {listed:>6} {planned:>8} {public:>14} {planned - public:>6}")
    lines.append(
        f"{'total':<36} {totals[0]:>6} {totals[1]:>8} {totals[2]:>14} {totals[1] - totals[2]:>6}"
    )
    for error in result.plan_errors:
        lines.append(f"plan error: {error}")
    reasons: dict[str, int] = defaultdict(int)
    for k in result.missed():
        reasons[f"{k.distro}/{k.release_dir}/{k.arch} {flavour(k)}: {result.why_missed(k)}"] += 1
    if reasons:
        lines.append("not planned:")
        lines += [f"  {why} ({n})" for why, n in sorted(reasons.items())]
    return "\n".join(lines)


def measure(kernels: Sequence[cov.ArchivedKernel], root: Path, work: Path) -> cov.Coverage:
    return cov.measure(kernels, root, work, more_publishers=PUBLISHERS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("list", nargs="?", type=Path, default=DEFAULT_LIST)
    parser.add_argument("--root", type=Path, default=cov.ROOT, help="the hub (its catalog/)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        kernels = cov.parse_list(args.list.read_text().splitlines(), str(args.list))
        public = {k.path.removeprefix("archive/") for k in cov.parse_list(
            cov.DEFAULT_LIST.read_text().splitlines(), str(cov.DEFAULT_LIST)
        )}  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="btfhub-distros-coverage-") as tmp:
            result = measure(kernels, args.root.resolve(), Path(tmp))
    except (OSError, ValueError, RuntimeError, BtfhubError) as exc:
        print(f"distros_coverage: error: {exc}", file=sys.stderr)
        return 2
    groups = added(result, public)
    if args.json:
        doc: dict[str, Any] = {
            "/".join(key): {"listed": c[0], "planned": c[1], "in_public_hub": c[2]}
            for key, c in groups.items()
        }
        print(json.dumps({"groups": doc, "plan_errors": list(result.plan_errors)}, indent=2))
    else:
        print(report(groups, result))
    return 1 if result.plan_errors else 0


if __name__ == "__main__":
    sys.exit(main())
