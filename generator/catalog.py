"""Reading catalog/*.yaml into the domain model.

Loading is two steps so that validation can report every problem at once:
``read_documents`` parses each manifest with positions (syntax errors become
diagnostics, never tracebacks); ``build_distribution`` turns a document that
passed validation into a frozen Distribution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import BtfhubError
from generator.model import (
    ARCHITECTURES,
    Catalog,
    Column,
    Distribution,
    FutureRow,
    Release,
    Repository,
    Source,
)
from generator.yamlpos import LoadedYaml, YamlSyntaxError, load_yaml

CATALOG_DIR = "catalog"

# Table cells a column may show, besides the flags.
TEXT_FIELDS = ("version", "codename", "rhel", "release_date", "rhel_date")


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a manifest, printed as file:line:col: path: message."""

    file: str  # relative to the hub root, e.g. catalog/ubuntu.yaml
    line: int
    col: int
    path: str  # dotted, e.g. releases[3].kernel ("" for the whole file)
    message: str

    def format(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}"

    def github(self) -> str:
        """The GitHub Actions workflow command that annotates this line of the diff."""
        where = f"{self.path}: " if self.path else ""
        file = _escape_property(self.file)
        message = _escape_data(f"{where}{self.message}")
        return f"::error file={file},line={self.line},col={self.col}::{message}"


def _escape_data(text: str) -> str:
    # A raw newline would end the workflow command and % starts an escape.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # Property values are also split on , and :
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True)
class ManifestDocument:
    file: str  # relative path, e.g. catalog/ubuntu.yaml
    id: str  # file stem
    loaded: LoadedYaml | None  # None when the YAML did not parse
    syntax_error: Diagnostic | None = None


def dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def manifest_files(root: Path) -> list[Path]:
    return sorted((root / CATALOG_DIR).glob("*.yaml"))


def read_documents(root: Path) -> list[ManifestDocument]:
    docs = []
    for path in manifest_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            diag = Diagnostic(rel, 1, 1, "", f"not UTF-8 text: {exc.reason}")
            docs.append(ManifestDocument(rel, path.stem, None, diag))
            continue
        try:
            docs.append(ManifestDocument(rel, path.stem, load_yaml(text)))
        except YamlSyntaxError as exc:
            diag = Diagnostic(rel, exc.line, exc.col, "", exc.message)
            docs.append(ManifestDocument(rel, path.stem, None, diag))
    return docs


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _source(raw: dict[str, Any]) -> Source:
    return Source(
        repository=raw["repository"],
        suites=tuple(raw.get("suites", ())),
        paths=tuple(raw.get("paths", ())),
    )


def build_distribution(doc: ManifestDocument, root: Path | None = None) -> Distribution:
    """Build the model from a document that validation accepted."""
    assert doc.loaded is not None
    raw: dict[str, Any] = doc.loaded.data
    default_arches = tuple(raw.get("architectures", ARCHITECTURES))
    default_dir = raw.get("directory")
    repositories = tuple(
        Repository(
            id=r["id"],
            kind=r["kind"],
            url=r["url"],
            components=tuple(r.get("components", ("main",))),
            packages=tuple(r["packages"]),
            flavours=tuple(r.get("flavours", ())),
            keyring=(
                str((root or Path(".")).resolve() / r["keyring"]) if r.get("keyring") else None
            ),
            unsigned=r.get("unsigned") is True,
        )
        for r in raw.get("repositories", [])
    )
    releases = []
    for r in raw["releases"]:
        kernel = str(r["kernel"])
        releases.append(
            Release(
                distro=doc.id,
                id=str(r.get("id") or slug(str(r["name"]))),
                name=str(r["name"]),
                directory=str(r.get("directory", default_dir)),
                kernel=kernel,
                series=tuple(str(s) for s in r.get("series", [kernel])),
                bpf=_flag(r.get("bpf")),
                btf=_flag(r.get("btf")),
                hub=_flag(r.get("hub")),
                architectures=tuple(r.get("architectures", default_arches)),
                sources=tuple(_source(s) for s in r.get("sources", [])),
                fields=tuple(
                    (f, None if r.get(f) is None else str(r[f])) for f in TEXT_FIELDS if f in r
                ),
            )
        )
    future = raw.get("future")
    return Distribution(
        id=doc.id,
        title=raw["title"],
        archive_dir=raw["archive_dir"],
        columns=tuple(Column(c["header"], c["field"]) for c in raw["columns"]),
        releases=tuple(releases),
        repositories=repositories,
        note=raw.get("note"),
        future=(
            FutureRow(
                bpf=_flag(future.get("bpf")),
                btf=_flag(future.get("btf")),
                hub=_flag(future.get("hub")),
                placeholder=future.get("placeholder", "..."),
            )
            if future
            else None
        ),
        url=raw.get("url"),
    )


class CatalogInvalid(BtfhubError):
    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        lines = "\n".join(d.format() for d in diagnostics)
        super().__init__(f"the catalog is invalid (run `btfhub validate`):\n{lines}")
        self.diagnostics = diagnostics


def load_catalog(root: Path) -> Catalog:
    """Load and validate every manifest; raise CatalogInvalid listing all problems."""
    from generator.validation import validate_documents

    docs = read_documents(root)
    if not docs:
        raise BtfhubError(f"no manifests found in {root / CATALOG_DIR}")
    diagnostics = validate_documents(root, docs)
    if diagnostics:
        raise CatalogInvalid(diagnostics)
    return Catalog(tuple(build_distribution(d, root) for d in docs))
