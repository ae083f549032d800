"""The shipped manifests of issue 21's distributions say what their upstreams say.

Photon OS rows follow the flavours' kernel configs in vmware/photon's 3.0,
4.0 and 5.0 branches (BPF only where CONFIG_BPF_SYSCALL is set, BTF never
for -esx and -secure); openSUSE Leap and openEuler read the trees their
repository files name; Ubuntu adds the flavours the public hub skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.catalog import load_catalog
from generator.model import Catalog, Distribution

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT)


def rows(dist: Distribution) -> dict[str, tuple[str, tuple[str, ...], bool | None, bool | None]]:
    """release id -> (directory, architectures, bpf, hub)."""
    return {r.id: (r.directory, r.architectures, r.bpf, r.hub) for r in dist.releases}


def test_photon_builds_only_flavours_that_run_bpf(catalog: Catalog) -> None:
    photon = catalog.distribution("photon")
    x86, both = ("x86_64",), ("x86_64", "arm64")
    assert rows(photon) == {
        "3.0-linux": ("3.0", x86, True, True),
        "3.0-esx": ("3.0", x86, True, True),
        "3.0-secure": ("3.0", x86, False, False),
        "4.0-linux": ("4.0", x86, True, True),
        "4.0-esx": ("4.0", x86, False, False),
        "4.0-secure": ("4.0", x86, False, False),
        "5.0-linux": ("5.0", both, True, True),
        "5.0-esx": ("5.0", both, True, True),
        "5.0-secure": ("5.0", x86, True, True),
    }
    # -esx and -secure never ship BTF; linux does from 5.10.175-7 / 6.1.41-4 (not known per row).
    assert {r.id: r.btf for r in photon.releases if r.hub} == {
        "3.0-linux": False,
        "3.0-esx": False,
        "4.0-linux": None,
        "5.0-linux": None,
        "5.0-esx": False,
        "5.0-secure": False,
    }
    repos = {r.id: r for r in photon.repositories}
    assert {r.packages for r in repos.values()} == {
        ("linux-debuginfo",),
        ("linux-esx-debuginfo",),
        ("linux-secure-debuginfo",),
    }
    for repo in repos.values():
        assert repo.url == "https://packages.broadcom.com/photon/"
        assert (repo.kernel_release, repo.sha1_signatures) == ("photon", True)
        assert repo.keyring is not None and repo.keyring.endswith("catalog/keys/photon.asc")
    paths = {s.paths for r in photon.releases for s in r.sources}
    assert paths == {(f"{v}/photon_debuginfo_{v}_{{arch}}/",) for v in ("3.0", "4.0", "5.0")}


def test_opensuse_leap_reads_the_debug_trees_and_the_ports(catalog: Catalog) -> None:
    leap = catalog.distribution("opensuse-leap")
    assert leap.archive_dir == "opensuse-leap"
    built = {r.id: (r.directory, r.architectures) for r in leap.releases if r.hub}
    assert built == {
        "15.0": ("15.0", ("x86_64",)),
        "15.0-ports": ("15.0", ("arm64",)),
        "15.1": ("15.1", ("x86_64",)),
        "15.1-ports": ("15.1", ("arm64",)),
        "15.2": ("15.2", ("x86_64",)),
        "15.2-ports": ("15.2", ("arm64",)),
        "15.3": ("15.3", ("x86_64", "arm64")),
    }
    sources = {r.id: [(s.repository, s.paths) for s in r.sources] for r in leap.releases}
    assert sources["15.3"] == [
        (
            "opensuse-debug",
            (
                "debug/distribution/leap/15.3/repo/oss/",
                "debug/update/leap/15.3/sle/",
                "debug/update/leap/15.3/oss/",
            ),
        )
    ]
    assert sources["15.1-ports"] == [
        ("opensuse-ports-debug", ("debug/distribution/leap/15.1/repo/oss/",))
    ]
    for repo in leap.repositories:
        assert repo.kernel_release == "suse" and not repo.sha1_signatures
    assert [r.id for r in leap.releases if not r.hub] == ["15.4"]


def test_openeuler_reads_release_and_update_trees_of_every_service_pack(
    catalog: Catalog,
) -> None:
    euler = catalog.distribution("openeuler")
    assert euler.archive_dir == "openEuler"
    trees = {r.id: r.sources[0].paths for r in euler.releases if r.hub}
    assert trees == {
        f"20.03-lts{sp.lower()}": (
            f"openEuler-20.03-LTS{sp}/debuginfo/{{arch}}/",
            f"openEuler-20.03-LTS{sp}/update/{{arch}}/",
        )
        for sp in ("", "-SP1", "-SP2", "-SP3", "-SP4")
    }
    assert {r.directory for r in euler.releases if r.hub} == {"20.03"}
    (repo,) = euler.repositories
    assert (repo.kernel_release, repo.sha1_signatures, repo.packages) == (
        "rpm",
        True,
        ("kernel-debuginfo",),
    )


def test_ubuntu_adds_the_flavours_the_public_hub_skips(catalog: Catalog) -> None:
    ubuntu = catalog.distribution("ubuntu")
    for repo in ubuntu.repositories:
        assert repo.flavours[:6] == ("generic", "aws", "azure", "gcp", "gke", "gkeop")
        assert set(repo.flavours[6:]) == {"lowlatency", "kvm", "oracle", "ibm", "raspi", "raspi2"}
