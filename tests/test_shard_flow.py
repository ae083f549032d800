"""The sharded workflow end to end gives the bytes one unsharded reconcile gives.

The same hub and mirror, run two ways, each step in its own clone as each
GitHub Actions job has its own checkout:

  U: btfhub reconcile
  P: btfhub plan --json --shards 3
  S1..S3: btfhub reconcile --shard I/3 --output outI
  M: btfhub merge out1 out2 out3 --outcomes F; btfhub sync --skip-build --outcomes F --commit

M's archive, README.md and index.json must equal U's byte for byte, and
M's commit must hold them. One kernel fails to build and one ships its own
BTF, so outcomes travel through the shard manifests and the outcomes file too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.cli import main
from tests.kit.hub import archive_files, mirror_args
from tests.kit.hubrepo import (
    HOSTS,
    archive_file,
    clone,
    committed,
    git,
    make_remote,
    publish,
)
from tests.kit.mirror import FaultyMirror

GOOD = ["5.4.0-1-generic", "5.4.0-2-generic", "5.15.0-1-generic", "4.19.0-1-cloud-amd64"]
BAD = ["5.4.0-3-generic"]
SHIPS_BTF = ["5.15.0-2-generic"]


def test_sharded_run_equals_one_reconcile(
    tmp_path: Path,
    mirror_server: FaultyMirror,
    fixture_elf: Path,
    fixture_elf_with_btf: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shipping = (fixture_elf_with_btf, SHIPS_BTF)
    publish(mirror_server.directory, tmp_path, fixture_elf, GOOD, bad=BAD, shipping=shipping)
    remote = make_remote(tmp_path)
    mirrors = mirror_args(mirror_server, HOSTS)

    def btfhub(command: str, root: Path, *extra: str) -> int:
        return main([command, "--root", str(root), *extra])

    unsharded = clone(remote, "u")
    assert btfhub("reconcile", unsharded, *mirrors) == 1  # the bad kernel failed
    assert len(archive_files(unsharded)) == len(GOOD)
    capsys.readouterr()

    planner = clone(remote, "p")
    assert btfhub("plan", planner, *mirrors, "--json", "--shards", "3") == 0
    plan = json.loads(capsys.readouterr().out)
    labels = plan["matrix"]["shard"]
    assert labels == ["1/3", "2/3", "3/3"]  # every shard has work
    planned = {k["uname"] for s in plan["shards"] for k in s["kernels"]}
    assert planned == set(GOOD + BAD + SHIPS_BTF)

    # The plan job's output is the build jobs' input (an artifact in CI).
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))

    outputs = []
    codes = []
    mirror_server.clear_log()
    for label in labels:
        i = label.split("/")[0]
        shard_hub = clone(remote, f"s{i}")
        out = tmp_path / f"out{i}"
        codes.append(
            btfhub(
                "reconcile",
                shard_hub,
                *mirrors,
                "--shard",
                label,
                "--output",
                str(out),
                "--plan",
                str(plan_file),
            )
        )
        outputs.append(out)
        # A build job writes into its output only.
        assert not (shard_hub / "archive").exists() and not (shard_hub / "index.json").exists()
    assert sorted(codes) == [0, 0, 1]  # the shard with the bad kernel fails
    # Working from the plan file, the build jobs asked upstream for packages only.
    fetched = [r.path for r in mirror_server.log]
    assert fetched and all(path.endswith(".deb") for path in fetched), fetched

    merged = clone(remote, "m")
    outcomes = tmp_path / "outcomes.json"
    assert btfhub("merge", merged, *map(str, outputs), "--outcomes", str(outcomes)) == 0
    handed_on = json.loads(outcomes.read_text())
    states = {o["uname"]: o["state"] for o in handed_on}
    assert states == {BAD[0]: "failed", SHIPS_BTF[0]: "ships-btf"} | dict.fromkeys(GOOD, "archived")
    # Built files come with their provenance, which sync records in index.json.
    assert all(("provenance" in o) == (o["state"] == "archived") for o in handed_on)
    mirror_server.clear_log()
    code = btfhub("sync", merged, *mirrors, "--skip-build", "--outcomes", str(outcomes), "--commit")
    assert code == 1  # the failure is reported, and committed
    # The publish step discovers (its listings go into index.json) but builds nothing.
    paths = [r.path for r in mirror_server.log]
    assert "/ubuntu/dists/focal/InRelease" in paths
    assert not [p for p in paths if p.endswith(".deb")]

    assert archive_files(merged) == archive_files(unsharded)
    for name in ("README.md", "index.json"):
        assert (merged / name).read_bytes() == (unsharded / name).read_bytes(), name
    index = json.loads((merged / "index.json").read_text())
    focal = index["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"]
    assert focal["kernels"][BAD[0]]["state"] == "failed"
    jammy = index["distributions"]["ubuntu"]["releases"]["jammy"]["architectures"]["x86_64"]
    assert jammy["kernels"][SHIPS_BTF[0]]["state"] == "ships-btf"

    # The commit holds exactly those files, as they are on disk.
    assert committed(merged) == sorted(
        [f"A\t{archive_file(u)}" for u in GOOD] + ["M\tREADME.md", "A\tindex.json"]
    )
    assert git(merged, "status", "--porcelain") == ""
    message = git(merged, "log", "-1", "--format=%B")
    assert message.startswith("btfhub: add 4 BTF files (1 failed)\n")
    assert f"focal/x86_64 {BAD[0]}: package holds no vmlinux" in message
