"""A real Debian kernel through `btfhub reconcile`, checked against the BTF it carries itself.

Debian 12's kernels are built with CONFIG_DEBUG_INFO_BTF, so the vmlinux in
linux-image-6.1.0-<N>-cloud-amd64-dbg has its own .BTF section: the best
reference there is for what pahole should produce from its DWARF. The
package (~283 MB) is fetched with apt-get into ~/.cache/btfhub-real
(BTFHUB_REAL_CACHE overrides) and served from a local mirror laid out like
deb.debian.org/debian. Run with `make slow`.

btfhub runs pahole with one thread per core; the same vmlinux encoded
again serially and with 4 threads must give the archive's exact bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from generator.btf import check_btf, extract_btf_section, read_tar_xz_member
from generator.btf.check import BtfSummary
from generator.btf.encode import pahole, pahole_command
from generator.cli import main
from generator.packages import extract_vmlinux
from tests.kit.mirror import FaultyMirror
from tests.kit.realkernel import RealKernel, publish, reconcile_args

REPO = Path(__file__).resolve().parents[2]
# pahole and the kernel's own build differ a little (functions, enums):
# pahole 1.30's build of 6.1.0-57 has 95,479 types, the kernel's own .BTF
# 95,265 (+0.22%); pahole 1.24's had 94,762.
TYPE_TOLERANCE = 0.01

pytestmark = pytest.mark.slow


def summary_line(name: str, s: BtfSummary) -> str:
    return (
        f"{name:<14} {s.types:>7,} types  {s.structs:>6,} structs "
        f"({len(s.struct_names):,} names)  {s.size:>10,} B"
    )


def test_real_debian_kernel_matches_its_own_btf(
    kernel: RealKernel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    shutil.copytree(REPO / "catalog", hub / "catalog")
    shutil.copyfile(REPO / "README.md", hub / "README.md")
    publish(kernel, tmp_path / "mirror")

    with FaultyMirror(tmp_path / "mirror") as server:
        start = time.monotonic()
        code = main(reconcile_args(hub, server.url))
        build_seconds = time.monotonic() - start
        server.wait_done()
        downloaded = server.bytes_sent
    assert code == 0

    tarball = hub / "archive" / "debian" / "12" / "x86_64" / f"{kernel.uname}.btf.tar.xz"
    name, ours_raw = read_tar_xz_member(tarball.read_bytes())
    assert name == f"{kernel.uname}.btf"
    ours_file = tmp_path / name
    ours_file.write_bytes(ours_raw)

    # The kernel's own BTF, from the same package read straight from disk.
    vmlinux = tmp_path / "vmlinux"
    with kernel.path.open("rb") as f:
        extract_vmlinux(f, "deb", kernel.uname, vmlinux)
    own_file = tmp_path / "own.btf"
    extract_btf_section(vmlinux, own_file)
    vmlinux_size = vmlinux.stat().st_size
    # The archive was encoded with tool.threads threads: other counts, same bytes.
    tool = pahole()
    again: dict[int, bytes] = {}
    for threads in (1, 4):
        out = tmp_path / f"j{threads}.btf"
        subprocess.run(pahole_command(vmlinux, out, tool, threads=threads), check=True)
        again[threads] = out.read_bytes()
        out.unlink()
    vmlinux.unlink()

    ours = check_btf(ours_raw)
    own = check_btf(own_file.read_bytes())
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(ours_file)], capture_output=True, text=True
    )

    with capsys.disabled():
        print(
            f"\n{kernel.package}: built in {build_seconds:.1f} s, "
            f"{downloaded:,} of {kernel.path.stat().st_size:,} package bytes downloaded, "
            f"vmlinux {vmlinux_size:,} B, tarball {tarball.stat().st_size:,} B"
        )
        print(summary_line("btfhub", ours))
        print(summary_line("kernel's .BTF", own))
        print(f"type count differs by {abs(ours.types - own.types) / own.types:.2%}")
        print(
            f"pahole {tool.version}: -j{tool.threads} (the archive), serial and -j4 "
            f"identical: {again[1] == ours_raw and again[4] == ours_raw}"
        )

    assert tool.threads > 1 or len(os.sched_getaffinity(0)) == 1
    assert again[1] == ours_raw
    assert again[4] == ours_raw
    assert ours.structs == own.structs
    assert ours.struct_names == own.struct_names
    assert abs(ours.types - own.types) <= TYPE_TOLERANCE * own.types
    assert dump.returncode == 0, dump.stderr
    assert "STRUCT 'task_struct'" in dump.stdout
    # Every byte of the package was read and hashed before the file was published
    # (issue 9: the rest is drained while pahole runs), and nothing twice.
    size = kernel.path.stat().st_size
    assert size <= downloaded < size * 1.01
