"""bench/coverage.py: the public hub's file list replayed as upstream indexes.

A slice of tests/data/public-hub-files.txt (a few kernels of every
distribution, release directory and arch) is laid out as the upstreams
publish it and planned by the real `btfhub plan` against the shipped catalog;
the layout itself is checked against the upstreams' real paths and names,
and a catalog without the universe component shows the measure can fail.
"""

from __future__ import annotations

import gzip
import importlib.util
import lzma
import shutil
import sys
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest
import urllib3

from generator.model import Repository, Source
from generator.trust import TrustPolicy
from generator.upstream.apt import iter_stanzas
from generator.upstream.context import UpstreamContext
from generator.upstream.http import UpstreamClient
from generator.upstream.mirrors import Mirrors
from generator.upstream.rpmmd import discover_rpmmd
from tests.kit.mirror import FaultyMirror

REPO = Path(__file__).resolve().parent.parent
LIST = REPO / "tests" / "data" / "public-hub-files.txt"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coverage_bench", REPO / "bench" / "coverage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


cov = _load()


def _slice(per_dir: int = 3) -> list[object]:
    """The first and last kernels of every <distro>/<release>/<arch> directory."""
    kernels = cov.parse_list(LIST.read_text().splitlines())
    groups: dict[tuple[str, str, str], list[object]] = defaultdict(list)
    for k in kernels:
        groups[(k.distro, k.release_dir, k.arch)].append(k)
    picked = []
    for ks in groups.values():
        picked += ks[:per_dir] + ks[-per_dir:]
    return sorted(set(picked))


def test_the_saved_list_is_the_public_hubs() -> None:
    kernels = cov.parse_list(LIST.read_text().splitlines())
    by_distro: dict[str, int] = defaultdict(int)
    for k in kernels:
        by_distro[k.distro] += 1
    # centos, debian and fedora whole (the 120, 153 and 24);
    # ubuntu's six folders, ol/7's two and amzn/2's two truncated to the 100
    # files the index lists each (the header of the file says so).
    assert dict(by_distro) == {
        "amzn": 216,
        "centos": 120,
        "debian": 153,
        "fedora": 24,
        "ol": 291,
        "ubuntu": 600,
    }


def test_a_slice_of_the_public_hub_is_planned(tmp_path: Path) -> None:
    kernels = _slice()
    # This branch's distributions; ol and amzn are measured once their kinds exist.
    result = cov.measure(kernels, REPO, tmp_path, ("ubuntu", "debian", "centos", "fedora"))
    assert result.plan_errors == ()
    missed = {k.path: result.why_missed(k) for k in result.missed()}
    # The slice takes every kernel of a small directory: debian/11's twelve and
    # fedora 32-34's three arm64 ones are planned too (their hub rows are built).
    assert missed == {}
    assert any(k.path.startswith("archive/debian/11/") for k in result.wanted)
    assert any(k.path.startswith("archive/fedora/34/arm64/") for k in result.wanted)
    assert len(result.wanted) > 100
    report = cov.report(result)
    assert "ubuntu/16.04/arm64" in report and "100.0%" in report


def test_a_distribution_the_catalog_lacks_is_skipped_saying_why(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    (hub / "catalog").mkdir(parents=True)
    shutil.copy(REPO / "catalog" / "centos8.yaml", hub / "catalog")
    if (REPO / "catalog" / "keys").is_dir():  # the keyrings manifests name
        shutil.copytree(REPO / "catalog" / "keys", hub / "catalog" / "keys")
    shutil.copytree(REPO / "schemas", hub / "schemas")
    kernels = cov.parse_list(
        [
            "centos/8/x86_64/4.18.0-348.el8.x86_64.btf.tar.xz",
            "ol/8/x86_64/5.4.17-2120.el8uek.x86_64.btf.tar.xz",
            "rhel/8/x86_64/4.18.0-348.el8.x86_64.btf.tar.xz",
        ]
    )
    result = cov.measure(kernels, hub, tmp_path / "work")
    assert result.skipped == {
        "ol": "the catalog has no manifest with archive_dir 'ol' yet",
        "rhel": "needs a subscription (entitlement certificate)",
    }
    assert [k.distro for k in result.wanted] == ["centos"] and result.share() == 1.0
    assert "skipped ol: the catalog has no manifest" in cov.report(result)


def test_the_measure_sees_a_catalog_that_misses_a_component(tmp_path: Path) -> None:
    """Without universe, ddebs' GKE kernels are not read: only Launchpad, the fallback,
    still plans them, and the counts by repository show it."""
    hub = tmp_path / "hub"
    shutil.copytree(REPO / "catalog", hub / "catalog")
    shutil.copytree(REPO / "schemas", hub / "schemas")
    manifest = hub / "catalog" / "ubuntu.yaml"
    text = manifest.read_text()
    assert "components: [main, universe]" in text
    manifest.write_text(text.replace("components: [main, universe]", "components: [main]"))
    kernels = [k for k in _slice() if k.distro == "ubuntu"]
    result = cov.measure(kernels, hub, tmp_path / "work", ddebs_share=1.0)
    assert result.missed() == []
    gke = [k.path for k in kernels if k.uname.endswith(("-gke", "-gkeop"))]
    assert gke and {result.planned_by[p] for p in gke} == {"launchpad"}
    others = [k.path for k in kernels if k.path not in gke]
    assert {result.planned_by[p] for p in others} == {"ddebs"}


def test_ddebs_keeps_the_newest_share_of_each_flavour_and_launchpad_plans_the_rest(
    tmp_path: Path,
) -> None:
    lines = [f"ubuntu/20.04/x86_64/5.4.0-{abi}-generic.btf.tar.xz" for abi in (26, 42, 99)]
    lines += ["ubuntu/20.04/x86_64/5.4.0-1033-gke.btf.tar.xz"]
    kernels = cov.parse_list(lines)
    # ceil(0.5 x 3) = 2 of the generic kernels, ceil(0.5 x 1) = 1 of the gke one.
    assert {k.uname for k in cov.ddebs_kept(kernels, 0.5)} == {
        "5.4.0-42-generic",
        "5.4.0-99-generic",
        "5.4.0-1033-gke",
    }
    assert cov.ddebs_kept(kernels, 0.0) == set()
    with pytest.raises(ValueError, match="between 0 and 1"):
        cov.ddebs_kept(kernels, 1.5)

    result = cov.measure(kernels, REPO, tmp_path / "half", ("ubuntu",), ddebs_share=0.5)
    assert result.missed() == [] and result.plan_warnings == ()
    assert result.by_repository() == {"ubuntu": {"ddebs": 3, "launchpad": 1}}
    assert result.planned_by["archive/ubuntu/20.04/x86_64/5.4.0-26-generic.btf.tar.xz"] == (
        "launchpad"
    )
    assert "  ubuntu: ddebs 3, launchpad 1" in cov.report(result)
    # ddebs keeping nothing: Launchpad plans every kernel.
    none = cov.measure(kernels, REPO, tmp_path / "none", ("ubuntu",), ddebs_share=0.0)
    assert none.missed() == [] and none.by_repository() == {"ubuntu": {"launchpad": 4}}


def _packages(path: Path) -> dict[str, dict[str, str]]:
    with lzma.open(path) as f:
        return {s["package"]: s for s in iter_stanzas(f, str(path), str(path))}


def test_ubuntu_layout_follows_ddebs(tmp_path: Path) -> None:
    kernels = cov.parse_list(
        [
            "ubuntu/20.04/x86_64/5.4.0-1033-gke.btf.tar.xz",
            "ubuntu/20.04/x86_64/5.4.0-26-generic.btf.tar.xz",
            "ubuntu/18.04/x86_64/5.4.0-42-generic.btf.tar.xz",
            "ubuntu/16.04/arm64/4.10.0-14-generic.btf.tar.xz",
            "ubuntu/16.04/x86_64/4.15.0-1030-aws.btf.tar.xz",
        ]
    )
    assert cov.publish_ubuntu(tmp_path, kernels) == ["ddebs.ubuntu.com"]
    dists = tmp_path / "ddebs.ubuntu.com" / "dists"
    gke = _packages(dists / "focal-updates/universe/binary-amd64/Packages.xz")
    stanza = gke["linux-image-unsigned-5.4.0-1033-gke-dbgsym"]
    assert stanza["source"] == "linux-gke"
    assert stanza["filename"].startswith("pool/universe/l/linux-gke/")
    assert "linux-image-5.4.0-1033-gke-dbgsym" in gke  # the near-empty signed twin
    ga = _packages(dists / "focal/main/binary-amd64/Packages.xz")
    assert set(ga) == {
        "linux-image-unsigned-5.4.0-26-generic-dbgsym",
        "linux-image-5.4.0-26-generic-dbgsym",
    }
    hwe = _packages(dists / "bionic-updates/main/binary-amd64/Packages.xz")
    stanza = hwe["linux-image-unsigned-5.4.0-42-generic-dbgsym"]
    assert stanza["source"] == "linux-hwe-5.4" and stanza["version"].endswith("~18.04.1")
    assert stanza["filename"].startswith("pool/main/l/linux-hwe-5.4/")
    # Xenial's arm64 4.10 HWE kernel was never signed: one dbgsym, from linux-hwe.
    arm = _packages(dists / "xenial-updates/main/binary-arm64/Packages.xz")
    assert set(arm) == {"linux-image-4.10.0-14-generic-dbgsym"}
    assert arm["linux-image-4.10.0-14-generic-dbgsym"]["source"] == "linux-hwe"
    aws = _packages(dists / "xenial-updates/main/binary-amd64/Packages.xz")
    assert aws["linux-image-unsigned-4.15.0-1030-aws-dbgsym"]["source"] == "linux-aws-hwe"
    for suite in ("xenial", "xenial-proposed", "bionic", "focal-proposed"):
        release = (dists / suite / "Release").read_text()
        assert "universe/binary-arm64/Packages.xz" in release, suite


def test_debian_layout_follows_the_archives(tmp_path: Path) -> None:
    kernels = cov.parse_list(
        [
            "debian/9/x86_64/4.9.0-13-amd64.btf.tar.xz",
            "debian/9/x86_64/4.9.0-19-rt-amd64.btf.tar.xz",
            "debian/9/arm64/4.19.0-0.bpo.19-arm64.btf.tar.xz",
            "debian/9/x86_64/4.19.0-0.bpo.9-amd64.btf.tar.xz",  # not in the public hub
            "debian/10/arm64/5.10.0-0.deb10.17-cloud-arm64.btf.tar.xz",
            "debian/11/x86_64/5.10.0-9-amd64.btf.tar.xz",
        ]
    )
    hosts = cov.publish_debian(tmp_path, kernels)
    assert hosts == ["archive.debian.org", "deb.debian.org", "security.debian.org"]
    archive = tmp_path / "archive.debian.org" / "debian" / "dists"
    security = tmp_path / "archive.debian.org" / "debian-security" / "dists"
    assert "linux-image-4.9.0-13-amd64-dbg" in _packages(
        archive / "stretch/main/binary-amd64/Packages.xz"
    )
    assert "linux-image-4.9.0-19-rt-amd64-dbg" in _packages(
        security / "stretch/updates/main/binary-amd64/Packages.xz"
    )
    # Stretch LTS's linux-4.19 kept the backports ABI name, in the security archive.
    lts9 = _packages(security / "stretch/updates/main/binary-arm64/Packages.xz")
    stanza = lts9["linux-image-4.19.0-0.bpo.19-arm64-dbg"]
    assert stanza["source"] == "linux-4.19" and stanza["version"].endswith("~deb9u1")
    bpo = _packages(archive / "stretch-backports/main/binary-amd64/Packages.xz")
    assert bpo["linux-image-4.19.0-0.bpo.9-amd64-dbg"]["version"].endswith("~bpo9+1")
    lts = _packages(security / "buster/updates/main/binary-arm64/Packages.xz")
    stanza = lts["linux-image-5.10.0-0.deb10.17-cloud-arm64-dbg"]
    assert stanza["source"] == "linux-5.10"
    assert stanza["filename"].startswith("pool/main/l/linux-5.10/")
    assert (archive / "buster-updates" / "Release").is_file()
    assert "linux-image-5.10.0-9-amd64-dbg" in _packages(
        tmp_path / "deb.debian.org/debian/dists/bullseye/main/binary-amd64/Packages.xz"
    )


def test_rpm_layouts_follow_centos_and_fedora(tmp_path: Path) -> None:
    kernels = cov.parse_list(
        [
            "centos/7/arm64/4.14.0-115.el7a.aarch64.btf.tar.xz",
            "centos/8/x86_64/4.18.0-348.el8.x86_64.btf.tar.xz",
            "fedora/24/x86_64/4.5.5-300.fc24.x86_64.btf.tar.xz",
            "fedora/24/x86_64/4.11.12-100.fc24.x86_64.btf.tar.xz",
        ]
    )
    assert cov.publish_centos(tmp_path, kernels[:2]) == ["debuginfo.centos.org"]
    assert cov.publish_fedora(tmp_path, kernels[2:]) == ["archives.fedoraproject.org"]

    def primary(root: Path) -> str:
        (path,) = (root / "repodata").glob("*-primary.xml.gz")
        return gzip.decompress(path.read_bytes()).decode()

    centos = tmp_path / "debuginfo.centos.org"
    assert 'href="kernel-debuginfo-4.14.0-115.el7a.aarch64.rpm"' in primary(centos / "7/aarch64")
    assert "Packages/kernel-debuginfo-4.18.0-348.el8.x86_64.rpm" in primary(centos / "8/x86_64")
    assert "<name>" not in primary(centos / "7/x86_64")  # laid out, empty
    fedora = tmp_path / "archives.fedoraproject.org/pub/archive/fedora/linux"
    assert 'rel="300.fc24"' in primary(fedora / "releases/24/Everything/x86_64/debug/tree")
    assert 'rel="100.fc24"' in primary(fedora / "updates/24/Everything/x86_64/debug")
    assert not (fedora / "releases/24/Everything/aarch64").exists()


@pytest.mark.parametrize(
    "line",
    [
        "ubuntu/20.04/x86_64/5.4.0-26-generic.tar.xz",
        "ubuntu/20.04/5.4.0-26-generic.btf.tar.xz",
        "ubuntu/20.04/i386/5.4.0-26-generic.btf.tar.xz",
    ],
)
def test_a_bad_line_is_refused_with_its_line_number(line: str) -> None:
    with pytest.raises(ValueError, match=r"^list:2: not <distro>"):
        cov.parse_list(["# a comment", line])


def test_a_kernel_its_upstream_cannot_hold_is_refused(tmp_path: Path) -> None:
    (k,) = cov.parse_list(["fedora/25/x86_64/4.5.5-300.fc24.x86_64.btf.tar.xz"])
    with pytest.raises(ValueError, match="not a Fedora 25 kernel"):
        cov.publish_fedora(tmp_path, [k])


def test_oracle_layout_is_an_apache_listing_of_both_arches(tmp_path: Path) -> None:
    kernels = cov.parse_list(
        [
            "ol/7/x86_64/3.10.0-1160.119.1.0.1.el7.x86_64.btf.tar.xz",
            "ol/7/arm64/4.14.35-1902.0.9.el7uek.aarch64.btf.tar.xz",
        ]
    )
    assert cov.publish_ol(tmp_path, kernels) == ["oss.oracle.com"]
    with FaultyMirror(tmp_path) as server:
        # The directory URL answers with its listing, as oss.oracle.com's Apache does.
        page = urllib3.request("GET", f"{server.url}oss.oracle.com/ol7/debuginfo/", timeout=10)
    assert page.status == 200
    links = _links(page.data.decode())
    assert {
        "kernel-debuginfo-3.10.0-1160.119.1.0.1.el7.x86_64.rpm",
        "kernel-debuginfo-common-x86_64-3.10.0-1160.119.1.0.1.el7.x86_64.rpm",
        "kernel-uek-debuginfo-4.14.35-1902.0.9.el7uek.aarch64.rpm",
        "kernel-uek-debuginfo-common-4.14.35-1902.0.9.el7uek.aarch64.rpm",
    } <= links
    assert not (tmp_path / "oss.oracle.com/ol7/debuginfo/repodata").exists()


def _links(page: str) -> set[str]:
    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.hrefs: set[str] = set()

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.hrefs |= {v for k, v in attrs if tag == "a" and k == "href" and v}

    parser = Links()
    parser.feed(page)
    return parser.hrefs


def test_amazon_layout_resolves_through_mirror_list_to_rpm_md(tmp_path: Path) -> None:
    """Each mirror.list's first line is an rpm-md base the real rpm-md lister reads."""
    kernels = cov.parse_list(
        [
            "amzn/2/x86_64/4.14.26-54.32.amzn2.x86_64.btf.tar.xz",
            "amzn/2/arm64/5.10.50-44.132.amzn2.aarch64.btf.tar.xz",
            "amzn/1/x86_64/4.14.42-52.37.amzn1.x86_64.btf.tar.xz",
        ]
    )
    hosts = cov.publish_amzn(tmp_path, kernels)
    assert hosts == [cov.AL2_HOST, cov.AL1_PACKAGES_HOST, cov.AL1_HOST]
    pointers = {
        ("x86_64", f"{cov.AL2_HOST}/2/core/latest/debuginfo/x86_64/mirror.list"),
        ("arm64", f"{cov.AL2_HOST}/2/extras/kernel-5.10/latest/debuginfo/aarch64/mirror.list"),
        ("x86_64", f"{cov.AL1_HOST}/latest/updates/debuginfo/mirror.list"),
        ("x86_64", f"{cov.AL1_HOST}/2018.03/updates/debuginfo/mirror.list"),
        ("x86_64", f"{cov.AL1_HOST}/2018.03/main/debuginfo/mirror.list"),  # empty
    }
    with FaultyMirror(tmp_path) as server:
        mirrors = Mirrors.parse([f"http://{h}/={server.url}{h}/" for h in hosts])
        client = UpstreamClient(mirrors=mirrors, cache_dir=tmp_path / "cache")
        found = set()
        with UpstreamContext.of(client, TrustPolicy.from_sources()) as upstream:
            for arch, pointer in pointers:
                base = (tmp_path / pointer).read_text().splitlines()[0]
                base = base.replace("$basearch", cov.RPM_ARCH[arch])
                repo = Repository("amzn", "rpm-md", base, packages=("kernel-debuginfo",))
                source = Source("amzn", paths=("",))
                found |= {p.uname for p in discover_rpmmd(upstream, repo, source, arch)}
    assert found == {k.uname for k in kernels}
    # Every Amazon Linux 2 topic is there for both arches, listed kernels or not.
    for topic in ("core", "extras/kernel-5.4", "extras/kernel-5.15"):
        assert (
            tmp_path / cov.AL2_HOST / "2" / topic / "latest/debuginfo/aarch64/mirror.list"
        ).is_file()


def test_a_bad_list_exits_2_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "list.txt"
    bad.write_text("ubuntu/20.04/x86_64/5.4.0-26-generic.btf.tar.xz\nnot/a/path\n")
    assert cov.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"coverage: error: {bad}:2: not <distro>/<release>/<arch>/")


def test_a_release_whose_discovery_fails_is_reported_not_fatal(tmp_path: Path) -> None:
    """A suite the upstream does not publish: plan exits 1, the measure goes on."""
    hub = tmp_path / "hub"
    shutil.copytree(REPO / "catalog", hub / "catalog")
    shutil.copytree(REPO / "schemas", hub / "schemas")
    manifest = hub / "catalog" / "ubuntu.yaml"
    text = manifest.read_text()
    suites = "suites: [xenial, xenial-updates, xenial-proposed]"
    assert suites in text
    manifest.write_text(text.replace(suites, "suites: [xenial, xenial-updates, xenial-hwe]"))
    kernels = cov.parse_list(
        [
            "ubuntu/16.04/x86_64/4.10.0-14-generic.btf.tar.xz",
            "ubuntu/20.04/x86_64/5.4.0-100-generic.btf.tar.xz",
        ]
    )
    result = cov.measure(kernels, hub, tmp_path / "work")
    assert result.plan_errors and all("xenial-hwe/Release" in e for e in result.plan_errors)
    assert [k.release_dir for k in result.missed()] == ["16.04"]
    assert "plan error: ubuntu/xenial" in cov.report(result)


def test_a_share_outside_0_to_1_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "list.txt"
    good.write_text("ubuntu/20.04/x86_64/5.4.0-26-generic.btf.tar.xz\n")
    assert cov.main([str(good), "--ddebs-share", "1.5", "--distro", "ubuntu"]) == 2
    assert "--ddebs-share 1.5: a share is between 0 and 1" in capsys.readouterr().err


def test_amazon_linux_1_is_missed_for_its_signing_key_and_says_so(tmp_path: Path) -> None:
    """The shipped catalog builds amzn/1 only for a run given Amazon's key: the plan
    skips it, and the report names that, not a gap in the catalog."""
    kernels = cov.parse_list(
        [
            "amzn/1/x86_64/4.14.42-52.37.amzn1.x86_64.btf.tar.xz",
            "amzn/2/x86_64/4.14.26-54.32.amzn2.x86_64.btf.tar.xz",
        ]
    )
    result = cov.measure(kernels, REPO, tmp_path, ("amzn",))
    assert result.plan_errors == ()
    (missed,) = result.missed()
    assert missed.release_dir == "1"
    assert result.why_missed(missed) == (
        "skipped by the plan: needs its signing key (the operator supplies it)"
    )
