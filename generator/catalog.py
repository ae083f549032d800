"""Reading catalog/*.yaml into the domain model.

Loading is two steps so that validation can report every problem at once:
``read_documents`` parses each manifest with positions (syntax errors become
diagnostics, never tracebacks); ``build_distribution`` turns a document that
passed validation into a frozen Distribution.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from generator import jsonschemas
from generator.errors import BtfhubError
from generator.manifest import CATALOG_DIR, Diagnostic, ManifestDocument, read_documents, slug
from generator.model import (
    ARCHITECTURES,
    Catalog,
    Column,
    Distribution,
    FutureRow,
    ModuleSelection,
    Release,
    Repository,
    Source,
)
from generator.validation import validate_documents
from generator.yamlpos import safe_load

# Table cells a column may show, besides the flags.
TEXT_FIELDS = ("version", "codename", "rhel", "release_date", "rhel_date")


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


# Repository keys the model has a field for; a kind's other keys go to its options.
REPOSITORY_FIELDS = frozenset(f.name for f in dataclasses.fields(Repository))


def _frozen(value: Any) -> object:
    """A YAML value as a hashable one (a Repository keys the run's listings)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


def _options(raw: dict[str, Any]) -> tuple[tuple[str, object], ...]:
    return tuple(sorted((k, _frozen(v)) for k, v in raw.items() if k not in REPOSITORY_FIELDS))


def _source(raw: dict[str, Any]) -> Source:
    return Source(
        repository=raw["repository"],
        suites=tuple(raw.get("suites", ())),
        paths=tuple(raw.get("paths", ())),
        fallback=raw.get("fallback") is True,
    )


# The module sets `modules: default` names (schema: schemas/module-sets.schema.json).
MODULE_SETS_FILE = f"{CATALOG_DIR}/modules/default.yaml"
MODULE_SETS_SCHEMA = "module-sets.schema.json"


def load_module_sets(root: Path) -> tuple[str, ...]:
    """The names of the default module set (empty when the catalog has no such file)."""
    path = root / MODULE_SETS_FILE
    if not path.is_file():
        return ()
    try:
        doc = safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BtfhubError(f"{MODULE_SETS_FILE}: {exc}") from None
    jsonschemas.check(doc, MODULE_SETS_SCHEMA, MODULE_SETS_FILE)
    return tuple(sorted({str(m["name"]) for m in doc["default"]}))


def _modules(value: Any, default: tuple[str, ...], where: str) -> ModuleSelection | None:
    """A manifest's `modules:` (a list, "default" or "all") as the model's selection."""
    if value is None:
        return None
    if value == "all":
        return ModuleSelection(all=True)
    if value == "default":
        if not default:
            raise BtfhubError(f"{where}: modules: default, but {MODULE_SETS_FILE} lists none")
        return ModuleSelection(default)
    return ModuleSelection(tuple(sorted(set(value))))


def build_distribution(
    doc: ManifestDocument, root: Path | None = None, default_modules: tuple[str, ...] = ()
) -> Distribution:
    """Build the model from a document that validation accepted."""
    assert doc.loaded is not None
    raw: dict[str, Any] = doc.loaded.data
    default_arches = tuple(raw.get("architectures", ARCHITECTURES))
    default_dir = raw.get("directory")
    hub = (root or Path(".")).resolve()
    repositories = tuple(
        Repository(
            id=r["id"],
            kind=r["kind"],
            url=r["url"],
            components=tuple(r.get("components", ("main",))),
            packages=tuple(r["packages"]),
            flavours=tuple(r.get("flavours", ())),
            keyring=str(hub / r["keyring"]) if r.get("keyring") else None,
            unsigned=r.get("unsigned") is True,
            mirrorlist=bool(r.get("mirrorlist", False)),
            moved_to=r.get("moved_to"),
            signing_key_id=r.get("signing_key_id"),
            credentials=r.get("credentials"),
            kernel_release=r.get("kernel_release", "rpm"),
            sha1_signatures=r.get("sha1_signatures") is True,
            modules=_modules(r.get("modules"), default_modules, f"{doc.id} {r['id']}"),
            options=_options(r),
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
                modules=_modules(r.get("modules"), default_modules, f"{doc.id} {r['name']}"),
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
    docs = read_documents(root)
    if not docs:
        raise BtfhubError(f"no manifests found in {root / CATALOG_DIR}")
    diagnostics = validate_documents(root, docs)
    if diagnostics:
        raise CatalogInvalid(diagnostics)
    default_modules = load_module_sets(root)
    return Catalog(tuple(build_distribution(d, root, default_modules) for d in docs))
