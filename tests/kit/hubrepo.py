"""A small hub in git and its upstream, for the sync and shard-flow tests.

The hub: two manifests (Ubuntu focal and jammy from a ddebs-like apt
repository, Debian buster from a Debian-like one), a README with the
generated-section markers and the real .gitignore rules, committed to a bare
remote. The upstream: real packages built with dpkg-deb around the fixture
ELF, in apt repositories served by MirrorServer, reached through --mirror
from the manifests' (unreachable) URLs, as a real run reaches ddebs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from generator import gitops
from generator.demokit.mirror import write_apt_repo
from generator.model import FileDigest
from generator.render import BEGIN_MARKER, END_MARKER
from generator.state import HubState
from generator.store import hubstore
from tests.kit.mirror import LAUNCHPAD_API, LAUNCHPAD_DIR
from tests.kit.shelf import build_deb

# The commit author of the tests' hubs (BTFHUB_GIT_AUTHOR, set by tests/conftest.py).
BOT = "Hub Bot <bot@example.org>"
HEADER = "# yaml-language-server: $schema=../schemas/manifest.schema.json\n"
UBUNTU_URL = "http://ddebs.example.invalid/"
DEBIAN_URL = "http://debian.example.invalid/debian/"

UBUNTU = (
    HEADER
    + f"""\
title: Ubuntu
archive_dir: ubuntu
architectures: [x86_64]
columns:
  - {{header: Ubuntu Ver, field: name}}
  - {{header: Kernel, field: kernel}}
  - {{header: BPF, field: bpf}}
  - {{header: BTF, field: btf}}
  - {{header: HUB, field: hub}}
repositories:
  - id: ddebs
    kind: apt
    url: {UBUNTU_URL}
    packages: ["linux-image-unsigned-{{uname}}-dbgsym", "linux-image-{{uname}}-dbgsym"]
    flavours: [generic]
releases:
  - name: Focal
    kernel: "5.4.0"
    directory: "20.04"
    bpf: true
    btf: false
    hub: true
    sources:
      - repository: ddebs
        suites: [focal]
  - name: Jammy
    kernel: "5.15.0"
    directory: "22.04"
    bpf: true
    btf: false
    hub: true
    sources:
      - repository: ddebs
        suites: [jammy]
"""
)

DEBIAN = (
    HEADER
    + f"""\
title: Debian
archive_dir: debian
architectures: [x86_64]
columns:
  - {{header: Debian, field: name}}
  - {{header: Kernel, field: kernel}}
  - {{header: BPF, field: bpf}}
  - {{header: BTF, field: btf}}
  - {{header: HUB, field: hub}}
repositories:
  - id: debian
    kind: apt
    url: {DEBIAN_URL}
    packages: ["linux-image-{{uname}}-dbg"]
    flavours: ["cloud-{{arch}}"]
releases:
  - name: 10 (Buster)
    id: buster
    kernel: "4.19.0"
    directory: "10"
    bpf: true
    btf: false
    hub: true
    sources:
      - repository: debian
        suites: [buster]
"""
)

README = f"# A test hub\n\nHand-written prose.\n\n{BEGIN_MARKER}\n{END_MARKER}\n\nMore prose.\n"
GITIGNORE = ".btfhub-cache/\n.btfhub.lock\n"

# (archive dir, release id, suite, package-name pattern) by the kernel series a uname starts with.
SUITES = {
    "5.4.0-": ("ubuntu", "focal", "focal", "linux-image-unsigned-{}-dbgsym"),
    "5.15.0-": ("ubuntu", "jammy", "jammy", "linux-image-unsigned-{}-dbgsym"),
    "4.19.0-": ("debian", "buster", "buster", "linux-image-{}-dbg"),
}


def where(uname: str) -> tuple[str, str, str, str]:
    return next(v for k, v in SUITES.items() if uname.startswith(k))


def archive_file(uname: str) -> str:
    distro, release, *_ = where(uname)
    directory = {"focal": "20.04", "jammy": "22.04", "buster": "10"}[release]
    return f"archive/{distro}/{directory}/x86_64/{uname}.btf.tar.xz"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.rstrip("\n")


def archive_checkout(tmp_path: Path, unames: Iterable[str]) -> tuple[Path, HubState]:
    """A git checkout with one committed archive file per uname (ubuntu 20.04 x86_64),
    and a state recording them as render does."""
    root = tmp_path / "hub"
    directory = root / "archive/ubuntu/20.04/x86_64"
    directory.mkdir(parents=True)
    for uname in unames:
        (directory / f"{uname}.btf.tar.xz").write_bytes(uname.encode())
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    git(root, "add", "-A")
    git(root, "-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-qm", "files")
    blobs = gitops.clean_blobs(root)
    state = HubState()
    for entry in hubstore.hub_files(root, None, state, blobs).entries:
        state.files[entry.path] = FileDigest(entry.size, entry.sha256, blobs[entry.path])
    return root, state


def make_remote(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    """A bare remote whose main holds the catalog, README.md and .gitignore (and `extra`)."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "catalog").mkdir()
    (seed / "catalog" / "ubuntu.yaml").write_text(UBUNTU)
    (seed / "catalog" / "debian.yaml").write_text(DEBIAN)
    (seed / "README.md").write_text(README)
    (seed / ".gitignore").write_text(GITIGNORE)
    for name, text in (extra or {}).items():
        (seed / name).write_text(text)
    git(seed, "add", "-A")
    git(seed, "-c", "user.name=Seed", "-c", "user.email=seed@example.org", "commit", "-qm", "seed")
    git(seed, "push", "-q", "origin", "main")
    return bare


def clone(remote: Path, name: str) -> Path:
    dest = remote.parent / name
    git(remote.parent, "clone", "-q", str(remote), str(dest))
    return dest


def publish(
    mirror_dir: Path,
    work: Path,
    vmlinux: Path,
    good: Iterable[str],
    bad: Iterable[str] = (),
    shipping: tuple[Path, Iterable[str]] | None = None,
) -> None:
    """Real packages for `good` kernels, vmlinux-less ones for `bad`, in their apt repos.

    `shipping`: a vmlinux with a .BTF section and the kernels packaged with it.
    Every suite is (re)written, empty ones too, so discovery always finds
    each Release file. A bad kernel's package lists fine and fails to build.
    """
    debs: dict[tuple[str, str], list[Path]] = {(d, s): [] for d, _, s, _ in SUITES.values()}
    kernels: list[tuple[str, Path | None]] = [(u, vmlinux) for u in good]
    kernels += [(u, None) for u in bad]
    if shipping is not None:
        kernels += [(u, shipping[0]) for u in shipping[1]]
    for uname, elf in kernels:
        distro, _release, suite, pattern = where(uname)
        files: dict[str, bytes | Path] = {f"usr/share/doc/{uname}/copyright": b"GPL-2\n"}
        if elf is not None:
            files[f"usr/lib/debug/boot/vmlinux-{uname}"] = elf
        pkgdir = work / "debs" / uname
        pkgdir.mkdir(parents=True, exist_ok=True)
        debs[(distro, suite)].append(
            build_deb(pkgdir, pattern.format(uname), "1.0", "amd64", files, compression="xz")
        )
    for (distro, suite), pkgs in debs.items():
        write_apt_repo(mirror_dir, distro, suite, "main", "amd64", pkgs)


# Public prefix -> directory below the server root holding that repository.
HOSTS = {UBUNTU_URL: "ubuntu/", DEBIAN_URL: "debian/", LAUNCHPAD_API: LAUNCHPAD_DIR}


def committed(root: Path, rev: str = "HEAD") -> list[str]:
    """The files a commit changed, as 'A\\tpath' / 'M\\tpath' lines, sorted."""
    return sorted(git(root, "show", "--name-status", "--format=", rev).splitlines())
