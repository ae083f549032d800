"""What the coverage site shows, built from the catalog, an index.json and the host rules.

Pure: no I/O. Two products: the overview the template lays out (one section
per distribution with the README's cells, the coverage per release and
architecture, the notes) and the document the page's script searches
(`SiteData.script`): every kernel as a compact row, the host rules as data
for the script's interpreter of them, the hub's wording of each state.

Kernel rows are arrays, not objects, and the archive path is left for the
script to spell from its slot (checked here against index.json's): a
20,000-kernel hub's data stays a few MB and parses in well under a second.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generator.consumer.hostmap import HostRules
from generator.consumer.hubindex import (
    FAILED_REASON,
    NO_REASON,
    NOT_ARCHIVED_REASON,
    SHIPS_BTF_REASON,
)
from generator.errors import BtfhubError
from generator.model import (
    ARCHIVE_DIR,
    BTF_SUFFIX,
    Catalog,
    Distribution,
    KernelState,
    Release,
)
from generator.render import build_table, ordered
from generator.site.extras import Shared, kernel_extras

# The order of the coverage bars and counts; the words the page uses for them.
STATES = (
    KernelState.ARCHIVED,
    KernelState.FAILED,
    KernelState.MISSING,
    KernelState.SHIPS_BTF,
)
STATE_WORDS = {
    KernelState.ARCHIVED: "archived",
    KernelState.FAILED: "failed",
    KernelState.MISSING: "not archived yet",
    KernelState.SHIPS_BTF: "ships its own BTF",
}
NO_SLOT = -1  # a kernel row's distribution/release for a file in no catalog release


@dataclass(frozen=True)
class HubLinks:
    """Where readers get the files: the index their commands read, the download base."""

    index: str  # what `btfhub fetch --index` is given (a URL or a path)
    base_url: str | None  # `--base-url`, when the files are not beside the index
    download: str | None  # link prefix for archive paths (None: no download links)


@dataclass(frozen=True)
class Coverage:
    """One release on one architecture: its kernels counted by state."""

    arch: str
    counts: tuple[tuple[KernelState, int], ...]  # STATES order, zero counts left out
    total: int
    words: str  # the counts in words, or the release's HUB cell when it lists none

    @property
    def bar_style(self) -> str:
        """Where each state's part of the bar ends, as CSS variables (site.css draws it).

        One element per bar, not one per state: a hub of thousands of releases
        has that many bars. Fixed digits keep the bytes reproducible.
        """
        ends, done = [], 0
        for state in STATES:
            done += dict(self.counts).get(state, 0)
            percent = f"{100 * done / max(self.total, 1):.2f}".rstrip("0").rstrip(".")
            ends.append(f"--{state.value[0]}:{percent}%")
        return ";".join(ends)


@dataclass(frozen=True)
class ReleaseRow:
    release_id: str
    name: str
    cells: tuple[str, ...]  # the README's cells, in the manifest's columns
    coverage: tuple[Coverage, ...]
    kernels: int


@dataclass(frozen=True)
class Section:
    """One distribution: the README's table with coverage, and its note."""

    id: str
    title: str
    url: str | None
    header: tuple[str, ...]
    rows: tuple[ReleaseRow, ...]
    future: tuple[str, ...] | None  # the README's trailing "..." row
    note: str  # markdown, as the manifest writes it
    counts: tuple[tuple[KernelState, int], ...]


@dataclass(frozen=True)
class SiteData:
    sections: tuple[Section, ...]
    counts: tuple[tuple[KernelState, int], ...]  # the whole hub
    kernels: int
    unassigned: int  # archive files in no catalog release
    links: HubLinks
    script: dict[str, Any]  # what data.js hands the page's script


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _state(entry: Mapping[str, Any]) -> KernelState:
    try:
        return KernelState(str(entry.get("state")))
    except ValueError:
        return KernelState.MISSING  # a state a newer btfhub wrote: not usable here


_CHUNK = re.compile(r"(\d+)")


def natural_key(uname: str) -> tuple[tuple[int, int | str], ...]:
    """5.4.0-42 before 5.4.0-100: numbers compare as numbers."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _CHUNK.split(uname) if part
    )


def counts_words(counts: Sequence[tuple[KernelState, int]]) -> str:
    return ", ".join(f"{n} {STATE_WORDS[state]}" for state, n in counts)


def _counted(counter: Counter[KernelState]) -> tuple[tuple[KernelState, int], ...]:
    return tuple((s, counter[s]) for s in STATES if counter[s])


# HUB cells that say why a release has no kernels yet (index.hub_status).
_WAITING = ("pending", "needs credentials", "needs key")


def _none_known(release: Release, hub_cell: str, discovered: bool) -> str:
    """Why an architecture of a release lists no kernel, in words."""
    if release.hub is not True:
        return "ships its own BTF" if release.btf else "not built by the hub"
    if discovered:
        return "none published upstream"
    return hub_cell if hub_cell in _WAITING else "pending"


def _rules(rules: HostRules) -> dict[str, Any]:
    """The host rules for the script's interpreter, in HostRules' (sorted) order."""
    return {
        "architectures": dict(rules.architectures),
        "distributions": [
            {
                "id": d.id,
                "archive_dir": d.archive_dir,
                "version": d.version.value,
                "versions": dict(d.versions),
                "codenames": dict(d.codenames),
                "aliases": list(d.aliases),
                "variants": [
                    {"name_prefix": v.name_prefix, "archive_dir": v.archive_dir} for v in d.variants
                ],
            }
            for d in rules.distributions
        ],
    }


class _Rows:
    """The script's kernel rows and slots, appended in page order."""

    def __init__(self) -> None:
        self.slots: list[list[Any]] = []
        self.kernels: list[list[Any]] = []
        self.shared = Shared()

    def slot(self, distro: int, release: int, arch: str, directory: str, release_dir: str) -> int:
        self.slots.append([distro, release, arch, directory, release_dir])
        return len(self.slots) - 1

    def add(self, slot: int, uname: str, entry: Mapping[str, Any], maps: Mapping[str, Any]) -> None:
        """One kernel; maps: its architecture's entry, whose optional maps may name it."""
        _, _, arch, directory, release_dir = self.slots[slot]
        state = _state(entry)
        size = sha256 = None
        if state is KernelState.ARCHIVED:
            expected = f"{ARCHIVE_DIR}/{directory}/{release_dir}/{arch}/{uname}{BTF_SUFFIX}"
            if entry.get("path") != expected:
                raise BtfhubError(
                    f"index.json: {entry.get('path')!r} is not the archive path of {uname} "
                    f"({expected})"
                )
            size, sha256 = entry.get("size"), entry.get("sha256")
        package = _obj(entry.get("package"))
        built_from = " ".join(str(package[k]) for k in ("name", "version") if package.get(k))
        reason = entry.get("reason") if state is KernelState.FAILED else None
        row = [slot, uname, state.value, size, sha256, reason or None, built_from or None]
        self.kernels.append(row + kernel_extras(maps, uname, entry.get("sha256"), self.shared))


def _release_entries(distro: Distribution, index: Mapping[str, Any]) -> Mapping[str, Any]:
    entry = _obj(_obj(index.get("distributions")).get(distro.id))
    releases = _obj(entry.get("releases"))
    missing = [r.id for r in distro.releases if r.id not in releases]
    if missing:
        raise BtfhubError(
            f"index.json has no release {', '.join(missing)} of {distro.id}: it was not "
            "rendered from this catalog (run `btfhub render`, or give the hub's own --root)"
        )
    return releases


def build_site_data(
    catalog: Catalog, index: Mapping[str, Any], rules: HostRules, links: HubLinks
) -> SiteData:
    rows = _Rows()
    sections: list[Section] = []
    total: Counter[KernelState] = Counter()
    script_distros: list[dict[str, Any]] = []
    for d_index, distro in enumerate(ordered(catalog)):
        releases_index = _release_entries(distro, index)
        table = build_table(distro, releases_index)
        release_rows: list[ReleaseRow] = []
        in_distro: Counter[KernelState] = Counter()
        script_releases: list[dict[str, Any]] = []
        for r_index, (release, cells) in enumerate(zip(distro.releases, table.rows, strict=False)):
            entry = releases_index[release.id]
            hub_cell = str(entry.get("hub", ""))
            coverage: list[Coverage] = []
            in_release = 0
            for arch, arch_entry in sorted(_obj(entry.get("architectures")).items()):
                kernels = _obj(_obj(arch_entry).get("kernels"))
                slot = rows.slot(d_index, r_index, arch, distro.archive_dir, release.directory)
                counter: Counter[KernelState] = Counter()
                for uname in sorted(kernels, key=natural_key):
                    kernel = _obj(kernels[uname])
                    counter[_state(kernel)] += 1
                    rows.add(slot, uname, kernel, _obj(arch_entry))
                counted = _counted(counter)
                discovered = bool(_obj(arch_entry).get("discovered"))
                words = counts_words(counted) or _none_known(release, hub_cell, discovered)
                coverage.append(Coverage(arch, counted, len(kernels), words))
                in_distro.update(counter)
                in_release += len(kernels)
            release_rows.append(
                ReleaseRow(release.id, release.name, cells, tuple(coverage), in_release)
            )
            script_releases.append(
                {
                    "id": release.id,
                    "name": release.name,
                    "dir": release.directory,
                    "btf": release.btf,
                    "hub": release.hub,
                }
            )
        future = table.rows[len(distro.releases)] if distro.future is not None else None
        sections.append(
            Section(
                distro.id,
                distro.title,
                distro.url,
                table.header,
                tuple(release_rows),
                future,
                "\n".join(table.note),
                _counted(in_distro),
            )
        )
        total.update(in_distro)
        script_distros.append(
            {
                "id": distro.id,
                "title": distro.title,
                "dir": distro.archive_dir,
                "releases": script_releases,
            }
        )
    unassigned = _unassigned(index, rows)
    total[KernelState.ARCHIVED] += unassigned
    script = {
        "distros": script_distros,
        "slots": rows.slots,
        "kernels": rows.kernels,
        "shared": rows.shared.values,
        "rules": _rules(rules),
        "links": {"index": links.index, "base_url": links.base_url, "download": links.download},
        "layout": {"archive": ARCHIVE_DIR, "suffix": BTF_SUFFIX},
        "words": {s.value: STATE_WORDS[s] for s in STATES},
        "reasons": {
            "failed": FAILED_REASON,
            "no_reason": NO_REASON,
            "ships-btf": SHIPS_BTF_REASON,
            "missing": NOT_ARCHIVED_REASON,
        },
    }
    return SiteData(
        tuple(sections),
        _counted(total),
        sum(total.values()),
        unassigned,
        links,
        script,
    )


def _unassigned(index: Mapping[str, Any], rows: _Rows) -> int:
    """Archive files in no catalog release: searchable under their own directories."""
    count = 0
    slots: dict[tuple[str, str, str], int] = {}
    for entry in index.get("unassigned") or ():
        path = str(_obj(entry).get("path", ""))
        parts = path.split("/")
        if len(parts) != 5 or parts[0] != ARCHIVE_DIR or not parts[4].endswith(BTF_SUFFIX):
            raise BtfhubError(f"index.json: unassigned {path!r} is not an archive path")
        _, directory, release_dir, arch, name = parts
        key = (directory, release_dir, arch)
        if key not in slots:
            slots[key] = rows.slot(NO_SLOT, NO_SLOT, arch, directory, release_dir)
        uname = name[: -len(BTF_SUFFIX)]
        rows.add(slots[key], uname, {"state": "archived", **_obj(entry)}, {})
        count += 1
    return count
