"""A hub as its consumers see it: archived BTF files, an index.json, real os-release files.

The hub is the shipped catalog with three small manifests in place of its
RHEL, Oracle Linux and Amazon Linux ones (same names), so that every
mapping rule has a file to find. Its archive files are real: the
fixture ELF's DWARF encoded by pahole, packed as the archive packs them.
Discovery lists a few kernels with outcomes (failed, ships-btf, missing),
and `render_hub` writes index.json exactly as `btfhub render` does.

The hub with the fixture ELF's BTF is built once per test run
(build_template, conftest's consumer_template); each test takes a copy of
its own (copy_consumer_hub), which it may change freely.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.btf.encode import encode_btf
from generator.btf.tarball import reproducible_tar_xz
from generator.catalog import load_catalog
from generator.fsutil import atomic_write
from generator.model import (
    KernelId,
    KernelOutcome,
    KernelPackage,
    KernelState,
    ReleaseArch,
    archive_path,
)
from generator.render import render_hub
from generator.state import HubState
from tests.kit.hub import make_hub

OS_RELEASES = Path(__file__).resolve().parent.parent / "data" / "os-release"
FIXTURE_BTF = "fixture.btf"  # beside the hub: what every archived file holds

EXTRA_MANIFEST = """\
# yaml-language-server: $schema=../schemas/manifest.schema.json
title: {title}
archive_dir: {archive_dir}
architectures: [x86_64, arm64]
columns:
  - {{header: Release, field: name}}
  - {{header: Kernel, field: kernel}}
  - {{header: BPF, field: bpf}}
  - {{header: BTF, field: btf}}
  - {{header: HUB, field: hub}}
repositories:
  - id: debuginfo
    kind: rpm-md
    url: https://debuginfo.invalid/{archive_dir}/{{arch}}/
    packages: [kernel-debuginfo]
releases:
{releases}
"""

RELEASE = """\
  - name: "{name}"
    directory: "{directory}"
    kernel: "{kernel}"
    bpf: true
    btf: false
    hub: true
    sources:
      - repository: debuginfo
        paths: [""]
"""

# (manifest, title, archive_dir, [(name, directory, kernel series)])
EXTRA_DISTRIBUTIONS = (
    ("rhel", "RHEL", "rhel", [("8.4", "8", "4.18.0-305")]),
    ("ol", "Oracle Linux", "ol", [("7.9", "7", "3.10.0-1160")]),
    ("amzn", "Amazon Linux", "amzn", [("2", "2", "4.14"), ("2018.03", "1", "4.14")]),
)


@dataclass(frozen=True)
class Kernel:
    """One kernel of the consumer hub: where it is, and what index.json says of it."""

    archive_dir: str
    release_dir: str
    arch: str
    uname: str
    state: KernelState = KernelState.ARCHIVED
    # Discovery lists it for this (manifest, release id); None: archive file only.
    listed: tuple[str, str] | None = None
    reason: str | None = None

    @property
    def path(self) -> str:
        return archive_path(self.archive_dir, self.release_dir, self.arch, self.uname)


KERNELS = (
    Kernel("ubuntu", "20.04", "x86_64", "5.4.0-42-generic", listed=("ubuntu", "focal")),
    Kernel("ubuntu", "20.04", "x86_64", "5.8.0-63-generic"),  # Focal HWE
    Kernel(
        "ubuntu",
        "20.04",
        "x86_64",
        "5.4.0-99-generic",
        KernelState.FAILED,
        ("ubuntu", "focal"),
        "package holds no vmlinux for 5.4.0-99-generic (a signed-flavour dbgsym stub?)",
    ),
    Kernel(
        "ubuntu", "20.04", "x86_64", "5.4.0-100-generic", KernelState.MISSING, ("ubuntu", "focal")
    ),
    Kernel(
        "ubuntu",
        "20.04",
        "x86_64",
        "5.13.0-52-generic",
        KernelState.SHIPS_BTF,
        ("ubuntu", "focal-hwe"),
    ),
    Kernel("ubuntu", "18.04", "arm64", "5.4.0-150-generic"),  # Bionic HWE, arm64
    Kernel("debian", "10", "x86_64", "4.19.0-6-amd64"),
    Kernel("centos", "7", "x86_64", "3.10.0-1160.el7.x86_64"),
    Kernel("centos", "8", "x86_64", "4.18.0-305.3.1.el8.x86_64"),
    Kernel("fedora", "31", "x86_64", "5.3.7-301.fc31.x86_64"),
    # No series of Fedora 31 covers it: index.json lists it as unassigned.
    Kernel("fedora", "31", "x86_64", "6.5.0-1.fc31.x86_64"),
    Kernel("rhel", "8", "x86_64", "4.18.0-305.el8.x86_64"),
    Kernel("ol", "7", "x86_64", "3.10.0-1160.119.1.0.1.el7.x86_64"),
    Kernel("amzn", "2", "x86_64", "4.14.336-257.562.amzn2.x86_64"),
    Kernel("amzn", "1", "x86_64", "4.14.355-196.768.amzn1.x86_64"),
    Kernel("photon", "3.0", "x86_64", "4.19.283-1.ph3-esx"),
    Kernel("photon", "5.0", "arm64", "6.1.130-1.ph5-esx"),
    Kernel("opensuse-leap", "15.2", "x86_64", "5.3.18-lp152.106-default"),
    Kernel("openEuler", "20.03", "x86_64", "4.19.90-2112.8.0.0131.oe1.x86_64"),
)


def _package(kernel: Kernel) -> KernelPackage:
    name = f"linux-image-unsigned-{kernel.uname}-dbgsym"
    return KernelPackage(
        uname=kernel.uname,
        arch=kernel.arch,
        name=name,
        version="1",
        url=f"http://ddebs.invalid/pool/{name}.ddeb",
        size=1000,
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        repository="ddebs",
        filename=f"pool/{name}.ddeb",
        format="deb",
    )


def write_extra_manifests(root: Path) -> None:
    for stem, title, archive_dir, releases in EXTRA_DISTRIBUTIONS:
        rows = "".join(
            RELEASE.format(name=name, directory=directory, kernel=kernel)
            for name, directory, kernel in releases
        )
        text = EXTRA_MANIFEST.format(title=title, archive_dir=archive_dir, releases=rows.rstrip())
        (root / "catalog" / f"{stem}.yaml").write_text(text + "\n", encoding="utf-8")


def build_consumer_hub(root: Path, btf: bytes, kernels: Sequence[Kernel] = KERNELS) -> Path:
    """A hub at root holding `btf` (raw BTF bytes) for every archived kernel, rendered."""
    make_hub(root)
    write_extra_manifests(root)
    state = HubState()
    listings: dict[ReleaseArch, list[KernelPackage]] = {}
    for kernel in kernels:
        if kernel.state is KernelState.ARCHIVED:
            data = reproducible_tar_xz(f"{kernel.uname}.btf", btf)
            atomic_write(root / kernel.path, data)
        if kernel.listed is not None:
            distro, release = kernel.listed
            target = ReleaseArch(distro, release, kernel.arch)
            listings.setdefault(target, []).append(_package(kernel))
    for target, packages in listings.items():
        state.record_listing(target, packages)
    for kernel in kernels:
        if kernel.listed is not None and kernel.state in (
            KernelState.FAILED,
            KernelState.SHIPS_BTF,
        ):
            distro, release = kernel.listed
            kid = KernelId(distro, release, kernel.arch, kernel.uname)
            state.record_outcome(KernelOutcome(kid, kernel.state, kernel.reason))
    render_hub(root, load_catalog(root), state)
    return root


def build_template(directory: Path, elf: Path) -> Path:
    """directory/hub, every archived kernel holding elf's BTF (directory/fixture.btf)."""
    directory.mkdir(parents=True)
    encode_btf(elf, directory / FIXTURE_BTF)
    build_consumer_hub(directory / "hub", (directory / FIXTURE_BTF).read_bytes())
    return directory


def copy_consumer_hub(template: Path, work: Path) -> Path:
    """work/hub and work/fixture.btf, copied from a build_template directory: the caller's own."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template / FIXTURE_BTF, work / FIXTURE_BTF)
    return Path(shutil.copytree(template / "hub", work / "hub", symlinks=True))
