"""A real distribution kernel for the slow test and the benchmark.

Debian 12 keeps `linux-image-6.1.0-<N>-cloud-amd64-dbg` in its main
archive (~283 MB, a 590 MB vmlinux inside), so on a Debian machine apt can
fetch one: `apt-cache search` finds the newest ABI N, `apt-get download`
fetches it into a cache directory that later runs reuse. publish() lays it
out like deb.debian.org/debian for MirrorServer, so `btfhub reconcile
--mirror http://deb.debian.org/debian/=<server>debian/` builds it through
the same code path as upstream.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from generator.demokit.mirror import AptPackage, pool_dir, write_apt_repo
from generator.demokit.signing import default_signer
from generator.demokit.tools import run
from generator.errors import BtfhubError

CACHE_ENV = "BTFHUB_REAL_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "btfhub-real"
# What catalog/debian.yaml's bookworm release reads.
UPSTREAM = "http://deb.debian.org/debian/"
SUITE = "bookworm"
PACKAGE_RE = re.compile(r"^linux-image-(?P<uname>6\.1\.0-(?P<abi>[0-9]+)-cloud-amd64)-dbg$")


@dataclass(frozen=True)
class RealKernel:
    package: str  # linux-image-6.1.0-56-cloud-amd64-dbg
    uname: str  # 6.1.0-56-cloud-amd64
    path: Path  # the downloaded .deb


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    return run(cmd, cwd).stdout.decode()


def reconcile_args(hub: Path, mirror_url: str) -> list[str]:
    """`btfhub reconcile` arguments building this kernel from a local mirror.

    bookworm is hub: false (its kernels ship BTF), so it is named and forced.
    """
    return [
        "reconcile",
        "--root",
        str(hub),
        "--distro",
        "debian",
        "--release",
        "bookworm",
        "--arch",
        "x86_64",
        "--force",
        "--mirror",
        f"{UPSTREAM}={mirror_url}debian/",
        # publish() signs the mirror's InRelease with this process's test key.
        "--keyring",
        str(default_signer().public_key),
    ]


def _abi(package: str) -> int:
    m = PACKAGE_RE.match(package)
    assert m is not None
    return int(m["abi"])


def _search() -> list[str]:
    out = _run(["apt-cache", "search", "--names-only", r"^linux-image-6\.1\.0-.*-cloud-amd64-dbg$"])
    names = [line.split(" - ", 1)[0].strip() for line in out.splitlines()]
    return sorted((n for n in names if PACKAGE_RE.match(n)), key=_abi)


def newest_package() -> str:
    """The newest linux-image-6.1.0-<N>-cloud-amd64-dbg apt knows (after apt-get update if none)."""
    found = _search()
    if not found:
        _run(["apt-get", "update"])
        found = _search()
    if not found:
        raise BtfhubError(
            "apt knows no linux-image-6.1.0-<N>-cloud-amd64-dbg: is this a Debian 12 machine "
            "with bookworm in its sources?"
        )
    return found[-1]


def _cached(directory: Path, package: str) -> Path | None:
    debs = sorted(directory.glob(f"{package}_*_amd64.deb"))
    return debs[-1] if debs else None


def fetch(directory: Path | None = None) -> RealKernel:
    """The newest cloud kernel debug package, downloaded into `directory` unless already there."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    package = newest_package()
    path = _cached(directory, package)
    if path is None:
        # apt-get writes <name>_<version>_<arch>.deb into its working directory,
        # via a .partial name first, so an interrupted download leaves no .deb.
        _run(["apt-get", "download", package], cwd=directory)
        path = _cached(directory, package)
        if path is None:
            raise BtfhubError(f"apt-get download {package} left no .deb in {directory}")
    m = PACKAGE_RE.match(package)
    assert m is not None
    return RealKernel(package=package, uname=m["uname"], path=path)


def publish(kernel: RealKernel, mirror_root: Path) -> Path:
    """Lay the package out as <mirror_root>/debian (bookworm, main, amd64); return that root.

    The pool file is a hard link to the cached package when the file system
    allows (no 283 MB copy per run); arm64 gets an empty index so discovery
    of the whole release finds a valid, empty listing there.
    """
    pkg = AptPackage.from_deb(kernel.path)
    repo = mirror_root / "debian"
    dest = repo / pool_dir("main", pkg.source_name) / kernel.path.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        try:
            os.link(kernel.path, dest)
        except OSError:
            shutil.copyfile(kernel.path, dest)
    write_apt_repo(
        mirror_root, "debian", SUITE, "main", "amd64", [dataclasses.replace(pkg, path=dest)]
    )
    write_apt_repo(mirror_root, "debian", SUITE, "main", "arm64", [])
    return repo
