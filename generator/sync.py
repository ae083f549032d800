"""`btfhub sync`: the GitOps loop in one locked run.

    validate -> reconcile (discover, build, record, render)   default
             -> discover, record the shards' outcomes, render  --skip-build
             -> commit the hub's files                         --commit
             -> push, re-rendering on top of the remote        --push

--skip-build is the publish step of the sharded workflow: the build jobs
built the files, `btfhub merge` put them into archive/ and wrote their
failed / ships-btf outcomes to a file. Discovery still runs (index fetches,
cached by conditional GET): the listings it records are what index.json
shows for every kernel, so the sharded flow renders the very bytes one
unsharded reconcile would.

Committing takes every path btfhub owns that differs from HEAD
(gitops.hub_changes), not only the files this process wrote: README.md and
index.json are rendered from everything in archive/, so committing them
without a file they list (say, one `btfhub merge` put there) would publish
an index that points at nothing. Everything else in the work tree stays as
it was, uncommitted.

When the push finds the remote moved on, gitops rebuilds our commit on top
of it and calls back here to re-render: the remote's index.json is read,
what this run learnt (its listings and outcomes) is recorded over it, and
README.md and index.json are rendered from the merged archive.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from generator import gitops, planner
from generator.catalog import load_catalog
from generator.commands.common import selection, upstream_client
from generator.commands.reconcile import print_summary, reconcile
from generator.errors import BtfhubError
from generator.lock import HubLock
from generator.model import Catalog, KernelState, Outcome
from generator.reconcile import discover, record_results
from generator.render import render_hub
from generator.shard_manifest import ShardOutcome, read_outcomes
from generator.state import INDEX_FILE, Discovery, KnownKernel, ListKey, load_discovery
from generator.upstream.http import UpstreamClient

OutcomeKey = tuple[str, str, str, str]  # (distro id, release id, arch, uname)


@dataclass(frozen=True)
class FailedKernel:
    distro: str
    release: str
    arch: str
    uname: str
    reason: str


@dataclass(frozen=True)
class Learnt:
    """What this run learnt upstream and from building, to record over another index.json."""

    lists: Mapping[ListKey, Mapping[str, KnownKernel]]  # per key discovered this run
    outcomes: tuple[tuple[OutcomeKey, Outcome | None], ...]  # None: built, clears a failure

    def apply(self, discovery: Discovery) -> list[str]:
        """Record over `discovery`; warnings for outcomes of kernels it does not list."""
        for key, kernels in self.lists.items():
            discovery.lists[key] = dict(kernels)
        return record_outcomes(discovery, self.outcomes)


@dataclass(frozen=True)
class RunResult:
    failed: tuple[FailedKernel, ...]
    errors: bool  # a release/arch could not be discovered
    learnt: Learnt


def record_outcomes(
    discovery: Discovery, outcomes: Iterable[tuple[OutcomeKey, Outcome | None]]
) -> list[str]:
    warnings = []
    for (distro, release, arch, uname), outcome in outcomes:
        try:
            discovery.record_outcome(distro, release, arch, uname, outcome)
        except KeyError:
            # Upstream dropped the kernel since the build, or its discovery
            # failed this time: nothing lists it, so nothing can show it.
            state = outcome.state.value if outcome else "archived"
            warnings.append(
                f"{distro}/{release}/{arch} {uname}: not listed by discovery, "
                f"its outcome ({state}) is not recorded"
            )
    return warnings


def _warn(messages: Iterable[str]) -> None:
    for message in messages:
        print(f"btfhub sync: warning: {message}", file=sys.stderr)


def _learnt(
    root: Path,
    catalog: Catalog,
    args: argparse.Namespace,
    errors: Sequence[tuple[str, str, str, str, str]],
    outcomes: Iterable[tuple[OutcomeKey, Outcome | None]],
) -> Learnt:
    """The lists this run discovered, as it recorded them in root/index.json."""
    sel = selection(args)
    failed = {(e[0], e[1], e[2]) for e in errors}
    keys = {
        (d.id, r.id, arch)
        for d, r, arch in planner.select(catalog, sel.distro, sel.release, sel.arch, args.force)
    } - failed
    recorded = load_discovery(root)
    lists = {k: dict(recorded.lists[k]) for k in sorted(keys) if k in recorded.lists}
    return Learnt(lists, tuple(outcomes))


def _build(
    root: Path, catalog: Catalog, client: UpstreamClient, args: argparse.Namespace
) -> RunResult:
    report = reconcile(catalog, client, args)
    print_summary(report)
    outcomes: list[tuple[OutcomeKey, Outcome | None]] = []
    failed = []
    for r in report.results:
        k = r.kernel
        key = (k.distro, k.release, k.arch, k.uname)
        if r.state is KernelState.ARCHIVED:
            outcomes.append((key, None))
        elif r.state is KernelState.SHIPS_BTF:
            outcomes.append((key, Outcome(KernelState.SHIPS_BTF)))
        else:
            outcomes.append((key, Outcome(KernelState.FAILED, r.reason)))
            failed.append(FailedKernel(*key, r.reason or "unknown reason"))
    learnt = _learnt(root, catalog, args, report.errors, outcomes)
    return RunResult(tuple(failed), bool(report.errors), learnt)


def _shard_outcome(o: ShardOutcome) -> tuple[OutcomeKey, Outcome]:
    # As reconcile records them: a failure keeps its reason, ships-btf none.
    reason = o.reason if o.state is KernelState.FAILED else None
    return (o.distro, o.release, o.arch, o.uname), Outcome(o.state, reason)


def _record_only(
    root: Path, catalog: Catalog, client: UpstreamClient, args: argparse.Namespace
) -> RunResult:
    """--skip-build: discover and record listings, record the shards' outcomes, render."""
    shard_outcomes = read_outcomes(args.outcomes) if args.outcomes is not None else ()
    outcomes = [_shard_outcome(o) for o in shard_outcomes]
    found = discover(client, catalog, selection(args), force=args.force)
    discovery = load_discovery(root)
    record_results(discovery, found, [])
    _warn(record_outcomes(discovery, outcomes))
    render_hub(root, catalog, discovery)
    for distro, release, arch, _url, message in found.errors:
        print(f"FAILED {distro}/{release}/{arch}: {message}", file=sys.stderr)
    failed = [
        FailedKernel(o.distro, o.release, o.arch, o.uname, o.reason or "unknown reason")
        for o in shard_outcomes
        if o.state is KernelState.FAILED
    ]
    for f in failed:
        print(f"FAILED {f.distro}/{f.release}/{f.arch} {f.uname}: {f.reason}", file=sys.stderr)
    ships = len(shard_outcomes) - len(failed)
    print(
        f"summary: recorded {len(failed)} failed and {ships} shipping their own BTF"
        + (f", {len(found.errors)} release/arch could not be discovered" if found.errors else "")
    )
    learnt = _learnt(root, catalog, args, found.errors, outcomes)
    return RunResult(tuple(failed), bool(found.errors), learnt)


def _kernel_labels(index: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """archive path -> (distro id, "<release>/<arch> <uname>"), from index.json."""
    labels: dict[str, tuple[str, str]] = {}
    for distro, d in sorted(index.get("distributions", {}).items()):
        for release, r in sorted(d.get("releases", {}).items()):
            for arch, a in sorted(r.get("architectures", {}).items()):
                for uname, k in sorted(a.get("kernels", {}).items()):
                    if "path" in k:
                        labels.setdefault(k["path"], (distro, f"{release}/{arch} {uname}"))
    return labels


def commit_message_for(root: Path, changed: Sequence[str], failed: Sequence[FailedKernel]) -> str:
    """The kernels added (new archive files) and failed, per distribution."""
    try:
        index = json.loads((root / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BtfhubError(f"{root / INDEX_FILE}: cannot read it back: {exc}") from exc
    labels = _kernel_labels(index)
    added: dict[str, list[str]] = {}
    for path in changed:
        if not path.startswith(f"{gitops.ARCHIVE_DIR}/") or not (root / path).is_file():
            continue
        # A file no release claims keeps its archive directories as its label.
        parts = path.split("/")
        distro, label = labels.get(path, (parts[1], "/".join(parts[2:])))
        added.setdefault(distro, []).append(label)
    failures: dict[str, list[tuple[str, str]]] = {}
    for f in failed:
        failures.setdefault(f.distro, []).append((f"{f.release}/{f.arch} {f.uname}", f.reason))
    return gitops.commit_message(added, failures)


def commit(root: Path, failed: Sequence[FailedKernel]) -> str | None:
    """Commit the hub's changed paths; the new commit's sha, or None when nothing changed."""
    changed = gitops.hub_changes(root)
    if not changed:
        return None
    return gitops.commit_paths(root, changed, commit_message_for(root, changed, failed))


def regenerate(root: Path, learnt: Learnt) -> list[str]:
    """push_with_retry's callback: re-render from the remote's state plus ours."""
    catalog = load_catalog(root)  # the remote may have changed the catalog
    discovery = load_discovery(root)
    _warn(learnt.apply(discovery))
    return list(render_hub(root, catalog, discovery).changed)


def run_sync(root: Path, args: argparse.Namespace) -> int:
    if args.outcomes is not None and not args.skip_build:
        raise BtfhubError("--outcomes FILE goes with --skip-build (a build run has its own)")
    push: bool = args.push
    do_commit: bool = args.commit or push
    with HubLock(root):
        catalog = load_catalog(root)
        branch: str | None = None
        if do_commit:
            # Fail now, not after hours of building.
            gitops.resolve_author(root)
            if push:
                branch = args.branch or gitops.current_branch(root)
        client = upstream_client(args)
        if args.skip_build:
            result = _record_only(root, catalog, client, args)
        else:
            result = _build(root, catalog, client, args)
        if do_commit:
            sha = commit(root, result.failed)
            if sha is None:
                print("nothing to commit")
            else:
                print(f"committed {sha[:12]}")
        if push:
            assert branch is not None
            gitops.push_with_retry(
                root, args.remote, branch, partial(regenerate, learnt=result.learnt)
            )
            print(f"pushed to {args.remote} (branch {branch})")
    return 1 if result.failed or result.errors else 0
