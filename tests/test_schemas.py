"""The schemas of the JSON files btfhub reads back: valid, current, and their errors readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from generator import jsonschemas
from generator.model import ARCHITECTURES, KernelState
from generator.shards.outcomes import HANDED_ON, read_outcomes

REPO = Path(__file__).resolve().parent.parent
READ_BACK = (
    jsonschemas.INDEX_SCHEMA,
    jsonschemas.SHARD_MANIFEST_SCHEMA,
    jsonschemas.PLAN_SCHEMA,
    jsonschemas.OUTCOMES_SCHEMA,
    jsonschemas.MIN_CORE_MANIFEST_SCHEMA,
    jsonschemas.LISTING_CACHE_SCHEMA,
)


@pytest.mark.parametrize("name", READ_BACK)
def test_each_schema_is_valid_draft_2020_12_with_an_id(name: str) -> None:
    schema = json.loads((REPO / "schemas" / name).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}")
    Draft202012Validator.check_schema(schema)


def test_the_committed_index_fits_its_schema() -> None:
    index = json.loads((REPO / "index.json").read_text())
    assert jsonschemas.problems(index, jsonschemas.INDEX_SCHEMA, "index.json") == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"x": 1}, ["f.json: $: {'x': 1} is not of type 'array'"]),
        (
            [{"distro": "u", "release": "r", "arch": "x86_64", "uname": "k", "state": "built"}],
            [
                "f.json: $[0].state: 'built' is not one of ['failed', 'ships-btf', 'archived']",
                "f.json: $[0]: 'reason' is a required property",
            ],
        ),
    ],
)
def test_problems_name_the_file_and_the_json_path(document: object, expected: list[str]) -> None:
    assert jsonschemas.problems(document, jsonschemas.OUTCOMES_SCHEMA, "f.json") == expected


def test_a_bad_outcomes_file_is_refused_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.json"
    path.write_text(json.dumps([{"distro": "", "arch": "mips"}]))
    with pytest.raises(jsonschemas.DocumentInvalid) as err:
        read_outcomes(path)
    message = str(err.value)
    assert message.startswith(f"{path}: 6 problem(s) with its contents:")
    for fragment in (
        "$[0].distro: '' should be non-empty",
        "$[0].arch: 'mips' is not one of ['x86_64', 'arm64']",
        "$[0]: 'uname' is a required property",
    ):
        assert f"{path}: {fragment}" in message


def test_schemas_agree_with_the_model() -> None:
    outcomes = json.loads((REPO / "schemas" / jsonschemas.OUTCOMES_SCHEMA).read_text())
    plan = json.loads((REPO / "schemas" / jsonschemas.PLAN_SCHEMA).read_text())
    assert tuple(outcomes["$defs"]["outcome"]["properties"]["arch"]["enum"]) == ARCHITECTURES
    assert tuple(plan["$defs"]["arch"]["enum"]) == ARCHITECTURES
    handed_on = outcomes["$defs"]["outcome"]["properties"]["state"]["enum"]
    # A built kernel is handed on too, with its provenance (generator.shards.outcomes).
    assert handed_on == [s.value for s in (*HANDED_ON, KernelState.ARCHIVED)]
    planned = plan["$defs"]["kernel"]["properties"]["state"]["enum"]
    assert planned == [s.value for s in KernelState]
