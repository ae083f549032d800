"""Checking manifests: the JSON Schema first, then the rules a schema cannot say.

Every problem of every manifest is collected and returned at once, sorted by
position, so that a contributor fixes a whole pull request in one round.
Schema errors are reworded into short messages (the schema's ``title`` and
``examples`` annotations name what was expected), and rules run on whatever
parsed, skipping values of the wrong type, which the schema already reports.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from generator.kinds import registry
from generator.kinds.base import SOURCE_KEYS, RepositoryKind, key_owners, spoken_list
from generator.kinds.schema import manifest_schema, schema_for
from generator.manifest import Diagnostic, ManifestDocument, dotted, slug
from generator.yamlpos import Path_

if TYPE_CHECKING:  # imported when a manifest is rejected: 0.1 s a run saved
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

# Editors (yaml-language-server) find the schema through this first line.
HEADER = "# yaml-language-server: $schema=../schemas/manifest.schema.json"

DATE_RE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")
DATE_FIELDS = ("release_date", "rhel_date")


def load_schema() -> dict[str, Any]:
    """The manifest schema, its repository kinds' part made from the registry."""
    return manifest_schema()


@functools.cache
def _fast_validator(kinds: tuple[RepositoryKind, ...]) -> Any:
    """jsonschema-rs's validator of the manifest schema for these kinds."""
    return jsonschema_rs.Draft202012Validator(schema_for(kinds))


@functools.cache
def _validator(kinds: tuple[RepositoryKind, ...]) -> Draft202012Validator:
    """jsonschema's, made (and jsonschema imported) only once a manifest is rejected."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema_for(kinds))


def validate_documents(root: Path, docs: list[ManifestDocument]) -> list[Diagnostic]:
    """Every problem in the manifests, sorted by file, line and column."""
    found: set[Diagnostic] = set()
    for doc in docs:
        found.update(_check_header(root, doc))
        if doc.syntax_error is not None:
            found.add(doc.syntax_error)
            continue
        found.update(_schema_diagnostics(doc))
        found.update(_rule_diagnostics(doc))
        found.update(_keyring_rules(root, doc))
        found.update(_control_characters(doc))
    return sorted(found, key=lambda d: (d.file, d.line, d.col, d.path, d.message))


def _at(doc: ManifestDocument, path: Path_, message: str) -> Diagnostic:
    assert doc.loaded is not None
    line, col = doc.loaded.position(path)
    return Diagnostic(doc.file, line, col, dotted(path), message)


def _at_key(doc: ManifestDocument, path: Path_, message: str) -> Diagnostic:
    assert doc.loaded is not None
    line, col = doc.loaded.key_position(path)
    return Diagnostic(doc.file, line, col, dotted(path), message)


def _check_header(root: Path, doc: ManifestDocument) -> Iterator[Diagnostic]:
    try:
        with (root / doc.file).open("rb") as f:
            first = f.readline().decode("utf-8", "replace").rstrip("\r\n")
    except OSError:
        return  # a document not read from disk has no header to check
    if first != HEADER:
        yield Diagnostic(
            doc.file, 1, 1, "", f"first line must be '{HEADER}' (editors find the schema with it)"
        )


# --- schema errors, reworded -------------------------------------------------


def _schema_diagnostics(
    doc: ManifestDocument, schema: Mapping[str, Any] | None = None
) -> Iterator[Diagnostic]:
    """schema: None for the manifest schema."""
    assert doc.loaded is not None
    # jsonschema-rs passes a valid document in microseconds; jsonschema (which
    # words the messages, and has the last word) reads only the others. Both
    # check the same schema.
    if schema is None:
        if _fast_validator(registry.KINDS).is_valid(doc.loaded.data):
            return
        validator = _validator(registry.KINDS)
    else:
        if jsonschema_rs.Draft202012Validator(dict(schema)).is_valid(doc.loaded.data):
            return
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(schema)
    for error in validator.iter_errors(doc.loaded.data):
        path: Path_ = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = list(_subschema(error).get("properties", {}))
            for key in error.instance:
                if key not in known:
                    yield _at_key(doc, (*path, key), _unknown_key(key, known))
        else:
            yield _at(doc, path, _explain(error))


def _unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown key (did you mean '{close[0]}'?)" if close else "unknown key"


def _explain(error: ValidationError) -> str:
    """A short message for a schema error, naming what was expected."""
    kind = error.validator
    value: Any = error.instance
    # jsonschema types these as "Any | Unset"; a failing error always has them.
    expected: Any = error.validator_value
    title = _subschema(error).get("title", "value")
    if kind == "required":
        # One error per missing key; each names them all, and duplicates merge.
        missing = [k for k in expected if isinstance(value, dict) and k not in value]
        plural = "s" if len(missing) > 1 else ""
        return f"missing required key{plural} " + ", ".join(repr(k) for k in missing)
    if kind == "type":
        return _type_message(expected, value)
    if kind == "enum":
        return f"unknown {title} {value!r} (expected one of: {', '.join(map(str, expected))})"
    if kind == "pattern":
        examples = _subschema(error).get("examples", [])
        hint = f" (expected e.g. {' or '.join(examples)})" if examples else ""
        return f"{value!r} is not a {title}{hint}"
    if kind in ("minItems", "minLength"):
        return "must not be empty"
    if kind == "uniqueItems":
        return f"duplicate item {_first_duplicate(value)!r}"
    return str(error.message)


def _subschema(error: ValidationError) -> Mapping[str, Any]:
    """The schema the failing keyword belongs to ({} for a boolean schema)."""
    return error.schema if isinstance(error.schema, Mapping) else {}


_KIND_WORDS = {
    "string": ["a string"],
    "null": ["null"],
    "boolean": ["true", "false"],
    "array": ["a list"],
    "object": ["a mapping"],
    "integer": ["a whole number"],
    "number": ["a number"],
}


def _type_message(expected: str | list[str], value: Any) -> str:
    kinds = [expected] if isinstance(expected, str) else expected
    words = [w for k in kinds for w in _KIND_WORDS.get(k, [k])]
    wanted = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    message = f"expected {wanted}, got {_show(value)}"
    if "string" in kinds and isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads an unquoted 7 or 29 as a number.
        message += f' (quote it: "{value}")'
    return message


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value) if isinstance(value, str) else str(value)


def _first_duplicate(values: Iterable[Any]) -> Any:
    seen: list[Any] = []
    for v in values:
        if v in seen:
            return v
        seen.append(v)
    return None


# --- rules the schema cannot say ---------------------------------------------


def _items(container: Any, key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, mapping) for each mapping in container[key], when that is a list."""
    seq = container.get(key) if isinstance(container, dict) else None
    if isinstance(seq, list):
        for i, item in enumerate(seq):
            if isinstance(item, dict):
                yield i, item


def _rule_diagnostics(doc: ManifestDocument) -> Iterator[Diagnostic]:
    assert doc.loaded is not None
    data = doc.loaded.data
    if not isinstance(data, dict):
        return
    kinds = {
        r["id"]: registry.find_kind(r.get("kind"))
        for _, r in _items(data, "repositories")
        if isinstance(r.get("id"), str)
    }
    yield from _repository_rules(doc, data)
    yield from _duplicate_releases(doc, data)
    for i, release in _items(data, "releases"):
        path: Path_ = ("releases", i)
        yield from _date_rules(doc, path, release)
        yield from _flag_rules(doc, path, release)
        yield from _source_rules(doc, path, release, kinds)
        if "directory" not in release and "directory" not in data:
            yield _at(doc, path, "no archive directory: set directory here or at the top")
    if isinstance(data.get("future"), dict):
        yield from _flag_rules(doc, ("future",), data["future"])


def _repository_rules(doc: ManifestDocument, data: dict[str, Any]) -> Iterator[Diagnostic]:
    first: dict[Any, int] = {}
    for i, repo in _items(data, "repositories"):
        path: Path_ = ("repositories", i)
        rid = repo.get("id")
        if isinstance(rid, str) and rid in first:
            yield _at(
                doc,
                (*path, "id"),
                f"duplicate repository id {rid!r} (as repositories[{first[rid]}])",
            )
        first.setdefault(rid, i)
        # Without a keyring a repository is still signed: by keys the run is
        # given (--keyring, BTFHUB_KEYRINGS), or it fails; only `unsigned: true`
        # goes without (tests/test_keys.py holds the shipped ones to a keyring).
        if repo.get("unsigned") is True and "keyring" in repo:
            yield _at_key(doc, (*path, "unsigned"), "a repository with a keyring is not unsigned")
        if "signing_key_id" in repo and ("keyring" in repo or repo.get("unsigned") is True):
            yield _at_key(
                doc,
                (*path, "signing_key_id"),
                "signing_key_id is for a repository whose key is not shipped: "
                "not with keyring or unsigned",
            )
        if repo.get("sha1_signatures") is True and repo.get("unsigned") is True:
            yield _at_key(
                doc, (*path, "sha1_signatures"), "an unsigned repository has no signatures to allow"
            )
        kind = registry.find_kind(repo.get("kind"))
        if kind is not None:
            yield from _kind_rules(doc, path, repo, kind)


def _kind_rules(
    doc: ManifestDocument, path: Path_, repo: dict[str, Any], kind: RepositoryKind
) -> Iterator[Diagnostic]:
    """What a repository of a registered kind must say: its keys, patterns and own rules."""
    for key, owners in key_owners(registry.KINDS).items():
        if key in repo and kind.name not in owners:
            yield _at_key(
                doc, (*path, key), f"only {spoken_list(owners)} repositories have this key"
            )
    if kind.patterns and isinstance(repo.get("packages"), list):
        for j, pattern in enumerate(repo["packages"]):
            if isinstance(pattern, str) and "{uname}" not in pattern:
                article = "an" if kind.name[0] in "aeiouh" else "a"
                yield _at(
                    doc,
                    (*path, "packages", j),
                    f"{article} {kind.name} package pattern needs {{uname}}",
                )
    for found in kind.rules(repo):
        at = _at_key if found.at_key else _at
        yield at(doc, (*path, *found.path), found.message)


def _keyring_rules(root: Path, doc: ManifestDocument) -> Iterator[Diagnostic]:
    data = doc.loaded.data if doc.loaded is not None else None
    if not isinstance(data, dict):
        return
    for i, repo in _items(data, "repositories"):
        keyring = repo.get("keyring")
        if not isinstance(keyring, str):
            continue
        if ".." in Path(keyring).parts:
            yield _at(doc, ("repositories", i, "keyring"), "must stay inside the hub (no ..)")
        elif not (root / keyring).is_file():
            yield _at(doc, ("repositories", i, "keyring"), f"no such file: {keyring}")


# Markdown shown under a table: the only place a line break belongs.
MULTILINE_KEYS = frozenset({"note"})
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _strings(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in MULTILINE_KEYS:
                yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


def _control_characters(doc: ManifestDocument) -> Iterator[Diagnostic]:
    """No control characters (newline, tab, escape ...) in any value but a note.

    The schema's patterns cannot say it: Python's `$` also matches before a
    final newline, so "7\n" passes a directory pattern. Such a value would
    end up in a path, a URL or a table cell.
    """
    assert doc.loaded is not None
    for path, text in _strings(doc.loaded.data, ()):
        found = CONTROL_RE.search(text)
        if found is not None:
            yield _at(doc, path, f"control character {found.group()!r} in {text!r}")


def _release_id(release: dict[str, Any]) -> tuple[str, str | None]:
    """(the key the id comes from, the id), as catalog.build_distribution derives it."""
    if "id" in release:
        rid = release["id"]
        return "id", rid if isinstance(rid, str) else None
    name = release.get("name")
    return "name", slug(name) if isinstance(name, str) else None


def _duplicate_releases(doc: ManifestDocument, data: dict[str, Any]) -> Iterator[Diagnostic]:
    first: dict[str, int] = {}
    for i, release in _items(data, "releases"):
        key, rid = _release_id(release)
        if rid is None:
            continue
        if rid in first:
            yield _at(
                doc, ("releases", i, key), f"duplicate release {rid!r} (as releases[{first[rid]}])"
            )
        else:
            first[rid] = i


def _is_real_date(text: str) -> bool:
    m = DATE_RE.match(text)
    if m is None:
        return True  # not a date at all: the schema's pattern reports it
    year, month, day = int(m[1]), int(m[2]), int(m[3] or 1)
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _date_rules(
    doc: ManifestDocument, path: Path_, release: dict[str, Any]
) -> Iterator[Diagnostic]:
    for key in DATE_FIELDS:
        value = release.get(key)
        if isinstance(value, str) and not _is_real_date(value):
            yield _at(doc, (*path, key), f"impossible date {value!r}")


def _flag_rules(doc: ManifestDocument, path: Path_, row: dict[str, Any]) -> Iterator[Diagnostic]:
    if row.get("btf") is True and row.get("bpf") is not True:
        yield _at(doc, (*path, "btf"), "btf is true but bpf is not: a kernel with BTF runs BPF")


def _source_rules(
    doc: ManifestDocument,
    path: Path_,
    release: dict[str, Any],
    kinds: dict[str, RepositoryKind | None],
) -> Iterator[Diagnostic]:
    if release.get("hub") is True and not release.get("sources"):
        yield _at(
            doc, (*path, "hub"), "hub is true but no sources: no debug repository to build from"
        )
    for j, source in _items(release, "sources"):
        spath: Path_ = (*path, "sources", j)
        rid = source.get("repository")
        if not isinstance(rid, str):
            continue
        if rid not in kinds:
            defined = ", ".join(sorted(kinds)) or "none"
            yield _at(
                doc, (*spath, "repository"), f"unknown repository {rid!r} (defined: {defined})"
            )
        elif (kind := kinds[rid]) is not None and kind.source_key not in source:
            yield _at(
                doc, spath, f"repository {rid!r} is {kind.name}: the source needs {kind.source_key}"
            )
        if j == 0 and source.get("fallback") is True:
            # A fallback completes earlier sources: alone, a failure of it would
            # pass for a release listed in full with nothing in it.
            yield _at_key(
                doc, (*spath, "fallback"), "the first source is not a fallback: nothing before it"
            )
        kind = kinds.get(rid)
        for key in SOURCE_KEYS:
            if kind is not None and key != kind.source_key and key in source:
                yield _at_key(
                    doc, (*spath, key), f"repository {rid!r} is {kind.name}: it has no {key}"
                )


def schema_diagnostics(schema: Mapping[str, Any], doc: ManifestDocument) -> list[Diagnostic]:
    """Every problem of a YAML file checked by a schema alone (e.g. catalog/hosts/).

    Reworded and positioned like the manifests' own, so `btfhub validate`
    prints one kind of line for every file it checks.
    """
    if doc.syntax_error is not None:
        return [doc.syntax_error]
    found = set(_schema_diagnostics(doc, schema))
    return sorted(found, key=lambda d: (d.file, d.line, d.col, d.path, d.message))
