"""The consumer side of a hub built by `btfhub reconcile` from local copies of the upstreams.

A real .ddeb (Ubuntu's layout) and a real .rpm (CentOS's) are served from
127.0.0.1, reconcile builds their BTF into the archive, and then the tools'
side runs against that hub over HTTP: lookup with the machines' real
os-release files, fetch, min-core of a clang-built CO-RE object, and a
libbpf loader relocating the object against the fetched and minimized files.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from generator.commands import common
from generator.demokit.bpftool import dump_c
from generator.demokit.elf import STRUCT_NAMES
from generator.upstream.http import UpstreamClient
from tests.kit.bpfobj import TASK_PROGRAM, build_loader, compile_bpf, load_with_btf
from tests.kit.consumer import OS_RELEASES
from tests.kit.hub import (
    btfhub,
    reconciled_hub,
)
from tests.kit.mirror import FaultyMirror

K42 = "5.4.0-42-generic"
K99 = "5.4.0-99-generic"
C7 = "3.10.0-1160.el7.x86_64"


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(common, "UpstreamClient", functools.partial(UpstreamClient, backoff=0.0))
    monkeypatch.delenv("BTFHUB_MIRRORS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def test_tools_use_a_reconciled_hub(
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    tmp_path: Path,
    fixture_elf: Path,
) -> None:
    hub = reconciled_hub(capsys, mirror_server, fixture_elf, tmp_path, [K42], K99, C7)

    with FaultyMirror(hub) as site:
        index = ["--index", f"{site.url}index.json"]
        focal = ["--os-release", str(OS_RELEASES / "ubuntu-20.04"), "--arch", "x86_64"]
        centos = ["--os-release", str(OS_RELEASES / "centos-7"), "--arch", "x86_64"]

        run = btfhub(capsys, tmp_path, "lookup", *index, *focal, "--kernel", K42, "--json")
        assert run.code == 0, run.err
        found = json.loads(run.out)
        assert found["url"] == f"{site.url}archive/ubuntu/20.04/x86_64/{K42}.btf.tar.xz"
        assert found["catalog"] == {"distribution": "ubuntu", "release": "focal"}
        run = btfhub(capsys, tmp_path, "lookup", *index, *focal, "--kernel", K99)
        assert run.code == 1 and "the hub failed to build it: package holds no vmlinux" in run.out

        fetched = tmp_path / "vmlinux.btf"
        run = btfhub(capsys, tmp_path, "fetch", *index, *centos, "--kernel", C7, "--output",
                     str(fetched))  # fmt: skip
        assert run.code == 0, run.err
        assert all(f"struct {name} {{" in dump_c(fetched) for name in STRUCT_NAMES)

        obj = compile_bpf(tmp_path / "bpf", "task", TASK_PROGRAM)
        out = tmp_path / "min"
        run = btfhub(capsys, tmp_path, "min-core", *index, "--bpf", str(obj), "--output",
                     str(out), "--pack", str(tmp_path / "btfs.tar.gz"))  # fmt: skip
        assert run.code == 0, run.err
        assert run.out.splitlines()[2].startswith("total: 2 kernel(s), ")
        minimized = out / f"centos/7/x86_64/{C7}.btf"
        assert minimized.stat().st_size < fetched.stat().st_size

    loader = build_loader(tmp_path / "loader")
    full = load_with_btf(loader, obj, fetched)
    if full.code == 77:
        pytest.skip("no BPF privilege: libbpf 1.1 relocates only inside a privileged load")
    small = load_with_btf(loader, obj, minimized)
    assert (full.code, small.code) == (0, 0), full.stderr + small.stderr
    assert full.relocations and small.relocations == full.relocations
