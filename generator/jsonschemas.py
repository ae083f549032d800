"""The JSON files btfhub reads back, checked against their schemas in schemas/.

index.json (the hub state), shard manifests, plan files and outcomes files
are written by btfhub, but they travel (through git, CI artifacts, another
job's workspace), so each is checked against its JSON Schema before a
single field is used. Every problem is reported at once, naming the file
and the JSON path, e.g. ``index.json: $.distributions.u.releases: ...``.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from generator.errors import BtfhubError
from generator.resources import read_package_text

if TYPE_CHECKING:  # imported when a document is rejected: 0.1 s a run saved
    from jsonschema import Draft202012Validator

SCHEMAS_DIR = "schemas"
INDEX_SCHEMA = "index.schema.json"
SHARD_MANIFEST_SCHEMA = "shard-manifest.schema.json"
PLAN_SCHEMA = "plan.schema.json"
OUTCOMES_SCHEMA = "outcomes.schema.json"
MIN_CORE_MANIFEST_SCHEMA = "min-core-manifest.schema.json"
LISTING_CACHE_SCHEMA = "listing-cache.schema.json"
MODULES_FILE_SCHEMA = "modules-file.schema.json"
SOURCE_MEMO_SCHEMA = "source-memo.schema.json"


class DocumentInvalid(BtfhubError):
    """A document that does not fit its schema; problems lists each one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) with its contents:\n{lines}")


@functools.cache
def _load(name: str) -> dict[str, Any]:
    relative = f"{SCHEMAS_DIR}/{name}"
    try:
        schema: dict[str, Any] = json.loads(read_package_text(relative))
    except ValueError as exc:
        raise BtfhubError(f"cannot read the schema {relative}: {exc}") from None
    return schema


# Schemas that others refer to by $ref (a shard manifest's outcomes are an
# outcomes file's list; an outcome's provenance is index.json's; a kept source
# listing's packages are the listing cache's).
_SHARED = (OUTCOMES_SCHEMA, INDEX_SCHEMA, LISTING_CACHE_SCHEMA)


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    # jsonschema (words the problems) is only needed once a document is rejected.
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schemas = [_load(s) for s in (*_SHARED, name)]
    for schema in schemas:
        Draft202012Validator.check_schema(schema)
    resources = [(s["$id"], Resource.from_contents(s)) for s in schemas[:-1]]
    registry: Registry[Any] = Registry().with_resources(resources)
    return Draft202012Validator(schemas[-1], registry=registry)


@functools.cache
def _fast_validator(name: str) -> Any:
    """The same schema compiled by jsonschema-rs (the registry holds the shared schemas)."""
    registry = jsonschema_rs.Registry([(s["$id"], s) for s in map(_load, _SHARED)])
    return jsonschema_rs.Draft202012Validator(_load(name), registry=registry)


def fits(document: Any, schema: str) -> bool:
    """Whether `document` fits the schema, for a file that is ignored when it does not
    (a cache): no problem is worded, which for a large document would cost seconds."""
    valid: bool = _fast_validator(schema).is_valid(document)
    return valid


def problems(document: Any, schema: str, source: str) -> list[str]:
    """Every way `document` breaks the schema, as "source: $.json.path: message", sorted.

    A valid document (every run's index.json) is passed by the Rust validator
    alone; only one it rejects goes through jsonschema, whose messages and
    JSON paths are the ones reported (and which has the last word).
    """
    if _fast_validator(schema).is_valid(document):
        return []
    found = {
        f"{source}: {error.json_path}: {error.message}"
        for error in _validator(schema).iter_errors(document)
    }
    return sorted(found)


def check(document: Any, schema: str, source: str) -> None:
    """Raise DocumentInvalid listing every problem unless `document` fits the schema."""
    found = problems(document, schema, source)
    if found:
        raise DocumentInvalid(source, found)
