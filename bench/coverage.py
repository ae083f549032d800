"""How much of a list of archive paths the shipped catalog plans.

Takes a list of archive paths (by default the public hub's, saved in
tests/data/public-hub-files.txt), writes the package indexes the real
upstreams publish for those kernels into a local mirror (the right host,
suite or repo root, component, pool path and package naming; indexes only,
no package bodies), serves it with the test HTTP server, runs
`btfhub plan --json` on the catalog with a --mirror rewrite for every
upstream host, and prints the share planned per distribution, release
directory and architecture, which repository planned how many kernels,
then the kernels the plan misses.

    .venv/bin/python bench/coverage.py [LIST] [--root DIR] [--distro D ...]
        [--ddebs-share S] [--json]

Ubuntu has two upstreams: Launchpad's API (tests/kit/launchpad.py,
served beside the mirror) publishes every kernel, ddebs.ubuntu.com only the
newest ones: for each (release dir, arch, kernel series, flavour) it indexes
the newest ceil(S x n) of its n kernels, S = --ddebs-share (default 0.5, a
stated assumption: ddebs drops old versions, how many it keeps is not
measured here). The rest can only be planned through the Launchpad fallback.

The upstream layouts are modelled here, in one place, from what the
upstreams publish (each publisher's docstring and comments say what it
models); the catalog is never consulted to decide where a kernel goes, so
a miss is the catalog's, not the mirror's. The catalog only says which
distributions can be planned at all (a manifest whose kinds are known).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import math
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The repository root, for tests.kit (test machinery kept out of the package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.catalog import load_catalog
from generator.cli import main as btfhub
from generator.demokit.mirror import IndexedRpm, write_release
from generator.demokit.server import MirrorServer
from generator.demokit.signing import default_signer
from generator.errors import BtfhubError
from generator.kinds import apt, rpmmd
from generator.kinds.registry import find_kind
from generator.model import Catalog, archive_path
from tests.kit.launchpad import LaunchpadStandIn
from tests.kit.mirror import IndexedDeb, write_apt_index, write_rpmmd_index

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LIST = ROOT / "tests" / "data" / "public-hub-files.txt"
DEB_ARCH = apt.KIND.arches
RPM_ARCH = rpmmd.KIND.arches
ARCH_OF_RPM = {v: k for k, v in RPM_ARCH.items()}
SUFFIX = ".btf.tar.xz"


@dataclass(frozen=True, order=True)
class ArchivedKernel:
    """One line of the list: archive/<distro>/<release dir>/<arch>/<uname>.btf.tar.xz."""

    distro: str
    release_dir: str
    arch: str
    uname: str

    @property
    def path(self) -> str:
        return archive_path(self.distro, self.release_dir, self.arch, self.uname)


def parse_list(lines: Iterable[str], where: str = "list") -> list[ArchivedKernel]:
    """Paths with or without the leading archive/ (the public hub has none); # comments."""
    kernels = set()
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.removeprefix("archive/").split("/")
        if len(parts) != 4 or not parts[3].endswith(SUFFIX) or parts[2] not in DEB_ARCH:
            raise ValueError(
                f"{where}:{lineno}: not <distro>/<release>/<arch>/<uname>{SUFFIX}: {line!r}"
            )
        kernels.add(ArchivedKernel(parts[0], parts[1], parts[2], parts[3][: -len(SUFFIX)]))
    return sorted(kernels)


def _digest(text: str) -> str:
    # A stand-in checksum: planning never downloads a package, only reads indexes.
    return hashlib.sha256(text.encode()).hexdigest()


def _fail(kernel: ArchivedKernel, why: str) -> ValueError:
    return ValueError(f"{kernel.path}: {why}")


# -- Ubuntu: ddebs.ubuntu.com ------------------------------------------------------------

UBUNTU_HOST = "ddebs.ubuntu.com"
# release dir -> (codename, GA kernel series, the ABI the release shipped with)
UBUNTU_RELEASES = {
    "16.04": ("xenial", "4.4", 21),
    "18.04": ("bionic", "4.15", 20),
    "20.04": ("focal", "5.4", 26),
}
UBUNTU_POCKETS = ("", "-updates", "-proposed")
UBUNTU_COMPONENTS = ("main", "universe")
# The GKE kernels are built for Google's images and published in universe;
# every other flavour the public hub carries is in main.
UBUNTU_UNIVERSE_FLAVOURS = frozenset({"gke", "gkeop"})
UBUNTU_UNAME = re.compile(
    r"^(?P<series>\d+\.\d+)\.(?P<micro>\d+)-(?P<abi>\d+)-(?P<flavour>[a-z0-9]+)$"
)


def ubuntu_source(codename: str, base: str, series: str, flavour: str) -> str:
    """The source package: linux, linux-hwe, linux-hwe-5.4, linux-aws, linux-gke-5.3 ..."""
    if flavour == "generic":
        if series == base:
            return "linux"
        # Xenial's HWE kernels and Bionic's up to 5.3 came from one rolling linux-hwe.
        if codename == "xenial" or (codename == "bionic" and series in ("4.18", "5.0", "5.3")):
            return "linux-hwe"
        return f"linux-hwe-{series}"
    if series == base:
        return f"linux-{flavour}"
    if codename == "xenial":
        return "linux-aws-hwe" if flavour == "aws" else f"linux-{flavour}"
    return f"linux-{flavour}-{series}"


DEFAULT_DDEBS_SHARE = 0.5


def ddebs_kept(kernels: Sequence[ArchivedKernel], share: float) -> set[ArchivedKernel]:
    """The kernels ddebs still indexes: the newest ceil(share x n) of each
    (release dir, arch, kernel series, flavour) group of n, by ABI."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"--ddebs-share {share}: a share is between 0 and 1")
    groups: dict[tuple[str, ...], list[tuple[int, ArchivedKernel]]] = defaultdict(list)
    for k in kernels:
        m = UBUNTU_UNAME.match(k.uname)
        if m is None:
            raise _fail(k, "not an Ubuntu kernel release (X.Y.Z-ABI-flavour)")
        key = (k.release_dir, k.arch, m["series"], m["flavour"])
        groups[key].append((int(m["abi"]), k))
    kept: set[ArchivedKernel] = set()
    for members in groups.values():
        members.sort()
        keep = math.ceil(share * len(members))
        kept.update(k for _, k in members[len(members) - keep :])
    return kept


def _ubuntu_packages(k: ArchivedKernel) -> tuple[str, str, str, str, list[str]]:
    """(suite's codename, component, source package, version, dbgsym names) of a kernel."""
    if k.release_dir not in UBUNTU_RELEASES:
        raise _fail(k, f"no Ubuntu release with directory {k.release_dir}")
    codename, base, ga_abi = UBUNTU_RELEASES[k.release_dir]
    m = UBUNTU_UNAME.match(k.uname)
    if m is None:
        raise _fail(k, "not an Ubuntu kernel release (X.Y.Z-ABI-flavour)")
    series, abi, flavour = m["series"], int(m["abi"]), m["flavour"]
    source = ubuntu_source(codename, base, series, flavour)
    # Backported kernels carry ~<release>.N (linux-hwe-5.4 5.4.0-42.46~18.04.1).
    backport = "" if series == base else f"~{k.release_dir}.1"
    version = f"{series}.{m['micro']}-{abi}.{abi + 1}{backport}"
    # The release pocket holds what the release shipped; later ABIs are -updates.
    pocket = "" if (series == base and abi == ga_abi) else "-updates"
    component = "universe" if flavour in UBUNTU_UNIVERSE_FLAVOURS else "main"
    uarch = DEB_ARCH[k.arch]
    # Signed kernels (amd64 from 4.15, arm64 from 5.4) keep vmlinux in the
    # -unsigned- dbgsym; the plain one beside it is nearly empty.
    signed = (uarch == "amd64" and _ver(series) >= (4, 15)) or _ver(series) >= (5, 4)
    names = [f"linux-image-{k.uname}-dbgsym"]
    if signed:
        names.insert(0, f"linux-image-unsigned-{k.uname}-dbgsym")
    return codename + pocket, component, source, version, names


def publish_launchpad(lp: LaunchpadStandIn, files: Path, kernels: Sequence[ArchivedKernel]) -> int:
    """Every kernel's dbgsyms as Launchpad publications of its series (it keeps them all).

    Each publication needs a file of its own name (binaryFileUrls names it);
    a few bytes stand for the package, which planning never downloads.
    """
    files.mkdir(parents=True, exist_ok=True)
    count = 0
    for k in kernels:
        suite, _, _, version, names = _ubuntu_packages(k)
        uarch = DEB_ARCH[k.arch]
        for name in names:
            path = files / f"{name}_{version}_{uarch}.ddeb"
            path.write_bytes(name.encode())
            lp.publish(path, name, version, suite.split("-")[0], uarch, status="Superseded")
            count += 1
    return count


def publish_ubuntu(
    mirror: Path, kernels: Sequence[ArchivedKernel], ddebs_share: float = 1.0
) -> list[str]:
    """ddebs.ubuntu.com: the kernels ddebs_kept() leaves it (all by default)."""
    kept = ddebs_kept(kernels, ddebs_share)
    repo = mirror / UBUNTU_HOST
    entries: dict[tuple[str, str, str], list[IndexedDeb]] = defaultdict(list)
    # ddebs publishes every release's suites, whichever kernels the list names.
    codenames = {codename for codename, _, _ in UBUNTU_RELEASES.values()}
    for k in kernels:
        suite, component, source, version, names = _ubuntu_packages(k)
        if k not in kept:
            continue  # dropped from ddebs: Launchpad still has it
        uarch = DEB_ARCH[k.arch]
        for i, name in enumerate(names):
            size = 900_000_000 if i == 0 else 12_000
            entries[(suite, component, uarch)].append(
                IndexedDeb(name, version, uarch, source, size, _digest(name), "ddeb")
            )
    suites = []
    for codename in sorted(codenames):
        for pocket in UBUNTU_POCKETS:
            suite = codename + pocket
            suites.append(suite)
            for component in UBUNTU_COMPONENTS:
                for uarch in DEB_ARCH.values():
                    write_apt_index(
                        repo, suite, component, uarch, entries[(suite, component, uarch)]
                    )
            write_release(repo / "dists" / suite, suite)
    return [UBUNTU_HOST]


def _ver(series: str) -> tuple[int, ...]:
    return tuple(int(p) for p in series.split("."))


# -- Debian: deb.debian.org, security.debian.org, archive.debian.org ----------------------

# release dir -> (codename, where the release lives now: main archive, security archive)
DEBIAN_RELEASES = {
    "9": ("stretch", "archive.debian.org/debian", "archive.debian.org/debian-security"),
    "10": ("buster", "archive.debian.org/debian", "archive.debian.org/debian-security"),
    "11": ("bullseye", "deb.debian.org/debian", "security.debian.org/debian-security"),
}
# ABIs that shipped in a point release (9.13; 10.10-10.13; 11.1, 11.2): the
# suite itself lists them. Other ABIs were security updates.
DEBIAN_POINT_RELEASE_ABIS = {
    "stretch": {13},
    "buster": {17, 18, 20, 21},
    "bullseye": {9, 10},
}
# The last ABI stretch-backports published (4.19.0-0.bpo.9, 4.19.118-2~bpo9+1);
# later bpo ABIs are stretch LTS's linux-4.19. Buster's 5.10 LTS kernels are
# named 0.deb10.N instead, so every buster bpo ABI is a backport.
DEBIAN_LAST_BACKPORTS_ABI = {"stretch": 9, "buster": 1_000, "bullseye": 1_000}
DEBIAN_UNAME = re.compile(
    r"^(?P<upstream>\d+\.\d+)\.0-(?P<abi>\d+|0\.bpo\.\d+|0\.deb\d+\.\d+)-(?P<flavour>[a-z0-9-]+)$"
)


def debian_security_suite(codename: str) -> str:
    # Bullseye renamed the security suite from <codename>/updates.
    return f"{codename}-security" if codename == "bullseye" else f"{codename}/updates"


def publish_debian(mirror: Path, kernels: Sequence[ArchivedKernel]) -> list[str]:
    # (repo dir, suite, arch) -> entries; the -dbg packages are in main.
    entries: dict[tuple[str, str, str], list[IndexedDeb]] = defaultdict(list)
    # Every release's suites are published, whichever kernels the list names.
    suites: dict[str, set[str]] = defaultdict(set)
    for codename, main_repo, security_repo in DEBIAN_RELEASES.values():
        suites[main_repo] |= {codename, f"{codename}-updates", f"{codename}-backports"}
        suites[security_repo].add(debian_security_suite(codename))
    for k in kernels:
        if k.release_dir not in DEBIAN_RELEASES:
            raise _fail(k, f"no Debian release with directory {k.release_dir}")
        codename, main_repo, security_repo = DEBIAN_RELEASES[k.release_dir]
        security_suite = debian_security_suite(codename)
        m = DEBIAN_UNAME.match(k.uname)
        if m is None:
            raise _fail(k, "not a Debian kernel release (X.Y.0-ABI-flavour)")
        upstream, abi = m["upstream"], m["abi"]
        if ".bpo." in abi and int(abi.rsplit(".", 1)[1]) > DEBIAN_LAST_BACKPORTS_ABI[codename]:
            # Stretch LTS carried linux-4.19 in its security archive, keeping
            # the backports ABI name (4.19.0-0.bpo.19 = 4.19.232-1~deb9u1).
            n = int(abi.rsplit(".", 1)[1])
            where = (security_repo, security_suite)
            source = f"linux-{upstream}"
            version = f"{upstream}.{n * 10}-1~deb{k.release_dir}u1"
        elif ".bpo." in abi:
            # Backports: the next release's kernel rebuilt (4.19.118-2~bpo9+1).
            n = int(abi.rsplit(".", 1)[1])
            where = (main_repo, f"{codename}-backports")
            source, version = "linux", f"{upstream}.{n * 10}-1~bpo{k.release_dir}+1"
        elif ".deb" in abi:
            # The next release's kernel for LTS security: 5.10.0-0.deb10.17 from linux-5.10.
            n = int(abi.rsplit(".", 1)[1])
            where = (security_repo, security_suite)
            source = f"linux-{upstream}"
            version = f"{upstream}.{n * 10}-1~deb{k.release_dir}u1"
        else:
            n = int(abi)
            point = n in DEBIAN_POINT_RELEASE_ABIS[codename]
            where = (main_repo, codename) if point else (security_repo, security_suite)
            source, version = "linux", f"{upstream}.{n * 10}-1"
        uarch = DEB_ARCH[k.arch]
        if not m["flavour"].endswith(uarch):
            raise _fail(k, f"flavour {m['flavour']} is not built for {uarch}")
        name = f"linux-image-{k.uname}-dbg"
        entries[(where[0], where[1], uarch)].append(
            IndexedDeb(name, version, uarch, source, 300_000_000, _digest(name))
        )
    for repo_dir, names in suites.items():
        for suite in sorted(names):
            for uarch in DEB_ARCH.values():
                write_apt_index(
                    mirror / repo_dir, suite, "main", uarch, entries[(repo_dir, suite, uarch)]
                )
            write_release(mirror / repo_dir / "dists" / suite, suite)
    return sorted({r.split("/")[0] for r in suites})


# -- rpm-md helpers ---------------------------------------------------------------------

RPM_UNAME = re.compile(r"^(?P<ver>[^-]+)-(?P<rel>.+)\.(?P<arch>x86_64|aarch64)$")


def _rpm_entry(k: ArchivedKernel, href_dir: str) -> IndexedRpm:
    m = RPM_UNAME.match(k.uname)
    if m is None or ARCH_OF_RPM[m["arch"]] != k.arch:
        raise _fail(k, "not an RPM kernel release (<ver>-<rel>.<arch>) of its directory's arch")
    filename = f"kernel-debuginfo-{k.uname}.rpm"
    return IndexedRpm(
        "kernel-debuginfo",
        m["ver"],
        m["rel"],
        m["arch"],
        400_000_000,
        _digest(filename),
        f"{href_dir}{filename}",
    )


def _write_rpm_repos(mirror: Path, repos: dict[str, list[IndexedRpm]]) -> None:
    for root, rpms in sorted(repos.items()):
        write_rpmmd_index(mirror / root, rpms)


# -- CentOS: debuginfo.centos.org ---------------------------------------------------------

CENTOS_HOST = "debuginfo.centos.org"


def publish_centos(mirror: Path, kernels: Sequence[ArchivedKernel]) -> list[str]:
    """7: one flat directory per arch (AltArch's aarch64 el7a and SIG kernels in
    7/aarch64 too); 8: Packages/ under the repo root."""
    repos: dict[str, list[IndexedRpm]] = {}
    for release in ("7", "8"):
        for uarch in RPM_ARCH.values():
            repos[f"{CENTOS_HOST}/{release}/{uarch}"] = []
    for k in kernels:
        if k.release_dir not in ("7", "8"):
            raise _fail(k, "no CentOS debuginfo tree for this release")
        href_dir = "" if k.release_dir == "7" else "Packages/"
        repos[f"{CENTOS_HOST}/{k.release_dir}/{RPM_ARCH[k.arch]}"].append(_rpm_entry(k, href_dir))
    _write_rpm_repos(mirror, repos)
    return [CENTOS_HOST]


# -- Fedora: archives.fedoraproject.org ----------------------------------------------------

FEDORA_BASE = "archives.fedoraproject.org/pub/archive/fedora/linux"
# The archived releases the public hub has files of; all are published.
FEDORA_RELEASES = range(24, 35)
FEDORA_REL = re.compile(r"^(?P<n>\d+)\.fc(?P<release>\d+)")


def publish_fedora(mirror: Path, kernels: Sequence[ArchivedKernel]) -> list[str]:
    """The GA kernel (release 300 and up) in releases/N/Everything/<arch>/debug/tree,
    later ones in updates/N/Everything/<arch>/debug, which keeps only the newest
    kernel (so the public hub has each release's first and last). The archive
    keeps both trees for both architectures from Fedora 24 on; aarch64 24-27
    were secondary-architecture releases, absent here (and from the public hub)."""
    repos: dict[str, list[IndexedRpm]] = {}
    for release in FEDORA_RELEASES:
        for uarch in RPM_ARCH.values() if release >= 28 else ("x86_64",):
            repos[f"{FEDORA_BASE}/releases/{release}/Everything/{uarch}/debug/tree"] = []
            repos[f"{FEDORA_BASE}/updates/{release}/Everything/{uarch}/debug"] = []
    for k in kernels:
        m = RPM_UNAME.match(k.uname)
        rel = FEDORA_REL.match(m["rel"]) if m else None
        if rel is None or rel["release"] != k.release_dir:
            raise _fail(k, f"not a Fedora {k.release_dir} kernel (<ver>-<n>.fc{k.release_dir})")
        uarch = RPM_ARCH[k.arch]
        release = int(k.release_dir)
        if release not in FEDORA_RELEASES or (release < 28 and uarch != "x86_64"):
            raise _fail(k, "not in Fedora's archive of debug trees laid out here")
        tree = (
            f"releases/{release}/Everything/{uarch}/debug/tree"
            if int(rel["n"]) >= 300
            else f"updates/{release}/Everything/{uarch}/debug"
        )
        repos[f"{FEDORA_BASE}/{tree}"].append(_rpm_entry(k, "Packages/k/"))
    _write_rpm_repos(mirror, repos)
    return [FEDORA_BASE.split("/")[0]]


# -- Oracle Linux: oss.oracle.com --------------------------------------------------------

ORACLE_HOST = "oss.oracle.com"


def _apache_row(name: str) -> str:
    return (
        '<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td>'
        f'<td><a href="{name}">{name}</a></td>'
        '<td align="right">2021-06-01 12:00  </td><td align="right">512M</td>'
        "<td>&nbsp;</td></tr>\n"
    )


def publish_ol(mirror: Path, kernels: Sequence[ArchivedKernel]) -> list[str]:
    """ol<N>/debuginfo/: one flat directory for both arches, an Apache listing and
    no repodata; RHCK is kernel-debuginfo, UEK (el7uek, el8uek) kernel-uek-debuginfo,
    each beside its -common- twin (sources only)."""
    listings: dict[str, list[str]] = {}
    for release in sorted({k.release_dir for k in kernels}):
        if release not in ("7", "8"):
            raise ValueError(f"ol/{release}: no Oracle Linux debuginfo directory for it")
        listings[release] = []
    for k in kernels:
        m = RPM_UNAME.match(k.uname)
        if m is None or ARCH_OF_RPM[m["arch"]] != k.arch:
            raise _fail(k, "not an RPM kernel release (<ver>-<rel>.<arch>) of its directory's arch")
        uek = "uek" in m["rel"]
        name = "kernel-uek-debuginfo" if uek else "kernel-debuginfo"
        common = (
            f"kernel-uek-debuginfo-common-{k.uname}.rpm"
            if uek
            else f"kernel-debuginfo-common-{m['arch']}-{k.uname}.rpm"
        )
        listings[k.release_dir] += [f"{name}-{k.uname}.rpm", common]
    for release, names in listings.items():
        path = f"/ol{release}/debuginfo/"
        html = (
            '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
            f"<html>\n <head>\n  <title>Index of {path}</title>\n </head>\n <body>\n"
            f"<h1>Index of {path}</h1>\n<table>\n"
            '<tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
            '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
            '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>\n'
            '<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
            f'<td><a href="/ol{release}/">Parent Directory</a></td><td>&nbsp;</td>'
            '<td align="right">  - </td><td>&nbsp;</td></tr>\n'
            + "".join(_apache_row(n) for n in sorted(names))
            + "</table>\n</body></html>\n"
        )
        directory = mirror / ORACLE_HOST / f"ol{release}" / "debuginfo"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "index.html").write_text(html)
    return [ORACLE_HOST]


# -- Amazon Linux: mirror.list -> rpm-md -------------------------------------------------

AL2_HOST = "amazonlinux.us-east-1.amazonaws.com"
AL2_TOPICS = ("core", "extras/kernel-5.4", "extras/kernel-5.10", "extras/kernel-5.15")
AL1_HOST = "repo.us-east-1.amazonaws.com"
AL1_PACKAGES_HOST = "packages.us-east-1.amazonaws.com"
AMZN_UNAME = re.compile(r"^(?P<ver>[^-]+)-(?P<rel>.+)\.amzn(?P<n>[12])\.(?P<arch>x86_64|aarch64)$")


def publish_amzn(mirror: Path, kernels: Sequence[ArchivedKernel]) -> list[str]:
    """Every repository is reached through a mirror.list whose first line is
    the rpm-md base. Amazon Linux 2: 2/core/latest/debuginfo/<arch>/mirror.list
    for the 4.14 kernels, 2/extras/kernel-<X.Y>/latest/debuginfo/<arch>/ for the
    5.4, 5.10 and 5.15 extras. Amazon Linux 1 (releasever "latest", an alias of
    2018.03): <releasever>/{main,updates}/debuginfo/mirror.list, whose base names
    $basearch for yum to fill in; its later kernels are updates (main holds
    what 2018.03 shipped with)."""
    repos: dict[str, list[IndexedRpm]] = {}
    lists: dict[str, str] = {}
    if any(k.release_dir == "2" for k in kernels):
        # Every topic is published for both arches, with or without listed kernels.
        for topic in AL2_TOPICS:
            for uarch in RPM_ARCH.values():
                pointer = f"{AL2_HOST}/2/{topic}/latest/debuginfo/{uarch}/mirror.list"
                root = f"{AL2_HOST}/2/{topic}/2.0/debuginfo/{uarch}/{_digest(pointer)[:12]}"
                lists[pointer] = f"http://{root}/"
                repos[root] = []
    for k in kernels:
        m = AMZN_UNAME.match(k.uname)
        if m is None or m["n"] != k.release_dir or ARCH_OF_RPM[m["arch"]] != k.arch:
            raise _fail(k, f"not an Amazon Linux {k.release_dir} kernel of its directory's arch")
        uarch = m["arch"]
        if k.release_dir == "1":
            for repo in ("main", "updates"):
                base = f"{AL1_PACKAGES_HOST}/2018.03/{repo}/{_digest(repo)[:12]}/debuginfo"
                for releasever in ("latest", "2018.03"):
                    lists[f"{AL1_HOST}/{releasever}/{repo}/debuginfo/mirror.list"] = (
                        f"http://{base}/$basearch/"
                    )
                repos.setdefault(f"{base}/{uarch}", [])
            root = f"{AL1_PACKAGES_HOST}/2018.03/updates/{_digest('updates')[:12]}/debuginfo"
            root = f"{root}/{uarch}"
        else:
            series = ".".join(m["ver"].split(".")[:2])
            topic = "core" if series == "4.14" else f"extras/kernel-{series}"
            if topic not in AL2_TOPICS:
                raise _fail(k, f"no Amazon Linux 2 repository for kernel {series}")
            pointer = f"{AL2_HOST}/2/{topic}/latest/debuginfo/{uarch}/mirror.list"
            root = lists[pointer].removeprefix("http://").rstrip("/")
        repos.setdefault(root, []).append(_rpm_entry(k, "Packages/"))
    for pointer, line in lists.items():
        (mirror / pointer).parent.mkdir(parents=True, exist_ok=True)
        (mirror / pointer).write_text(line + "\n")
    _write_rpm_repos(mirror, repos)
    return sorted({p.split("/")[0] for p in [*lists, *repos]})


Publisher = Callable[[Path, Sequence[ArchivedKernel]], list[str]]
PUBLISHERS: dict[str, Publisher] = {
    "ubuntu": publish_ubuntu,
    "debian": publish_debian,
    "centos": publish_centos,
    "fedora": publish_fedora,
    "ol": publish_ol,
    "amzn": publish_amzn,
}
# Distributions of the public hub this script does not lay out, and why.
NOT_LAID_OUT = {
    "rhel": "needs a subscription (entitlement certificate)",
    "sles": "needs SUSE registration credentials",
}


def catalog_gap(catalog: Catalog, distro: str) -> str | None:
    """Why the catalog cannot plan a distribution yet, or None when it can."""
    manifests = [d for d in catalog.distributions if d.archive_dir == distro]
    if not manifests:
        return f"the catalog has no manifest with archive_dir {distro!r} yet"
    unknown = sorted(
        {r.kind for d in manifests for r in d.repositories if find_kind(r.kind) is None}
    )
    if unknown:
        return f"repository kind(s) {', '.join(unknown)} not known to this generator yet"
    return None


# -- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    wanted: tuple[ArchivedKernel, ...]  # the kernels of the distributions laid out
    planned: frozenset[str]  # archive paths the plan lists
    skipped: dict[str, str]  # distribution -> why it was not laid out
    plan_errors: tuple[str, ...]
    # (distro dir, release dir, arch) that some release with hub: true builds
    built_dirs: frozenset[tuple[str, str, str]]
    # archive path -> the repository whose package the plan names for it
    planned_by: dict[str, str] = field(default_factory=dict)
    # fallback sources that failed (plan --json "incomplete")
    plan_warnings: tuple[str, ...] = ()
    # (distro dir, release dir, arch) skipped for what the operator supplies
    # (plan --json "needs_operator_input": credentials, a signing key) -> why
    operator_needs: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def by_repository(self) -> dict[str, dict[str, int]]:
        """distribution -> {repository: kernels of the list it planned}."""
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for k in self.wanted:
            repo = self.planned_by.get(k.path)
            if repo is not None:
                counts[k.distro][repo] += 1
        return {d: dict(sorted(c.items())) for d, c in sorted(counts.items())}

    def missed(self) -> list[ArchivedKernel]:
        return [k for k in self.wanted if k.path not in self.planned]

    def why_missed(self, k: ArchivedKernel) -> str:
        need = self.operator_needs.get((k.distro, k.release_dir, k.arch))
        if need is not None:
            return f"skipped by the plan: {need} (the operator supplies it)"
        if (k.distro, k.release_dir, k.arch) not in self.built_dirs:
            return "no release with hub: true builds this directory and arch"
        return "published upstream, but no release's series, flavours or suites take it"

    def share(self) -> float:
        hit = len(self.wanted) - len(self.missed())
        return hit / len(self.wanted) if self.wanted else 0.0


def measure(
    kernels: Sequence[ArchivedKernel],
    hub_root: Path,
    work: Path,
    distros: Sequence[str] = (),
    ddebs_share: float = DEFAULT_DDEBS_SHARE,
    more_publishers: Mapping[str, Publisher] | None = None,
) -> Coverage:
    """Lay out the upstreams for the kernels, serve them, run `btfhub plan --json`.

    more_publishers: layouts of further distributions (bench/distros_coverage.py).
    """
    by_distro: dict[str, list[ArchivedKernel]] = defaultdict(list)
    for k in kernels:
        if not distros or k.distro in distros:
            by_distro[k.distro].append(k)
    mirror = work / "mirror"
    catalog = load_catalog(hub_root)
    hosts: set[str] = set()
    skipped: dict[str, str] = {}
    wanted: list[ArchivedKernel] = []
    publishers: dict[str, Publisher] = {
        **PUBLISHERS,
        "ubuntu": functools.partial(publish_ubuntu, ddebs_share=ddebs_share),
        **(more_publishers or {}),
    }
    for distro, ks in sorted(by_distro.items()):
        publisher = publishers.get(distro)
        gap = catalog_gap(catalog, distro)
        if publisher is None or gap is not None:
            skipped[distro] = NOT_LAID_OUT.get(distro, gap or "no upstream layout known")
            continue
        hosts.update(publisher(mirror, ks))
        wanted.extend(ks)
    laid_out = {k.distro for k in wanted}
    # Only the manifests of the distributions laid out are planned, one run
    # each: any other would reach for its real upstream.
    manifests = [d.id for d in catalog.distributions if d.archive_dir in laid_out]
    built_dirs = frozenset(
        (d.archive_dir, r.directory, arch)
        for d in catalog.distributions
        for r in d.releases
        if r.hub is True
        for arch in r.architectures
    )
    planned: dict[str, str] = {}
    errors: list[str] = []
    warnings: list[str] = []
    needs: dict[tuple[str, str, str], str] = {}
    with ExitStack() as stack:
        server = stack.enter_context(MirrorServer(mirror))
        extra: list[str] = []
        if "ubuntu" in laid_out:
            # Launchpad's API is no static tree: its stand-in serves it beside the mirror.
            lp = stack.enter_context(LaunchpadStandIn())
            publish_launchpad(lp, work / "launchpad", [k for k in wanted if k.distro == "ubuntu"])
            extra = lp.mirror_pairs()
        for manifest in manifests:
            doc = run_plan(hub_root, work / "cache", server.url, sorted(hosts), manifest, extra)
            planned.update(
                (k["archive_path"], (k["package"] or {}).get("repository", "?"))
                for k in doc["kernels"]
            )
            errors += [
                f"{e['distro']}/{e['release']}/{e['arch']}: {e['message']}" for e in doc["errors"]
            ]
            warnings += [
                f"{e['distro']}/{e['release']}/{e['arch']}: {e['repository']}: {e['message']}"
                for e in doc.get("incomplete", [])
            ]
            for e in doc.get("needs_operator_input", []):
                dist = catalog.distribution(e["distro"])
                release = next(r for r in dist.releases if r.id == e["release"])
                where = (dist.archive_dir, release.directory, e["arch"])
                needs[where] = e["message"].split(":", 1)[0]
    return Coverage(
        tuple(sorted(wanted)),
        frozenset(planned),
        skipped,
        tuple(errors),
        built_dirs,
        planned,
        tuple(warnings),
        needs,
    )


def run_plan(
    hub_root: Path,
    cache: Path,
    server_url: str,
    hosts: Sequence[str],
    manifest: str,
    extra_mirrors: Sequence[str] = (),
) -> Any:
    """`btfhub plan --json --distro MANIFEST`, every upstream host rewritten to the mirror
    (extra_mirrors: further FROM=TO pairs, e.g. Launchpad's to its stand-in)."""
    mirrors = [arg for pair in extra_mirrors for arg in ("--mirror", pair)]
    for host in hosts:
        for scheme in ("http", "https"):
            mirrors += ["--mirror", f"{scheme}://{host}/={server_url}{host}/"]
    argv = ["plan", "--json", "--root", str(hub_root)]
    # The local copy is re-signed with a key made for the run (as a private
    # mirror re-signs), which the run is told to trust, like an operator would.
    argv += ["--keyring", str(default_signer().public_key)]
    argv += ["--distro", manifest, "--cache-dir", str(cache), *mirrors]
    # In this process: an interpreter's start and imports cost more than the plan.
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = btfhub(argv)
    # Exit 1 with the JSON printed all the same means some discovery failed:
    # those failures are part of the measure, reported with the figures.
    try:
        if code in (0, 1):
            return json.loads(out.getvalue())
    except json.JSONDecodeError:
        pass
    raise RuntimeError(f"btfhub plan failed ({code}):\n{err.getvalue()}")


def report(cov: Coverage) -> str:
    """Share planned per distribution, release dir and arch, then the misses."""
    groups: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    for k in cov.wanted:
        hit = int(k.path in cov.planned)
        keys: list[tuple[str, ...]] = [
            (k.distro,),
            (k.distro, k.release_dir),
            (k.distro, k.release_dir, k.arch),
        ]
        for key in keys:
            groups[key][0] += hit
            groups[key][1] += 1
    lines = ["AREA                         PLANNED   SHARE"]
    for key in sorted(groups):
        hit, total = groups[key]
        name = ("  " * (len(key) - 1)) + "/".join(key)
        lines.append(f"{name:<28} {hit:>4}/{total:<4} {100 * hit / total:5.1f}%")
    hit_all = len(cov.wanted) - len(cov.missed())
    lines.append(f"{'total':<28} {hit_all:>4}/{len(cov.wanted):<4} {100 * cov.share():5.1f}%")
    for distro, why in sorted(cov.skipped.items()):
        lines.append(f"skipped {distro}: {why}")
    by_repo = cov.by_repository()
    if by_repo:
        lines.append("planned by repository:")
        for distro, counts in by_repo.items():
            lines.append(f"  {distro}: " + ", ".join(f"{r} {n}" for r, n in counts.items()))
    for error in cov.plan_errors:
        lines.append(f"plan error: {error}")
    for warning in cov.plan_warnings:
        lines.append(f"plan warning: {warning}")
    missed = cov.missed()
    if missed:
        lines.append(f"missed ({len(missed)}):")
        lines += [f"  {k.path}: {cov.why_missed(k)}" for k in missed]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("list", nargs="?", type=Path, default=DEFAULT_LIST)
    parser.add_argument("--root", type=Path, default=ROOT, help="the hub (its catalog/)")
    parser.add_argument("--distro", action="append", default=[], help="only these (repeatable)")
    parser.add_argument(
        "--ddebs-share",
        type=float,
        default=DEFAULT_DDEBS_SHARE,
        metavar="S",
        help="share of each Ubuntu kernel group ddebs still indexes, newest first, 0..1 "
        f"(default {DEFAULT_DDEBS_SHARE}); Launchpad publishes them all",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        kernels = parse_list(args.list.read_text().splitlines(), str(args.list))
        with tempfile.TemporaryDirectory(prefix="btfhub-coverage-") as tmp:
            cov = measure(kernels, args.root.resolve(), Path(tmp), args.distro, args.ddebs_share)
    except (OSError, ValueError, RuntimeError, BtfhubError) as exc:
        print(f"coverage: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "wanted": len(cov.wanted),
                    "planned": len(cov.wanted) - len(cov.missed()),
                    "share": round(cov.share(), 4),
                    "skipped": cov.skipped,
                    "plan_errors": list(cov.plan_errors),
                    "plan_warnings": list(cov.plan_warnings),
                    "by_repository": cov.by_repository(),
                    "missed": {k.path: cov.why_missed(k) for k in cov.missed()},
                },
                sort_keys=True,
                indent=2,
            )
        )
    else:
        print(report(cov))
    return 1 if cov.plan_errors else 0


if __name__ == "__main__":
    sys.exit(main())
