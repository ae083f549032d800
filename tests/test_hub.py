"""The application layer called directly: collaborators passed in, reports out, nothing printed.

What the commands do with argparse, a program (or another command) does with
typed options: an UpstreamClient of its choosing, a Reporter writing where
it wants, a Selection and BuildOptions.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator import cli
from generator.catalog import load_catalog
from generator.hub.build import BuildOptions, default_jobs
from generator.hub.run import ShardJob, build_shard, plan_in_store, reconcile
from generator.model import KernelId, KernelState, Selection, ShardId
from generator.progress import Reporter
from generator.shards.manifest import read_shard_manifest
from generator.state import load_hub_state
from generator.trust import TrustPolicy
from generator.upstream.context import UpstreamContext
from generator.upstream.http import UpstreamClient
from generator.upstream.mirrors import Mirrors
from tests.kit.hub import build_ddeb, focal_suites, make_hub, mirror_pairs, write_ubuntu
from tests.kit.mirror import FaultyMirror

UNAME = "5.4.0-26-generic"
FOCAL = Selection(distro="ubuntu", release="focal", arch="x86_64")
KERNEL = KernelId("ubuntu", "focal", "x86_64", UNAME)
PATH = f"archive/ubuntu/20.04/x86_64/{UNAME}.btf.tar.xz"


@pytest.fixture
def upstream(
    tmp_path: Path, mirror_server: FaultyMirror, fixture_elf: Path
) -> Iterator[UpstreamContext]:
    """Upstream with one Focal kernel, and a client that reaches it through the mirror."""
    name = f"linux-image-unsigned-{UNAME}-dbgsym"
    ddeb = build_ddeb(tmp_path / "debs", name, "5.4.0-26.30", UNAME, fixture_elf)
    write_ubuntu(mirror_server, focal_suites([ddeb]))
    mirrors = Mirrors.parse(mirror_pairs(mirror_server))
    client = UpstreamClient(mirrors=mirrors, cache_dir=tmp_path / "cache", backoff=0.0)
    with UpstreamContext.of(client, TrustPolicy.from_sources()) as context:
        yield context


def test_plan_reconcile_and_a_shard_through_the_layer(
    tmp_path: Path, upstream: UpstreamContext, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = make_hub(tmp_path / "hub")
    catalog = load_catalog(hub)
    out, err = io.StringIO(), io.StringIO()
    reporter = Reporter(out, err)

    the_plan, store = plan_in_store(hub, catalog, upstream, FOCAL, force=False)
    assert store is None  # git: archive/
    assert [(k.id, k.state, k.archive_path) for k in the_plan.kernels] == [
        (KERNEL, KernelState.MISSING, PATH)
    ]

    shard = build_shard(
        hub, catalog, upstream, FOCAL, BuildOptions(), ShardJob(ShardId(1, 1), tmp_path / "out"),
        reporter,
    )  # fmt: skip
    assert [(o.kernel, o.state) for o in shard.outcomes] == [(KERNEL, KernelState.ARCHIVED)]
    shard_manifest = read_shard_manifest(tmp_path / "out")
    assert list(shard_manifest.files) == [PATH]
    # The built file's provenance travels with the shard, for sync to record.
    assert shard_manifest.outcomes == shard.outcomes
    assert shard.outcomes[0].provenance is not None
    assert shard.outcomes[0].provenance.file_sha256 == shard_manifest.files[PATH].sha256
    assert not (hub / "archive").exists()  # a shard writes only into its output

    report = reconcile(hub, catalog, upstream, FOCAL, BuildOptions(jobs=2), reporter)
    assert [(o.kernel, o.state) for o in report.outcomes] == [(KERNEL, KernelState.ARCHIVED)]
    assert not report.failed
    assert (hub / PATH).read_bytes() == (tmp_path / "out" / PATH).read_bytes()
    assert load_hub_state(hub).known(KERNEL.release_arch) is not None  # recorded in index.json

    # Progress went to the reporter's streams; nothing below the commands printed.
    assert f"built      {KERNEL.label}" in err.getvalue()
    assert capsys.readouterr() == ("", "")


def test_pahole_threads_share_the_cores_among_the_jobs() -> None:
    """--jobs N kernels at once split the cores: N pahole -j<all cores> would thrash."""
    cores = len(os.sched_getaffinity(0))
    assert BuildOptions(jobs=1).pahole_threads == cores
    assert BuildOptions(jobs=2).pahole_threads == max(1, cores // 2)
    assert BuildOptions(jobs=cores * 4).pahole_threads == 1


def test_builds_at_once_default_to_one_per_core_and_never_exceed_the_kernels() -> None:
    """No --jobs: one build per core (memory allowing); one kernel alone gets every core."""
    cores = len(os.sched_getaffinity(0))
    assert 1 <= default_jobs() <= cores
    assert BuildOptions().workers(100) == default_jobs()
    assert BuildOptions().workers(1) == 1
    assert BuildOptions(jobs=4).workers(3) == 3
    # build_all settles jobs to workers(): a lone kernel's pahole runs on every core.
    lone = dataclasses.replace(BuildOptions(), jobs=BuildOptions().workers(1))
    assert lone.pahole_threads == cores


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_jobs_must_be_a_whole_number_of_at_least_one(value: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser("reconcile").parse_args(["reconcile", "--jobs", value])
    assert exit_info.value.code == 2
    assert f"{value!r} is not a whole number of at least 1" in capsys.readouterr().err
