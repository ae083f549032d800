"""The pure planner, with plain data: no network, no filesystem."""

from __future__ import annotations

import json

import pytest

from generator.errors import BtfhubError
from generator.model import (
    Catalog,
    Column,
    DiscoveryFailure,
    Distribution,
    KernelId,
    KernelOutcome,
    KernelPackage,
    KernelState,
    Plan,
    Release,
    ReleaseArch,
    Selection,
    Source,
)
from generator.planner import (
    MIRROR_HINT,
    describe_failures,
    format_plan,
    plan,
    plan_from_json,
    plan_to_json,
    select,
)


def release(
    distro: str,
    rid: str,
    directory: str,
    series: tuple[str, ...],
    hub: bool | None = True,
    arches: tuple[str, ...] = ("x86_64", "arm64"),
    name: str | None = None,
) -> Release:
    return Release(
        distro=distro,
        id=rid,
        name=name or rid,
        directory=directory,
        kernel=series[0],
        series=series,
        bpf=True,
        btf=False,
        hub=hub,
        architectures=arches,
        sources=(Source("r", suites=("s",)),),
    )


def distribution(did: str, archive_dir: str, *releases: Release) -> Distribution:
    return Distribution(
        id=did,
        title=did,
        archive_dir=archive_dir,
        columns=(Column("Kernel", "kernel"),),
        releases=releases,
        repositories=(),
    )


UBUNTU = distribution(
    "ubuntu",
    "ubuntu",
    release("ubuntu", "bionic", "18.04", ("4.15.0",), hub=False, name="Bionic"),
    release("ubuntu", "focal", "20.04", ("5.4.0",), name="Focal"),
    # Focal HWE shares the 20.04 directory; a (contrived) overlapping series
    # makes a kernel map to the same archive path from two releases.
    release("ubuntu", "focal-hwe", "20.04", ("5.8.0", "5.4.0-42"), name="Focal HWE"),
)
CENTOS = distribution(
    "centos7",
    "centos",
    release("centos7", "7.0.1406", "7", ("3.10.0-123",), arches=("x86_64",)),
    release("centos7", "7.9.2009", "7", ("3.10.0-1160",), arches=("x86_64",)),
)
CATALOG = Catalog((UBUNTU, CENTOS))


def pkg(uname: str, arch: str = "x86_64") -> KernelPackage:
    return KernelPackage(
        uname=uname,
        arch=arch,
        name=f"linux-image-unsigned-{uname}-dbgsym",
        version="1",
        url=f"http://example.invalid/{uname}.ddeb",
        size=100,
        sha256="0" * 64,
        repository="r",
        filename=f"{uname}.ddeb",
        format="deb",
    )


UPSTREAM = {
    ReleaseArch("ubuntu", "focal", "x86_64"): [pkg("5.4.0-26-generic"), pkg("5.4.0-42-generic")],
    ReleaseArch("ubuntu", "focal", "arm64"): [pkg("5.4.0-42-generic", "arm64")],
    ReleaseArch("ubuntu", "focal-hwe", "x86_64"): [
        pkg("5.4.0-42-generic"),
        pkg("5.8.0-43-generic"),
    ],
    ReleaseArch("centos7", "7.0.1406", "x86_64"): [pkg("3.10.0-123.el7.x86_64")],
}


def states(p: Plan) -> list[tuple[str, str, str, str, str]]:
    return [(*k.id, k.state.value) for k in p.kernels]


def outcome(
    distro: str, release: str, uname: str, state: KernelState, reason: str | None = None
) -> dict[KernelId, KernelOutcome]:
    """{kernel: outcome} for one x86_64 kernel."""
    kernel = KernelId(distro, release, "x86_64", uname)
    return {kernel: KernelOutcome(kernel, state, reason)}


def failure(distro: str, release: str, arch: str, url: str, message: str) -> DiscoveryFailure:
    return DiscoveryFailure(ReleaseArch(distro, release, arch), url, message)


def test_plan_states_and_order() -> None:
    archived = {"archive/ubuntu/20.04/x86_64/5.4.0-26-generic.btf.tar.xz"}
    outcomes = {
        **outcome("ubuntu", "focal-hwe", "5.8.0-43-generic", KernelState.FAILED, "pahole exited 1"),
        **outcome("centos7", "7.0.1406", "3.10.0-123.el7.x86_64", KernelState.SHIPS_BTF),
    }
    the_plan = plan(CATALOG, UPSTREAM, archived, outcomes)
    assert states(the_plan) == [
        ("centos7", "7.0.1406", "x86_64", "3.10.0-123.el7.x86_64", "ships-btf"),
        ("ubuntu", "focal", "arm64", "5.4.0-42-generic", "missing"),
        ("ubuntu", "focal", "x86_64", "5.4.0-26-generic", "archived"),
        ("ubuntu", "focal", "x86_64", "5.4.0-42-generic", "missing"),
        ("ubuntu", "focal-hwe", "x86_64", "5.8.0-43-generic", "failed"),
    ]
    failed = the_plan.kernels[-1]
    assert failed.reason == "pahole exited 1"
    assert failed.archive_path == "archive/ubuntu/20.04/x86_64/5.8.0-43-generic.btf.tar.xz"
    assert failed.package == pkg("5.8.0-43-generic")
    # Failed kernels are retried; archived and ships-btf ones are not.
    assert [k.id.uname for k in the_plan.missing()] == [
        "5.4.0-42-generic",
        "5.4.0-42-generic",
        "5.8.0-43-generic",
    ]
    assert [k.id.arch for k in the_plan.missing()] == ["arm64", "x86_64", "x86_64"]


def test_force_plans_kernels_that_ship_btf() -> None:
    outcomes = outcome("centos7", "7.0.1406", "3.10.0-123.el7.x86_64", KernelState.SHIPS_BTF)
    archived = {"archive/centos/7/x86_64/3.10.0-123.el7.x86_64.btf.tar.xz"}
    upstream = {ReleaseArch("centos7", "7.0.1406", "x86_64"): [pkg("3.10.0-123.el7.x86_64")]}
    assert states(plan(CATALOG, upstream, (), outcomes, force=True))[0][4] == "missing"
    # ... but an archived file stays archived, force or not.
    assert states(plan(CATALOG, upstream, archived, outcomes, force=True))[0][4] == "archived"


def test_same_archive_path_from_two_releases_is_planned_once() -> None:
    the_plan = plan(CATALOG, UPSTREAM, (), {})
    paths = [k.archive_path for k in the_plan.kernels]
    assert len(paths) == len(set(paths))
    shared = [
        k for k in the_plan.kernels if k.id.uname == "5.4.0-42-generic" and k.id.arch == "x86_64"
    ]
    assert [(k.id.release, k.archive_path) for k in shared] == [
        ("focal", "archive/ubuntu/20.04/x86_64/5.4.0-42-generic.btf.tar.xz")
    ]
    assert len(the_plan.missing()) == len({k.archive_path for k in the_plan.missing()})


def test_releases_the_hub_does_not_build_are_ignored() -> None:
    upstream = {
        ReleaseArch("ubuntu", "bionic", "x86_64"): [pkg("4.15.0-20-generic")],  # hub: false
        ReleaseArch("centos7", "7.0.1406", "arm64"): [
            pkg("3.10.0-123.el7.aarch64", "arm64")
        ],  # no arm64
    }
    assert plan(CATALOG, upstream, (), {}).kernels == ()


def test_unknown_release_in_listing_is_a_bug() -> None:
    with pytest.raises(ValueError, match="not in the catalog"):
        plan(CATALOG, {ReleaseArch("ubuntu", "jammy", "x86_64"): []}, (), {})


def test_errors_are_kept_sorted() -> None:
    errors = [
        failure("ubuntu", "focal", "x86_64", "http://b/", "HTTP 404"),
        failure("centos7", "7.0.1406", "x86_64", "http://a/", "bad XML"),
    ]
    the_plan = plan(CATALOG, {}, (), {}, errors)
    assert [e.target.distro for e in the_plan.failures] == ["centos7", "ubuntu"]


def test_plan_is_deterministic_whatever_the_input_order() -> None:
    reordered = {k: list(reversed(v)) for k, v in reversed(list(UPSTREAM.items()))}
    assert plan(CATALOG, reordered, [], {}) == plan(CATALOG, UPSTREAM, set(), {})


def test_format_plan() -> None:
    outcomes = outcome(
        "ubuntu", "focal-hwe", "5.8.0-43-generic", KernelState.FAILED, "pahole exited 1"
    )
    errors = [failure("centos7", "7.9.2009", "x86_64", "http://x/repomd.xml", "HTTP 404")]
    text = format_plan(plan(CATALOG, UPSTREAM, (), outcomes, errors))
    lines = text.splitlines()
    assert lines[0].split() == ["DISTRO", "RELEASE", "ARCH", "UNAME", "STATE"]
    assert lines[-4].split() == [
        "ubuntu",
        "focal-hwe",
        "x86_64",
        "5.8.0-43-generic",
        "failed",
        "pahole",
        "exited",
        "1",
    ]
    assert lines[-3] == "error: centos7/7.9.2009/x86_64: discovery failed: HTTP 404"
    assert lines[-2] == "  url: http://x/repomd.xml"
    assert lines[-1] == (
        "5 kernels: 0 archived, 4 missing, 1 failed, 0 ships-btf; 1 discovery error(s)"
    )
    assert format_plan(plan(CATALOG, {}, (), {})) == (
        "0 kernels: 0 archived, 0 missing, 0 failed, 0 ships-btf; 0 discovery error(s)"
    )


def test_plan_to_json() -> None:
    errors = [failure("centos7", "7.9.2009", "x86_64", "http://x/repomd.xml", "HTTP 404")]
    out = plan_to_json(plan(CATALOG, UPSTREAM, (), {}, errors))
    json.dumps(out)  # plain JSON types only
    first = out["kernels"][0]
    assert first == {
        "distro": "centos7",
        "release": "7.0.1406",
        "arch": "x86_64",
        "uname": "3.10.0-123.el7.x86_64",
        "state": "missing",
        "archive_path": "archive/centos/7/x86_64/3.10.0-123.el7.x86_64.btf.tar.xz",
        "reason": None,
        "package": {
            "name": "linux-image-unsigned-3.10.0-123.el7.x86_64-dbgsym",
            "version": "1",
            "url": "http://example.invalid/3.10.0-123.el7.x86_64.ddeb",
            "size": 100,
            "sha256": "0" * 64,
            "filename": "3.10.0-123.el7.x86_64.ddeb",
            "format": "deb",
            "repository": "r",
            "signed_index": None,
        },
    }
    assert out["errors"] == [
        {
            "distro": "centos7",
            "release": "7.9.2009",
            "arch": "x86_64",
            "url": "http://x/repomd.xml",
            "message": "HTTP 404",
            "cause": "",
            "unreachable": False,
            "host": "",
        }
    ]
    assert out["summary"] == {
        "archived": 0,
        "missing": 5,
        "failed": 0,
        "ships-btf": 0,
        "errors": 1,
        "warnings": 0,
    }


# -- select -----------------------------------------------------------------------


def targets(result: list[tuple[Distribution, Release, str]]) -> list[tuple[str, str, str]]:
    return [(d.id, r.id, a) for d, r, a in result]


def test_select_everything_the_hub_builds() -> None:
    assert targets(select(CATALOG)) == [
        ("ubuntu", "focal", "x86_64"),
        ("ubuntu", "focal", "arm64"),
        ("ubuntu", "focal-hwe", "x86_64"),
        ("ubuntu", "focal-hwe", "arm64"),
        ("centos7", "7.0.1406", "x86_64"),
        ("centos7", "7.9.2009", "x86_64"),
    ]


def test_select_filters() -> None:
    assert targets(select(CATALOG, Selection(distro="centos7", arch="x86_64"))) == [
        ("centos7", "7.0.1406", "x86_64"),
        ("centos7", "7.9.2009", "x86_64"),
    ]
    assert targets(select(CATALOG, Selection(release="focal-hwe", arch="arm64"))) == [
        ("ubuntu", "focal-hwe", "arm64")
    ]
    # A release directory selects every release archived there; a name works too.
    assert targets(select(CATALOG, Selection(release="20.04", arch="x86_64"))) == [
        ("ubuntu", "focal", "x86_64"),
        ("ubuntu", "focal-hwe", "x86_64"),
    ]
    assert targets(select(CATALOG, Selection(release="Focal HWE", arch="x86_64"))) == [
        ("ubuntu", "focal-hwe", "x86_64")
    ]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"distro": "ubuntoo"}, r"unknown distribution 'ubuntoo'; valid: centos7, ubuntu"),
        ({"arch": "amd64"}, r"unknown architecture 'amd64'; valid: x86_64, arm64"),
        (
            {"distro": "ubuntu", "release": "jammy"},
            r"unknown release 'jammy' in ubuntu; valid ids: bionic, focal, focal-hwe",
        ),
        ({"release": "7.9.2009", "distro": "ubuntu"}, r"unknown release '7\.9\.2009' in ubuntu"),
        ({"release": "bionic"}, r"release 'bionic' \(ubuntu/bionic\) is not built by the hub"),
        ({"distro": "centos7", "arch": "arm64"}, r"nothing to build for architecture 'arm64'"),
    ],
)
def test_select_unknown_names(kwargs: dict[str, str], error: str) -> None:
    with pytest.raises(BtfhubError, match=error):
        select(CATALOG, Selection(**kwargs))


def test_plan_json_round_trips_for_the_build_jobs() -> None:

    the_plan = plan(
        CATALOG,
        {
            ReleaseArch("ubuntu", "focal", "x86_64"): [
                pkg("5.4.0-42-generic"),
                pkg("5.4.0-26-generic"),
            ]
        },
        archived={"archive/ubuntu/20.04/x86_64/5.4.0-26-generic.btf.tar.xz"},
        outcomes={},
        failures=[failure("ubuntu", "focal", "arm64", "http://x/", "boom")],
        incomplete=[
            DiscoveryFailure(
                ReleaseArch("ubuntu", "focal", "x86_64"),
                "https://lp/",
                "HTTP 500",
                "HTTP 500 Internal Server Error",
                repository="launchpad",
            )
        ],
    )
    doc = json.loads(json.dumps(plan_to_json(the_plan)))
    assert doc["incomplete"][0]["repository"] == "launchpad"
    assert doc["summary"]["warnings"] == 1
    assert plan_from_json(doc) == the_plan
    # Plans written before fallback sources existed have no "incomplete".
    del doc["incomplete"]
    assert plan_from_json(doc).incomplete == ()
    with pytest.raises(BtfhubError, match=r"p\.json: not a `btfhub plan --json` document"):
        plan_from_json({"kernels": [{"distro": "ubuntu"}]}, "p.json")


def test_describe_failures_gives_an_unreachable_host_one_line_and_a_hint() -> None:
    dead = [
        DiscoveryFailure(
            ReleaseArch("ubuntu", r, a),
            f"http://ddebs.ubuntu.com/dists/{r}/Release",
            "urllib3 text",
            "the host name does not resolve",
            unreachable=True,
            host="ddebs.ubuntu.com",
        )
        for r in ("focal", "bionic")
        for a in ("x86_64", "arm64")
    ]
    other = failure("centos7", "7.9.2009", "x86_64", "http://x/repomd.xml", "HTTP 404")
    lines = describe_failures([*dead, other], "FAILED ")
    assert lines == [
        "FAILED centos7/7.9.2009/x86_64: discovery failed: HTTP 404",
        "  url: http://x/repomd.xml",
        "FAILED ddebs.ubuntu.com: cannot be reached (the host name does not resolve); "
        "blocks 4 release/arch: ubuntu/bionic/arm64, ubuntu/bionic/x86_64, "
        "ubuntu/focal/arm64, ubuntu/focal/x86_64",
        MIRROR_HINT,
    ]
    assert describe_failures([other], "") == [
        "centos7/7.9.2009/x86_64: discovery failed: HTTP 404",
        "  url: http://x/repomd.xml",
    ]


def test_an_archived_kernel_is_planned_for_the_modules_its_release_newly_lists() -> None:
    from dataclasses import replace

    from generator.model import ModuleSelection

    def focal(modules: ModuleSelection | None) -> Catalog:
        focal = replace(UBUNTU.releases[1], modules=modules)
        return Catalog((replace(UBUNTU, releases=(focal,)),))

    upstream = {ReleaseArch("ubuntu", "focal", "x86_64"): [pkg("5.4.0-26-generic")]}
    path = "archive/ubuntu/20.04/x86_64/5.4.0-26-generic.btf.tar.xz"
    mods = "archive/ubuntu/20.04/x86_64/5.4.0-26-generic.modules.tar.xz"
    nf = ModuleSelection(("nf_conntrack", "overlay"))

    def planned(
        modules: ModuleSelection | None, listing: dict[str, tuple[frozenset[str], frozenset[str]]]
    ) -> list[tuple[str, str | None, bool]]:
        p = plan(focal(modules), upstream, {path}, {}, modules=listing)
        return [(k.state.value, k.reason, k.modules_only) for k in p.missing()]

    assert planned(None, {}) == []  # a release without modules: nothing to do
    # What the modules files hold not known (an OCI store): no rebuild planned.
    assert plan(focal(nf), upstream, {path}, {}).missing() == ()
    assert planned(nf, {}) == [("archived", "modules asked for: none built yet", True)]
    only_nf = {mods: (frozenset({"nf_conntrack"}), frozenset())}
    assert planned(nf, only_nf) == [("archived", "modules not built yet: overlay", True)]
    lacked = {mods: (frozenset({"nf_conntrack"}), frozenset({"overlay"}))}
    assert planned(nf, lacked) == []  # its package had no overlay: not asked again
    assert planned(ModuleSelection(all=True), only_nf) == []  # built for all: complete
    # The flag survives the plan file the build jobs read.
    p = plan(focal(nf), upstream, {path}, {}, modules=only_nf)
    assert plan_from_json(json.loads(json.dumps(plan_to_json(p)))) == p
