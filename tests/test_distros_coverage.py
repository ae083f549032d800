"""bench/distros_coverage.py: the added distributions' kernels, laid out and planned.

A slice of tests/data/added-kernels.txt (the first and last kernels of every
distribution, release, arch and flavour) is published as Photon OS, openSUSE
Leap and openEuler lay their trees out, and planned by the real `btfhub plan`
against the shipped catalog: the flavours the catalog builds are planned in
full, those it does not (no BPF syscall) are reported with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tests.kit.benchmod import load_bench

REPO = Path(__file__).resolve().parent.parent
dc = load_bench("distros_coverage")


def _slice() -> list[object]:
    kernels = dc.cov.parse_list(dc.DEFAULT_LIST.read_text().splitlines())
    groups: dict[tuple[str, str, str, str], list[object]] = defaultdict(list)
    for k in kernels:
        groups[(k.distro, k.release_dir, k.arch, dc.flavour(k))].append(k)
    return sorted({k for ks in groups.values() for k in (ks[0], ks[-1])})


def test_the_added_kernels_are_planned_where_the_catalog_builds_them(tmp_path: Path) -> None:
    kernels = _slice()
    result = dc.measure(kernels, REPO, tmp_path)
    assert result.plan_errors == ()
    groups = dc.added(result, set())
    not_built = {
        ("photon", "3.0", "arm64", "linux"),
        ("photon", "3.0", "x86_64", "secure"),
        ("photon", "4.0", "arm64", "linux"),
        ("photon", "4.0", "x86_64", "esx"),
        ("photon", "4.0", "x86_64", "secure"),
    }
    for key, (listed, planned, _) in groups.items():
        assert planned == (0 if key in not_built else listed), key
    assert {k[0] for k in groups} == {"photon", "opensuse-leap", "openEuler"}
    assert ("opensuse-leap", "15.3", "x86_64", "azure") in groups
    why = {dc.flavour(k): result.why_missed(k) for k in result.missed() if k.release_dir == "4.0"}
    assert why["esx"].startswith("published upstream, but no release")
    assert why["linux"] == "no release with hub: true builds this directory and arch"
    text = dc.report(groups, result)
    assert "photon/5.0/arm64 esx" in text and "not planned:" in text


def test_the_public_hub_has_none_of_them() -> None:
    added = dc.cov.parse_list(dc.DEFAULT_LIST.read_text().splitlines())
    public = dc.cov.parse_list(dc.cov.DEFAULT_LIST.read_text().splitlines())
    assert {k.distro for k in added} == {"photon", "opensuse-leap", "openEuler"}
    assert not {k.path for k in added} & {k.path for k in public}
