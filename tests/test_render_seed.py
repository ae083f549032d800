"""The README rendered from the real catalog shows the seed's six tables.

tests/data/seed-tables.md holds the public hub's tables (same values as the
seed). Rendering the repository's catalog with no discovery state and an
empty archive must give every one of their rows, cell for cell, and every
note. Only HUB differs by design: a release the hub builds shows `pending`
until a sync has run (or `Y` / `N/M` afterwards); `-` and blank must match.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from generator.cli import main
from generator.render import BEGIN_MARKER, END_MARKER

REPO = Path(__file__).resolve().parent.parent
SEED = Path(__file__).parent / "data" / "seed-tables.md"
SEED_TITLES = ("CentOS 7", "CentOS 8", "CentOS Stream 8", "Alma", "Fedora", "Ubuntu")
# Rows the catalog adds (issue 8), and Bionic, whose seed "-" HUB recorded what
# the first hub built: the public hub builds it, so this hub does too.
ADDED_ROWS = {
    "CentOS 7": ["AltArch"],
    "CentOS 8": ["8.5.2111"],
    "Fedora": ["24", "25", "26", "27", "28"],
    "Ubuntu": ["Xenial", "Xenial HWE"],
}
# Seed rows the hub builds now though the seed's HUB cell says "-": Bionic GA,
# and Fedora 32-34 (their aarch64 kernels, as the public hub has them).
BUILT_NOW = {("Ubuntu", "Bionic"), *(("Fedora", n) for n in ("32", "33", "34"))}

Table = tuple[list[str], list[list[str]], str]  # header, rows, note


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def parse_tables(text: str, heading: str) -> dict[str, Table]:
    """Tables under headings of the given level ("##", "###"), by title."""
    tables: dict[str, Table] = {}
    pattern = rf"^{heading} (?:\[(.+?)\]\(.*?\)|(.+))$"
    parts = re.split(pattern, text, flags=re.M)
    # re.split with two groups: [before, linked, plain, body, linked, plain, body, ...]
    for i in range(1, len(parts) - 2, 3):
        title = parts[i] or parts[i + 1]
        body = parts[i + 2]
        lines = [ln for ln in body.splitlines() if ln.startswith("|")]
        header = _cells(lines[0])
        rows = [_cells(ln) for ln in lines[2:]]
        note = " ".join(
            ln[1:].strip() for ln in body.splitlines() if ln.startswith(">") and ln[1:].strip()
        )
        tables[title] = (header, rows, note)
    return tables


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Table]:
    if not sorted((REPO / "catalog").glob("*.yaml")):
        pytest.skip("catalog/*.yaml not written yet")
    root = tmp_path_factory.mktemp("hub")
    shutil.copytree(REPO / "catalog", root / "catalog")
    (root / "README.md").write_text(f"# hub\n\n{BEGIN_MARKER}\n{END_MARKER}\n")
    assert main(["render", "--root", str(root)]) == 0
    readme = (root / "README.md").read_text()
    return parse_tables(readme.split(BEGIN_MARKER)[1].split(END_MARKER)[0], "###")


def test_seed_data_has_the_six_tables() -> None:
    tables = parse_tables(SEED.read_text(), "##")
    assert tuple(tables) == SEED_TITLES
    assert [len(rows) for _, rows, _ in tables.values()] == [10, 6, 2, 3, 7, 8]
    assert all(note.startswith("**Note") for _, _, note in tables.values())


@pytest.mark.parametrize("title", SEED_TITLES)
def test_rendered_readme_carries_the_seed_table(rendered: dict[str, Table], title: str) -> None:
    seed_header, seed_rows, seed_note = parse_tables(SEED.read_text(), "##")[title]
    assert title in rendered, f"no table titled {title!r} in the rendered README"
    header, rows, note = rendered[title]
    assert header == seed_header
    seed_names = {r[0] for r in seed_rows}
    assert [r[0] for r in rows if r[0] not in seed_names] == ADDED_ROWS.get(title, [])
    rows = [r for r in rows if r[0] in seed_names]
    assert len(rows) == len(seed_rows), [r[0] for r in rows]
    hub = header.index("HUB")
    for seed_row, row in zip(seed_rows, rows, strict=True):
        assert row[:hub] + row[hub + 1 :] == seed_row[:hub] + seed_row[hub + 1 :]
        if seed_row[hub] == "Y" or (title, row[0]) in BUILT_NOW:
            assert re.fullmatch(r"Y|pending|\d+/\d+", row[hub]), row
        else:
            assert row[hub] == seed_row[hub], row
    assert note.startswith(seed_note)


def test_seed_tables_come_first_in_the_public_hub_order(rendered: dict[str, Table]) -> None:
    assert tuple(rendered)[: len(SEED_TITLES)] == SEED_TITLES
