"""One package fetched, verified in full and encoded, with the provenance of what it gave.

The one sequence both a build (generator/hub/build.py) and a rebuild
(`btfhub verify --rebuild`) run, so that a rebuild verifies its package
exactly as the build did: the stream checks size and sha256 against the
index, generator.verify checks the rest alongside pahole (and an RPM's
signed header first), and only then are the bytes handed back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import generator
from generator.btf.build import BuiltBtf, build_kernel_btf
from generator.model import KernelPackage, Provenance
from generator.openpgp import Keyring
from generator.upstream.http import UpstreamClient
from generator.verify import PackageVerification


@dataclass(frozen=True)
class VerifiedBuild:
    built: BuiltBtf
    provenance: Provenance | None  # None when nothing was encoded (ships its own BTF)
    verification_seconds: dict[str, float]  # the background checks, and the wait for them


def package_file(pkg: KernelPackage) -> str:
    """The package's file name, as messages name it (the index's Filename / href)."""
    return pkg.filename.rsplit("/", 1)[-1] or pkg.name


def build_verified(
    client: UpstreamClient,
    pkg: KernelPackage,
    keyring: Keyring | None,
    workdir: Path,
    *,
    force: bool = False,
    pahole_threads: int | None = None,
    pahole_arguments: tuple[str, ...] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    mark: Callable[[str], None] = lambda _: None,
) -> VerifiedBuild:
    """Stream pkg, encode its vmlinux, verify the whole package; PackageError if it does not.

    mark(step) is called at "vmlinux out", "built" (encoded) and "verified".
    pahole_arguments: a recorded build's, for a rebuild (btfhub's own choice otherwise).
    """
    with (
        client.open_stream(pkg.url, pkg.size, pkg.sha256, on_bytes=on_bytes) as body,
        PackageVerification(body, pkg, keyring, client.where(pkg.url)) as check,
    ):

        def extracted(vmlinux: Path) -> None:
            mark("vmlinux out")
            check.vmlinux_extracted(vmlinux)

        built = build_kernel_btf(
            check.reader(),
            pkg.format,
            pkg.uname,
            workdir,
            force=force,
            package=package_file(pkg),
            size=pkg.size,
            on_extracted=extracted,
            pahole_threads=pahole_threads,
            pahole_arguments=pahole_arguments,
        )
        mark("built")
        check.finish()  # nothing is handed back from a package that did not verify
        mark("verified")
    seconds = {
        "verification thread": check.background_seconds,
        "waited for verification": check.waited_seconds,
    }
    if built.tar_xz is None or built.pahole is None:
        return VerifiedBuild(built, None, seconds)
    provenance = Provenance(
        file_sha256=hashlib.sha256(built.tar_xz).hexdigest(),
        package=pkg,
        header_keys=check.header_keys,
        pahole_version=built.pahole.version,
        pahole_arguments=built.pahole.arguments,
        btfhub_version=generator.__version__,
    )
    return VerifiedBuild(built, provenance, seconds)
