"""Ubuntu's shipped releases read Launchpad after ddebs, as a fallback source.

The shipped catalog (a copy of catalog/) runs against ddebs.ubuntu.com laid
out on a FaultyMirror and Launchpad's API answered by the stand-in
(tests/kit/launchpad.py), both reached through --mirror from the URLs
catalog/ubuntu.yaml names. The packages are real .ddebs around a gcc -g ELF,
encoded by the real pahole.

- a kernel ddebs no longer indexes is planned from Launchpad and built,
  its SHA-256 and size the API's; a kernel both list comes from ddebs;
- Launchpad down (connection refused, HTTP 500): the release is still
  planned and built from ddebs, the failure is a warning in plan, plan
  --json ("incomplete") and reconcile, the run exits 1 (like any failed
  discovery), and nothing an earlier run listed from Launchpad is forgotten.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.demokit.mirror import AptPackage, sha256_file
from generator.hub.publish import Learnt
from generator.model import ReleaseArch
from generator.progress import Reporter
from generator.state import load_hub_state
from tests.kit.hub import (
    HOSTS,
    archive_files,
    assert_fixture_btf,
    btfhub,
    build_ddeb,
    closed_port,
    focal_suites,
    hub_cell,
    kernels,
    make_hub,
    mirror_args,
    package_requests,
    states,
    write_ubuntu,
)
from tests.kit.launchpad import API_PUBLIC, LaunchpadStandIn
from tests.kit.mirror import LAUNCHPAD_API, FaultyMirror

FOCAL = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")
FOCAL_DIR = "archive/ubuntu/20.04/x86_64"
K26, K30, K42 = (f"5.4.0-{n}-generic" for n in (26, 30, 42))
# ddebs only: the Launchpad answers come from the stand-in (or nowhere).
DDEBS_ONLY = {k: v for k, v in HOSTS.items() if k != LAUNCHPAD_API}


@pytest.fixture(scope="module")
def ddebs(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> dict[str, AptPackage]:
    """Real .ddebs, built once: unsigned images with vmlinux; K30's lost its vmlinux."""
    base = tmp_path_factory.mktemp("fallback-ddebs")

    def unsigned(uname: str, version: str, vmlinux: Path | None) -> AptPackage:
        name = f"linux-image-unsigned-{uname}-dbgsym"
        return build_ddeb(base, name, version, uname, vmlinux, "zst")

    return {
        "26": unsigned(K26, "5.4.0-26.30", fixture_elf),
        "30": unsigned(K30, "5.4.0-30.34", None),
        "42": unsigned(K42, "5.4.0-42.46", fixture_elf),
    }


def publish(lp: LaunchpadStandIn, *debs: AptPackage) -> None:
    for deb in debs:
        lp.publish(deb.path, deb.package, deb.version, "focal", status="Superseded")


def args(server: FaultyMirror, lp: LaunchpadStandIn | None, *extra: str) -> list[str]:
    """--mirror for ddebs, and for Launchpad the stand-in (None: a port that refuses)."""
    pairs = mirror_args(server, DDEBS_ONLY)
    if lp is not None:
        pairs += [a for pair in lp.mirror_pairs() for a in ("--mirror", pair)]
    else:
        pairs += ["--mirror", f"{API_PUBLIC}=http://127.0.0.1:{closed_port()}/"]
    return [*pairs, *FOCAL, *extra]


def test_a_kernel_only_launchpad_still_has_is_built_from_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddebs: dict[str, AptPackage],
) -> None:
    hub = make_hub(tmp_path / "hub")
    # ddebs dropped K26 from its index; Launchpad publishes both kernels.
    write_ubuntu(mirror_server, focal_suites([], [ddebs["42"]]))
    with LaunchpadStandIn() as lp:
        publish(lp, ddebs["26"], ddebs["42"])

        plan = btfhub(capsys, hub, "plan", "--json", *args(mirror_server, lp))
        run = btfhub(capsys, hub, "reconcile", *args(mirror_server, lp))

        assert plan.code == 0, plan.err
        doc = json.loads(plan.out)
        assert doc["incomplete"] == []
        planned = {k["uname"]: k["package"] for k in doc["kernels"]}
        assert planned[K26]["repository"] == "launchpad"
        assert planned[K26]["url"] == (
            f"https://launchpad.net/ubuntu/+archive/primary/+files/{ddebs['26'].path.name}"
        )
        # A kernel both list comes from the first source, ddebs.
        assert planned[K42]["repository"] == "ddebs"

        assert run.code == 0, run.err
        assert "summary: 2 built, 0 already there, 0 ship their own BTF, 0 failed" in run.out
        # File metadata is asked for K26 only (ddebs supplies K42), and once for
        # both runs: the hub's index cache keeps a publication's immutable answer.
        (files_call,) = lp.requests_for("binaryFileUrls")
        assert "/+binarypub/1?" in files_call  # K26's publication, the first published
        # K26 came through Launchpad's +files URL and its librarian; K42 never did.
        assert lp.requests_for(f"/+files/{ddebs['26'].path.name}")
        assert not lp.requests_for(ddebs["42"].path.name)
    assert package_requests(mirror_server) == [f"/ubuntu/pool/main/l/linux/{ddebs['42'].path.name}"]
    files = archive_files(hub)
    assert sorted(files) == [f"{FOCAL_DIR}/{K26}.btf.tar.xz", f"{FOCAL_DIR}/{K42}.btf.tar.xz"]
    known = kernels(hub, "ubuntu", "focal")
    assert known[K26]["package"]["repository"] == "launchpad"
    assert (known[K26]["package"]["sha256"], known[K26]["package"]["size"]) == (
        sha256_file(ddebs["26"].path),
        ddebs["26"].path.stat().st_size,
    )
    assert known[K42]["package"]["repository"] == "ddebs"
    assert_fixture_btf(tmp_path, files[f"{FOCAL_DIR}/{K26}.btf.tar.xz"], K26)


def test_launchpad_refusing_connections_leaves_a_plan_from_ddebs_and_a_warning(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddebs: dict[str, AptPackage],
) -> None:
    hub = make_hub(tmp_path / "hub")
    write_ubuntu(mirror_server, focal_suites([], [ddebs["42"]]))

    text = btfhub(capsys, hub, "plan", *args(mirror_server, None))
    doc_run = btfhub(capsys, hub, "plan", "--json", *args(mirror_server, None))

    # Exit 1, as for any discovery that failed; the plan is whole for ddebs.
    assert text.code == 1
    assert f"ubuntu  focal    x86_64  {K42}  missing" in text.out
    assert "warning: fallback repository launchpad failed: 127.0.0.1:" in text.out
    assert (
        "cannot be reached (the connection was refused); "
        "1 release/arch planned without it: ubuntu/focal/x86_64"
    ) in text.out
    assert (
        "1 kernels: 0 archived, 1 missing, 0 failed, 0 ships-btf; 0 discovery error(s); "
        "1 fallback source(s) failed"
    ) in text.out
    assert doc_run.code == 1
    doc = json.loads(doc_run.out)
    assert [k["uname"] for k in doc["kernels"]] == [K42]
    assert doc["errors"] == []
    (gap,) = doc["incomplete"]
    assert (gap["distro"], gap["release"], gap["arch"], gap["repository"]) == (
        "ubuntu",
        "focal",
        "x86_64",
        "launchpad",
    )
    assert gap["unreachable"] is True
    assert gap["cause"] == "the connection was refused"
    assert gap["url"].startswith(API_PUBLIC + "ubuntu/+archive/primary?ws.op=getPublishedBinaries")
    assert doc["summary"]["warnings"] == 1
    assert "warning: fallback repository launchpad failed" in doc_run.err


def test_launchpad_down_builds_from_ddebs_and_forgets_nothing_launchpad_listed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddebs: dict[str, AptPackage],
) -> None:
    hub = make_hub(tmp_path / "hub")
    write_ubuntu(mirror_server, focal_suites([], [ddebs["42"]]))
    with LaunchpadStandIn() as lp:
        # 1. Launchpad up: K26 built from it, K30 (no vmlinux in it) failed; ddebs has K42.
        publish(lp, ddebs["26"], ddebs["30"], ddebs["42"])
        first = btfhub(capsys, hub, "reconcile", *args(mirror_server, lp))
        assert first.code == 1  # K30 failed
        assert states(hub, "ubuntu", "focal") == {K26: "archived", K30: "failed", K42: "archived"}
        before = kernels(hub, "ubuntu", "focal")
        cell = hub_cell(hub, "Focal")
        files = archive_files(hub)

        # 2. Launchpad answers 500 (retried, then given up).
        lp.failing = 500
        second = btfhub(capsys, hub, "reconcile", *args(mirror_server, lp))

    assert second.code == 1
    assert "warning: fallback repository launchpad failed: " in second.err
    assert "HTTP 500" in second.err
    assert "1 release/arch listed without a failed fallback source" in second.out
    # K30 failed before and is listed only by Launchpad: not retried, not forgotten.
    assert "summary: 0 built, 1 already there, 0 ship their own BTF, 0 failed" in second.out
    assert archive_files(hub) == files
    assert kernels(hub, "ubuntu", "focal") == before
    assert before[K30]["reason"] and before[K26]["package"]["repository"] == "launchpad"
    assert hub_cell(hub, "Focal") == cell


def test_an_http_500_from_launchpad_fails_no_release(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddebs: dict[str, AptPackage],
) -> None:
    """Every shipped Ubuntu release ddebs lists is planned while Launchpad fails."""
    hub = make_hub(tmp_path / "hub")
    write_ubuntu(mirror_server, focal_suites([], [ddebs["42"]]))
    with LaunchpadStandIn() as lp:
        lp.failing = 500
        mirrors = args(mirror_server, lp)[: -len(FOCAL)]
        run = btfhub(
            capsys, hub, "plan", "--json", "--distro", "ubuntu", "--arch", "x86_64", *mirrors
        )
    doc = json.loads(run.out)
    assert run.code == 1
    # Xenial's and Bionic's suites are not on this mirror: those releases fail (404),
    # Focal's rows do not; Launchpad's 500 is a warning for every row that read it.
    failed = {(e["release"], e["arch"]) for e in doc["errors"]}
    warned = {(e["release"], e["arch"]) for e in doc["incomplete"]}
    assert {r for r, _ in failed} == {"xenial", "xenial-hwe", "bionic", "bionic-hwe"}
    assert warned == {("focal", "x86_64"), ("focal-hwe", "x86_64")}
    assert {e["repository"] for e in doc["incomplete"]} == {"launchpad"}
    assert [k["uname"] for k in doc["kernels"]] == [K42]


def test_replaying_an_incomplete_listing_over_the_remote_merges_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    ddebs: dict[str, AptPackage],
) -> None:
    """sync --push re-records a run's lists over a remote that moved on (publish.Learnt):
    a list made while Launchpad was down is merged there too, a complete one replaces."""
    hub = make_hub(tmp_path / "hub")
    write_ubuntu(mirror_server, focal_suites([], [ddebs["42"]]))
    with LaunchpadStandIn() as lp:
        publish(lp, ddebs["26"], ddebs["42"])
        assert btfhub(capsys, hub, "reconcile", *args(mirror_server, lp)).code == 0
    focal = ReleaseArch("ubuntu", "focal", "x86_64")
    ddebs_only = {K42: load_hub_state(hub).lists[focal][K42]}

    Learnt({focal: ddebs_only}, (), frozenset({focal})).apply(hub, Reporter())
    assert sorted(kernels(hub, "ubuntu", "focal")) == [K26, K42]
    assert kernels(hub, "ubuntu", "focal")[K26]["package"]["repository"] == "launchpad"

    Learnt({focal: ddebs_only}, ()).apply(hub, Reporter())
    # Complete, it replaces: K26's file stays, no longer listed upstream (no package).
    assert "package" not in kernels(hub, "ubuntu", "focal")[K26]
