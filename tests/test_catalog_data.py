"""The catalog carries the seed document's support tables, value for value.

tests/data/seed-tables.md holds the seed's six tables as pipe tables; each is
parsed here and compared, row by row and cell by cell, with the manifest of
the same title as loaded by generator.catalog.load_catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator.catalog import load_catalog
from generator.model import Catalog, Distribution, Release

ROOT = Path(__file__).resolve().parent.parent
SEED = Path(__file__).resolve().parent / "data" / "seed-tables.md"
FLAGS = {"Y": True, "-": False, "": None}
FLAG_FIELDS = ("bpf", "btf", "hub")
SEED_TITLES = ["CentOS 7", "CentOS 8", "CentOS Stream 8", "Alma", "Fedora", "Ubuntu"]
# Rows the catalog adds to the seed's tables (issue 8: what the public hub serves).
ADDED_ROWS = {
    "CentOS 7": ["AltArch"],
    "CentOS 8": ["8.5.2111"],
    "CentOS Stream 8": [],
    "Alma": [],
    "Fedora": ["24", "25", "26", "27", "28"],
    "Ubuntu": ["Xenial", "Xenial HWE"],
}
# Seed cells the catalog changes on purpose: Bionic's "-" HUB recorded what
# the first hub built; the public hub builds Bionic's GA kernels, and Fedora
# 32 to 34's aarch64 kernels (fedora/3x/arm64).
CHANGED_CELLS = {
    ("Ubuntu", "Bionic", "hub"): True,
    ("Fedora", "32", "hub"): True,
    ("Fedora", "33", "hub"): True,
    ("Fedora", "34", "hub"): True,
}


@dataclass
class SeedTable:
    headers: list[str]
    rows: list[list[str]]
    note: str


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_seed(text: str) -> dict[str, SeedTable]:
    tables: dict[str, SeedTable] = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = section.partition("\n")
        lines = body.splitlines()
        table = [_cells(line) for line in lines if line.startswith("|")]
        note = " ".join(line.lstrip(">").strip() for line in lines if line.startswith(">"))
        # table[1] is the |---|---| separator
        tables[title.strip()] = SeedTable(table[0], table[2:], note)
    return tables


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT)


@pytest.fixture(scope="module")
def seed() -> dict[str, SeedTable]:
    return parse_seed(SEED.read_text(encoding="utf-8"))


def _distribution(catalog: Catalog, title: str) -> Distribution:
    matches = [d for d in catalog.distributions if d.title == title]
    assert len(matches) == 1, f"expected one manifest titled {title!r}"
    return matches[0]


def _value(release: Release, field: str) -> str | bool | None:
    """The model's value behind a column, in the seed's terms."""
    if field == "name":
        return release.name
    if field == "kernel":
        return release.kernel
    if field in FLAG_FIELDS:
        flag: bool | None = getattr(release, field)
        return flag
    return release.field(field)


def _seed_value(cell: str, field: str) -> str | bool | None:
    if field in FLAG_FIELDS:
        return FLAGS[cell]
    if field in ("name", "kernel"):
        return cell
    return None if cell == "-" else cell  # text fields: "-" is an empty cell


def test_seed_file_has_the_six_tables(seed: dict[str, SeedTable]) -> None:
    assert list(seed) == SEED_TITLES
    # A parser that lost rows would make the comparisons below vacuous.
    assert [len(t.rows) for t in seed.values()] == [10, 6, 2, 3, 7, 8]


@pytest.mark.parametrize("title", SEED_TITLES)
def test_columns_in_seed_order(title: str, catalog: Catalog, seed: dict[str, SeedTable]) -> None:
    dist = _distribution(catalog, title)
    assert [c.header for c in dist.columns] == seed[title].headers


@pytest.mark.parametrize("title", SEED_TITLES)
def test_every_row_and_value(title: str, catalog: Catalog, seed: dict[str, SeedTable]) -> None:
    """The seed's rows in the seed's order, value for value; added rows are listed above."""
    dist = _distribution(catalog, title)
    fields = [c.field for c in dist.columns]
    rows = [r for r in seed[title].rows if r[0] != "..."]
    seed_names = {row[0] for row in rows}
    expected = [
        [
            CHANGED_CELLS.get((title, row[0], f), _seed_value(c, f))
            for c, f in zip(row, fields, strict=True)
        ]
        for row in rows
    ]
    actual = [[_value(r, f) for f in fields] for r in dist.releases if r.name in seed_names]
    assert actual == expected
    assert [r.name for r in dist.releases if r.name not in seed_names] == ADDED_ROWS[title]


@pytest.mark.parametrize("title", SEED_TITLES)
def test_future_row(title: str, catalog: Catalog, seed: dict[str, SeedTable]) -> None:
    dist = _distribution(catalog, title)
    future_rows = [r for r in seed[title].rows if r[0] == "..."]
    if not future_rows:
        assert dist.future is None
        return
    (row,) = future_rows
    assert dist.future is not None
    for cell, column in zip(row[1:], dist.columns[1:], strict=True):
        if column.field in FLAG_FIELDS:
            assert getattr(dist.future, column.field) is FLAGS[cell], column.header
        else:
            assert dist.future.placeholder == cell, column.header


@pytest.mark.parametrize("title", SEED_TITLES)
def test_note(title: str, catalog: Catalog, seed: dict[str, SeedTable]) -> None:
    """The seed's note comes first, word for word; notes on added rows follow it."""
    assert _words(_distribution(catalog, title).note).startswith(_words(seed[title].note))


NEW_KIND_DIRS = ("ol", "amzn", "rhel", "sles")
# Distributions the public hub does not carry (issue 21): tests/test_catalog_distros.py.
UNHUBBED_DIRS = ("photon", "opensuse-leap", "openEuler")


def test_hub_releases_use_the_public_archive_layout(catalog: Catalog) -> None:
    """archive/<distro>/<release dir>/ as btfhub-archive has it; HWE under its base."""
    dirs = {
        (d.archive_dir, r.name): r.directory
        for d in catalog.distributions
        for r in d.releases
        if r.hub
    }
    centos = {name: d for (distro, name), d in dirs.items() if distro == "centos"}
    assert centos.pop("AltArch") == "7"
    assert len(centos) == 16
    assert centos == {name: name.split(".")[0] for name in centos}  # 7.x.y -> "7"
    # The distributions of issue 8's new repository kinds: tests/test_catalog_kinds.py.
    others = {
        k: v for k, v in dirs.items() if k[0] not in ("centos", *NEW_KIND_DIRS, *UNHUBBED_DIRS)
    }
    assert others == {
        **{("fedora", n): n for n in ("24", "25", "26", "27", "28")},
        ("fedora", "29"): "29",
        ("fedora", "30"): "30",
        **{("fedora", n): n for n in ("31", "32", "33", "34")},
        ("ubuntu", "Xenial"): "16.04",
        ("ubuntu", "Xenial HWE"): "16.04",
        ("ubuntu", "Bionic"): "18.04",
        ("ubuntu", "Bionic HWE"): "18.04",
        ("ubuntu", "Focal"): "20.04",
        ("ubuntu", "Focal HWE"): "20.04",
        ("debian", "9 (Stretch)"): "9",
        ("debian", "10 (Buster)"): "10",
        ("debian", "11 (Bullseye)"): "11",
    }


# Releases with one architecture, as upstream (and the public hub) has them.
ONE_ARCH = {
    ("centos7", "altarch"): ("arm64",),  # CentOS 7 AltArch: the aarch64 tree
    **{("fedora", n): ("x86_64",) for n in ("24", "25", "26", "27")},  # aarch64 secondary
    # x86_64 ships BTF; the public hub carries the aarch64 kernels.
    **{("fedora", n): ("arm64",) for n in ("32", "33", "34")},
}


def test_every_hub_release_has_both_architectures(catalog: Catalog) -> None:
    for dist in catalog.distributions:
        if dist.archive_dir in (*NEW_KIND_DIRS, *UNHUBBED_DIRS):
            continue  # as upstream has them: test_catalog_kinds.py, test_catalog_distros.py
        for release in dist.releases:
            expected = ONE_ARCH.get((dist.id, release.id), ("x86_64", "arm64"))
            assert release.architectures == expected, (dist.id, release.id)


def test_debian(catalog: Catalog) -> None:
    debian = catalog.distribution("debian")
    rows = [(r.id, r.directory, r.kernel, r.field("release_date"), r.hub) for r in debian.releases]
    assert rows == [
        ("stretch", "9", "4.9.0", "2017-06-17", True),
        ("buster", "10", "4.19.0", "2019-07-06", True),
        ("bullseye", "11", "5.10.0", "2021-08-14", True),
        ("bookworm", "12", "6.1.0", "2023-06-10", False),
    ]
    bookworm = debian.releases[-1]
    assert [s.repository for s in bookworm.sources] == ["debian"]
    stretch, buster, bullseye = debian.releases[:3]
    # The public hub's debian/9 and debian/10 carry the next release's kernel.
    assert stretch.series == ("4.9.0", "4.19.0") and buster.series == ("4.19.0", "5.10.0")
    assert [(s.repository, s.suites) for s in buster.sources] == [
        ("debian-archive", ("buster", "buster-updates", "buster-backports")),
        ("debian-archive-security", ("buster/updates",)),
    ]
    assert [s.repository for s in bullseye.sources] == ["debian", "debian-security"]
    assert all("rt-{arch}" in r.flavours for r in debian.repositories)
    assert debian.repository("debian").url == "http://deb.debian.org/debian/"
