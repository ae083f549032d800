"""min-core and the files' real consumers: clang-built CO-RE objects, bpftool, libbpf.

The objects are compiled by clang against the fixture ELF's types; the hub's
files are that ELF's DWARF encoded by pahole. A C program linked with
Debian's libbpf opens an object with btf_custom_path set to a fetched file
and to a minimized one and CO-RE-relocates it (see tests/kit/bpfobj.py for
why that takes the BPF privilege with libbpf 1.1).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator import api
from generator.btf.encode import encode_btf
from generator.consumer.bundle import BundleError, pack
from generator.demokit.bpftool import dump_c
from tests.kit.bpfobj import (
    LIST_PROGRAM,
    PLAIN_PROGRAM,
    TASK_PROGRAM,
    LoadResult,
    build_loader,
    compile_bpf,
    load_with_btf,
)
from tests.kit.consumer import FIXTURE_BTF, build_consumer_hub, copy_consumer_hub
from tests.kit.hub import btfhub
from tests.kit.mirror import FaultyMirror

RHEL_KERNEL = "4.18.0-305.el8.x86_64"
RHEL_MIN = f"rhel/8/x86_64/{RHEL_KERNEL}.btf"
SELECT = ["--select", "distro=rhel", "--select", "distro=ubuntu,kernel=5.*-generic"]
EXPECTED = [
    RHEL_MIN,
    "ubuntu/18.04/arm64/5.4.0-150-generic.btf",
    "ubuntu/20.04/x86_64/5.4.0-42-generic.btf",
    "ubuntu/20.04/x86_64/5.8.0-63-generic.btf",
]


@dataclass(frozen=True)
class Bpf:
    task: Path  # CO-RE reads of btfhub_fixture_task
    list: Path  # CO-RE reads of btfhub_fixture_list only
    plain: Path  # no -g: no .BTF.ext
    loader: Path


@pytest.fixture(scope="module")
def bpf(tmp_path_factory: pytest.TempPathFactory) -> Bpf:
    work = tmp_path_factory.mktemp("bpf")
    return Bpf(
        compile_bpf(work, "task", TASK_PROGRAM),
        compile_bpf(work, "list", LIST_PROGRAM),
        compile_bpf(work, "plain", PLAIN_PROGRAM, debug=False),
        build_loader(work),
    )


@pytest.fixture(scope="module")
def fixture_btf(consumer_template: Path) -> Path:
    return consumer_template / FIXTURE_BTF


@pytest.fixture
def hub(tmp_path: Path, consumer_template: Path) -> Path:
    return copy_consumer_hub(consumer_template, tmp_path)


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache"


@pytest.fixture
def served(hub: Path) -> Iterator[FaultyMirror]:
    with FaultyMirror(hub) as server:
        yield server


def outputs(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.btf"))


def member_offsets(btf: Path, struct: str) -> dict[str, int]:
    """Member -> byte offset, as pahole reads them from the BTF file."""
    text = subprocess.run(
        ["pahole", "-C", struct, str(btf)], capture_output=True, text=True, check=True
    ).stdout
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"\b(\w+)(?:\[\d+\])?;\s+/\*\s+(\d+)", text)
    }


def relocated(bpf: Bpf, obj: Path, btf: Path) -> LoadResult:
    result = load_with_btf(bpf.loader, obj, btf)
    if result.code == 77:
        pytest.skip("no BPF privilege: libbpf 1.1 relocates only inside a privileged load")
    return result


def test_min_core_keeps_only_what_the_program_uses(
    capsys: pytest.CaptureFixture[str], hub: Path, bpf: Bpf, tmp_path: Path, fixture_btf: Path
) -> None:
    out = tmp_path / "min"
    run = btfhub(capsys, hub, "min-core", "--bpf", str(bpf.task), "--output", str(out),
                 *SELECT, "--jobs", "2")  # fmt: skip
    assert run.code == 0, run.err
    assert outputs(out) == EXPECTED
    full_size = fixture_btf.stat().st_size
    small = out / RHEL_MIN
    assert 0 < small.stat().st_size < full_size / 2
    c_dump = dump_c(small)
    task = c_dump[c_dump.index("struct btfhub_fixture_task {") :].split("};")[0]
    assert re.search(r"\bint pid;", task) and "next;" in task and "value;" in task
    for unused in ("comm", "state", "handler", "flags"):
        assert unused not in task, unused
    assert "long int as_long;" in c_dump and "as_double" not in c_dump
    for absent in (
        "enum btfhub_fixture_state",
        "btfhub_fixture_handler_t",
        "btfhub_fixture_list {",
    ):
        assert absent not in c_dump, absent
    # The size report: one line per kernel, full vs minimized, then the total.
    lines = run.out.splitlines()
    size = small.stat().st_size
    assert f"{RHEL_MIN}: {full_size:,} -> {size:,} bytes ({100 * size / full_size:.3g}%)" in lines
    assert lines[len(EXPECTED)] == (
        f"total: 4 kernel(s), {4 * full_size:,} -> {4 * size:,} bytes "
        f"({100 * size / full_size:.3g}%), 0 failed"
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["objects"] == [
        {"name": "task.bpf.o", "sha256": hashlib.sha256(bpf.task.read_bytes()).hexdigest()}
    ]
    entry = manifest["kernels"][RHEL_MIN]
    assert entry["sha256"] == hashlib.sha256(small.read_bytes()).hexdigest()
    assert entry["source"] == f"archive/{RHEL_MIN}.tar.xz"
    assert (
        entry["source_sha256"] == hashlib.sha256((hub / entry["source"]).read_bytes()).hexdigest()
    )
    assert (entry["full_size"], entry["size"]) == (full_size, size)
    assert manifest["totals"] == {
        "failed": 0,
        "full_size": 4 * full_size,
        "kernels": 4,
        "size": 4 * size,
    }
    assert manifest["failures"] == {} and manifest["rejected_objects"] == []


def test_min_core_rerun_does_no_work(
    capsys: pytest.CaptureFixture[str],
    hub: Path,
    served: FaultyMirror,
    bpf: Bpf,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "min"
    argv = ["min-core", "--bpf", str(bpf.task), "--output", str(out), *SELECT,
            "--index", str(hub / "index.json"), "--base-url", served.url]  # fmt: skip
    assert btfhub(capsys, hub, *argv).code == 0
    downloads = len(served.log)
    assert downloads == 4
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    # No bpftool on PATH: a rerun that called it would fail.
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    run = btfhub(capsys, hub, *argv)
    assert run.code == 0, run.err
    assert sum(line.endswith("(unchanged)") for line in run.out.splitlines()) == 4
    assert len(served.log) == downloads
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    # Another object is other work: it needs bpftool again.
    run = btfhub(capsys, hub, "min-core", "--bpf", str(bpf.list), "--output", str(out), *SELECT)
    assert run.code == 1 and "bpftool is not installed (run scripts/setup.sh)" in run.err


def test_min_core_reports_objects_without_btf_ext(
    capsys: pytest.CaptureFixture[str], hub: Path, bpf: Bpf, tmp_path: Path
) -> None:
    out = tmp_path / "min"
    run = btfhub(capsys, hub, "min-core", "--bpf", str(bpf.task), "--bpf", str(bpf.plain),
                 "--output", str(out), "--select", "distro=rhel")  # fmt: skip
    assert run.code == 1
    assert f"skipped {bpf.plain}: has no .BTF.ext section" in run.err
    assert outputs(out) == [RHEL_MIN]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [o["name"] for o in manifest["objects"]] == ["task.bpf.o"]
    assert manifest["rejected_objects"][0]["name"] == "plain.bpf.o"
    run = btfhub(capsys, hub, "min-core", "--bpf", str(bpf.plain), "--output", str(tmp_path / "x"))
    assert run.code == 2
    assert "no BPF object with CO-RE relocations" in run.err
    assert f"skipped {bpf.plain}: has no .BTF.ext section" in run.err


def test_min_core_fails_a_kernel_lacking_the_types(
    hub: Path, bpf: Bpf, tmp_path: Path, cache_home: Path
) -> None:
    # A kernel whose BTF holds none of the program's types: recorded, not fatal.
    other = tmp_path / "other.c"
    other.write_text("struct unrelated { int a; } g;\nint main(void) { return g.a; }\n")
    subprocess.run(["gcc", "-g", "-o", str(tmp_path / "other"), str(other)], check=True)
    encode_btf(tmp_path / "other", tmp_path / "other.btf")
    lone = build_consumer_hub(tmp_path / "lone", (tmp_path / "other.btf").read_bytes())
    report = api.min_core([bpf.task], tmp_path / "min", selectors=["distro=rhel"], root=lone)
    assert [k.reason for k in report.failures] == [
        "none of the objects' CO-RE types is in this kernel's BTF"
    ]
    manifest = json.loads((tmp_path / "min/manifest.json").read_text())
    assert list(manifest["failures"]) == [RHEL_MIN]


def test_libbpf_relocates_against_fetched_and_minimized_files(
    capsys: pytest.CaptureFixture[str], hub: Path, bpf: Bpf, tmp_path: Path
) -> None:
    fetched = tmp_path / "fetched.btf"
    run = btfhub(capsys, hub, "fetch", "--id", "rhel", "--version-id", "8.4", "--kernel",
                 RHEL_KERNEL, "--arch", "x86_64", "--output", str(fetched))  # fmt: skip
    assert run.code == 0, run.err
    out = tmp_path / "min"
    assert btfhub(capsys, hub, "min-core", "--bpf", str(bpf.task), "--bpf", str(bpf.list),
                  "--output", str(out), "--select", "distro=rhel").code == 0  # fmt: skip
    minimized = out / RHEL_MIN

    full = relocated(bpf, bpf.task, fetched)
    assert full.code == 0, full.stderr
    offsets = member_offsets(fetched, "btfhub_fixture_task")
    # The object's own layout is value, next, pid (0, 8, 16): every read moves.
    targets = {int(r.rsplit("-> ", 1)[1]) for r in full.relocations}
    assert targets == {offsets["pid"], offsets["next"], offsets["value"]}
    assert {offsets["pid"], offsets["next"], offsets["value"]} == {0, 24, 40}
    small = relocated(bpf, bpf.task, minimized)
    assert small.code == 0, small.stderr
    assert small.relocations == full.relocations
    assert relocated(bpf, bpf.list, minimized).code == 0

    # A BTF lacking the type: the list object's minimized file has no task struct.
    only_list = tmp_path / "list-only"
    assert btfhub(capsys, hub, "min-core", "--bpf", str(bpf.list), "--output",
                  str(only_list), "--select", "distro=rhel").code == 0  # fmt: skip
    missing = relocated(bpf, bpf.task, only_list / RHEL_MIN)
    assert missing.code == 1
    assert missing.relocations == ()
    assert missing.unresolved and all("no matching targets found" in u for u in missing.unresolved)


def test_pack_is_a_reproducible_ustar_bundle(
    capsys: pytest.CaptureFixture[str], hub: Path, bpf: Bpf, tmp_path: Path
) -> None:
    bundles = []
    for n in (1, 2):
        bundle = tmp_path / f"bundle{n}.tar.gz"
        run = btfhub(capsys, hub, "min-core", "--bpf", str(bpf.task), "--output",
                     str(tmp_path / f"min{n}"), *SELECT, "--pack", str(bundle))  # fmt: skip
        assert run.code == 0, run.err
        bundles.append(bundle.read_bytes())
    assert bundles[0] == bundles[1]
    assert bundles[0][4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    with tarfile.open(tmp_path / "bundle1.tar.gz", "r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == EXPECTED
        assert {(m.mode, m.mtime, m.uid, m.gid, m.uname) for m in members} == {
            (0o444, 0, 0, 0, "root")
        }
        data = tar.extractfile(members[0])
        assert data is not None
        assert data.read() == (tmp_path / "min1" / RHEL_MIN).read_bytes()
    raw = gzip.decompress(bundles[0])
    assert raw[257:263] == b"ustar\x00"  # POSIX ustar, not GNU
    dotted = tmp_path / "dotted.tar.gz"
    btfhub(capsys, hub, "min-core", "--bpf", str(bpf.task), "--output", str(tmp_path / "min1"),
           *SELECT, "--pack", str(dotted), "--dot-prefix")  # fmt: skip
    with tarfile.open(dotted, "r:gz") as tar:
        assert tar.getnames() == [f"./{n}" for n in EXPECTED]


def test_pack_refuses_names_over_the_ustar_name_field(tmp_path: Path) -> None:
    long_name = "ubuntu/20.04/x86_64/5.4.0-42-" + "x" * 70 + ".btf"
    (tmp_path / long_name).parent.mkdir(parents=True)
    (tmp_path / long_name).write_bytes(b"btf")
    with pytest.raises(BundleError, match="exceed the 100-byte ustar name field") as info:
        pack(tmp_path, [long_name], tmp_path / "b.tar.gz")
    assert f"{long_name} ({len(long_name)} bytes)" in str(info.value)
    assert not (tmp_path / "b.tar.gz").exists()


def test_manifest_matches_its_schema_and_a_damaged_one_is_not_trusted(
    capsys: pytest.CaptureFixture[str], hub: Path, bpf: Bpf, tmp_path: Path
) -> None:
    from generator import jsonschemas

    schema = jsonschemas.MIN_CORE_MANIFEST_SCHEMA
    out = tmp_path / "min"
    argv = ["min-core", "--bpf", str(bpf.task), "--output", str(out), "--select", "distro=rhel"]
    assert btfhub(capsys, hub, *argv).code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert jsonschemas.problems(manifest, schema, "manifest.json") == []
    manifest["kernels"][RHEL_MIN]["sha256"] = "not a digest"
    (out / "manifest.json").write_text(json.dumps(manifest))
    run = btfhub(capsys, hub, *argv)
    assert run.code == 0 and "(unchanged)" not in run.out
    rewritten = json.loads((out / "manifest.json").read_text())
    assert jsonschemas.problems(rewritten, schema, "manifest.json") == []
