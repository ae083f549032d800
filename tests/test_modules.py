"""Kernel modules' BTF (issue 16): built from the same read as vmlinux, archived beside it.

Real parts throughout: modules compiled at test time (gcc -g -c, relocatable
like a .ko), packed with the fixture vmlinux into a real .ddeb (dpkg-deb),
served from a local mirror, encoded by the pinned pahole, read back by
bpftool with the kernel's BTF as base.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from generator.btf.modules import read_modules_file
from generator.btf.tarball import read_tar_xz_member
from generator.demokit.bpftool import dump_c
from generator.demokit.mirror import AptPackage
from tests.kit.hub import archive_files, btfhub, kernels, load_index, mirror_args, pool_path
from tests.kit.mirror import FaultyMirror
from tests.kit.modules import (
    FOCAL,
    FOCAL_UNAME,
    FOCAL_VERSION,
    build_ddeb_with_modules,
    build_module,
    focal_hub,
    module_struct,
    serve_focal,
)

UNAME = FOCAL_UNAME
VERSION = FOCAL_VERSION
BASE = f"archive/ubuntu/20.04/x86_64/{UNAME}"


@pytest.fixture(scope="session")
def module_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two modules, one of them with a "-" in its file name (the kernel's name has "_")."""
    base = tmp_path_factory.mktemp("modules")
    nf = build_module(base, "nf_demo")
    ovl = build_module(base, "ovl_demo", tag=20)
    dashed = ovl.with_name("ovl-demo.ko")
    ovl.rename(dashed)
    return {"net/netfilter/nf_demo.ko": nf, "fs/overlayfs/ovl-demo.ko": dashed}


@pytest.fixture(scope="session")
def ddeb(
    tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path, module_objects: dict[str, Path]
) -> AptPackage:
    path = build_ddeb_with_modules(
        tmp_path_factory.mktemp("modules-ddeb"), UNAME, fixture_elf, module_objects, VERSION
    )
    return AptPackage.from_deb(path)


def dump_split(tmp_path: Path, base: bytes, module: bytes) -> str:
    """bpftool's C dump of a module's split BTF read on its base."""
    (tmp_path / "base.btf").write_bytes(base)
    (tmp_path / "module.btf").write_bytes(module)
    return subprocess.run(
        [
            "bpftool",
            "btf",
            "dump",
            "file",
            str(tmp_path / "module.btf"),
            "-B",
            str(tmp_path / "base.btf"),
            "format",
            "c",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_listed_modules_are_built_beside_an_unchanged_vmlinux_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
) -> None:
    serve_focal(mirror_server, ddeb)
    plain = focal_hub(tmp_path / "plain", None)
    with_modules = focal_hub(tmp_path / "mods", "[nf_demo, ovl_demo, not_there]")

    assert btfhub(capsys, plain, "reconcile", *mirror_args(mirror_server), *FOCAL).code == 0
    run = btfhub(capsys, with_modules, "reconcile", *mirror_args(mirror_server), *FOCAL)

    assert run.code == 0, run.err
    files = archive_files(with_modules)
    assert sorted(files) == [f"{BASE}.btf.tar.xz", f"{BASE}.modules.tar.xz"]
    # The kernel's own file is byte for byte what a build without modules makes.
    assert files[f"{BASE}.btf.tar.xz"] == archive_files(plain)[f"{BASE}.btf.tar.xz"]
    _, base = read_tar_xz_member(files[f"{BASE}.btf.tar.xz"])
    manifest, modules = read_modules_file(files[f"{BASE}.modules.tar.xz"], "test")
    assert sorted(modules) == ["nf_demo", "ovl_demo"]
    assert manifest.absent == ("not_there",)
    for name, btf in modules.items():
        c = dump_split(tmp_path, base, btf)
        assert f"struct {module_struct(name)} {{" in c
        assert "struct btfhub_fixture_list *owner;" in c
    entry = load_index(with_modules)["distributions"]["ubuntu"]["releases"]["focal"][
        "architectures"
    ]["x86_64"]["modules"][UNAME]
    assert entry["path"] == f"{BASE}.modules.tar.xz"
    assert entry["absent"] == ["not_there"]
    assert sorted(entry["modules"]) == ["nf_demo", "ovl_demo"]
    assert entry["modules"]["nf_demo"]["sha256"] == manifest.modules["nf_demo"].sha256
    assert kernels(with_modules, "ubuntu", "focal")[UNAME]["state"] == "archived"
    assert json.loads(json.dumps(entry))  # plain JSON


def test_fetch_modules_writes_one_btf_with_vmlinux_and_the_modules(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
) -> None:
    serve_focal(mirror_server, ddeb)
    hub = focal_hub(tmp_path / "hub", "[nf_demo, ovl_demo, not_there]")
    assert btfhub(capsys, hub, "reconcile", *mirror_args(mirror_server), *FOCAL).code == 0
    host = ("--id", "ubuntu", "--version-id", "20.04", "--kernel", UNAME, "--arch", "x86_64")
    index = ("--index", str(hub / "index.json"))

    out = tmp_path / "merged.btf"
    run = btfhub(capsys, hub, "fetch", *host, *index, "--modules", "nf_demo,ovl-demo",
                 "--output", str(out))  # fmt: skip

    assert run.code == 0, run.err
    c = dump_c(out)
    for name in ("nf_demo", "ovl_demo"):
        assert f"struct {module_struct(name)} {{" in c
    assert "struct btfhub_fixture_task {" in c  # and vmlinux's own
    every = tmp_path / "all.btf"
    assert btfhub(capsys, hub, "fetch", *host, *index, "--modules", "all",
                  "--output", str(every)).code == 0  # fmt: skip
    assert every.read_bytes() == out.read_bytes()  # all = the two it has, in name order

    for asked, why in (("not_there", "not in the kernel's package"), ("nope", "not built")):
        run = btfhub(capsys, hub, "fetch", *host, *index, "--modules", asked,
                     "--output", str(tmp_path / "x.btf"))  # fmt: skip
        assert run.code == 1
        assert f"{asked} ({why})" in run.err
    assert not (tmp_path / "x.btf").exists()
    run = btfhub(capsys, hub, "fetch", *host, *index, "--modules", ",", "--output", str(out))
    assert run.code == 2

    # btfhub verify checks the modules file with its kernel's (provenance covers both).
    run = btfhub(capsys, hub, "verify", *FOCAL)
    assert run.code == 0, run.out + run.err
    modules_file = hub / f"{BASE}.modules.tar.xz"
    data = bytearray(modules_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    modules_file.write_bytes(bytes(data))
    run = btfhub(capsys, hub, "verify", *FOCAL)
    assert run.code == 1
    assert f"{BASE}.btf.tar.xz: its modules file is {len(data)} bytes, sha256" in run.out


def test_only_a_release_with_modules_decodes_the_package_past_vmlinux(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    module_objects: dict[str, Path],
) -> None:
    """A package whose xz data is corrupt after vmlinux (its sha256 listed as it is):
    without modules the tail is only hashed, so the build passes; with modules it is
    decoded, and the corruption fails the kernel."""
    path = build_ddeb_with_modules(
        tmp_path / "pkg", UNAME, fixture_elf, module_objects, VERSION, padding_after=1 << 20
    )
    data = bytearray(path.read_bytes())
    data[-4096] ^= 0xFF  # inside data.tar.xz's compressed padding, long after vmlinux
    path.write_bytes(bytes(data))
    serve_focal(mirror_server, AptPackage.from_deb(path))
    plain = focal_hub(tmp_path / "plain", None)
    with_modules = focal_hub(tmp_path / "mods", "[nf_demo]")

    run = btfhub(capsys, plain, "reconcile", *mirror_args(mirror_server), *FOCAL)
    assert run.code == 0, run.err
    run = btfhub(capsys, with_modules, "reconcile", *mirror_args(mirror_server), *FOCAL)
    assert run.code == 1
    failed = kernels(with_modules, "ubuntu", "focal")[UNAME]
    assert failed["state"] == "failed"
    assert "corrupt compressed data" in failed["reason"]
    assert archive_files(with_modules) == {}  # nothing of a package that did not decode


def test_module_files_are_reproducible_for_any_number_of_threads(
    tmp_path: Path, fixture_elf: Path, module_objects: dict[str, Path]
) -> None:
    from generator.btf import check_btf, encode_btf
    from generator.btf.modules import build_modules

    base = tmp_path / "vmlinux.btf"
    encode_btf(fixture_elf, base)
    raw = base.read_bytes()
    made = []
    for threads in (1, 2):
        work = tmp_path / f"t{threads}"
        work.mkdir()
        copies = {}
        for obj in module_objects.values():
            copy = work / obj.name
            copy.write_bytes(obj.read_bytes())
            copies[obj.name.split(".")[0].replace("-", "_")] = copy
        made.append(build_modules(UNAME, raw, check_btf(raw), copies, ["gone"], work,
                                  threads=threads).tar_xz)  # fmt: skip
        assert sorted(p.name for p in work.iterdir()) == []  # every .ko and work file gone
    assert made[0] == made[1]


def test_a_module_struct_named_from_the_base_strings_is_summarized(
    tmp_path: Path, fixture_elf: Path
) -> None:
    """pahole reuses the base's string for a name vmlinux has (here a member's, pid):
    the module's struct pid still counts among its struct names."""
    from generator.btf import check_btf, encode_btf
    from generator.btf.encode import encode_module
    from generator.btf.names import named_types

    base = tmp_path / "vmlinux.btf"
    encode_btf(fixture_elf, base)
    extra = "struct pid { int nr; unsigned int level; };\nstruct pid *btfhub_pid_ptr;\n"
    obj = build_module(tmp_path / "m", "pid_demo", extra=extra)
    encode_module(obj, base, tmp_path / "pid_demo.btf")
    module = (tmp_path / "pid_demo.btf").read_bytes()
    base_summary = check_btf(base.read_bytes())
    assert b"\0pid\0" in base_summary.string_data  # the name lives in the base's strings
    assert b"\0pid\0" not in module  # and not in the module's own

    summary = check_btf(module, base_summary)

    assert {"pid", module_struct("pid_demo")} <= summary.struct_names
    assert ("struct", "pid") in named_types(module, base.read_bytes())


def test_an_archived_kernel_gets_the_modules_its_release_starts_listing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
) -> None:
    """Its BTF file is not encoded again nor rewritten: the modules are built on it."""
    serve_focal(mirror_server, ddeb)
    hub = focal_hub(tmp_path / "hub", None)
    mirror = mirror_args(mirror_server)
    assert btfhub(capsys, hub, "reconcile", *mirror, *FOCAL).code == 0
    vmlinux_file = hub / f"{BASE}.btf.tar.xz"
    before = vmlinux_file.stat()
    vmlinux_bytes = vmlinux_file.read_bytes()
    # A release without modules: a second run plans nothing.
    assert "0 missing" in btfhub(capsys, hub, "plan", *mirror, *FOCAL).out

    def ask(modules: str) -> None:
        manifest = hub / "catalog" / "ubuntu.yaml"
        text = re.sub(r"\n    modules: .*\n", "\n", manifest.read_text())
        text, n = re.subn(r"(\n  - name: Focal\n)", rf"\1    modules: {modules}\n", text)
        assert n == 1
        manifest.write_text(text)

    ask("[nf_demo]")
    assert "modules asked for: none built yet" in btfhub(capsys, hub, "plan", *mirror, *FOCAL).out
    timings = tmp_path / "timings.json"
    monkeypatch.setenv("BTFHUB_TIMINGS", str(timings))
    run = btfhub(capsys, hub, "reconcile", *mirror, *FOCAL)

    assert run.code == 0, run.err
    after = vmlinux_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert vmlinux_file.read_bytes() == vmlinux_bytes
    steps = json.dumps(json.loads(timings.read_text()))
    assert '"modules pahole"' in steps and '"pahole"' not in steps  # vmlinux not encoded
    _, base = read_tar_xz_member(vmlinux_bytes)
    manifest, modules = read_modules_file((hub / f"{BASE}.modules.tar.xz").read_bytes(), "t")
    assert sorted(modules) == ["nf_demo"]
    assert manifest.base.sha256 == hashlib.sha256(base).hexdigest()  # built on the archived file
    arch = load_index(hub)["distributions"]["ubuntu"]["releases"]["focal"]["architectures"][
        "x86_64"
    ]
    assert arch["kernels"][UNAME]["sha256"] == hashlib.sha256(vmlinux_bytes).hexdigest()
    assert sorted(arch["modules"][UNAME]["modules"]) == ["nf_demo"]

    # A module not built yet (and one the package lacks) plans it again; then nothing.
    ask("[nf_demo, ovl_demo, not_there]")
    assert (
        "modules not built yet: not_there, ovl_demo"
        in btfhub(capsys, hub, "plan", *mirror, *FOCAL).out
    )
    assert btfhub(capsys, hub, "reconcile", *mirror, *FOCAL).code == 0
    manifest, modules = read_modules_file((hub / f"{BASE}.modules.tar.xz").read_bytes(), "t")
    assert sorted(modules) == ["nf_demo", "ovl_demo"] and manifest.absent == ("not_there",)
    assert vmlinux_file.stat().st_ino == before.st_ino
    assert "0 missing" in btfhub(capsys, hub, "plan", *mirror, *FOCAL).out
    assert not btfhub(capsys, hub, "plan", *mirror, *FOCAL).out.count("modules")


def test_a_failed_modules_build_is_in_the_modules_map_until_a_build_succeeds(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
) -> None:
    """The kernel stays archived (its object unchanged for old readers); its modules entry
    says why its modules are missing, render keeps it, fetch names it, a rebuild clears it."""
    serve_focal(mirror_server, ddeb)
    hub = focal_hub(tmp_path / "hub", None)
    mirror = mirror_args(mirror_server)
    assert btfhub(capsys, hub, "reconcile", *mirror, *FOCAL).code == 0
    before = load_index(hub)["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]
    kernel = before["x86_64"]["kernels"][UNAME]
    manifest = hub / "catalog" / "ubuntu.yaml"
    text, n = re.subn(r"(\n  - name: Focal\n)", r"\1    modules: [nf_demo]\n", manifest.read_text())
    assert n == 1
    manifest.write_text(text)
    mirror_server.fail(pool_path(ddeb), 404, times=None)

    failed = btfhub(capsys, hub, "reconcile", *mirror, *FOCAL)

    assert failed.code == 1
    assert f"FAILED ubuntu/focal/x86_64 {UNAME}:" in failed.err
    index = load_index(hub)
    arch = index["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"]
    assert arch["kernels"][UNAME] == kernel  # archived, as before: what revision 1 reads
    assert list(arch["modules"]) == [UNAME] and list(arch["modules"][UNAME]) == ["failed"]
    reason = arch["modules"][UNAME]["failed"]["reason"]
    assert "404" in reason and reason in failed.err  # what the run said, kept
    assert not (hub / f"{BASE}.modules.tar.xz").exists()
    # Read back by the next render, which has nothing new to say.
    index_bytes = (hub / "index.json").read_bytes()
    assert btfhub(capsys, hub, "render").code == 0
    assert (hub / "index.json").read_bytes() == index_bytes
    # A consumer asking for the modules is told why there are none.
    host = ("--id", "ubuntu", "--version-id", "20.04", "--kernel", UNAME, "--arch", "x86_64")
    fetch = ("fetch", *host, "--index", str(hub / "index.json"), "--modules", "nf_demo")
    asked = btfhub(capsys, hub, *fetch, "--output", str(tmp_path / "m.btf"))
    assert asked.code != 0 and "its modules build failed:" in asked.err and "404" in asked.err
    # Without --modules the kernel's file is fetched as ever.
    plain = btfhub(capsys, hub, *fetch[:-2], "--output", str(tmp_path / "v.btf"))
    assert plain.code == 0, plain.err

    mirror_server.clear_faults()
    assert btfhub(capsys, hub, "reconcile", *mirror, *FOCAL).code == 0
    arch = load_index(hub)["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]
    entry = arch["x86_64"]["modules"][UNAME]
    assert "failed" not in entry and sorted(entry["modules"]) == ["nf_demo"]
    assert arch["x86_64"]["kernels"][UNAME] == kernel


def test_a_module_name_twice_in_a_package_keeps_the_first(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    module_objects: dict[str, Path],
) -> None:
    """kernel/.../nf_demo.ko and a later updates/nf-demo.ko (here another module's
    object): the kernel builds, with the first one's BTF."""
    objects = dict(module_objects)
    objects["updates/nf-demo.ko"] = objects.pop("fs/overlayfs/ovl-demo.ko")
    path = build_ddeb_with_modules(tmp_path / "pkg", UNAME, fixture_elf, objects, VERSION)
    serve_focal(mirror_server, AptPackage.from_deb(path))
    hub = focal_hub(tmp_path / "hub", "[nf_demo]")

    run = btfhub(capsys, hub, "reconcile", *mirror_args(mirror_server), *FOCAL)

    assert run.code == 0, run.err
    files = archive_files(hub)
    _, base = read_tar_xz_member(files[f"{BASE}.btf.tar.xz"])
    _, modules = read_modules_file(files[f"{BASE}.modules.tar.xz"], "test")
    c = dump_split(tmp_path, base, modules["nf_demo"])
    assert f"struct {module_struct('nf_demo')} {{" in c
    assert module_struct("ovl_demo") not in c


def test_the_sink_keeps_modules_zstd_compressed_until_they_are_encoded(
    tmp_path: Path, ddeb: AptPackage, module_objects: dict[str, Path]
) -> None:
    """They wait on disk until the package verified (1.2 GB raw for modules: all on a
    Debian 6.1 kernel): compressed, each the module's exact bytes once unpacked."""
    from generator.model import ModuleSelection
    from generator.packages import ModuleSink, walk_package
    from generator.packages.modules import unspool

    sink = ModuleSink(UNAME, ModuleSelection(all=True), tmp_path)
    with ddeb.path.open("rb") as f:
        for _ in walk_package(f, "deb", UNAME, tmp_path / "vmlinux", modules=sink):
            pass
    originals = {"nf_demo": module_objects["net/netfilter/nf_demo.ko"],
                 "ovl_demo": module_objects["fs/overlayfs/ovl-demo.ko"]}  # fmt: skip
    assert sorted(sink.found) == sorted(originals)
    for name, original in originals.items():
        found = sink.found[name]
        assert found.path.name == f"{name}.ko.zst"
        assert found.path.stat().st_size < original.stat().st_size
        unspool(found.path, tmp_path / f"{name}.ko")
        raw = (tmp_path / f"{name}.ko").read_bytes()
        assert raw == original.read_bytes()
        assert found.digest == hashlib.sha256(raw).hexdigest() and found.size == len(raw)


def test_a_shard_builds_the_modules_of_an_archived_kernel_and_the_merge_takes_them(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddeb: AptPackage,
) -> None:
    """A build job (--shard, --output) reads the archived BTF from its checkout; the merge
    finds that file identical and replaces only the modules file, once it grew."""
    serve_focal(mirror_server, ddeb)
    hub = focal_hub(tmp_path / "hub", None)
    mirror = mirror_args(mirror_server)
    assert btfhub(capsys, hub, "reconcile", *mirror, *FOCAL).code == 0
    vmlinux_file = hub / f"{BASE}.btf.tar.xz"
    before = vmlinux_file.stat()
    manifest = hub / "catalog" / "ubuntu.yaml"
    original = manifest.read_text()

    for n, modules in enumerate(("[nf_demo]", "[nf_demo, ovl_demo]")):
        text, count = re.subn(r"(\n  - name: Focal\n)", rf"\1    modules: {modules}\n", original)
        assert count == 1
        manifest.write_text(text)
        out = tmp_path / f"out{n}"
        run = btfhub(capsys, hub, "reconcile", *mirror, *FOCAL, "--shard", "1/1",
                     "--output", str(out))  # fmt: skip
        assert run.code == 0, run.err
        assert (out / f"{BASE}.btf.tar.xz").read_bytes() == vmlinux_file.read_bytes()
        run = btfhub(capsys, hub, "merge", str(out))
        assert run.code == 0, run.err
        _, built = read_modules_file((hub / f"{BASE}.modules.tar.xz").read_bytes(), "t")
        assert sorted(built) == (["nf_demo"] if n == 0 else ["nf_demo", "ovl_demo"])
        assert vmlinux_file.stat().st_ino == before.st_ino  # never replaced
        assert btfhub(capsys, hub, "render").code == 0
