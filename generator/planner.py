"""The pure core: what upstream publishes versus what the archive holds -> Plan.

No I/O here. Discovery (HTTP) and the archive listing (filesystem) are done
by the caller and passed in as plain data, so every rule below is tested
with literal values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from generator import jsonschemas
from generator.errors import BtfhubError
from generator.model import (
    ARCHITECTURES,
    Catalog,
    DiscoveryFailure,
    Distribution,
    KernelId,
    KernelOutcome,
    KernelPackage,
    KernelState,
    Plan,
    PlannedKernel,
    Release,
    ReleaseArch,
    Selection,
    SignedIndex,
    archive_path,
    is_archive_path,
    modules_path,
)

Target = tuple[Distribution, Release, str]
# What a kernel's modules file holds: (modules built, modules its package lacked).
ModulesListing = tuple[frozenset[str], frozenset[str]]


def _wanted(release: Release) -> bool:
    return release.hub is True


def select(
    catalog: Catalog, selection: Selection | None = None, force: bool = False
) -> list[Target]:
    """The (distribution, release, arch) the hub builds, narrowed by the filters.

    With force, a release named explicitly is selected even when the hub does
    not build it (hub: false), so a kernel that ships its BTF can be built on
    request, e.g. to compare the hub's BTF with the kernel's own.

    distro is a manifest id; release a release id, name or archive directory
    ("20.04" selects Focal and Focal HWE); arch a canonical architecture.
    Names that match nothing are errors listing the valid ones, and so is a
    filter that leaves nothing to build: a typo must not look like "all done".
    """
    selection = selection or Selection()
    distro, release, arch = selection.distro, selection.release, selection.arch
    dists = list(catalog.distributions)
    if distro is not None:
        dists = [d for d in dists if d.id == distro]
        if not dists:
            valid = ", ".join(sorted(d.id for d in catalog.distributions))
            raise BtfhubError(f"unknown distribution {distro!r}; valid: {valid}")
    if arch is not None and arch not in ARCHITECTURES:
        raise BtfhubError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")

    pairs = [(d, r) for d in dists for r in d.releases]
    if release is not None:
        pairs = [(d, r) for d, r in pairs if release in (r.id, r.name, r.directory)]
        if not pairs:
            valid = ", ".join(sorted({r.id for d in dists for r in d.releases}))
            where = f" in {distro}" if distro is not None else ""
            raise BtfhubError(f"unknown release {release!r}{where}; valid ids: {valid}")
        if force:
            return [(d, r, a) for d, r in pairs for a in r.architectures if arch in (None, a)]
        if not any(_wanted(r) for _, r in pairs):
            names = ", ".join(f"{d.id}/{r.id}" for d, r in pairs)
            raise BtfhubError(
                f"release {release!r} ({names}) is not built by the hub (hub: false); "
                "add --force to build it anyway"
            )

    targets = [
        (d, r, a)
        for d, r in pairs
        if _wanted(r)
        for a in r.architectures
        if arch is None or a == arch
    ]
    if not targets and arch is not None:
        raise BtfhubError(f"nothing to build for architecture {arch!r} with these filters")
    return targets


def _state(
    key: KernelId,
    path: str,
    archived: Collection[str],
    outcomes: Mapping[KernelId, KernelOutcome],
    force: bool,
) -> tuple[KernelState, str | None]:
    if path in archived:
        return KernelState.ARCHIVED, None
    outcome = outcomes.get(key)
    if outcome is None:
        return KernelState.MISSING, None
    if outcome.state is KernelState.SHIPS_BTF:
        # The package's vmlinux carries .BTF: nothing to build, unless forced.
        return (KernelState.MISSING, None) if force else (KernelState.SHIPS_BTF, outcome.reason)
    if outcome.state is KernelState.FAILED:
        return KernelState.FAILED, outcome.reason  # planned again: it is retried
    return KernelState.MISSING, None


def plan(
    catalog: Catalog,
    upstream: Mapping[ReleaseArch, Sequence[KernelPackage]],
    archived: Collection[str],
    outcomes: Mapping[KernelId, KernelOutcome],
    failures: Sequence[DiscoveryFailure] = (),
    force: bool = False,
    needs_operator_input: Sequence[DiscoveryFailure] = (),
    incomplete: Sequence[DiscoveryFailure] = (),
    modules: Mapping[str, ModulesListing] | None = None,
) -> Plan:
    """One PlannedKernel per archive path, sorted by (distro, release, arch, uname).

    upstream holds the listings discovery produced; keys for releases the hub
    does not build (hub not true, or an arch the release does not list) are
    ignored, except with force (select() let only named ones through). When
    two releases map a kernel to the same archive path (a series listed by
    two rows of one release directory), the release listed first in the
    manifest claims it, so Plan.missing() never builds a file twice.

    incomplete names listings made without a fallback source that failed:
    they are planned as they are (an archived kernel absent from a listing is
    never planned, so nothing is dropped) and the failures carried as warnings.

    modules: what each archived modules file holds, by path (None: not known, no
    rebuild); an archived kernel whose release lists modules it lacks is modules_only.
    """
    known = {(d.id, r.id): (d, r) for d in catalog.distributions for r in d.releases}
    for listing in upstream:
        if listing[:2] not in known:
            raise ValueError(f"upstream listing for a release not in the catalog: {listing}")
    archived_set = archived if isinstance(archived, (set, frozenset)) else set(archived)

    claimed: dict[str, PlannedKernel] = {}
    for dist in catalog.distributions:
        for release in dist.releases:
            # Forced, a listing of a hub: false release was asked for by name.
            if not _wanted(release) and not force:
                continue
            for arch in release.architectures:
                for pkg in upstream.get(ReleaseArch(dist.id, release.id, arch), ()):
                    path = archive_path(dist.archive_dir, release.directory, arch, pkg.uname)
                    if path in claimed:
                        continue
                    key = KernelId(dist.id, release.id, arch, pkg.uname)
                    state, reason = _state(key, path, archived_set, outcomes, force)
                    selection = dist.modules(release, pkg.repository)
                    if state is KernelState.ARCHIVED and selection and modules is not None:
                        reason = selection.rebuild_reason(modules.get(modules_path(path)))
                    modules_only = state is KernelState.ARCHIVED and reason is not None
                    claimed[path] = PlannedKernel(
                        id=key,
                        state=state,
                        package=pkg,
                        archive_path=path,
                        reason=reason,
                        modules_only=modules_only,
                    )
    kernels = sorted(claimed.values(), key=lambda k: k.id)
    return Plan(
        kernels=tuple(kernels),
        failures=tuple(sorted(failures, key=_failure_order)),
        needs_operator_input=tuple(sorted(needs_operator_input, key=_failure_order)),
        incomplete=tuple(sorted(incomplete, key=_failure_order)),
    )


def _failure_order(f: DiscoveryFailure) -> tuple[ReleaseArch, str, str]:
    return (f.target, f.url, f.message)


# -- output --------------------------------------------------------------------

_SUMMARY_ORDER = (
    KernelState.ARCHIVED,
    KernelState.MISSING,
    KernelState.FAILED,
    KernelState.SHIPS_BTF,
)


def summary(the_plan: Plan) -> dict[str, int]:
    counts = {state.value: 0 for state in _SUMMARY_ORDER}
    for k in the_plan.kernels:
        counts[k.state.value] += 1
    counts["errors"] = len(the_plan.failures)
    counts["warnings"] = len(the_plan.incomplete)
    return counts


def format_plan(the_plan: Plan) -> str:
    """A table for people: one kernel a line, then discovery errors and a summary."""
    header = ("DISTRO", "RELEASE", "ARCH", "UNAME", "STATE")
    rows = [(*k.id, k.state.value, k.reason or "") for k in the_plan.kernels]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = []
    if rows:
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        for row in rows:
            cells = "  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True))
            lines.append(f"{cells}  {row[5]}".rstrip())
    lines += describe_failures(the_plan.failures, "error: ")
    lines += describe_incomplete(the_plan.incomplete, "warning: ")
    lines += describe_skipped(the_plan.needs_operator_input)
    counts = summary(the_plan)
    parts = [f"{counts[s.value]} {s.value}" for s in _SUMMARY_ORDER]
    lines.append(
        f"{len(the_plan.kernels)} kernels: {', '.join(parts)}; "
        f"{counts['errors']} discovery error(s)"
        + (f"; {counts['warnings']} fallback source(s) failed" if the_plan.incomplete else "")
        + count_skipped(the_plan.needs_operator_input, "; ")
    )
    return "\n".join(lines)


def count_skipped(skipped: Sequence[DiscoveryFailure], separator: str) -> str:
    """The skipped release/arch counted by cause, e.g. "; 10 release/arch need credentials"."""
    return "".join(
        f"{separator}{n} release/arch {cause.replace('needs', 'need', 1)}"
        for cause, n in Counter(f.cause for f in skipped).items()
    )


def describe_skipped(skipped: Sequence[DiscoveryFailure]) -> list[str]:
    """Releases skipped for want of what the operator supplies (credentials, a key): a line each."""
    return [f"skipped: {f.target.label}: {f.message}" for f in skipped]


MIRROR_HINT = (
    "hint: when a host cannot be reached from here at all (no network, a firewall), "
    "serve a copy of it and point --mirror FROM=TO (or BTFHUB_MIRRORS) at the copy"
)


def describe_failures(failures: Sequence[DiscoveryFailure], prefix: str) -> list[str]:
    """Discovery failures for people: one line per unreachable host, one per other failure.

    A host that cannot be reached fails every release it serves for the same
    reason: one line names the host, the cause in plain words and the
    releases it blocks, and a hint at --mirror follows.
    """
    lines: list[str] = []
    hosts: dict[tuple[str, str], set[str]] = {}
    for f in failures:
        if f.unreachable and f.host:
            hosts.setdefault((f.host, f.cause), set()).add(f.target.label)
            continue
        lines.append(f"{prefix}{f.target.label}: discovery failed: {f.message}")
        if f.url and f.url not in f.message:
            lines.append(f"  url: {f.url}")
    for (host, cause), targets in sorted(hosts.items()):
        lines.append(
            f"{prefix}{host}: cannot be reached ({cause}); "
            f"blocks {len(targets)} release/arch: {', '.join(sorted(targets))}"
        )
    if hosts:
        lines.append(MIRROR_HINT)
    return lines


def describe_incomplete(incomplete: Sequence[DiscoveryFailure], prefix: str) -> list[str]:
    """Fallback sources that failed: one line per (repository, reason), naming the releases.

    The releases were planned from their other sources; kernels only the
    fallback publishes wait for a run that reaches it.
    """
    groups: dict[tuple[str, str], set[str]] = {}
    for f in incomplete:
        reason = f"{f.host} cannot be reached ({f.cause})" if f.unreachable else f.message
        groups.setdefault((f.repository, reason), set()).add(f.target.label)
    lines = []
    for (repository, reason), targets in sorted(groups.items()):
        lines.append(
            f"{prefix}fallback repository {repository} failed: {reason}; "
            f"{len(targets)} release/arch planned without it: {', '.join(sorted(targets))}"
        )
    if any(f.unreachable for f in incomplete):
        lines.append(MIRROR_HINT)
    return lines


def _failure_json(f: DiscoveryFailure) -> dict[str, Any]:
    return {
        "distro": f.target.distro,
        "release": f.target.release,
        "arch": f.target.arch,
        "url": f.url,
        "message": f.message,
        "cause": f.cause,
        "unreachable": f.unreachable,
        "host": f.host,
    }


def _failure_from_json(e: Mapping[str, Any]) -> DiscoveryFailure:
    return DiscoveryFailure(
        ReleaseArch(e["distro"], e["release"], e["arch"]),
        e["url"],
        e["message"],
        e.get("cause", ""),
        e.get("unreachable", False),
        e.get("host", ""),
        e.get("repository", ""),
    )


def _package_json(pkg: KernelPackage | None) -> dict[str, Any] | None:
    if pkg is None:
        return None
    return {
        "name": pkg.name,
        "version": pkg.version,
        "url": pkg.url,
        "size": pkg.size,
        "sha256": pkg.sha256,
        "filename": pkg.filename,
        "format": pkg.format,
        "repository": pkg.repository,
        # What vouched for its index: a build job records it as the file's provenance.
        "signed_index": (
            {"url": pkg.signed_index.url, "keys": list(pkg.signed_index.keys)}
            if pkg.signed_index is not None
            else None
        ),
    }


def plan_to_json(the_plan: Plan) -> dict[str, Any]:
    """The machine form (sorted, no timestamps) for `btfhub plan --json` and CI."""
    return {
        "kernels": [
            {
                "distro": k.id.distro,
                "release": k.id.release,
                "arch": k.id.arch,
                "uname": k.id.uname,
                "state": k.state.value,
                "archive_path": k.archive_path,
                "reason": k.reason,
                "package": _package_json(k.package),
                **({"modules_only": True} if k.modules_only else {}),
            }
            for k in the_plan.kernels
        ],
        "errors": [_failure_json(f) for f in the_plan.failures],
        # Planned all the same, from the release's other sources.
        "incomplete": [
            {**_failure_json(f), "repository": f.repository} for f in the_plan.incomplete
        ],
        "needs_operator_input": [
            {
                "distro": f.target.distro,
                "release": f.target.release,
                "arch": f.target.arch,
                "message": f.message,
            }
            for f in the_plan.needs_operator_input
        ],
        "summary": summary(the_plan),
    }


def plan_from_json(doc: Any, source: str = "plan") -> Plan:
    """The inverse of plan_to_json, for build jobs working from the plan job's file.

    Shards then split the very plan the matrix was made from, even when
    upstream published something between the two jobs. The document is
    checked against schemas/plan.schema.json first.
    """
    found = jsonschemas.problems(doc, jsonschemas.PLAN_SCHEMA, source)
    if found:
        raise jsonschemas.DocumentInvalid(f"{source}: not a `btfhub plan --json` document", found)
    kernels = tuple(_kernel_from_json(k, source) for k in doc["kernels"])
    failures = tuple(_failure_from_json(e) for e in doc["errors"])
    # Absent from plans written before fallback sources existed.
    incomplete = tuple(_failure_from_json(e) for e in doc.get("incomplete", []))
    # Absent from plans written before the subscription repositories existed.
    # What the operator must supply; the message starts with it ("needs
    # credentials: ...", "needs its signing key: ...").
    needs_operator_input = tuple(
        DiscoveryFailure(
            ReleaseArch(e["distro"], e["release"], e["arch"]),
            "",
            e["message"],
            e["message"].split(":", 1)[0],
        )
        for e in doc.get("needs_operator_input", [])
    )
    return Plan(
        kernels=kernels,
        failures=failures,
        needs_operator_input=needs_operator_input,
        incomplete=incomplete,
    )


def _kernel_from_json(k: Mapping[str, Any], source: str) -> PlannedKernel:
    # A build job writes to archive_path and downloads url: a plan file that
    # could name ../../anything or file:///etc would be a way out of the hub.
    if not is_archive_path(str(k["archive_path"])):
        raise BtfhubError(
            f"{source}: archive_path {k['archive_path']!r} is not of the archive layout"
        )
    pkg = k["package"]
    if pkg is not None and not str(pkg["url"]).startswith(("http://", "https://")):
        raise BtfhubError(f"{source}: package url {pkg['url']!r} is not http(s)")
    package = None if pkg is None else package_from_json(k["uname"], k["arch"], pkg)
    return PlannedKernel(
        id=KernelId(k["distro"], k["release"], k["arch"], k["uname"]),
        state=KernelState(k["state"]),
        package=package,
        archive_path=k["archive_path"],
        reason=k["reason"],
        modules_only=bool(k.get("modules_only", False)),
    )


def package_from_json(uname: str, arch: str, pkg: Mapping[str, Any]) -> KernelPackage:
    """A package as plan_to_json (and index.json's provenance) writes it, checked already."""
    signed = pkg.get("signed_index")  # absent from older plans
    return KernelPackage(
        uname=uname,
        arch=arch,
        name=pkg["name"],
        version=pkg["version"],
        url=pkg["url"],
        size=pkg["size"],
        sha256=pkg["sha256"],
        repository=pkg["repository"],
        filename=pkg["filename"],
        format=pkg["format"],
        signed_index=SignedIndex(signed["url"], tuple(signed["keys"])) if signed else None,
    )
