"""Packages verified in full before publishing: the index digest, or the RPM's signed header.

Real rpmbuild/rpmsign packages served over real HTTP, built through
generator.hub.build.build_one as a run does. KernelPackage.sha256 None stands for a
package whose index lists no checksum (Oracle's flat HTML directories):
only its signed header can vouch for it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from generator.btf.tarball import read_tar_xz_member
from generator.demokit.signing import Signer, default_signer
from generator.hub.build import BuildOptions, build_one
from generator.model import (
    Catalog,
    Column,
    Distribution,
    KernelId,
    KernelOutcome,
    KernelPackage,
    KernelState,
    PlannedKernel,
    Repository,
)
from generator.packages.rpmsig import read_headers
from generator.progress import Progress
from generator.trust import TrustPolicy
from generator.upstream.context import UpstreamContext
from generator.upstream.http import UpstreamClient
from generator.workdir import WorkArea
from tests.kit.mirror import FaultyMirror
from tests.kit.shelf import build_rpm

UNAME = "5.4.17-2136.300.7.el8uek.x86_64"
ARCHIVE = f"archive/ol/8/x86_64/{UNAME}.btf.tar.xz"


def catalog(keyring: Path | None, unsigned: bool = False) -> Catalog:
    repo = Repository(
        id="ol8-debuginfo",
        kind="rpm-md",
        url="https://oss.oracle.com/ol8/debuginfo/",
        packages=("kernel-uek-debuginfo",),
        keyring=str(keyring) if keyring else None,
        unsigned=unsigned,
    )
    dist = Distribution(
        id="ol",
        title="Oracle Linux",
        archive_dir="ol",
        columns=(Column("Kernel", "kernel"),),
        releases=(),
        repositories=(repo,),
    )
    return Catalog((dist,))


def uek_rpm(tmp_path: Path, vmlinux: Path, **kw: object) -> Path:
    out = tmp_path / f"rpm-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    return build_rpm(
        out,
        "kernel-uek-debuginfo",
        "5.4.17",
        "2136.300.7.el8uek",
        "x86_64",
        UNAME,
        vmlinux,
        **kw,  # type: ignore[arg-type]
    )


def build(
    tmp_path: Path,
    server: FaultyMirror,
    rpm: Path,
    the_catalog: Catalog,
    sha256: str | None = None,
) -> KernelOutcome:
    served = server.directory / "ol8" / rpm.name
    served.parent.mkdir(parents=True, exist_ok=True)
    served.write_bytes(rpm.read_bytes())
    pkg = KernelPackage(
        uname=UNAME,
        arch="x86_64",
        name="kernel-uek-debuginfo",
        version="5.4.17-2136.300.7.el8uek",
        url=f"{server.url}ol8/{rpm.name}",
        size=rpm.stat().st_size,
        sha256=sha256,
        repository="ol8-debuginfo",
        filename=rpm.name,
        format="rpm",
    )
    kernel = PlannedKernel(KernelId("ol", "8", "x86_64", UNAME), KernelState.MISSING, pkg, ARCHIVE)
    dest = tmp_path / "hub"
    with (
        UpstreamContext(UpstreamClient(cache_dir=None, backoff=0.0), TrustPolicy()) as upstream,
        WorkArea(tmp_path / "work-root") as work,
    ):
        return build_one(
            upstream, kernel, dest, Progress(1, pkg.size), BuildOptions(), the_catalog, work
        )


def test_signed_header_alone_verifies_a_package_the_index_gives_no_checksum_for(
    tmp_path: Path, mirror_server: FaultyMirror, fixture_elf: Path
) -> None:
    rpm = uek_rpm(tmp_path, fixture_elf)
    result = build(tmp_path, mirror_server, rpm, catalog(default_signer().public_key))
    assert result.state is KernelState.ARCHIVED, result.reason
    name, _ = read_tar_xz_member((tmp_path / "hub" / ARCHIVE).read_bytes())
    assert name == f"{UNAME}.btf"
    # vmlinux's digest came from the signed header: nothing after it was needed,
    # and the header digest is the one rpm itself lists.
    with rpm.open("rb") as f:
        algorithm, digest = read_headers(f).file_digest(
            f"/usr/lib/debug/lib/modules/{UNAME}/vmlinux"
        )
    assert (algorithm, digest) == ("sha256", hashlib.sha256(fixture_elf.read_bytes()).hexdigest())


def test_a_payload_swapped_under_a_signed_header_is_refused(
    tmp_path: Path, mirror_server: FaultyMirror, fixture_elf: Path
) -> None:
    """Header of one build, payload of another: the signature holds, the digest does not."""
    other_vmlinux = tmp_path / "other-vmlinux"
    # Same size (a size that disagrees is refused earlier, by the package reader),
    # other bytes: a string in .data changed, still a valid ELF.
    changed = fixture_elf.read_bytes().replace(b"swapper", b"swapped", 1)
    assert changed != fixture_elf.read_bytes()
    other_vmlinux.write_bytes(changed)
    # Uncompressed payloads, so both packages have the same length: the reader's
    # own checks (sizes against the headers) pass and only the digest can tell.
    genuine = uek_rpm(tmp_path, fixture_elf, payload="none")
    other = uek_rpm(tmp_path, other_vmlinux, payload="none")
    with genuine.open("rb") as f:
        head = read_headers(f).consumed
    with other.open("rb") as f:
        payload = other.read_bytes()[len(read_headers(f).consumed) :]
    spliced = tmp_path / "spliced" / genuine.name
    spliced.parent.mkdir()
    spliced.write_bytes(head + payload)

    result = build(tmp_path, mirror_server, spliced, catalog(default_signer().public_key))
    assert result.state is KernelState.FAILED
    expected = hashlib.sha256(fixture_elf.read_bytes()).hexdigest()
    got = hashlib.sha256(other_vmlinux.read_bytes()).hexdigest()
    assert f"vmlinux sha256 {got} does not match {expected} from the package's signed header" in (
        result.reason or ""
    )
    assert not (tmp_path / "hub" / ARCHIVE).exists()


@pytest.mark.parametrize("case", ["stranger", "unsigned-rpm", "unsigned-repository"])
def test_no_checksum_and_no_trusted_signature_builds_nothing(
    tmp_path: Path, mirror_server: FaultyMirror, fixture_elf: Path, stranger: Signer, case: str
) -> None:
    if case == "stranger":
        rpm = uek_rpm(tmp_path, fixture_elf, signer=stranger)
        the_catalog = catalog(default_signer().public_key)
        expected = "(rpm header signature): no good signature by a trusted key"
    elif case == "unsigned-rpm":
        rpm = uek_rpm(tmp_path, fixture_elf, signed=False)
        the_catalog = catalog(default_signer().public_key)
        expected = "carries no header signature (unsigned rpm)"
    else:
        rpm = uek_rpm(tmp_path, fixture_elf)
        the_catalog = catalog(None, unsigned=True)
        expected = "the index lists no checksum and the package has no signature"
    result = build(tmp_path, mirror_server, rpm, the_catalog)
    assert result.state is KernelState.FAILED
    assert expected in (result.reason or ""), result.reason
    assert rpm.name in (result.reason or "")
    assert not (tmp_path / "hub").exists()


def test_an_index_checksum_is_checked_over_the_whole_rpm_too(
    tmp_path: Path, mirror_server: FaultyMirror, fixture_elf: Path
) -> None:
    rpm = uek_rpm(tmp_path, fixture_elf)
    wrong = "0" * 64
    result = build(tmp_path, mirror_server, rpm, catalog(default_signer().public_key), wrong)
    assert result.state is KernelState.FAILED
    actual = hashlib.sha256(rpm.read_bytes()).hexdigest()
    assert f"sha256 {actual} does not match {wrong} from the index" in (result.reason or "")
    right = build(tmp_path, mirror_server, rpm, catalog(default_signer().public_key), actual)
    assert right.state is KernelState.ARCHIVED, right.reason
