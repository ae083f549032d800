"""A temporary hub in front of a local upstream, for end-to-end tests of the CLI.

The hub is a copy of the repository's own catalog/ and README.md: the tests
run the shipped manifests, whose public URLs are pointed at a FaultyMirror
on 127.0.0.1 with --mirror (or BTFHUB_MIRRORS). Repositories are laid out
where the real ones are (ddebs.ubuntu.com/dists/..., debuginfo.centos.org/7/
x86_64/, archives.fedoraproject.org/pub/archive/fedora/linux/...) below the
server's directory, one top directory per host.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from generator.cli import main
from generator.demokit.bpftool import dump_c
from generator.demokit.elf import STRUCT_NAMES
from generator.demokit.mirror import AptPackage, RpmPackage, write_apt_repo, write_rpmmd_repo
from generator.lock import LOCK_NAME
from generator.upstream.http import UpstreamClient
from generator.upstream.mirrors import Mirrors
from tests.kit.mirror import LAUNCHPAD_API, LAUNCHPAD_DIR, FaultyMirror
from tests.kit.shelf import build_deb, build_rpm

REPO = Path(__file__).resolve().parents[2]

# Public prefix -> directory below the server root holding that host's tree.
HOSTS = {
    "http://ddebs.ubuntu.com/": "ubuntu/",
    "http://debuginfo.centos.org/": "centos/",
    "https://archives.fedoraproject.org/": "fedora/",
    # Ubuntu's fallback: the empty archive conftest's mirror_server writes.
    LAUNCHPAD_API: LAUNCHPAD_DIR,
}
FEDORA_LINUX = "fedora/pub/archive/fedora/linux"

# Files in a hub root that are not the hub's content (both are git-ignored).
NOT_CONTENT = (".btfhub-cache", LOCK_NAME)


def mirror_pairs(server: FaultyMirror, hosts: Mapping[str, str] = HOSTS) -> list[str]:
    """FROM=TO pairs pointing each public prefix at its directory on the server."""
    return [f"{public}={server.url}{local}" for public, local in hosts.items()]


def mirror_args(server: FaultyMirror, hosts: Mapping[str, str] = HOSTS) -> list[str]:
    """--mirror arguments for mirror_pairs (the shipped catalog's hosts by default)."""
    return [arg for pair in mirror_pairs(server, hosts) for arg in ("--mirror", pair)]


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (free a moment ago): connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def make_hub(path: Path) -> Path:
    """A fresh hub at path: the shipped catalog and README, no archive, no index.json."""
    shutil.copytree(REPO / "catalog", path / "catalog")
    shutil.copyfile(REPO / "README.md", path / "README.md")
    return path


def tree_digest(root: Path, skip: Sequence[str] = NOT_CONTENT) -> dict[str, str]:
    """{relative path: sha256} of every file below root, except the skipped top entries."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in skip or not path.is_file():
            continue
        out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def archive_files(root: Path) -> dict[str, bytes]:
    """{path relative to root: bytes} of every file under root/archive."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "archive").rglob("*"))
        if p.is_file()
    }


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def quick_upstream(mirrors: Mirrors, cache_dir: Path | None) -> UpstreamClient:
    """The commands' upstream client for tests: retries as usual, without the backoff sleeps."""
    return UpstreamClient(mirrors=mirrors, cache_dir=cache_dir, backoff=0.0)


def btfhub(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> Run:
    """`btfhub --root ROOT ARGV...` in process, with its exit code and both outputs."""
    capsys.readouterr()  # drop anything printed before
    command, *rest = argv
    code = main([command, "--root", str(root), *rest], upstream=quick_upstream)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


# -- Ubuntu ------------------------------------------------------------------------


def build_ddeb(
    directory: Path,
    package: str,
    version: str,
    uname: str,
    vmlinux: Path | None,
    compression: str = "xz",
    source: str = "linux",
) -> AptPackage:
    """A real .ddeb in the Ubuntu dbgsym layout; vmlinux None: the signed-flavour stub.

    The stub has the same symlinks named vmlinux as the real package, pointing
    at a boot/vmlinux-<uname> it does not hold, as Ubuntu's does.
    """
    workdir = directory / f"{package}_{version}".replace("~", "_")
    workdir.mkdir(parents=True)
    debug = "usr/lib/debug"
    files: dict[str, bytes | Path] = {
        f"{debug}/.build-id/ab/cdef0123456789.debug": b"not the kernel\n",
        f"{debug}/boot/System.map-{uname}": b"ffffffff81000000 T _stext\n",
        f"usr/share/doc/{package}/copyright": b"GPL-2\n",
    }
    if vmlinux is not None:
        files[f"{debug}/boot/vmlinux-{uname}"] = vmlinux
    symlinks = {
        f"{debug}/lib/modules/{uname}/vmlinux": f"../../../boot/vmlinux-{uname}",
        f"{debug}/vmlinux-{uname}": f"boot/vmlinux-{uname}",
    }
    deb = build_deb(workdir, package, version, "amd64", files, symlinks, compression)
    ddeb = deb.with_suffix(".ddeb")
    deb.rename(ddeb)
    return AptPackage.from_deb(ddeb, source=source)


def write_ubuntu(
    server: FaultyMirror, suites: Mapping[str, Sequence[AptPackage]], arch: str = "amd64"
) -> None:
    """dists/<suite>/ (Release + Packages.xz) and pool/ for each suite, like ddebs.ubuntu.com.

    The packages go in main; universe (where ddebs lists the GKE kernels) is
    there too, empty, as every ddebs suite has it.
    """
    for suite, debs in suites.items():
        write_apt_repo(server.directory, "ubuntu", suite, "main", arch, debs, "xz")
        write_apt_repo(server.directory, "ubuntu", suite, "universe", arch, [], "xz")


def focal_suites(
    focal: Sequence[AptPackage] = (),
    updates: Sequence[AptPackage] = (),
    proposed: Sequence[AptPackage] = (),
) -> dict[str, Sequence[AptPackage]]:
    """The three suites the Focal rows read (an empty one still has its indexes)."""
    return {"focal": focal, "focal-updates": updates, "focal-proposed": proposed}


def pool_path(pkg: AptPackage) -> str:
    """The URL path the server sees when a package is downloaded."""
    return f"/ubuntu/pool/main/{pkg.source_name[:1]}/{pkg.source_name}/{pkg.path.name}"


# -- rpm-md ------------------------------------------------------------------------


def meta_only(directory: Path, name: str, version: str, release: str, arch: str) -> RpmPackage:
    """An index entry whose file is just bytes (discovery never opens a package)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{version}-{release}.{arch}.rpm"
    path.write_bytes(f"decoy {name}-{version}-{release}\n".encode())
    return RpmPackage(path, name, version, release, arch)


def write_centos(
    server: FaultyMirror, major: str, rpms: Sequence[Path | RpmPackage], codec: str = "gz"
) -> Path:
    """debuginfo.centos.org/<major>/x86_64/: flat for 7, Packages/ for 8."""
    return write_rpmmd_repo(
        server.directory / f"centos/{major}/x86_64",
        rpms,
        codec,
        flat=True,
        package_dir="Packages" if major == "8" else None,
    )


def reconciled_hub(
    capsys: pytest.CaptureFixture[str],
    server: FaultyMirror,
    vmlinux: Path,
    work: Path,
    built: Sequence[str],
    stub: str,
    centos: str,
) -> Path:
    """work/hub, reconciled from real packages served by server: Ubuntu Focal's `built`
    kernels (unsigned dbgsym .ddebs holding vmlinux), `stub` in focal-updates (a dbgsym
    without vmlinux, so it fails) and CentOS 7's `centos` (a kernel-debuginfo .rpm)."""
    pkgs = work / "pkgs"
    focal = [build_ddeb(pkgs, f"linux-image-unsigned-{uname}-dbgsym",
                        f"{uname.rsplit('-', 1)[0]}.1", uname, vmlinux)
             for uname in built]  # fmt: skip
    broken = build_ddeb(pkgs, f"linux-image-{stub}-dbgsym", f"{stub.rsplit('-', 1)[0]}.1", stub,
                        None)  # fmt: skip
    write_ubuntu(server, focal_suites(focal, [broken]))
    version, release = centos.rsplit(".", 1)[0].split("-", 1)
    rpm = build_rpm(pkgs / "c7", "kernel-debuginfo", version, release, "x86_64", centos,
                    vmlinux, "xz")  # fmt: skip
    write_centos(server, "7", [rpm])
    hub = make_hub(work / "hub")
    for distro, release_id in (("ubuntu", "focal"), ("centos7", "7.9.2009")):
        run = btfhub(capsys, hub, "reconcile", *mirror_args(server), "--distro", distro,
                     "--release", release_id, "--arch", "x86_64")  # fmt: skip
        assert run.code in (0, 1), run.err  # 1: the stub fails, as it must
    return hub


def write_fedora(
    server: FaultyMirror,
    release: str,
    ga: Sequence[Path | RpmPackage],
    updates: Sequence[Path | RpmPackage],
    codec: str = "zst",
) -> tuple[Path, Path]:
    """The archived release tree and its updates, each with Packages/k/."""
    base = server.directory / FEDORA_LINUX
    tree = write_rpmmd_repo(
        base / f"releases/{release}/Everything/x86_64/debug/tree", ga, codec, flat=False
    )
    upd = write_rpmmd_repo(
        base / f"updates/{release}/Everything/x86_64/debug", updates, codec, flat=False
    )
    return tree, upd


def package_requests(server: FaultyMirror) -> list[str]:
    """Paths of every package download the server saw (.ddeb, .deb, .rpm)."""
    return [r.path for r in list(server.log) if r.path.endswith((".ddeb", ".deb", ".rpm"))]


# -- reading the hub -----------------------------------------------------------------


def load_index(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "index.json").read_text())
    return data


def kernels(root: Path, distro: str, release: str, arch: str = "x86_64") -> dict[str, Any]:
    """index.json's kernels of one release and arch, by uname."""
    release_entry = load_index(root)["distributions"][distro]["releases"][release]
    found: dict[str, Any] = release_entry["architectures"][arch]["kernels"]
    return found


def states(root: Path, distro: str, release: str, arch: str = "x86_64") -> dict[str, str]:
    return {u: k["state"] for u, k in kernels(root, distro, release, arch).items()}


def hub_cell(root: Path, name: str) -> str:
    """The HUB cell (the last column) of the README table row whose first cell is name."""
    for line in (root / "README.md").read_text().splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == name:
            return cells[-1]
    raise AssertionError(f"README.md has no table row for {name!r}")


def assert_fixture_btf(tmp_path: Path, tar_xz: bytes, uname: str) -> None:
    """The archive file holds <uname>.btf whose C dump has the fixture's structs."""
    with tarfile.open(fileobj=io.BytesIO(tar_xz), mode="r:xz") as tar:
        (member,) = tar.getmembers()
        assert member.name == f"{uname}.btf"
        body = tar.extractfile(member)
        assert body is not None
        raw = tmp_path / f"{uname}.btf"
        raw.write_bytes(body.read())
    c_source = dump_c(raw)
    for name in STRUCT_NAMES:
        assert f"struct {name} {{" in c_source
