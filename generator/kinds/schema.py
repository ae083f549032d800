"""The repository kinds' part of schemas/manifest.schema.json, made from the registry.

The file is committed because editors read it (yaml-language-server, through
each manifest's first line); everything in it but the kinds' part is written
by hand. That part is `$defs.repository` (the `kind` enum, the descriptions
of `url` and `packages`, and every key only some kinds have, with its schema
from the kinds' records) and the descriptions of a source's `suites` and
`paths`. Validation checks against the file with this part made again from
the registry it runs with, so a kind registered in a test is checked as a
committed one is; tests/test_kinds.py holds the committed file current, and
`python -m generator.kinds.schema` rewrites it.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from generator.fsutil import write_if_changed
from generator.kinds import registry
from generator.kinds.base import SOURCE_KEYS, RepositoryKind, key_owners, spoken_list
from generator.resources import read_package_text

SCHEMA_FILE = "schemas/manifest.schema.json"
# Keys every repository has, whatever its kind (hand-written in the file).
COMMON_KEYS = ("id", "kind", "url", "packages", "unsigned", "credentials", "modules")
COMMENT = (
    "Written by hand but for the repository kinds' part ($defs.repository and the "
    "descriptions of a source's suites and paths), which python -m generator.kinds.schema "
    "makes from generator/kinds/; tests/test_kinds.py checks that it is current."
)
WIDTH = 100  # a list or single-key object shorter than this stays on one line


class KindsDisagree(ValueError):
    """Two kinds give one manifest key different schemas."""


def manifest_schema() -> dict[str, Any]:
    """The manifest schema for the kinds registered now."""
    return schema_for(registry.KINDS)


@functools.cache
def schema_for(kinds: tuple[RepositoryKind, ...]) -> dict[str, Any]:
    return with_kinds(json.loads(read_package_text(SCHEMA_FILE)), kinds)


def _grouped(pairs: Iterable[tuple[str, str]]) -> str:
    """[(kind, text)] -> "a and b: text. c: other." (kinds sharing a text named together)."""
    by_text: dict[str, list[str]] = {}
    for name, text in pairs:
        by_text.setdefault(text, []).append(name)
    return " ".join(f"{spoken_list(names)}: {text}." for text, names in by_text.items())


def _kind_keys(kinds: tuple[RepositoryKind, ...]) -> dict[str, dict[str, Any]]:
    """Every key only some kinds have, its description saying which."""
    keys: dict[str, dict[str, Any]] = {}
    first: dict[str, RepositoryKind] = {}
    for kind in kinds:
        for key, schema in kind.keys.items():
            other = first.setdefault(key, kind)
            if dict(schema) != dict(other.keys[key]):
                raise KindsDisagree(f"{other.name} and {kind.name} give {key!r} different schemas")
    for key, owners in key_owners(kinds).items():
        entry = dict(first[key].keys[key])
        if "description" in entry:
            entry["description"] = f"{spoken_list(owners)} only: {entry['description']}"
        keys[key] = entry
    return keys


def with_kinds(schema: dict[str, Any], kinds: tuple[RepositoryKind, ...]) -> dict[str, Any]:
    """A copy of the manifest schema whose kinds' part is made from these kinds."""
    rest = {k: v for k, v in copy.deepcopy(schema).items() if k not in ("$schema", "$comment")}
    schema = {"$schema": schema["$schema"], "$comment": COMMENT, **rest}
    repository = schema["$defs"]["repository"]
    props = {k: v for k, v in repository["properties"].items() if k in COMMON_KEYS}
    props["kind"] = {
        "description": "Repository format: "
        + spoken_list([f"{k.name} ({k.summary})" for k in kinds], last="or")
        + ".",
        "title": "repository kind",
        "enum": [k.name for k in kinds],
    }
    spellings = _grouped((k.name, "/".join(k.arches.values())) for k in kinds)
    props["url"]["description"] = (
        "Base URL; {arch} is replaced by the upstream spelling of the architecture: " + spellings
    )
    props["packages"]["description"] = _grouped((k.name, k.packages_doc) for k in kinds)
    repository["properties"] = {**props, **_kind_keys(kinds)}
    source = schema["$defs"]["source"]["properties"]
    for key in SOURCE_KEYS:
        named = [(k.name, k.source_doc) for k in kinds if k.source_key == key]
        source[key]["description"] = _grouped(named) or "No repository kind reads it."
    return schema


def _format(value: Any, indent: int = 0) -> str:
    """JSON as the file is laid out: 2-space indent, short lists and one-key objects inline."""
    flat = json.dumps(value, ensure_ascii=False)
    inline = isinstance(value, list) or (isinstance(value, dict) and len(value) <= 1)
    if not isinstance(value, list | dict) or (inline and indent + len(flat) <= WIDTH):
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, list):
        items = [pad + _format(v, indent + 2) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    items = [
        f"{pad}{json.dumps(k, ensure_ascii=False)}: {_format(v, indent + 2)}"
        for k, v in value.items()
    ]
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


def render() -> str:
    """The text manifest.schema.json should hold for the registered kinds."""
    return _format(manifest_schema()) + "\n"


def main() -> int:
    """Rewrite the committed schema (in this checkout) when its kinds' part is stale."""
    path = Path(__file__).resolve().parent.parent / SCHEMA_FILE
    write_if_changed(path, render().encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
