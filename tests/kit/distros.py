"""Packages and repository trees of the distributions no public hub covers (issue 21).

Each builder makes a real .rpm with rpmbuild, laid out as the distribution's
own kernel debuginfo package is, and each writer lays the rpm-md tree out
where and how the real repository has it:

- Photon OS: linux[-<flavour>]-debuginfo keeps vmlinux at
  /usr/lib/debug/lib/modules/<uname>/vmlinux-<uname>; linux.spec adds a
  symlink named vmlinux beside it ("perf test vmlinux needs it"), the -esx
  and -secure specs do not. The tree is photon/<ver>/photon_debuginfo_<ver>_
  <arch>/ with the packages in <arch>/ below it, no repomd.xml.asc.
- openSUSE Leap: kernel-<flavour>-debuginfo keeps
  /usr/lib/debug/boot/vmlinux-<uname>.debug; packages in <arch>/ below the
  repository root, repomd.xml signed (repomd.xml.asc).
- openEuler: kernel-debuginfo as the Red Hat family has it, packages in
  Packages/ below openEuler-20.03-LTS[-SPn]/{debuginfo,update}/<arch>/.

Photon 3.0 and openEuler sign their RPM headers over SHA-1 only: the tests
sign theirs with a Signer made with digest="SHA1" (an RSA key).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from generator.demokit.mirror import RpmPackage, write_rpmmd_repo
from generator.demokit.rpmpkg import build_rpm, rpmbuild, stage_rpm
from generator.demokit.signing import Signer

RPM_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}


def photon_uname(flavour: str, version: str, release: str) -> str:
    """As Photon's specs define uname_r: %{version}-%{release}[-<flavour>]."""
    return f"{version}-{release}" + ("" if flavour == "linux" else f"-{flavour}")


def build_photon_debuginfo(
    tmpdir: Path,
    flavour: str,
    version: str,
    release: str,
    vmlinux: Path,
    signer: Signer,
    arch: str = "x86_64",
) -> Path:
    """linux-debuginfo (flavour "linux") or linux-<flavour>-debuginfo, signed by signer."""
    name = "linux-debuginfo" if flavour == "linux" else f"linux-{flavour}-debuginfo"
    uname = photon_uname(flavour, version, release)
    modules = f"/usr/lib/debug/lib/modules/{uname}"
    staging, listed = stage_rpm(
        tmpdir, name, arch, "xz", uname, None, {f"{modules}/vmlinux-{uname}": vmlinux.read_bytes()}
    )
    if flavour == "linux":
        os.symlink(f"vmlinux-{uname}", staging / modules.lstrip("/") / "vmlinux")
        listed = sorted([*listed, f"{modules}/vmlinux"])
    return rpmbuild(tmpdir, staging, listed, name, version, release, arch, "xz", signer=signer)


def write_photon_tree(
    host: Path, version: str, arch: str, rpms: Sequence[Path | RpmPackage]
) -> Path:
    """<host>/photon/<ver>/photon_debuginfo_<ver>_<arch>/ with the packages in <arch>/."""
    uarch = RPM_ARCH[arch]
    root = host / f"photon/{version}/photon_debuginfo_{version}_{uarch}"
    return write_rpmmd_repo(root, rpms, "gz", package_dir=uarch)


def build_leap_debuginfo(
    tmpdir: Path,
    flavour: str,
    version: str,
    release: str,
    vmlinux: Path,
    signer: Signer | None = None,
    arch: str = "x86_64",
) -> Path:
    """kernel-<flavour>-debuginfo; uname drops the release's last number (SUSE's rule)."""
    uname = f"{version}-{release.rsplit('.', 1)[0]}-{flavour}"
    debug = f"/usr/lib/debug/boot/vmlinux-{uname}.debug"
    return build_rpm(
        tmpdir, f"kernel-{flavour}-debuginfo", version, release, RPM_ARCH[arch], uname, None,
        extra={debug: vmlinux.read_bytes()}, signer=signer,
    )  # fmt: skip


def write_leap_tree(
    host: Path, path: str, rpms: Sequence[Path | RpmPackage], signer: Signer, arch: str = "x86_64"
) -> Path:
    """<host>/<path> (e.g. debug/update/leap/15.2/oss/): packages in <arch>/, repomd.xml.asc."""
    return write_rpmmd_repo(
        host / path, rpms, "zst", package_dir=RPM_ARCH[arch], repomd_signer=signer
    )


def write_openeuler_tree(
    host: Path, release: str, tree: str, arch: str, rpms: Sequence[Path | RpmPackage]
) -> Path:
    """<host>/openEuler-20.03-LTS[-SPn]/<debuginfo|update>/<arch>/ with Packages/."""
    root = host / f"{release}/{tree}/{RPM_ARCH[arch]}"
    return write_rpmmd_repo(root, rpms, "gz", package_dir="Packages")


def build_openeuler_debuginfo(
    tmpdir: Path, release: str, vmlinux: Path, signer: Signer, arch: str = "x86_64"
) -> Path:
    """kernel-debuginfo-4.19.90-<release>.<arch>.rpm, uname -r <version>-<release>.<arch>."""
    uarch = RPM_ARCH[arch]
    uname = f"4.19.90-{release}.{uarch}"
    return build_rpm(
        tmpdir, "kernel-debuginfo", "4.19.90", release, uarch, uname, vmlinux, signer=signer
    )
