"""The README support tables and index.json, built from catalog, state and archive.

Pure functions first: the cells are computed here and
templates/support-tables.md.j2 only lays them out; render_readme swaps the
text between the two markers and keeps every other byte of README.md, which
the maintainers write by hand. render_hub, at the end, is the one step with
I/O: it reads the archive and README.md and writes README.md and index.json.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.archive import ArchiveLayoutError, ArchiveScan, scan_archive
from generator.catalog import TEXT_FIELDS
from generator.errors import BtfhubError
from generator.fsutil import dump_json, write_if_changed
from generator.index import build_index, flag_cell
from generator.model import Catalog, Distribution, Release
from generator.openpgp import SigningKey
from generator.provenance.signing import INDEX_SIGNATURE, update_signature
from generator.resources import PACKAGE
from generator.state import INDEX_FILE, HubState

if TYPE_CHECKING:
    import jinja2

BEGIN_MARKER = "<!-- BEGIN GENERATED: support tables -->"
END_MARKER = "<!-- END GENERATED: support tables -->"

# Templates ship with the tool (next to the generator package), not with the
# hub checkout: `--root` points at data, the layout is the tool's.
TEMPLATES_DIR = "templates"
TABLES_TEMPLATE = "support-tables.md.j2"

# The public hub's order (RHEL family by age, then Fedora and Ubuntu) keeps
# the README familiar to its readers; any other manifest follows, by title.
# Manifest ids: an id missing from the catalog is simply skipped.
LEADING_TABLES = ("centos7", "centos8", "centos-stream8", "alma", "fedora", "ubuntu")

FLAG_FIELDS = ("bpf", "btf")
# A markdown delimiter row needs at least three dashes to be read everywhere.
_MIN_WIDTH = 3


@dataclass(frozen=True)
class Table:
    """One distribution's support table, as cells ready to lay out."""

    title: str
    url: str | None
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]  # per column, for aligned raw markdown
    note: tuple[str, ...]  # lines of the note, shown as a blockquote


def ordered(catalog: Catalog) -> list[Distribution]:
    """Distributions in README order: LEADING_TABLES first, the rest by title, then id."""
    rank = {distro_id: i for i, distro_id in enumerate(LEADING_TABLES)}
    return sorted(
        catalog.distributions,
        key=lambda d: (rank.get(d.id, len(rank)), d.title.casefold(), d.id),
    )


def _cell(text: str) -> str:
    # A pipe would end the cell; a newline would end the row.
    return " ".join(text.split("\n")).replace("|", "\\|")


def release_cell(release: Release, field: str, hub: str) -> str:
    if field == "name":
        return release.name
    if field == "kernel":
        return release.kernel
    if field in FLAG_FIELDS:
        return flag_cell(release.bpf if field == "bpf" else release.btf)
    if field == "hub":
        return hub
    if field in TEXT_FIELDS:
        value = release.field(field)
        return "-" if value is None else value
    raise BtfhubError(f"{release.distro}: column field {field!r} is not a known field")


def _future_cells(distro: Distribution) -> tuple[str, ...] | None:
    future = distro.future
    if future is None:
        return None
    cells = []
    for i, column in enumerate(distro.columns):
        if i == 0:
            cells.append("...")
        elif column.field == "bpf":
            cells.append(flag_cell(future.bpf))
        elif column.field == "btf":
            cells.append(flag_cell(future.btf))
        elif column.field == "hub":
            cells.append(flag_cell(future.hub))
        else:
            cells.append(future.placeholder)
    return tuple(cells)


def build_table(distro: Distribution, releases_index: Mapping[str, Any]) -> Table:
    header = tuple(_cell(c.header) for c in distro.columns)
    rows = [
        tuple(_cell(release_cell(r, c.field, releases_index[r.id]["hub"])) for c in distro.columns)
        for r in distro.releases
    ]
    future = _future_cells(distro)
    if future is not None:
        rows.append(tuple(_cell(c) for c in future))
    widths = tuple(
        max(_MIN_WIDTH, len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))
    )
    note = tuple(distro.note.strip("\n").split("\n")) if distro.note else ()
    return Table(distro.title, distro.url, header, tuple(rows), widths, note)


@functools.cache
def _environment() -> jinja2.Environment:
    # One per process, as Jinja intends: it keeps the compiled template (10 ms
    # a render otherwise; a sync renders more than once, the tests hundreds of times).
    # Imported here: a no-op whose files are settled (hub/rendermemo.py) renders
    # nothing, and Jinja takes about 0.05 s to import.
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # markdown, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_tables(catalog: Catalog, index: Mapping[str, Any]) -> str:
    """The markdown that goes between the README markers (ends with a newline)."""
    tables = [build_table(d, index["distributions"][d.id]["releases"]) for d in ordered(catalog)]
    text = _environment().get_template(TABLES_TEMPLATE).render(tables=tables)
    return text.rstrip("\n") + "\n"


def render_readme(old_readme: str, tables: str) -> str:
    """old_readme with the text between the markers replaced by tables.

    Everything outside the markers, markers included, is kept byte for byte.
    """
    for marker in (BEGIN_MARKER, END_MARKER):
        count = old_readme.count(marker)
        if count != 1:
            found = "is missing" if count == 0 else f"appears {count} times"
            raise BtfhubError(
                f"README.md: the marker {marker} {found}; it must appear exactly once, "
                f"with {BEGIN_MARKER} before {END_MARKER}, around the generated tables"
            )
    start = old_readme.index(BEGIN_MARKER) + len(BEGIN_MARKER)
    end = old_readme.index(END_MARKER)
    if end < start:
        raise BtfhubError(f"README.md: {END_MARKER} comes before {BEGIN_MARKER}")
    # A blank line before the end marker keeps it out of a closing blockquote.
    return f"{old_readme[:start]}\n{tables.rstrip(chr(10))}\n\n{old_readme[end:]}"


# --- the I/O step ---------------------------------------------------------------

README_FILE = "README.md"


@dataclass(frozen=True)
class RenderResult:
    # Files (relative to the root) whose bytes differ from what render
    # produces: written unless check, reported stale when check.
    changed: tuple[str, ...]
    diffs: tuple[str, ...]  # unified diffs of the changed files (check mode only)
    unassigned: tuple[str, ...]  # archive files no release claims

    @property
    def stale(self) -> bool:
        return bool(self.changed)


def _unified(name: str, old: bytes | None, new: bytes) -> str:
    old_lines = [] if old is None else old.decode("utf-8", "replace").splitlines(keepends=True)
    diff = difflib.unified_diff(
        old_lines,
        new.decode().splitlines(keepends=True),
        fromfile=f"a/{name}" if old is not None else "/dev/null",
        tofile=f"b/{name} (btfhub render)",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in diff)


@dataclass(frozen=True)
class Composed:
    """README.md and index.json as render would write them, not yet compared or written."""

    outputs: dict[str, bytes]  # README_FILE, INDEX_FILE
    unassigned: tuple[str, ...]  # archive files no release claims


def compose_hub(root: Path, catalog: Catalog, state: HubState, archive: ArchiveScan) -> Composed:
    """README.md (its tables replaced) and index.json for root's state and files.

    Raises what render must refuse: no README.md or not UTF-8, its markers
    broken, a stray archive file.
    """
    readme_path = root / README_FILE
    try:
        old_readme = readme_path.read_bytes()
    except FileNotFoundError:
        raise BtfhubError(
            f"{readme_path} not found: the tables go between its "
            "<!-- BEGIN/END GENERATED: support tables --> markers"
        ) from None
    if archive.problems:
        raise ArchiveLayoutError(archive.problems)
    modules = {m.entry.path: (m.entry, m.listing) for m in archive.modules}
    index = build_index(catalog, state, archive.entries, modules)
    tables = render_tables(catalog, index)
    try:
        readme_text = old_readme.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BtfhubError(f"{readme_path}: not UTF-8 text ({exc.reason})") from exc
    outputs = {
        README_FILE: render_readme(readme_text, tables).encode("utf-8"),
        INDEX_FILE: dump_json(index),
    }
    return Composed(outputs, tuple(f["path"] for f in index["unassigned"]))


def render_hub(
    root: Path,
    catalog: Catalog,
    state: HubState,
    check: bool = False,
    clean_blobs: Mapping[str, str] | None = None,
    signing_key: SigningKey | None = None,
    archive: ArchiveScan | None = None,
    composed: Composed | None = None,
) -> RenderResult:
    """Render README.md and index.json for root; write them unless check.

    Both files are computed before either is written, so a failure (a broken
    README marker, a stray archive file) leaves both as they were.
    clean_blobs (path -> git blob id of files git reports unchanged) lets the
    archive listing reuse the digests state recorded instead of reading them.
    signing_key: sign index.json into index.json.asc (provenance/signing.py).
    archive: the hub's files when the caller listed them (from its store);
    None: root/archive's. composed: compose_hub's result for this very state
    and archive, when the caller made it earlier (hub/earlyscan.py).
    """
    if composed is None:
        if archive is None:
            archive = scan_archive(root, state.files, clean_blobs, state.module_files)
        composed = compose_hub(root, catalog, state, archive)
    outputs = dict(composed.outputs)
    changed: list[str] = []
    diffs: list[str] = []
    for name, data in outputs.items():
        path = root / name
        old = path.read_bytes() if path.exists() else None
        if old == data:
            continue
        changed.append(name)
        if check:
            diffs.append(_unified(name, old, data))
    signature = update_signature(
        root, outputs[INDEX_FILE], INDEX_FILE in changed, signing_key, check
    )
    if signature.changed:
        changed.append(INDEX_SIGNATURE)
        if check:
            diffs.append(f"{INDEX_SIGNATURE}: does not sign index.json as rendered\n")
        elif signature.signature is not None:
            outputs[INDEX_SIGNATURE] = signature.signature
    if not check:
        for name in changed:  # index.json first: a new signature never covers old bytes
            if name in outputs:
                write_if_changed(root / name, outputs[name])
            else:  # a signature of an index.json that is no more
                (root / name).unlink()
    return RenderResult(tuple(changed), tuple(diffs), composed.unassigned)
