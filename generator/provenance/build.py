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
from generator.btf.check import check_btf
from generator.btf.modules import BuiltModules, build_modules
from generator.model import KernelPackage, ModuleSelection, Provenance
from generator.openpgp import Keyring
from generator.packages import ModuleSink
from generator.packages.modules import unspool
from generator.upstream.http import UpstreamClient
from generator.verify import VerifiedPackage


@dataclass(frozen=True)
class VerifiedBuild:
    built: BuiltBtf
    provenance: Provenance | None  # None when nothing was encoded (ships its own BTF)
    verification_seconds: dict[str, float]  # extraction, the background checks, the wait for them
    # The kernel's modules file, when modules were asked for and vmlinux encoded.
    modules: BuiltModules | None = None


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
    modules: ModuleSelection | None = None,
    base: bytes | None = None,
) -> VerifiedBuild:
    """Stream pkg, encode its vmlinux, verify the whole package; PackageError if it does not.

    mark(step) is called at "vmlinux out", "built" (encoded) and "verified".
    pahole_arguments: a recorded build's, for a rebuild (btfhub's own choice otherwise).
    modules: the kernel modules to encode too, taken from the same read of the
    package (generator.verify) and encoded, once it verified, on the new BTF.
    base: the kernel's archived raw BTF: vmlinux is not encoded again (its file
    stays as it is) and the modules are encoded on base; no provenance then.
    """
    sink = None
    if modules is not None:
        (workdir / "modules").mkdir()
        sink = ModuleSink(pkg.uname, modules, workdir / "modules")
    with (
        client.open_stream(pkg.url, pkg.size, pkg.sha256, on_bytes=on_bytes) as body,
        VerifiedPackage(body, pkg, keyring, client.where(pkg.url), sink) as package,
    ):
        vmlinux = workdir / f"vmlinux-{pkg.uname}"
        package.extract_vmlinux(vmlinux)  # the rest is verified while pahole runs
        mark("vmlinux out")
        if base is None:
            built = build_kernel_btf(
                vmlinux,
                pkg.uname,
                workdir,
                force=force,
                pahole_threads=pahole_threads,
                pahole_arguments=pahole_arguments,
            )
            mark("built")
        else:  # only its modules are wanted: the package is read for them and verified
            vmlinux.unlink(missing_ok=True)
            built = BuiltBtf(pkg.uname, False, None, check_btf(base), raw=base)
        package.finish()  # nothing is handed back from a package that did not verify
        mark("verified")
    seconds = {
        "extract": package.extract_seconds,
        "verification thread": package.background_seconds,
        "waited for verification": package.waited_seconds,
    }
    if base is None and (built.tar_xz is None or built.pahole is None):
        return VerifiedBuild(built, None, seconds)
    encoded = None
    if sink is not None and built.raw is not None and built.summary is not None:
        encoded = build_modules(
            pkg.uname,
            built.raw,
            built.summary,
            {name: found.path for name, found in sink.found.items()},
            sink.absent(),
            workdir,
            threads=pahole_threads,
            unpack=unspool,
        )
        mark("modules built")
    if built.tar_xz is None or built.pahole is None:
        return VerifiedBuild(built, None, seconds, encoded)
    provenance = Provenance(
        file_sha256=hashlib.sha256(built.tar_xz).hexdigest(),
        package=pkg,
        header_keys=package.header_keys,
        pahole_version=built.pahole.version,
        pahole_arguments=built.pahole.arguments,
        btfhub_version=generator.__version__,
    )
    return VerifiedBuild(built, provenance, seconds, encoded)
