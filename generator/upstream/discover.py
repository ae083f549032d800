"""What upstream publishes for each release: repositories read once, kernels by series.

Releases share repositories heavily: CentOS 7's ten point releases all read
one flat debuginfo directory, Ubuntu's HWE rows read the same suites as
their base release. SourceListings remembers each (repository, source,
arch) listing for the run, failures included, so a repository that is down
costs one round of requests rather than one per release.

Repository kinds are dispatched by kind string through LISTERS, the one
registry of listers: a new kind is a module with a Lister and a line here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from generator.errors import BtfhubError
from generator.model import (
    DiscoveryFailure,
    Distribution,
    KernelPackage,
    Release,
    ReleaseArch,
    Repository,
    Source,
    UpstreamListing,
    series_matches,
)
from generator.upstream.apt import discover_apt
from generator.upstream.credentials import CredentialsMissing, load_credentials
from generator.upstream.htmllisting import discover_htmllisting
from generator.upstream.http import UpstreamClient, UpstreamIndexError
from generator.upstream.launchpad import discover_launchpad
from generator.upstream.rpmmd import discover_rpmmd

CREDENTIALS_CAUSE = "needs credentials"
# What a server answers for a tree that is no longer there (moved, not down).
GONE_STATUSES = frozenset({404, 410})

Lister = Callable[[UpstreamClient, Repository, Source, str], list[KernelPackage]]
LISTERS: dict[str, Lister] = {
    "apt": discover_apt,
    "rpm-md": discover_rpmmd,
    "launchpad": discover_launchpad,
    "html-listing": discover_htmllisting,
}


def credentials_prefix(repo: Repository) -> str:
    """The URL prefix a repository's credentials are sent to: its URL up to any {arch}."""
    return repo.url.split("{", 1)[0]


class SourceListings:
    """The kernel packages each (repository, source, arch) lists, read once per run."""

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client
        self._memo: dict[tuple[Repository, Source, str], list[KernelPackage] | BtfhubError] = {}

    def source(self, repo: Repository, source: Source, arch: str) -> list[KernelPackage]:
        key = (repo, source, arch)
        if key not in self._memo:
            lister = LISTERS.get(repo.kind)
            if lister is None:
                raise BtfhubError(f"repository {repo.id}: unknown kind {repo.kind!r}")
            try:
                if repo.credentials is not None:
                    # CredentialsMissing (an UpstreamError) is remembered like any
                    # failure: the operator's environment does not change mid-run.
                    self.client.authorize(
                        credentials_prefix(repo), load_credentials(repo.credentials, repo.id)
                    )
                self._memo[key] = self._list(lister, repo, source, arch)
            except BtfhubError as exc:
                self._memo[key] = exc
        result = self._memo[key]
        if isinstance(result, BtfhubError):
            raise result
        return result

    def _list(
        self, lister: Lister, repo: Repository, source: Source, arch: str
    ) -> list[KernelPackage]:
        """The lister's answer, from the repository's moved_to tree when url's is gone.

        Only a 404/410 means "moved": a timeout or a 5xx is the upstream being
        down, and reading another tree then would hide it.
        """
        try:
            return lister(self.client, repo, source, arch)
        except UpstreamIndexError as exc:
            if repo.moved_to is None or exc.status not in GONE_STATUSES:
                raise
            moved = dataclasses.replace(repo, url=repo.moved_to, moved_to=None)
            try:
                return lister(self.client, moved, source, arch)
            except UpstreamIndexError as moved_exc:
                raise UpstreamIndexError(
                    f"{exc} (and where it moves to: {moved_exc})",
                    moved_exc.url,
                    moved_exc.cause,
                    moved_exc.unreachable,
                    moved_exc.host,
                    moved_exc.status,
                ) from None

    def release(self, dist: Distribution, release: Release, arch: str) -> list[KernelPackage]:
        """The release's kernels for one arch, sorted by uname.

        A uname found by several sources comes from the first one: the
        manifest lists sources in order of preference (the archive before a
        fallback), as it lists package patterns.
        """
        found: dict[str, KernelPackage] = {}
        for source in release.sources:
            try:
                repo = dist.repository(source.repository)
            except KeyError:
                raise BtfhubError(
                    f"{dist.id}: release {release.id} names unknown repository "
                    f"{source.repository!r}"
                ) from None
            for pkg in self.source(repo, source, arch):
                if any(series_matches(s, pkg.uname) for s in release.series):
                    found.setdefault(pkg.uname, pkg)
        return [found[u] for u in sorted(found)]


def discovery_failure(target: ReleaseArch, exc: BtfhubError) -> DiscoveryFailure:
    if isinstance(exc, UpstreamIndexError):
        return DiscoveryFailure(target, exc.url, str(exc), exc.cause, exc.unreachable, exc.host)
    return DiscoveryFailure(target, "", str(exc))


def discover_all(
    client: UpstreamClient, targets: Iterable[tuple[Distribution, Release, str]]
) -> UpstreamListing:
    """Listings for every target, and the targets that failed (the run goes on).

    A failed target is absent from the listings, so the planner neither
    builds nor forgets its kernels; the failure is reported instead.
    """
    listings = SourceListings(client)
    kernels: dict[ReleaseArch, tuple[KernelPackage, ...]] = {}
    failures: list[DiscoveryFailure] = []
    skipped: list[DiscoveryFailure] = []
    for dist, release, arch in targets:
        target = ReleaseArch(dist.id, release.id, arch)
        try:
            kernels[target] = tuple(listings.release(dist, release, arch))
        except CredentialsMissing as exc:
            # Not a failure: a public run without subscriptions stays green.
            skipped.append(DiscoveryFailure(target, "", str(exc), CREDENTIALS_CAUSE))
        except BtfhubError as exc:
            failures.append(discovery_failure(target, exc))
    return UpstreamListing(kernels, tuple(failures), tuple(skipped))
