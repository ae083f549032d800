"""`btfhub render`: README tables and index.json from a real hub in tmp_path.

The hub is built the way a contributor would: manifests in catalog/, BTF
tarballs in archive/, a README with markers and a hand-written index.json
holding discovery state. Everything goes through `generator.cli.main`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from generator.cli import main
from generator.errors import BtfhubError
from generator.fsutil import dump_json
from generator.index import build_index
from generator.model import (
    ArchiveEntry,
    Catalog,
    Column,
    Distribution,
    Release,
    ReleaseArch,
)
from generator.render import BEGIN_MARKER, END_MARKER, render_readme, render_tables
from generator.state import HubState, load_hub_state

HEADER = "# yaml-language-server: $schema=../schemas/manifest.schema.json\n"

DEMO = (
    HEADER
    + """\
title: Demo Linux
archive_dir: demo
url: https://example.org/demo
directory: "1"
architectures: [x86_64, arm64]
columns:
  - {header: Demo, field: name}
  - {header: Release Date, field: release_date}
  - {header: Kernel, field: kernel}
  - {header: BPF, field: bpf}
  - {header: BTF, field: btf}
  - {header: HUB, field: hub}
note: |
  **Note**: the demo note | with a pipe.
repositories:
  - id: demo-debug
    kind: rpm-md
    url: https://example.org/debug/{arch}/
    packages: [kernel-debuginfo]
releases:
  - name: "1.0"
    release_date: "2020-01-02"
    kernel: "5.4.0-10"
    bpf: true
    btf: false
    hub: true
    sources: &debug
      - repository: demo-debug
        paths: [""]
  - name: "1.1"
    release_date: "2020-06-02"
    kernel: "5.4.0-20"
    bpf: true
    btf: false
    hub: true
    sources: *debug
  - name: "1.2"
    release_date: "2020-12-02"
    kernel: "5.4.0-30"
    bpf: true
    btf: false
    hub: true
    sources: *debug
  - name: "2.0"
    directory: "2"
    release_date: null
    kernel: "5.10.0"
    bpf: true
    btf: true
    hub: false
  - name: "2.1"
    directory: "2"
    release_date: "2021-06-02"
    kernel: "5.11.0"
    bpf: null
    btf: null
    hub: null
future: {bpf: true, btf: true, hub: false, placeholder: "-"}
"""
)

README_BEFORE = "# My hub  \n\nSome prose, with trailing spaces   and ü.\r\n\n"
README_AFTER = "\n\n## After\n\nMore prose.\n\n\n"
README = f"{README_BEFORE}{BEGIN_MARKER}\nstale text\n{END_MARKER}{README_AFTER}"


def _package(uname: str) -> dict[str, Any]:
    name = "kernel-debuginfo"
    return {
        "name": name,
        "version": uname.removesuffix(".x86_64"),
        "repository": "demo-debug",
        "filename": f"Packages/{name}-{uname}.rpm",
        "size": 1000 + len(uname),
        "sha256": hashlib.sha256(uname.encode()).hexdigest(),
    }


def _kernel(uname: str, state: str = "missing", reason: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"state": state, "package": _package(uname)}
    if reason is not None:
        entry["reason"] = reason
    return entry


def _arch(kernels: dict[str, Any], discovered: bool = True) -> dict[str, Any]:
    return {"discovered": discovered, "kernels": kernels}


# Hub state as an earlier sync would have left it (only the parts
# load_hub_state reads; render rewrites the rest).
DISCOVERY_INDEX: dict[str, Any] = {
    "schema_version": 1,
    "distributions": {
        "demo": {
            "releases": {
                # Y: one archived, one shipping its own BTF; arm64 discovered empty.
                "1.0": {
                    "architectures": {
                        "x86_64": _arch(
                            {
                                "5.4.0-10.1.x86_64": _kernel("5.4.0-10.1.x86_64", "archived"),
                                "5.4.0-10.2.x86_64": _kernel("5.4.0-10.2.x86_64", "ships-btf"),
                            }
                        ),
                        "arm64": _arch({}),
                    }
                },
                # 3/5: two archived, one ships BTF, one failed, one missing.
                "1.1": {
                    "architectures": {
                        "x86_64": _arch(
                            {
                                "5.4.0-20.1.x86_64": _kernel("5.4.0-20.1.x86_64", "archived"),
                                # Archived in the state but the file is gone: missing now.
                                "5.4.0-20.2.x86_64": _kernel("5.4.0-20.2.x86_64", "archived"),
                                "5.4.0-20.3.x86_64": _kernel("5.4.0-20.3.x86_64", "ships-btf"),
                                "5.4.0-20.4.x86_64": _kernel(
                                    "5.4.0-20.4.x86_64", "failed", "pahole exited with 1"
                                ),
                                # Failed earlier but its file exists now: archived.
                                "5.4.0-20.5.x86_64": _kernel(
                                    "5.4.0-20.5.x86_64", "failed", "timeout"
                                ),
                            }
                        ),
                    }
                },
            }
        }
    },
}

ARCHIVED = (
    "archive/demo/1/x86_64/5.4.0-10.1.x86_64.btf.tar.xz",
    "archive/demo/1/x86_64/5.4.0-20.1.x86_64.btf.tar.xz",
    "archive/demo/1/x86_64/5.4.0-20.5.x86_64.btf.tar.xz",
    # Dropped from upstream pools: discovery does not list it.
    "archive/demo/1/arm64/5.4.0-10.0.aarch64.btf.tar.xz",
    # Matches no release (no release lives in directory 9).
    "archive/demo/9/x86_64/6.0.0-1.x86_64.btf.tar.xz",
)


def btf_tarball(uname: str) -> bytes:
    """A small tar.xz holding <uname>.btf with a raw BTF header, as the archive has."""
    btf = bytes.fromhex("9feb0100") + b"\x18\x00\x00\x00" + bytes(16) + uname.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        info = tarfile.TarInfo(f"{uname}.btf")
        info.size = len(btf)
        info.mode = 0o444
        tar.addfile(info, io.BytesIO(btf))
    return buf.getvalue()


def make_hub(root: Path, manifests: dict[str, str] | None = None) -> Path:
    (root / "catalog").mkdir(parents=True)
    for name, text in (manifests or {"demo": DEMO}).items():
        (root / "catalog" / f"{name}.yaml").write_text(text, encoding="utf-8")
    (root / "README.md").write_bytes(README.encode())
    (root / "index.json").write_text(json.dumps(DISCOVERY_INDEX), encoding="utf-8")
    for rel in ARCHIVED:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(btf_tarball(path.name.removesuffix(".btf.tar.xz")))
    return root


def render(root: Path, *extra: str) -> int:
    return main(["render", "--root", str(root), *extra])


def rows(readme: str, title: str) -> dict[str, list[str]]:
    """The rows of one table of a rendered README, by first cell."""
    section = readme.split(f"### [{title}]", 1)[1].split("\n### ", 1)[0]
    out = {}
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("| -"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            out[cells[0]] = cells
    return out


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    return make_hub(tmp_path / "hub")


def test_render_twice_gives_identical_bytes_and_check_passes(
    hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(hub) == 0
    assert "wrote README.md" in capsys.readouterr().out
    first = ((hub / "README.md").read_bytes(), (hub / "index.json").read_bytes())
    assert render(hub) == 0
    assert "already up to date" in capsys.readouterr().out
    assert ((hub / "README.md").read_bytes(), (hub / "index.json").read_bytes()) == first
    assert render(hub, "--check") == 0
    assert "up to date" in capsys.readouterr().out


def test_check_reports_a_manifest_change_with_a_diff_and_writes_nothing(
    hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(hub) == 0
    manifest = hub / "catalog" / "demo.yaml"
    manifest.write_text(manifest.read_text().replace("2020-06-02", "2020-07-09"))
    before = ((hub / "README.md").read_bytes(), (hub / "index.json").read_bytes())
    capsys.readouterr()
    assert render(hub, "--check") == 1
    out = capsys.readouterr().out
    added = [line for line in out.splitlines() if line.startswith("+") and "2020-07-09" in line]
    assert any("| 1.1 " in line for line in added), out  # the README row
    assert any('"release_date": "2020-07-09"' in line for line in added), out  # index.json
    assert "--- a/README.md" in out and "--- a/index.json" in out
    assert "stale: README.md, index.json" in out
    assert ((hub / "README.md").read_bytes(), (hub / "index.json").read_bytes()) == before
    assert render(hub) == 0
    assert render(hub, "--check") == 0


def test_check_reports_a_kernel_change_in_the_readme(
    hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(hub) == 0
    manifest = hub / "catalog" / "demo.yaml"
    manifest.write_text(manifest.read_text().replace('kernel: "5.10.0"', 'kernel: "5.10.1"'))
    capsys.readouterr()
    assert render(hub, "--check") == 1
    assert re.search(r"^\+\| 2\.0 .*\| 5\.10\.1 ", capsys.readouterr().out, re.M)


def test_text_outside_the_markers_is_kept_byte_for_byte(hub: Path) -> None:
    assert render(hub) == 0
    data = (hub / "README.md").read_bytes()
    before, after = README_BEFORE.encode(), README_AFTER.encode()
    assert data.startswith(before + BEGIN_MARKER.encode() + b"\n")
    assert data.endswith(END_MARKER.encode() + after)
    assert b"stale text" not in data
    assert b"\r\n" in data  # the CRLF in the prose survived


def test_hub_column_and_index_statuses(hub: Path) -> None:
    assert render(hub) == 0
    readme = (hub / "README.md").read_text()
    table = rows(readme, "Demo Linux")
    hub_col = table["Demo"].index("HUB")
    assert table["1.0"][hub_col] == "Y"
    assert table["1.1"][hub_col] == "3/5"
    assert table["1.2"][hub_col] == "pending"
    assert table["2.0"][hub_col] == "-"
    assert table["2.1"][hub_col] == ""
    assert table["..."] == ["...", "-", "-", "Y", "Y", "-"]
    assert table["2.0"] == ["2.0", "-", "5.10.0", "Y", "Y", "-"]  # null date -> "-"
    assert table["2.1"][3:5] == ["", ""]  # unknown flags stay blank
    assert "> **Note**: the demo note | with a pipe." in readme
    assert "\\|" not in readme.split("> **Note**")[1]  # only table cells escape pipes

    index = json.loads((hub / "index.json").read_text())
    releases = index["distributions"]["demo"]["releases"]
    assert {r: releases[r]["hub"] for r in releases} == {
        "1.0": "Y",
        "1.1": "3/5",
        "1.2": "pending",
        "2.0": "-",
        "2.1": "",
    }
    kernels = releases["1.1"]["architectures"]["x86_64"]["kernels"]
    states = {u: k["state"] for u, k in kernels.items()}
    assert states == {
        "5.4.0-20.1.x86_64": "archived",
        "5.4.0-20.2.x86_64": "missing",
        "5.4.0-20.3.x86_64": "ships-btf",
        "5.4.0-20.4.x86_64": "failed",
        "5.4.0-20.5.x86_64": "archived",
    }
    assert kernels["5.4.0-20.4.x86_64"]["reason"] == "pahole exited with 1"
    assert "reason" not in kernels["5.4.0-20.5.x86_64"]
    assert kernels["5.4.0-20.4.x86_64"]["package"] == _package("5.4.0-20.4.x86_64")
    assert releases["1.2"]["architectures"]["x86_64"] == {"discovered": False, "kernels": {}}


def test_archive_files_are_listed_with_their_size_and_sha256(hub: Path) -> None:
    assert render(hub) == 0
    index = json.loads((hub / "index.json").read_text())
    releases = index["distributions"]["demo"]["releases"]
    seen = {}
    for release in releases.values():
        for arch in release["architectures"].values():
            for kernel in arch["kernels"].values():
                if kernel["state"] == "archived":
                    seen[kernel["path"]] = kernel
    for entry in index["unassigned"]:
        seen[entry["path"]] = entry
    assert sorted(seen) == sorted(ARCHIVED)  # nothing dropped
    for rel, entry in seen.items():
        data = (hub / rel).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_archive_only_kernels_go_to_the_matching_release_or_unassigned(
    hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(hub) == 0
    assert "archive/demo/9/x86_64/6.0.0-1.x86_64.btf.tar.xz belongs to no release" in (
        capsys.readouterr().err
    )
    index = json.loads((hub / "index.json").read_text())
    arm64 = index["distributions"]["demo"]["releases"]["1.0"]["architectures"]["arm64"]
    assert arm64["discovered"] is True
    only = arm64["kernels"]["5.4.0-10.0.aarch64"]
    assert only["state"] == "archived" and "package" not in only
    assert [u["path"] for u in index["unassigned"]] == [
        "archive/demo/9/x86_64/6.0.0-1.x86_64.btf.tar.xz"
    ]


DEMO_11 = ReleaseArch("demo", "1.1", "x86_64")


def test_rendered_index_round_trips_as_hub_state(hub: Path) -> None:
    written = load_hub_state(hub)
    assert render(hub) == 0
    reread = load_hub_state(hub)
    # Archived kernels lose an old failure (the file wins); all else survives.
    assert set(reread.lists) == set(written.lists)
    assert reread.lists[DEMO_11]["5.4.0-20.4.x86_64"].outcome == (
        written.lists[DEMO_11]["5.4.0-20.4.x86_64"].outcome
    )
    assert reread.lists[DEMO_11]["5.4.0-20.5.x86_64"].outcome is None
    assert "5.4.0-10.0.aarch64" not in reread.lists[ReleaseArch("demo", "1.0", "arm64")]


@pytest.mark.parametrize(
    "readme, message",
    [
        ("# no markers\n", "is missing"),
        (f"{BEGIN_MARKER}\n{END_MARKER}\n{BEGIN_MARKER}\n", "appears 2 times"),
        (f"{END_MARKER}\n{BEGIN_MARKER}\n", "comes before"),
    ],
)
def test_bad_markers_fail_cleanly_and_write_nothing(
    hub: Path, readme: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (hub / "README.md").write_text(readme)
    index_before = (hub / "index.json").read_bytes()
    assert render(hub) == 1
    assert message in capsys.readouterr().err
    assert (hub / "README.md").read_text() == readme
    assert (hub / "index.json").read_bytes() == index_before  # all or nothing


def test_a_stray_archive_file_fails_the_render(
    hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = hub / "archive" / "demo" / "1" / "amd64" / "5.4.0-1.btf.tar.xz"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    assert render(hub) == 1
    assert "archive/demo/1/amd64: unknown architecture" in capsys.readouterr().err


def test_missing_index_json_renders_everything_pending(tmp_path: Path) -> None:
    root = make_hub(tmp_path / "hub")
    (root / "index.json").unlink()
    assert render(root) == 0
    table = rows((root / "README.md").read_text(), "Demo Linux")
    # Archived files alone make the releases known: 1.0 has three, 1.1 two.
    assert table["1.0"][-1] == "Y"
    assert table["1.1"][-1] == "Y"
    assert table["1.2"][-1] == "pending"


def test_render_readme_replaces_only_between_markers() -> None:
    old = f"a\n{BEGIN_MARKER}old{END_MARKER}\nb"
    assert render_readme(old, "T\n") == f"a\n{BEGIN_MARKER}\nT\n\n{END_MARKER}\nb"
    with pytest.raises(BtfhubError, match="missing"):
        render_readme("a\n", "T\n")


def _release(
    distro: str, rid: str, directory: str, series: tuple[str, ...], hub: bool | None = True
) -> Release:
    return Release(
        distro=distro,
        id=rid,
        name=rid,
        directory=directory,
        kernel=series[0],
        series=series,
        bpf=True,
        btf=False,
        hub=hub,
        architectures=("x86_64",),
        sources=(),
    )


def _entry(distro_dir: str, release_dir: str, uname: str) -> ArchiveEntry:
    return ArchiveEntry(
        distro_dir,
        release_dir,
        "x86_64",
        uname,
        f"archive/{distro_dir}/{release_dir}/x86_64/{uname}.btf.tar.xz",
        10,
        "0" * 64,
        "1" * 40,
    )


def _distro(did: str, archive_dir: str, *releases: Release) -> Distribution:
    return Distribution(
        id=did,
        title=did.title(),
        archive_dir=archive_dir,
        columns=(Column("Name", "name"), Column("HUB", "hub")),
        releases=releases,
        repositories=(),
    )


def test_archive_only_files_follow_the_most_specific_series_across_shared_dirs() -> None:
    # Ubuntu-style: base and HWE kernels share a directory; CentOS-style:
    # two manifests share archive_dir "centos".
    catalog = Catalog(
        (
            _distro(
                "ubuntu",
                "ubuntu",
                # The most specific series comes first and last, so that
                # neither manifest order nor slot order decides.
                _release("ubuntu", "focal-hwe-5.11", "20.04", ("5.11.0-40",)),
                _release("ubuntu", "focal", "20.04", ("5.4.0",)),
                _release("ubuntu", "focal-hwe", "20.04", ("5.8.0", "5.11.0")),
                _release("ubuntu", "focal-hwe-5.11.0-41", "20.04", ("5.11.0-41",)),
            ),
            _distro("centos7", "centos", _release("centos7", "7.9", "7", ("3.10.0-1160",))),
            _distro("centos8", "centos", _release("centos8", "8.4", "8", ("4.18.0-305",))),
            _distro(
                "stream",
                "stream",
                _release("stream", "8.3", "8", ("4.18.0-240",)),
                _release("stream", "8.4", "8", ("4.18.0-240",)),
            ),
        )
    )
    archive = [
        _entry("ubuntu", "20.04", "5.4.0-42-generic"),
        _entry("ubuntu", "20.04", "5.8.0-63-generic"),
        _entry("ubuntu", "20.04", "5.11.0-40-generic"),  # the longer series wins
        _entry("ubuntu", "20.04", "5.11.0-41-generic"),
        _entry("ubuntu", "20.04", "5.11.0-42-generic"),
        _entry("ubuntu", "20.04", "5.40.0-1-generic"),  # 5.4.0 must not match 5.40.0
        _entry("centos", "7", "3.10.0-1160.el7.x86_64"),
        _entry("centos", "8", "4.18.0-305.el8.x86_64"),
        _entry("centos", "8", "4.18.0-3050.el8.x86_64"),  # not series 4.18.0-305
        _entry("stream", "8", "4.18.0-240.el8.x86_64"),  # two releases, one kernel
    ]
    index = build_index(catalog, HubState(), archive)

    def unames(distro: str, release: str) -> list[str]:
        r = index["distributions"][distro]["releases"][release]
        return sorted(r["architectures"]["x86_64"]["kernels"])

    assert unames("ubuntu", "focal") == ["5.4.0-42-generic"]
    assert unames("ubuntu", "focal-hwe") == ["5.11.0-42-generic", "5.8.0-63-generic"]
    assert unames("ubuntu", "focal-hwe-5.11") == ["5.11.0-40-generic"]
    assert unames("ubuntu", "focal-hwe-5.11.0-41") == ["5.11.0-41-generic"]
    assert unames("centos7", "7.9") == ["3.10.0-1160.el7.x86_64"]
    assert unames("centos8", "8.4") == ["4.18.0-305.el8.x86_64"]
    assert unames("stream", "8.3") == unames("stream", "8.4") == ["4.18.0-240.el8.x86_64"]
    assert [u["path"] for u in index["unassigned"]] == [
        "archive/centos/8/x86_64/4.18.0-3050.el8.x86_64.btf.tar.xz",
        "archive/ubuntu/20.04/x86_64/5.40.0-1-generic.btf.tar.xz",
    ]


def test_zero_kernels_discovered_is_not_a_yes() -> None:
    catalog = Catalog((_distro("d", "d", _release("d", "r", "1", ("5.4.0",))),))
    discovery = HubState()
    discovery.record_listing(ReleaseArch("d", "r", "x86_64"), [])
    index = build_index(catalog, discovery, [])
    assert index["distributions"]["d"]["releases"]["r"]["hub"] == "0/0"
    assert "| r    | 0/0 |" in render_tables(catalog, index)


def test_tables_follow_the_public_hub_order_then_titles() -> None:
    names = ["zeta", "ubuntu", "alpha", "centos7", "fedora"]
    catalog = Catalog(
        tuple(_distro(n, n, _release(n, "r", "1", ("5.4.0",), hub=False)) for n in names)
    )
    text = render_tables(catalog, build_index(catalog, HubState(), []))
    headings = re.findall(r"^### (.+)$", text, re.M)
    assert headings == ["Centos7", "Fedora", "Ubuntu", "Alpha", "Zeta"]


def test_dump_json_writes_exactly_the_house_json_form(hub: Path) -> None:
    """orjson's output is json.dumps's house form, byte for byte (what index.json was)."""

    def house(value: Any) -> bytes:
        return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()

    assert render(hub) == 0
    index = json.loads((hub / "index.json").read_text())
    assert dump_json(index) == house(index) == (hub / "index.json").read_bytes()
    odd: dict[str, Any] = {
        "b": [],
        "a": {},
        'é"\\\n\u2028\x00\x1f\x7f/': [None, True, False, 0, -12, "ü", [{}], {"z": [1]}],
        "\U0001f600": {"y": 2**63 - 1, "x": "\t\r\b\f"},
    }
    assert dump_json(odd) == house(odd)
