"""The shipped manifests of Oracle Linux, Amazon Linux, RHEL and SLES match the
public hub's layout (aquasecurity/btfhub-archive: ol/7, ol/8, amzn/1, amzn/2,
rhel/7, rhel/8, sles/12.3 ...) and use the repository kinds their upstreams need."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.catalog import load_catalog
from generator.cli import main
from generator.model import Catalog, archive_path, series_matches
from tests.kit.hub import REPO


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(REPO)


def _dirs(catalog: Catalog, distro: str) -> dict[str, tuple[str, ...]]:
    """{release dir: sorted architectures} over the releases the hub builds."""
    dist = catalog.distribution(distro)
    out: dict[str, set[str]] = {}
    for r in dist.releases:
        if r.hub:
            out.setdefault(r.directory, set()).update(r.architectures)
    return {d: tuple(sorted(a)) for d, a in out.items()}


def test_release_dirs_and_arches_are_the_public_hubs(catalog: Catalog) -> None:
    both = ("arm64", "x86_64")
    assert _dirs(catalog, "ol") == {"7": both, "8": both}
    # Amazon Linux 1 (amzn/1): x86_64 only, built once a run is given its key.
    assert _dirs(catalog, "amzn") == {"2": both, "1": ("x86_64",)}
    assert _dirs(catalog, "rhel") == {"7": both, "8": both}
    assert _dirs(catalog, "sles") == {
        d: ("x86_64",) for d in ("12.3", "12.5", "15.1", "15.2", "15.3", "15.4")
    }


@pytest.mark.parametrize(
    ("distro", "uname", "path"),
    [
        # Names of files the public hub holds, and the row that must claim each.
        ("ol", "3.10.0-1160.119.1.0.1.el7.x86_64", "ol/7/x86_64"),
        ("ol", "4.14.35-1902.306.2.el7uek.aarch64", "ol/7/arm64"),
        ("ol", "4.18.0-147.0.2.el8_1.x86_64", "ol/8/x86_64"),
        ("ol", "5.4.17-2102.206.1.el8uek.x86_64", "ol/8/x86_64"),
        ("amzn", "4.14.345-262.561.amzn2.aarch64", "amzn/2/arm64"),
        ("amzn", "4.14.281-144.502.amzn1.x86_64", "amzn/1/x86_64"),
        ("rhel", "3.10.0-1160.99.1.el7.x86_64", "rhel/7/x86_64"),
        ("rhel", "4.14.0-115.10.1.el7a.aarch64", "rhel/7/arm64"),
        ("rhel", "4.18.0-147.0.2.el8_1.aarch64", "rhel/8/arm64"),
        ("sles", "4.4.180-94.100-default", "sles/12.3/x86_64"),
        ("sles", "5.3.18-150300.59.43-default", "sles/15.3/x86_64"),
    ],
)
def test_public_hub_kernels_have_a_release(
    catalog: Catalog, distro: str, uname: str, path: str
) -> None:
    dist = catalog.distribution(distro)
    arch = path.rsplit("/", 1)[1]
    directory = path.split("/")[1]
    claims = [
        archive_path(dist.archive_dir, r.directory, arch, uname)
        for r in dist.releases
        if r.hub
        and arch in r.architectures
        and r.directory == directory
        and any(series_matches(s, uname) for s in r.series)
    ]
    assert claims and set(claims) == {f"archive/{path}/{uname}.btf.tar.xz"}


def test_repository_kinds(catalog: Catalog) -> None:
    kinds = {
        (d.id, repo.id): (repo.kind, repo.mirrorlist, repo.credentials, repo.kernel_release)
        for d in catalog.distributions
        if d.archive_dir in ("ol", "amzn", "rhel", "sles")
        for repo in d.repositories
    }
    assert kinds == {
        ("ol", "ol7-debuginfo"): ("html-listing", False, None, "rpm"),
        ("ol", "ol8-debuginfo"): ("html-listing", False, None, "rpm"),
        ("amzn", "amzn2-debuginfo"): ("rpm-md", True, None, "rpm"),
        ("amzn", "amzn1-debuginfo"): ("rpm-md", True, None, "rpm"),
        ("rhel", "rhel-cdn"): ("rpm-md", False, "rhel-cdn", "rpm"),
        ("sles", "suse"): ("rpm-md", False, "suse", "suse"),
    }


BAD_KINDS = """\
# yaml-language-server: $schema=../schemas/manifest.schema.json
title: X
archive_dir: x
directory: "1"
columns:
  - {header: X, field: name}
repositories:
  - id: lp
    kind: launchpad
    url: https://api.launchpad.net/1.0/ubuntu
    packages: [linux-image-dbgsym]
    mirrorlist: true
    moved_to: https://api.example/
  - id: listing
    kind: html-listing
    url: https://oss.example/ol7/debuginfo/
    packages: ["kernel-debuginfo-{uname}.rpm"]
    flavours: [uek]
    credentials: oracle
  - id: apt
    kind: apt
    url: http://apt.example/
    packages: ["k-{uname}"]
    kernel_release: suse
  - id: nothing-signed
    kind: rpm-md
    url: http://rpm.example/
    packages: [linux-debuginfo]
    kernel_release: photon
    unsigned: true
    sha1_signatures: true
releases:
  - name: A
    kernel: "5.4"
    hub: true
    sources:
      - repository: lp
        paths: [""]
      - repository: listing
        suites: [focal]
"""


def test_new_kinds_are_validated_with_positions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog/x.yaml").write_text(BAD_KINDS)

    code = main(["validate", "--root", str(tmp_path)])

    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out == [
        "catalog/x.yaml:8:5: repositories[0]: a launchpad repository says `unsigned: true`: "
        "its API answers carry no signature",
        "catalog/x.yaml:10:10: repositories[0].url: a launchpad URL names an archive, "
        "e.g. https://api.launchpad.net/1.0/ubuntu/+archive/primary",
        "catalog/x.yaml:11:16: repositories[0].packages[0]: "
        "a launchpad package pattern needs {uname}",
        "catalog/x.yaml:12:5: repositories[0].mirrorlist: only rpm-md repositories have this key",
        "catalog/x.yaml:13:5: repositories[0].moved_to: "
        "only apt, rpm-md and html-listing repositories have this key",
        "catalog/x.yaml:18:5: repositories[1].flavours: "
        "only apt and launchpad repositories have this key",
        "catalog/x.yaml:19:18: repositories[1].credentials: unknown credentials kind 'oracle' "
        "(expected one of: rhel-cdn, suse)",
        "catalog/x.yaml:24:5: repositories[2].kernel_release: "
        "only rpm-md repositories have this key",
        "catalog/x.yaml:31:5: repositories[3].sha1_signatures: "
        "an unsigned repository has no signatures to allow",
        "catalog/x.yaml:37:9: releases[0].sources[0]: repository 'lp' is launchpad: "
        "the source needs suites",
        "catalog/x.yaml:38:9: releases[0].sources[0].paths: repository 'lp' is launchpad: "
        "it has no paths",
        "catalog/x.yaml:39:9: releases[0].sources[1]: repository 'listing' is html-listing: "
        "the source needs paths",
        "catalog/x.yaml:40:9: releases[0].sources[1].suites: "
        "repository 'listing' is html-listing: it has no suites",
    ]


FALLBACK_RULES = """\
# yaml-language-server: $schema=../schemas/manifest.schema.json
title: X
archive_dir: x
directory: "1"
columns:
  - {header: X, field: name}
repositories:
  - id: lp
    kind: launchpad
    url: http://api.launchpad.net/1.0/ubuntu/+archive/primary
    unsigned: true
    packages: ["linux-image-{uname}-dbgsym"]
releases:
  - name: A
    kernel: "5.4"
    hub: true
    sources:
      - {repository: lp, suites: [focal], fallback: true}
  - name: B
    kernel: "5.8"
    hub: true
    sources:
      - {repository: lp, suites: [focal]}
      - {repository: lp, suites: [groovy], fallback: yes please}
"""


def test_launchpad_is_https_and_a_fallback_never_comes_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog/x.yaml").write_text(FALLBACK_RULES)

    code = main(["validate", "--root", str(tmp_path)])

    out = [line for line in capsys.readouterr().out.splitlines() if line.startswith("catalog/")]
    assert code == 1
    assert out == [
        "catalog/x.yaml:10:10: repositories[0].url: a launchpad URL is https: "
        "TLS is all that vouches for it",
        "catalog/x.yaml:18:43: releases[0].sources[0].fallback: "
        "the first source is not a fallback: nothing before it",
        "catalog/x.yaml:24:54: releases[1].sources[1].fallback: "
        "expected true or false, got 'yes please'",
    ]
