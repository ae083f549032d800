"""The pure core: what upstream publishes versus what the archive holds -> Plan.

No I/O here. Discovery (HTTP) and the archive listing (filesystem) are done
by the caller and passed in as plain data, so every rule below is tested
with literal values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from generator.errors import BtfhubError
from generator.model import (
    ARCHITECTURES,
    Catalog,
    Distribution,
    KernelPackage,
    KernelState,
    Outcome,
    Plan,
    PlannedKernel,
    Release,
    archive_path,
    is_archive_path,
)

Target = tuple[Distribution, Release, str]
UpstreamKey = tuple[str, str, str]  # (distro id, release id, arch)
OutcomeKey = tuple[str, str, str, str]  # (distro id, release id, arch, uname)
PlanError = tuple[str, str, str, str, str]  # (distro, release, arch, url, message)


def _wanted(release: Release) -> bool:
    return release.hub is True


def select(
    catalog: Catalog,
    distro: str | None = None,
    release: str | None = None,
    arch: str | None = None,
    force: bool = False,
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
    key: OutcomeKey,
    path: str,
    archived: Collection[str],
    outcomes: Mapping[OutcomeKey, Outcome],
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
    upstream: Mapping[UpstreamKey, Sequence[KernelPackage]],
    archived: Collection[str],
    outcomes: Mapping[OutcomeKey, Outcome],
    errors: Sequence[PlanError] = (),
    force: bool = False,
) -> Plan:
    """One PlannedKernel per archive path, sorted by (distro, release, arch, uname).

    upstream holds the listings discovery produced; keys for releases the hub
    does not build (hub not true, or an arch the release does not list) are
    ignored, except with force (select() let only named ones through). When
    two releases map a kernel to the same archive path (a series listed by
    two rows of one release directory), the release listed first in the
    manifest claims it, so Plan.missing() never builds a file twice.
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
                for pkg in upstream.get((dist.id, release.id, arch), ()):
                    path = archive_path(dist.archive_dir, release.directory, arch, pkg.uname)
                    if path in claimed:
                        continue
                    key = (dist.id, release.id, arch, pkg.uname)
                    state, reason = _state(key, path, archived_set, outcomes, force)
                    claimed[path] = PlannedKernel(
                        distro=dist.id,
                        release=release.id,
                        arch=arch,
                        uname=pkg.uname,
                        state=state,
                        package=pkg,
                        archive_path=path,
                        reason=reason,
                    )
    kernels = sorted(claimed.values(), key=lambda k: (k.distro, k.release, k.arch, k.uname))
    return Plan(kernels=tuple(kernels), errors=tuple(sorted(errors)))


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
    counts["errors"] = len(the_plan.errors)
    return counts


def format_plan(the_plan: Plan) -> str:
    """A table for people: one kernel a line, then discovery errors and a summary."""
    header = ("DISTRO", "RELEASE", "ARCH", "UNAME", "STATE")
    rows = [
        (k.distro, k.release, k.arch, k.uname, k.state.value, k.reason or "")
        for k in the_plan.kernels
    ]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = []
    if rows:
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        for row in rows:
            cells = "  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True))
            lines.append(f"{cells}  {row[5]}".rstrip())
    for distro, release, arch, url, message in the_plan.errors:
        lines.append(f"error: {distro}/{release}/{arch}: discovery failed: {message}")
        if url and url not in message:
            lines.append(f"  url: {url}")
    counts = summary(the_plan)
    parts = [f"{counts[s.value]} {s.value}" for s in _SUMMARY_ORDER]
    lines.append(
        f"{len(the_plan.kernels)} kernels: {', '.join(parts)}; "
        f"{counts['errors']} discovery error(s)"
    )
    return "\n".join(lines)


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
    }


def plan_to_json(the_plan: Plan) -> dict[str, Any]:
    """The machine form (sorted, no timestamps) for `btfhub plan --json` and CI."""
    return {
        "kernels": [
            {
                "distro": k.distro,
                "release": k.release,
                "arch": k.arch,
                "uname": k.uname,
                "state": k.state.value,
                "archive_path": k.archive_path,
                "reason": k.reason,
                "package": _package_json(k.package),
            }
            for k in the_plan.kernels
        ],
        "errors": [
            {"distro": d, "release": r, "arch": a, "url": u, "message": m}
            for d, r, a, u, m in the_plan.errors
        ],
        "summary": summary(the_plan),
    }


def plan_from_json(doc: Any, source: str = "plan") -> Plan:
    """The inverse of plan_to_json, for build jobs working from the plan job's file.

    Shards then split the very plan the matrix was made from, even when
    upstream published something between the two jobs.
    """
    try:
        kernels = tuple(_kernel_from_json(k) for k in doc["kernels"])
        errors = tuple(
            (e["distro"], e["release"], e["arch"], e["url"], e["message"]) for e in doc["errors"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BtfhubError(f"{source}: not a `btfhub plan --json` document ({exc!r})") from None
    return Plan(kernels=kernels, errors=errors)


def _kernel_from_json(k: Mapping[str, Any]) -> PlannedKernel:
    # A build job writes to archive_path and downloads url: a plan file that
    # could name ../../anything or file:///etc would be a way out of the hub.
    if not is_archive_path(str(k["archive_path"])):
        raise ValueError(f"archive_path {k['archive_path']!r} is not of the archive layout")
    pkg = k["package"]
    if pkg is not None and not str(pkg["url"]).startswith(("http://", "https://")):
        raise ValueError(f"package url {pkg['url']!r} is not http(s)")
    package = (
        None
        if pkg is None
        else KernelPackage(
            uname=str(k["uname"]),
            arch=str(k["arch"]),
            name=str(pkg["name"]),
            version=str(pkg["version"]),
            url=str(pkg["url"]),
            size=int(pkg["size"]),
            sha256=str(pkg["sha256"]),
            repository=str(pkg["repository"]),
            filename=str(pkg["filename"]),
            format=str(pkg["format"]),
        )
    )
    return PlannedKernel(
        distro=str(k["distro"]),
        release=str(k["release"]),
        arch=str(k["arch"]),
        uname=str(k["uname"]),
        state=KernelState(k["state"]),
        package=package,
        archive_path=str(k["archive_path"]),
        reason=k["reason"],
    )
