"""`btfhub demo`: the main job, end to end, on a built-in offline example.

It compiles a small program with DWARF (standing in for a vmlinux), packs it
into a real Ubuntu-style .ddeb and a real CentOS-style .rpm, lays those out
like ddebs.ubuntu.com and debuginfo.centos.org under a local HTTP server on
127.0.0.1, signs them as those upstreams do (InRelease, an RPM header
signature) with a key made for the run and passed with --keyring, and runs
validate, plan, reconcile and render against a copy of the hub's catalog
through --mirror: the same code paths as a real run, signature checks
included, with only the internet replaced.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from generator.btf.tarball import read_tar_xz_member
from generator.demokit.bpftool import dump_c
from generator.demokit.debpkg import build_deb
from generator.demokit.elf import STRUCT_NAMES, build_elf
from generator.demokit.mirror import (
    LAUNCHPAD_API,
    LAUNCHPAD_DIR,
    AptPackage,
    write_apt_repo,
    write_empty_launchpad,
    write_rpmmd_repo,
)
from generator.demokit.rpmpkg import build_rpm
from generator.demokit.server import MirrorServer
from generator.demokit.signing import default_signer
from generator.errors import BtfhubError
from generator.manifest import CATALOG_DIR
from generator.render import BEGIN_MARKER, END_MARKER

UBUNTU_UNAME = "5.4.0-1001-generic"
CENTOS_UNAME = "3.10.0-1160.99.1.el7.x86_64"
DEBUG = "usr/lib/debug"
__all__ = ["STRUCT_NAMES", "MirrorServer"]


@dataclass(frozen=True)
class DemoTarget:
    """One (distro, release) of the example and the mirror prefix it is served under."""

    distro: str
    release: str
    upstream: str  # the real base URL in the shipped catalog
    prefix: str  # where the demo mirror serves it


TARGETS = (
    DemoTarget("ubuntu", "focal", "http://ddebs.ubuntu.com/", "ubuntu/"),
    DemoTarget("centos7", "7.9.2009", "http://debuginfo.centos.org/", "centos/"),
)


def _ubuntu_ddebs(work: Path, vmlinux: Path) -> list[Path]:
    """The real package and, beside it, the near-empty signed-flavour stub."""
    files: dict[str, bytes | Path] = {
        f"{DEBUG}/boot/vmlinux-{UBUNTU_UNAME}": vmlinux,
        f"usr/share/doc/linux-image-unsigned-{UBUNTU_UNAME}-dbgsym/copyright": b"GPL-2\n",
    }
    links = {
        f"{DEBUG}/lib/modules/{UBUNTU_UNAME}/vmlinux": f"../../../boot/vmlinux-{UBUNTU_UNAME}",
        f"{DEBUG}/vmlinux-{UBUNTU_UNAME}": f"boot/vmlinux-{UBUNTU_UNAME}",
    }
    real = build_deb(
        work,
        f"linux-image-unsigned-{UBUNTU_UNAME}-dbgsym",
        "5.4.0-1001.1",
        "amd64",
        files,
        links,
        "zst",
    )
    stub = build_deb(
        work,
        f"linux-image-{UBUNTU_UNAME}-dbgsym",
        "5.4.0-1001.1",
        "amd64",
        {f"usr/share/doc/linux-image-{UBUNTU_UNAME}-dbgsym/copyright": b"GPL-2\n"},
        {},
        "xz",
    )
    out = []
    for deb in (real, stub):
        ddeb = deb.with_suffix(".ddeb")
        deb.rename(ddeb)
        out.append(ddeb)
    return out


def build_mirror(work: Path) -> Path:
    """Real packages in upstream layouts under work/mirror; returns that directory."""
    mirror = work / "mirror"
    vmlinux = build_elf(work / "elf")
    ddebs = [AptPackage.from_deb(p, source="linux") for p in _ubuntu_ddebs(work / "ddebs", vmlinux)]
    for suite in ("focal", "focal-updates", "focal-proposed"):
        write_apt_repo(
            mirror, "ubuntu", suite, "main", "amd64", ddebs if suite == "focal-updates" else []
        )
        # Every ddebs suite has universe too (the GKE kernels are there).
        write_apt_repo(mirror, "ubuntu", suite, "universe", "amd64", [])
    # Ubuntu's fallback source, Launchpad, publishes nothing more here.
    write_empty_launchpad(mirror)
    (work / "rpms").mkdir()
    rpm = build_rpm(
        work / "rpms",
        "kernel-debuginfo",
        "3.10.0",
        "1160.99.1.el7",
        "x86_64",
        CENTOS_UNAME,
        vmlinux,
        "xz",
    )
    write_rpmmd_repo(mirror / "centos" / "7" / "x86_64", [rpm], primary_compression="gz")
    return mirror


def copy_hub(source: Path, dest: Path) -> None:
    """A temporary hub: the catalog and README of `source`, an empty archive."""
    if not (source / CATALOG_DIR).is_dir():
        raise BtfhubError(f"{source} holds no {CATALOG_DIR}/: run the demo from the hub's checkout")
    shutil.copytree(source / CATALOG_DIR, dest / CATALOG_DIR)
    if (source / "README.md").is_file():
        shutil.copyfile(source / "README.md", dest / "README.md")
    (dest / "archive").mkdir()


def selection_args(target: DemoTarget) -> list[str]:
    return ["--distro", target.distro, "--release", target.release, "--arch", "x86_64"]


def mirror_args(server: MirrorServer) -> list[str]:
    return [f"--mirror={t.upstream}={server.url}{t.prefix}" for t in TARGETS] + [
        f"--mirror={LAUNCHPAD_API}={server.url}{LAUNCHPAD_DIR}"
    ]


def trust_args() -> list[str]:
    """The demo mirror is signed by a key made for this run: the run is told to trust it."""
    return [f"--keyring={default_signer().public_key}"]


def table_of(readme: str, title: str) -> str:
    """One distribution's support table from README.md's generated section, for printing.

    Only the generated section is searched, for a heading that is exactly the
    title (or the title as a link): the hand-written guide above it has
    headings that merely mention a distribution ("a new Ubuntu HWE series").
    """
    lines = readme.splitlines()
    try:
        begin = lines.index(BEGIN_MARKER)
        end_marker = lines.index(END_MARKER, begin)
    except ValueError:
        raise BtfhubError("README.md has no generated support tables section") from None
    headings = (f"### {title}", f"### [{title}](")
    start = next(
        (
            i
            for i in range(begin + 1, end_marker)
            if lines[i] == headings[0] or lines[i].startswith(headings[1])
        ),
        None,
    )
    if start is None:
        raise BtfhubError(f"README.md's generated section has no {title!r} table")
    end = next((i for i in range(start + 1, end_marker) if lines[i].startswith("### ")), end_marker)
    return "\n".join(lines[start:end]).rstrip()


def index_entries(index: dict[str, object]) -> dict[str, object]:
    """The index.json entries of the demo's releases."""
    distributions = index["distributions"]
    assert isinstance(distributions, dict)
    return {
        f"{t.distro}/{t.release}": distributions[t.distro]["releases"][t.release] for t in TARGETS
    }


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        if any(keep.iterdir()):
            raise BtfhubError(f"--keep {keep}: the directory must be empty")
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="btfhub-demo-") as tmp:
        yield Path(tmp)


def bpftool_struct(archive_file: Path, work: Path, struct: str) -> str:
    """The C definition of one struct, as bpftool reads it from the archived BTF."""
    name, data = read_tar_xz_member(archive_file.read_bytes())
    raw = work / name
    raw.write_bytes(data)
    lines = dump_c(raw).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"struct {struct} {{"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("};"))
    return "\n".join(lines[start : end + 1])
