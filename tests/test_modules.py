"""Kernel modules' BTF (issue 16): built from the same read as vmlinux, archived beside it.

Real parts throughout: modules compiled at test time (gcc -g -c, relocatable
like a .ko), packed with the fixture vmlinux into a real .ddeb (dpkg-deb),
served from a local mirror, encoded by the pinned pahole, read back by
bpftool with the kernel's BTF as base.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from generator.btf.modules import read_modules_file
from generator.btf.tarball import read_tar_xz_member
from generator.demokit.bpftool import dump_c
from generator.demokit.mirror import AptPackage
from tests.kit.hub import archive_files, btfhub, kernels, load_index, make_hub, mirror_args
from tests.kit.mirror import FaultyMirror
from tests.kit.modules import build_ddeb_with_modules, build_module, module_struct

UNAME = "5.4.0-26-generic"
VERSION = "5.4.0-26.30"
FOCAL = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")
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


def focal_hub(path: Path, modules: str | None) -> Path:
    """A hub whose Focal release asks for `modules` (None: the shipped manifest)."""
    hub = make_hub(path)
    if modules is not None:
        manifest = hub / "catalog" / "ubuntu.yaml"
        text = manifest.read_text()
        text, n = re.subn(r"(\n  - name: Focal\n)", rf"\1    modules: {modules}\n", text)
        assert n == 1
        manifest.write_text(text)
    return hub


def serve(server: FaultyMirror, package: AptPackage) -> None:
    from tests.kit.hub import focal_suites, write_ubuntu

    write_ubuntu(server, focal_suites([package]))


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
    serve(mirror_server, ddeb)
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
    serve(mirror_server, ddeb)
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
    serve(mirror_server, AptPackage.from_deb(path))
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
