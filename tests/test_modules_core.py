"""Module BTF for CO-RE programs (issue 16): libbpf relocation through the merged file, min-core.

Real parts: modules compiled at test time into a real .ddeb, reconciled
from a local mirror by the pinned pahole; BPF programs compiled by clang;
bpftool's min_core_btf; a C loader linked with Debian's libbpf opening the
programs with btf_custom_path (tests/kit/bpfobj.py: libbpf 1.1 relocates
inside a real load, so the loader needs the BPF privilege; without it the
loader tests skip, the bpftool checks still run); a Go program built with
Debian's cilium/ebpf 0.9.1 loading the merged file as a spec and
CO-RE-relocating the same programs against it (tests/kit/cilium.py: no
privilege needed, the kernel is not involved).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator import api
from generator.cli import main
from generator.demokit.bpftool import dump_c
from generator.demokit.mirror import AptPackage
from tests.kit.bpfobj import (
    MODULE_PROGRAM,
    SHARED_PROGRAM,
    TASK_PROGRAM,
    LoadResult,
    btf_types,
    build_loader,
    compile_bpf,
    load_with_btf,
    struct_offsets,
)
from tests.kit.cilium import Fixup, cilium_relocate, cilium_structs
from tests.kit.hub import btfhub, mirror_args, quick_upstream
from tests.kit.mirror import FaultyMirror
from tests.kit.modules import (
    FOCAL,
    FOCAL_UNAME,
    FOCAL_VERSION,
    SHARED_STRUCT,
    build_ddeb_with_modules,
    build_module,
    focal_hub,
    module_struct,
    serve_focal,
)

UNAME = FOCAL_UNAME
HOST = ("--id", "ubuntu", "--version-id", "20.04", "--kernel", UNAME, "--arch", "x86_64")
MIN = f"ubuntu/20.04/x86_64/{UNAME}.btf"


@dataclass(frozen=True)
class Bpf:
    module: Path  # reads btfhub_nf_demo_conn (nf_demo's) and vmlinux's task
    shared: Path  # reads btfhub_shared_state, which both modules carry
    task: Path  # vmlinux's types only
    loader: Path


@pytest.fixture(scope="module")
def bpf(tmp_path_factory: pytest.TempPathFactory) -> Bpf:
    work = tmp_path_factory.mktemp("bpf")
    return Bpf(
        compile_bpf(work, "module", MODULE_PROGRAM),
        compile_bpf(work, "shared", SHARED_PROGRAM),
        compile_bpf(work, "task", TASK_PROGRAM),
        build_loader(work),
    )


@pytest.fixture(scope="module")
def ddeb(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> AptPackage:
    """nf_demo and ovl_demo, both carrying btfhub_shared_state."""
    base = tmp_path_factory.mktemp("core-modules")
    objects = {
        "net/netfilter/nf_demo.ko": build_module(base / "o", "nf_demo", shared=True),
        "fs/overlayfs/ovl_demo.ko": build_module(base / "o", "ovl_demo", tag=20, shared=True),
    }
    return AptPackage.from_deb(
        build_ddeb_with_modules(base / "pkg", UNAME, fixture_elf, objects, FOCAL_VERSION)
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, ddeb: AptPackage) -> Path:
    """The reconciled hub, made once: the tests only read it (fetch, min-core into their own
    directories), so one reconcile serves them all. Its output is in the setup's capture."""
    base = tmp_path_factory.mktemp("core-hub")
    with FaultyMirror(base / "mirror") as server:
        serve_focal(server, ddeb)
        root = focal_hub(base / "hub", "[nf_demo, ovl_demo]")
        argv = ["reconcile", "--root", str(root), *mirror_args(server), *FOCAL]
        assert main(argv, upstream=quick_upstream) == 0
    return root


def relocated(bpf: Bpf, obj: Path, btf: Path) -> LoadResult:
    result = load_with_btf(bpf.loader, obj, btf)
    if result.code == 77:
        pytest.skip("no BPF privilege: libbpf 1.1 relocates only inside a privileged load")
    return result


def offsets(btf: Path, struct: str) -> dict[str, int]:
    found = struct_offsets(btf, struct)
    assert len(found) == 1, f"{len(found)} struct {struct} in {btf}"
    return found[0]


def targets(result: LoadResult) -> set[int]:
    return {int(r.rsplit("-> ", 1)[1]) for r in result.relocations}


def fetch(capsys: pytest.CaptureFixture[str], hub: Path, out: Path, *modules: str) -> Path:
    more = ("--modules", ",".join(modules)) if modules else ()
    index = ("--index", str(hub / "index.json"))
    run = btfhub(capsys, hub, "fetch", *HOST, *index, *more, "--output", str(out))
    assert run.code == 0, run.err
    return out


def test_libbpf_relocates_a_module_struct_through_the_merged_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hub: Path, bpf: Bpf
) -> None:
    merged = fetch(capsys, hub, tmp_path / "merged.btf", "nf_demo", "ovl_demo")
    vmlinux_only = fetch(capsys, hub, tmp_path / "vmlinux.btf")

    result = relocated(bpf, bpf.module, merged)

    assert result.code == 0, result.stderr
    conn = offsets(merged, module_struct("nf_demo"))
    task = offsets(merged, "btfhub_fixture_task")
    # The program's own layout is state, tag, cookie, peer (0, 4, 8, 16): the module's moves them.
    assert targets(result) == {conn["state"], conn["cookie"], conn["peer"], task["pid"]}
    assert (conn["state"], conn["cookie"], conn["peer"]) != (0, 8, 16)
    # vmlinux's file alone lacks the module's struct: libbpf cannot relocate the reads.
    missing = relocated(bpf, bpf.module, vmlinux_only)
    assert missing.code == 1
    assert any("btfhub_nf_demo_conn" in u or "no matching targets" in u for u in missing.unresolved)


def test_a_struct_two_modules_carry_relocates_through_the_merged_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hub: Path, bpf: Bpf
) -> None:
    merged = fetch(capsys, hub, tmp_path / "merged.btf", "nf_demo", "ovl_demo")
    # Each module's split BTF has its own copy (pahole dedups against vmlinux only),
    # and the merge keeps both: two candidates of one layout for libbpf.
    copies = struct_offsets(merged, SHARED_STRUCT)
    assert len(copies) == 2 and copies[0] == copies[1]

    result = relocated(bpf, bpf.shared, merged)

    assert result.code == 0, result.stderr
    shared = copies[0]
    assert targets(result) == {shared["proto"], shared["head"]}
    assert shared["head"] != 0  # the program's own layout has head first


def test_min_core_adds_the_modules_whose_types_the_objects_need(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hub: Path, bpf: Bpf
) -> None:
    index = ("--index", str(hub / "index.json"))
    out = tmp_path / "min"
    run = btfhub(capsys, hub, "min-core", "--bpf", str(bpf.module), "--bpf", str(bpf.shared),
                 "--output", str(out), *index)  # fmt: skip

    assert run.code == 0, run.err
    assert f"{MIN}: " in run.out and "with modules nf_demo, ovl_demo" in run.out
    entry = json.loads((out / "manifest.json").read_text())["kernels"][MIN]
    assert entry["modules"] == ["nf_demo", "ovl_demo"]  # nf_demo's conn; both carry shared
    small = dump_c(out / MIN)
    assert f"struct {module_struct('nf_demo')} {{" in small
    assert len(struct_offsets(out / MIN, SHARED_STRUCT)) == 1  # bpftool keeps the one it used
    assert f"struct {module_struct('ovl_demo')} {{" not in small  # nothing read of it
    merged = fetch(capsys, hub, tmp_path / "merged.btf", "nf_demo", "ovl_demo")
    for obj in (bpf.module, bpf.shared):
        through_min = relocated(bpf, obj, out / MIN)
        assert through_min.code == 0, through_min.stderr
        assert through_min.relocations == relocated(bpf, obj, merged).relocations

    # The same through the Python API, and a rerun does no work.
    again = api.min_core([bpf.module, bpf.shared], out, index=hub / "index.json", root=hub)
    assert [(k.reused, k.modules) for k in again.kernels] == [(True, ("nf_demo", "ovl_demo"))]

    # Objects reading only vmlinux's types: no module is read, as for a kernel without any.
    plain = tmp_path / "plain"
    run = btfhub(capsys, hub, "min-core", "--bpf", str(bpf.task), "--output", str(plain), *index)
    assert run.code == 0, run.err
    assert "with modules" not in run.out
    entry = json.loads((plain / "manifest.json").read_text())["kernels"][MIN]
    assert "modules" not in entry
    vmlinux = fetch(capsys, hub, tmp_path / "vmlinux.btf")
    assert entry["full_size"] == vmlinux.stat().st_size
    assert module_struct("nf_demo") not in dump_c(plain / MIN)


def test_cilium_loads_the_merged_file_and_sees_the_offsets_bpftool_shows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hub: Path, btfcheck: Path
) -> None:
    merged = fetch(capsys, hub, tmp_path / "merged.btf", "nf_demo", "ovl_demo")
    vmlinux_only = fetch(capsys, hub, tmp_path / "vmlinux.btf")

    # btf.LoadSpec reads every type bpftool reads (and void, id 0, which bpftool does not list).
    seen = cilium_structs(btfcheck, merged, module_struct("nf_demo"))
    assert seen.types == len(btf_types(merged)) + 1
    assert seen.types > cilium_structs(btfcheck, vmlinux_only, "btfhub_fixture_task").types
    # Each module's struct, the struct both modules carry (two copies) and vmlinux's:
    # the members at the byte offsets bpftool shows.
    for name in (module_struct("nf_demo"), module_struct("ovl_demo"), SHARED_STRUCT):
        found = cilium_structs(btfcheck, merged, name).structs
        assert found and list(found) == struct_offsets(merged, name), name
    assert len(cilium_structs(btfcheck, merged, SHARED_STRUCT).structs) == 2
    task = cilium_structs(btfcheck, merged, "btfhub_fixture_task").structs
    assert (
        list(task)
        == struct_offsets(merged, "btfhub_fixture_task")
        == struct_offsets(vmlinux_only, "btfhub_fixture_task")
    )
    # The module's struct is in the merged file only.
    assert cilium_structs(btfcheck, vmlinux_only, module_struct("nf_demo")).structs == ()


def byte_offsets(fixups: tuple[Fixup, ...]) -> dict[int | None, int | None]:
    """The program's own offset -> cilium's target offset, for its field offset relocations."""
    return {f.local: f.target for f in fixups if f.kind == "byte_off"}


def test_cilium_relocates_a_module_struct_through_the_merged_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hub: Path, bpf: Bpf, btfcheck: Path
) -> None:
    merged = fetch(capsys, hub, tmp_path / "merged.btf", "nf_demo", "ovl_demo")
    vmlinux_only = fetch(capsys, hub, tmp_path / "vmlinux.btf")

    fixups = cilium_relocate(btfcheck, merged, bpf.module)

    conn = offsets(merged, module_struct("nf_demo"))
    task = offsets(merged, "btfhub_fixture_task")
    assert {f.program for f in fixups} == {"btfhub_module_probe"}
    assert all(f.kind == "byte_off" for f in fixups) and len(fixups) == 4
    # The program's layout is state, tag, cookie, peer (0, 4, 8, 16) and task's pid at 0:
    # cilium moves each read to where bpftool shows the member in the merged file.
    assert sorted((f.local, f.target) for f in fixups) == sorted(
        [(0, conn["state"]), (8, conn["cookie"]), (16, conn["peer"]), (0, task["pid"])]
    )
    assert (conn["state"], conn["cookie"], conn["peer"]) != (0, 8, 16)
    # vmlinux's file alone has no btfhub_nf_demo_conn: cilium poisons the module's
    # three reads (the kernel's verifier would then refuse the program) and still
    # relocates the read of vmlinux's task.
    alone = cilium_relocate(btfcheck, vmlinux_only, bpf.module)
    assert len([f for f in alone if f.local is None]) == 3
    assert [(f.local, f.target) for f in alone if f.local is not None] == [(0, task["pid"])]

    # The struct two modules carry: two candidates of one layout, which cilium accepts.
    shared = struct_offsets(merged, SHARED_STRUCT)[0]
    assert byte_offsets(cilium_relocate(btfcheck, merged, bpf.shared)) == {
        0: shared["head"],
        8: shared["proto"],
    }
    assert shared["head"] != 0

    # Where libbpf can relocate here (the BPF privilege), both agree offset for offset.
    libbpf = load_with_btf(bpf.loader, bpf.module, merged)
    if libbpf.code != 77:
        assert libbpf.code == 0, libbpf.stderr
        assert targets(libbpf) == {f.target for f in fixups}
