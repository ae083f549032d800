"""`btfhub validate`: every problem reported at once as file:line:col: path: message.

Each test writes real manifests into a hub directory under tmp_path, breaks
one thing in a known place and asserts the exact line printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from generator.catalog import TEXT_FIELDS
from generator.cli import main
from generator.manifest import Diagnostic
from generator.model import ARCHITECTURES, KERNEL_RE
from generator.validation import load_schema
from tests.kit.manifests import GOOD, edit, hub

ROOT = Path(__file__).resolve().parent.parent


def validate(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["validate", "--root", str(root)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out.splitlines()


def assert_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *expected: str
) -> None:
    code, lines = validate(hub(tmp_path, x=text), capsys)
    assert (code, lines) == (1, list(expected))


# --- the shipped catalog and the happy path ---------------------------------


def test_shipped_catalog_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = validate(ROOT, capsys)
    manifests = len(list((ROOT / "catalog").glob("*.yaml")))
    assert code == 0
    assert len(lines) == 1
    assert lines[0].startswith(f"{manifests} manifests, ")
    assert lines[0].endswith(" releases: valid")


def test_good_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(hub(tmp_path, x=GOOD), capsys) == (0, ["1 manifests, 2 releases: valid"])


def test_no_manifests_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "catalog").mkdir()
    assert main(["validate", "--root", str(tmp_path)]) == 1
    assert "no manifests found" in capsys.readouterr().err


# --- one broken thing, the exact lines reported --------------------------------
# The manifest is GOOD with edits applied in order (each `old` must occur once).

RPM_REPO = "  - id: rpms\n    kind: rpm-md\n    url: http://rpm.example/\n    packages: [k]\n"
BTF_WITHOUT_BPF = (
    "catalog/x.yaml:29:10: releases[1].btf: btf is true but bpf is not: a kernel with BTF runs BPF"
)

BROKEN: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    # YAML syntax
    "tab-in-indentation": (
        (('    kernel: "5.8.0"\n', '\tkernel: "5.8.0"\n'),),
        (
            "catalog/x.yaml:27:1: invalid YAML: a tab character where YAML allows only spaces"
            " (indent with spaces)",
        ),
    ),
    "unclosed-quote-points-at-the-opening-quote": (
        (('    kernel: "5.8.0"\n', "    kernel: '5.8.0\n"),),
        ("catalog/x.yaml:27:13: invalid YAML: unclosed quoted string",),
    ),
    "duplicate-key": (
        (("    bpf: true\n    btf: true\n", "    bpf: true\n    bpf: true\n"),),
        ("catalog/x.yaml:29:5: invalid YAML: duplicate key 'bpf'",),
    ),
    # schema
    "unknown-key-points-at-the-key": (
        (('    kernel: "5.8.0"\n', '    kernal: "5.8.0"\n'),),
        (
            "catalog/x.yaml:25:5: releases[1]: missing required key 'kernel'",
            "catalog/x.yaml:27:5: releases[1].kernal: unknown key (did you mean 'kernel'?)",
        ),
    ),
    "unknown-architecture": (
        (('directory: "1"\n', 'directory: "1"\narchitectures: [x86_64, amd64]\n'),),
        (
            "catalog/x.yaml:5:25: architectures[1]: unknown architecture 'amd64'"
            " (expected one of: x86_64, arm64)",
        ),
    ),
    "bad-kernel-and-series": (
        (('    kernel: "5.8.0"\n', '    kernel: "5.8.x"\n    series: ["5.8.0", "linux-5.9"]\n'),),
        (
            "catalog/x.yaml:27:13: releases[1].kernel: '5.8.x' is not a kernel version"
            " (expected e.g. 5.4.0 or 3.10.0-123)",
            "catalog/x.yaml:28:23: releases[1].series[1]: 'linux-5.9' is not a kernel version"
            " (expected e.g. 5.4.0 or 3.10.0-123)",
        ),
    ),
    "unquoted-number-where-a-string-belongs": (
        (('directory: "1"\n', "directory: 1\n"),),
        ('catalog/x.yaml:4:12: directory: expected a string, got 1 (quote it: "1")',),
    ),
    "flag-spelt-like-the-table": (
        (("    btf: true\n", "    btf: Y\n"),),
        ("catalog/x.yaml:29:10: releases[1].btf: expected true, false or null, got 'Y'",),
    ),
    "document-that-is-not-a-mapping": (
        ((GOOD, "# yaml-language-server: $schema=../schemas/manifest.schema.json\n- a\n"),),
        ("catalog/x.yaml:2:1: expected a mapping, got a list",),
    ),
    # rules the schema cannot say
    "missing-schema-comment": (
        ((GOOD.split("\n", 1)[0] + "\n", ""),),
        (
            "catalog/x.yaml:1:1: first line must be"
            " '# yaml-language-server: $schema=../schemas/manifest.schema.json'"
            " (editors find the schema with it)",
        ),
    ),
    "duplicate-release-points-at-the-second": (
        (("  - name: Two\n", "  - name: one\n"),),  # slug("one") == slug("One")
        ("catalog/x.yaml:25:11: releases[1].name: duplicate release 'one' (as releases[0])",),
    ),
    "duplicate-explicit-release-id": (
        (("  - name: Two\n", "  - name: Two\n    id: one\n"),),
        ("catalog/x.yaml:26:9: releases[1].id: duplicate release 'one' (as releases[0])",),
    ),
    "malformed-date": (
        (('"2021-02-03"', '"03/02/2021"'),),
        (
            "catalog/x.yaml:26:19: releases[1].release_date: '03/02/2021' is not a date"
            " (expected e.g. 2020-04 or 2020-04-23)",
        ),
    ),
    "btf-without-bpf": (
        (("    bpf: true\n    btf: true\n", "    bpf: false\n    btf: true\n"),),
        (BTF_WITHOUT_BPF,),
    ),
    "hub-without-repository": (
        (("    hub: false\n", "    hub: true\n"),),
        (
            "catalog/x.yaml:30:10: releases[1].hub: hub is true but no sources: no debug"
            " repository to build from",
        ),
    ),
    "source-naming-an-unknown-repository": (
        (("      - repository: debs\n", "      - repository: ddebs\n"),),
        (
            "catalog/x.yaml:23:21: releases[0].sources[0].repository: unknown repository 'ddebs'"
            " (defined: debs)",
        ),
    ),
    "apt-source-with-paths-instead-of-suites": (
        (("        suites: [one]\n", '        paths: [""]\n'),),
        (
            "catalog/x.yaml:23:9: releases[0].sources[0]: repository 'debs' is apt: the source"
            " needs suites",
            "catalog/x.yaml:24:9: releases[0].sources[0].paths: repository 'debs' is apt: it has"
            " no paths",
        ),
    ),
    "rpm-source-with-suites": (
        (
            ("    kind: apt\n", "    kind: rpm-md\n"),
            ('    packages: ["linux-image-{uname}-dbg"]\n', "    packages: [kernel-debuginfo]\n"),
        ),
        (
            "catalog/x.yaml:23:9: releases[0].sources[0]: repository 'debs' is rpm-md: the source"
            " needs paths",
            "catalog/x.yaml:24:9: releases[0].sources[0].suites: repository 'debs' is rpm-md: it"
            " has no suites",
        ),
    ),
    "release-without-archive-directory": (
        (('directory: "1"\n', ""), ("  - name: Two\n", '  - name: Two\n    directory: "2"\n')),
        (
            "catalog/x.yaml:16:5: releases[0]: no archive directory: set directory here or at"
            " the top",
        ),
    ),
    "repository-rules": (
        (
            ("releases:\n", f"{RPM_REPO}    flavours: [generic]\n{RPM_REPO}releases:\n"),
            ('["linux-image-{uname}-dbg"]', '["linux-image-dbg"]'),
        ),
        (
            "catalog/x.yaml:15:16: repositories[0].packages[0]: an apt package pattern needs"
            " {uname}",
            "catalog/x.yaml:20:5: repositories[1].flavours: only apt and launchpad repositories"
            " have this key",
            "catalog/x.yaml:21:9: repositories[2].id: duplicate repository id 'rpms'"
            " (as repositories[1])",
        ),
    ),
    "unsigned-with-a-keyring": (
        (
            (
                '    packages: ["linux-image-{uname}-dbg"]\n',
                '    packages: ["linux-image-{uname}-dbg"]\n'
                "    unsigned: true\n    keyring: keys/archive.asc\n",
            ),
        ),
        (
            "catalog/x.yaml:16:5: repositories[0].unsigned: a repository with a keyring is not"
            " unsigned",
            "catalog/x.yaml:17:14: repositories[0].keyring: no such file: keys/archive.asc",
        ),
    ),
}


@pytest.mark.parametrize(("edits", "expected"), list(BROKEN.values()), ids=list(BROKEN))
def test_reports_exactly(
    edits: tuple[tuple[str, str], ...],
    expected: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = GOOD
    for old, new in edits:
        text = edit(old, new, text)
    assert_reports(tmp_path, capsys, text, *expected)


@pytest.mark.parametrize("date", ["2021-02-30", "2021-13", "2021-00-10"])
def test_impossible_date(date: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = edit(
        '    release_date: "2021-02-03"\n', f'    release_date: "{date}"\n    rhel_date: "{date}"\n'
    )
    assert_reports(
        tmp_path,
        capsys,
        text,
        f"catalog/x.yaml:26:19: releases[1].release_date: impossible date '{date}'",
        f"catalog/x.yaml:27:16: releases[1].rhel_date: impossible date '{date}'",
    )


# --- everything at once, and CI ---------------------------------------------------


def test_all_errors_in_all_files_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken_yaml = edit('    kernel: "5.8.0"\n', "    kernel: '5.8.0\n")
    broken_rule = edit("    bpf: true\n    btf: true\n", "    bpf: false\n    btf: true\n")
    code, lines = validate(hub(tmp_path, a=broken_yaml, b=broken_rule, c=GOOD), capsys)
    assert code == 1
    assert lines == [
        "catalog/a.yaml:27:13: invalid YAML: unclosed quoted string",
        BTF_WITHOUT_BPF.replace("catalog/x.yaml", "catalog/b.yaml"),
    ]


def test_github_annotations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    text = edit("    bpf: true\n    btf: true\n", "    bpf: false\n    btf: true\n")
    code, lines = validate(hub(tmp_path, x=text), capsys)
    assert code == 1
    assert lines == [
        "catalog/x.yaml:29:10: releases[1].btf: btf is true but bpf is not: a kernel with BTF"
        " runs BPF",
        "::error file=catalog/x.yaml,line=29,col=10::releases[1].btf: btf is true but bpf is"
        " not: a kernel with BTF runs BPF",
    ]


def test_no_annotations_outside_github(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    _, lines = validate(hub(tmp_path, x=edit("    hub: false\n", "    hub: true\n")), capsys)
    assert not any(line.startswith("::") for line in lines)


def test_annotation_escapes_what_would_break_the_command() -> None:
    diagnostic = Diagnostic("catalog/a,b.yaml", 3, 1, "", "100% wrong\nsecond line")
    assert diagnostic.github() == (
        "::error file=catalog/a%2Cb.yaml,line=3,col=1::100%25 wrong%0Asecond line"
    )


def test_console_script_exit_code_without_traceback(tmp_path: Path) -> None:
    root = hub(tmp_path, x="title: [unclosed\n")
    result = subprocess.run(
        [sys.executable, "-m", "generator", "validate", "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stdout.splitlines()[-1].startswith("catalog/x.yaml:2:1: invalid YAML: ")


# --- the schema itself -------------------------------------------------------------


def properties(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every (location, subschema) found under a "properties" keyword."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            found.append((f"{where}.{name}", sub))
        for key, value in node.items():
            found += properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += properties(value, f"{where}[{i}]")
    return found


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_property_has_a_description() -> None:
    props = properties(load_schema())
    assert len(props) >= 40  # the walk found the nested definitions too
    assert [where for where, sub in props if not sub.get("description")] == []


def test_every_object_rejects_unknown_keys() -> None:
    def objects(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, list):
            return [o for v in node for o in objects(v)]
        if not isinstance(node, dict):
            return []
        own = [node] if node.get("type") == "object" else []
        return own + [o for v in node.values() for o in objects(v)]

    found = objects(load_schema())
    assert len(found) == 6
    assert all(o.get("additionalProperties") is False for o in found)


def test_schema_agrees_with_the_model() -> None:
    defs = load_schema()["$defs"]
    assert defs["kernel"]["pattern"] == KERNEL_RE.pattern
    assert tuple(defs["architectures"]["items"]["enum"]) == ARCHITECTURES
    column_fields = defs["column"]["properties"]["field"]["enum"]
    assert set(column_fields) == {"name", "kernel", "bpf", "btf", "hub", *TEXT_FIELDS}
    assert set(TEXT_FIELDS) <= set(defs["release"]["properties"])
