"""A real Debian 12 kernel's modules through `btfhub reconcile`, against the modules' own .BTF.

Debian 12 builds module BTF itself (CONFIG_DEBUG_INFO_BTF_MODULES): every
.ko in linux-image-6.1.0-<N>-cloud-amd64-dbg carries a .BTF section, split
on the kernel's own vmlinux .BTF. That is the oracle: the hub's split BTF of
nf_conntrack, nf_nat and overlay (encoded by pahole 1.30 on the hub's own
vmlinux BTF) must declare their structs exactly as the kernel's build does,
and the file `btfhub fetch --modules` writes must too. The package is the
one tests/kit/realkernel.py fetches for the vmlinux test. Run with `make slow`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from generator.btf import extract_btf_section, read_tar_xz_member
from generator.btf.merge import merge_split
from generator.btf.modules import read_modules_file
from generator.cli import main
from generator.model import ModuleSelection
from generator.packages import ModuleSink, walk_package
from generator.packages.modules import unspool
from tests.kit.bpfobj import (
    L4PROTO_PROGRAM,
    build_loader,
    compile_bpf,
    load_with_btf,
    struct_offsets,
)
from tests.kit.cilium import CiliumError, cilium_relocate, cilium_structs
from tests.kit.mirror import FaultyMirror
from tests.kit.realkernel import RealKernel, publish, reconcile_args

REPO = Path(__file__).resolve().parents[2]
MODULES = ("nf_conntrack", "nf_nat", "overlay")
# Structs each module defines (not vmlinux), compared declaration for declaration.
STRUCTS = {
    "nf_conntrack": ("nf_conntrack_l4proto", "nf_conntrack_helper"),
    "nf_nat": ("nf_conn_nat", "nf_nat_hook"),
    "overlay": ("ovl_inode", "ovl_fs", "ovl_entry"),
}

pytestmark = pytest.mark.slow


def c_dump(split: Path, base: Path | None = None) -> str:
    cmd = ["bpftool", "btf", "dump", "file", str(split)]
    cmd += ["-B", str(base)] if base else []
    return subprocess.run([*cmd, "format", "c"], capture_output=True, text=True, check=True).stdout


def declaration(c: str, struct: str) -> str:
    m = re.search(rf"^struct {struct} {{\n.*?^}};\n", c, re.S | re.M)
    assert m is not None, f"struct {struct} not in the dump"
    return m.group(0)


def test_real_kernel_modules_match_their_own_btf(
    kernel: RealKernel, tmp_path: Path, capsys: pytest.CaptureFixture[str], btfcheck: Path
) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    shutil.copytree(REPO / "catalog", hub / "catalog")
    shutil.copyfile(REPO / "README.md", hub / "README.md")
    manifest = hub / "catalog" / "debian.yaml"
    text, n = re.subn(
        r"(\n    id: bookworm\n)", rf"\1    modules: [{', '.join(MODULES)}]\n", manifest.read_text()
    )
    assert n == 1
    manifest.write_text(text)
    publish(kernel, tmp_path / "mirror")

    with FaultyMirror(tmp_path / "mirror") as server:
        start = time.monotonic()
        assert main(reconcile_args(hub, server.url)) == 0
        seconds = time.monotonic() - start
        server.wait_done()
    base_path = hub / "archive" / "debian" / "12" / "x86_64" / kernel.uname
    _, base = read_tar_xz_member(Path(f"{base_path}.btf.tar.xz").read_bytes())
    ours_base = tmp_path / "ours-vmlinux.btf"
    ours_base.write_bytes(base)
    listing, modules = read_modules_file(
        Path(f"{base_path}.modules.tar.xz").read_bytes(), "modules file"
    )
    assert sorted(modules) == sorted(MODULES)
    assert listing.absent == ()

    # The oracle: the kernel's own .BTF, of vmlinux and of each .ko, from the same package.
    own = tmp_path / "own"
    own.mkdir()
    sink = ModuleSink(kernel.uname, ModuleSelection(MODULES), own)
    with kernel.path.open("rb") as f:
        for _ in walk_package(f, "deb", kernel.uname, own / "vmlinux", modules=sink):
            pass
    extract_btf_section(own / "vmlinux", own / "vmlinux.btf")
    (own / "vmlinux").unlink()

    merged = tmp_path / "merged.btf"
    host = ["--id", "debian", "--version-id", "12", "--kernel", kernel.uname, "--arch", "x86_64"]
    fetch_args = ["fetch", "--root", str(hub), *host, "--index", str(hub / "index.json")]
    assert main([*fetch_args, "--modules", ",".join(MODULES), "--output", str(merged)]) == 0
    merged_c = c_dump(merged)

    compared = 0
    for name in MODULES:
        ours_split = tmp_path / f"{name}.btf"
        ours_split.write_bytes(modules[name])
        unspool(sink.found[name].path, own / f"{name}.ko")  # the sink keeps it zstd-compressed
        extract_btf_section(own / f"{name}.ko", own / f"{name}.btf")
        ours_c = c_dump(ours_split, ours_base)
        own_c = c_dump(own / f"{name}.btf", own / "vmlinux.btf")
        for struct in STRUCTS[name]:
            assert declaration(ours_c, struct) == declaration(own_c, struct)
            assert declaration(merged_c, struct) == declaration(own_c, struct)
            compared += 1
    # min-core of a CO-RE program reading struct nf_conntrack_l4proto: the hub's
    # minimized file (vmlinux + the nf_conntrack it needs) declares it as bpftool
    # minimizing the kernel's own BTF (its vmlinux .BTF and nf_conntrack's, merged)
    # does, and libbpf relocates the program the same way through both.
    work = tmp_path / "core"
    program = compile_bpf(work, "l4proto", L4PROTO_PROGRAM)
    out = tmp_path / "min"
    assert main(["min-core", "--root", str(hub), "--bpf", str(program), "--output", str(out),
                 "--index", str(hub / "index.json")]) == 0  # fmt: skip
    entry = json.loads((out / "manifest.json").read_text())["kernels"]
    (minimized_name,) = entry
    assert entry[minimized_name]["modules"] == ["nf_conntrack"]
    own_merged = tmp_path / "own-merged.btf"
    own_merged.write_bytes(
        merge_split((own / "vmlinux.btf").read_bytes(), [(own / "nf_conntrack.btf").read_bytes()])
    )
    own_min = tmp_path / "own-min.btf"
    subprocess.run(["bpftool", "gen", "min_core_btf", str(own_merged), str(own_min), str(program)],
                   check=True, capture_output=True)  # fmt: skip
    ours_min = out / minimized_name
    struct = "nf_conntrack_l4proto"
    assert declaration(c_dump(ours_min), struct) == declaration(c_dump(own_min), struct)
    # cilium/ebpf 0.9.1 loads the hub's merged file as a spec, sees the struct's
    # members where bpftool sees them in the kernel's own BTF, and CO-RE-relocates
    # the program's reads to those offsets. The kernel's own BTF it cannot load:
    # it has ENUM64 (kind 19), which 0.9.1 predates and the hub does not encode
    # (pahole --skip_encoding_btf_enum64).
    own_offsets = struct_offsets(own_merged, struct)
    assert cilium_structs(btfcheck, merged, struct).structs == tuple(own_offsets)
    with pytest.raises(CiliumError, match=r"unknown kind: Unknown \(19\)"):
        cilium_structs(btfcheck, own_merged, struct)
    ours_fixups = cilium_relocate(btfcheck, merged, program)
    (own,) = own_offsets
    # The program's layout: nlattr_size at 0, allow_clash at 2, l4proto at 3.
    assert {f.local: f.target for f in ours_fixups} == {
        0: own["nlattr_size"],
        2: own["allow_clash"],
        3: own["l4proto"],
    }
    assert len(ours_fixups) == 3 and {f.kind for f in ours_fixups} == {"byte_off"}
    loader = build_loader(work)
    ours_load = load_with_btf(loader, program, ours_min)
    own_load = load_with_btf(loader, program, own_merged)
    if ours_load.code != 77:  # 77: no BPF privilege here
        assert ours_load.code == 0 and own_load.code == 0, ours_load.stderr
        assert ours_load.relocations == own_load.relocations and len(ours_load.relocations) == 3
    with capsys.disabled():
        sizes = ", ".join(f"{n} {len(modules[n]):,} B" for n in MODULES)
        print(f"\n{kernel.uname}: built with modules in {seconds:.1f} s ({sizes}); "
              f"{compared} struct declarations identical to the kernel's own")  # fmt: skip
