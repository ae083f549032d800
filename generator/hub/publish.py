"""Publishing a run: commit the hub's files and push, re-rendering when the remote moved on.

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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from generator import gitops
from generator.catalog import load_catalog
from generator.errors import BtfhubError
from generator.hub.run import render
from generator.model import ARCHIVE_DIR, KernelOutcome, KernelState, ReleaseArch, UpstreamListing
from generator.progress import Reporter
from generator.state import INDEX_FILE, KnownKernel, load_hub_state
from generator.store.setting import Blob, Store, same_store, store_from_json


@dataclass(frozen=True)
class PublishOptions:
    commit: bool = False  # commit the changed archive files, README.md and index.json
    push: bool = False  # commit, then push
    remote: str = "origin"
    branch: str | None = None  # default: the checked-out branch

    @property
    def commits(self) -> bool:
        return self.commit or self.push


@dataclass(frozen=True)
class Learnt:
    """What this run learnt upstream and from building, to record over another index.json."""

    lists: Mapping[ReleaseArch, Mapping[str, KnownKernel]]  # per target discovered this run
    outcomes: tuple[KernelOutcome, ...]
    # Targets listed without a failed fallback source: merged, never replacing.
    incomplete: frozenset[ReleaseArch] = frozenset()
    # An OCI store's files as this run recorded them: they are in the registry
    # (and nowhere in git), so the remote's index.json must gain them too.
    store: Store = None
    locations: Mapping[str, Blob] = field(default_factory=dict)

    def apply(self, root: Path, reporter: Reporter) -> list[str]:
        """push_with_retry's callback: re-render root from the remote's state plus ours."""
        catalog = load_catalog(root)  # the remote may have changed the catalog
        state = load_hub_state(root)
        if self.store is not None and same_store(state.store, self.store):
            state.locations.update(self.locations)
        for target, kernels in self.lists.items():
            base = state.lists.get(target, {}) if target in self.incomplete else {}
            state.lists[target] = {**base, **kernels}
        for outcome in self.outcomes:
            try:
                state.record_outcome(outcome)
            except KeyError:
                reporter.warning(
                    f"{outcome.kernel.label}: not listed by discovery, "
                    f"its outcome ({outcome.state.value}) is not recorded"
                )
        return list(render(root, catalog, state).changed)


def learnt(
    root: Path, listing: UpstreamListing | None, outcomes: Sequence[KernelOutcome]
) -> Learnt:
    """The lists this run discovered, as it recorded them in root/index.json."""
    recorded = load_hub_state(root)
    targets = sorted(listing.kernels) if listing is not None else []
    lists = {t: dict(recorded.lists[t]) for t in targets if t in recorded.lists}
    incomplete = frozenset(f.target for f in listing.incomplete) if listing else frozenset()
    return Learnt(lists, tuple(outcomes), incomplete, recorded.store, dict(recorded.locations))


def prepare(root: Path, options: PublishOptions) -> str | None:
    """Check now, not after hours of building, that a commit can be made; the push branch."""
    if not options.commits:
        return None
    gitops.resolve_author(root)
    if options.push:
        return options.branch or gitops.current_branch(root)
    return None


@dataclass(frozen=True)
class PublishReport:
    commit: str | None  # the new commit's sha; None when nothing changed
    pushed: str | None  # "remote (branch b)" when pushed


def publish(
    root: Path,
    options: PublishOptions,
    branch: str | None,
    run: Learnt,
    reporter: Reporter,
) -> PublishReport:
    """Commit (and push) what the run changed; the commit message names kernels added and failed."""
    sha = commit(root, [o for o in run.outcomes if o.state is KernelState.FAILED])
    reporter.info("nothing to commit" if sha is None else f"committed {sha[:12]}")
    pushed = None
    if options.push:
        assert branch is not None
        gitops.push_with_retry(root, options.remote, branch, partial(_regenerate, run, reporter))
        pushed = f"{options.remote} (branch {branch})"
        reporter.info(f"pushed to {pushed}")
    return PublishReport(sha, pushed)


def _regenerate(run: Learnt, reporter: Reporter, root: Path) -> list[str]:
    return run.apply(root, reporter)


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


def _read_index(root: Path) -> Mapping[str, Any]:
    try:
        index: Mapping[str, Any] = json.loads((root / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BtfhubError(f"{root / INDEX_FILE}: cannot read it back: {exc}") from exc
    return index


def commit_message_for(
    root: Path, changed: Sequence[str], failed: Sequence[KernelOutcome], index: Mapping[str, Any]
) -> str:
    """The kernels added (new archive files) and failed, per distribution."""
    labels = _kernel_labels(index)
    added: dict[str, list[str]] = {}
    for path in changed:
        if not path.startswith(f"{ARCHIVE_DIR}/") or not (root / path).is_file():
            continue
        # A file no release claims keeps its archive directories as its label.
        parts = path.split("/")
        distro, label = labels.get(path, (parts[1], "/".join(parts[2:])))
        added.setdefault(distro, []).append(label)
    failures: dict[str, list[tuple[str, str]]] = {}
    for f in failed:
        k = f.kernel
        failures.setdefault(k.distro, []).append(
            (f"{k.release}/{k.arch} {k.uname}", f.reason or "unknown reason")
        )
    return gitops.commit_message(added, failures)


def commit(root: Path, failed: Sequence[KernelOutcome]) -> str | None:
    """Commit the hub's changed paths; the new commit's sha, or None when nothing changed."""
    changed = gitops.hub_changes(root)
    if not changed:
        return None
    index = _read_index(root)
    if store_from_json(index.get("store")) is not None:
        # The files are in an OCI store: git takes no archive file, only their removal
        # (a hub migrated from git), whatever archive/ holds.
        changed = [
            p for p in changed if p.split("/", 1)[0] != ARCHIVE_DIR or not (root / p).exists()
        ]
    return gitops.commit_paths(root, changed, commit_message_for(root, changed, failed, index))
