"""What upstream publishes for each release: repositories read once, kernels by series.

Releases share repositories heavily: CentOS 7's ten point releases all read
one flat debuginfo directory, Ubuntu's HWE rows read the same suites as
their base release. A Discovery remembers each (repository, source, arch)
listing for the run, failures included, so a repository that is down costs
one round of retries rather than one per release.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

from generator.errors import BtfhubError, UpstreamError
from generator.model import (
    Distribution,
    KernelPackage,
    Release,
    Repository,
    Source,
    series_matches,
)
from generator.upstream.apt import discover_apt
from generator.upstream.credentials import load_credentials
from generator.upstream.htmllisting import discover_htmllisting
from generator.upstream.http import UpstreamClient, UpstreamIndexError
from generator.upstream.launchpad import discover_launchpad
from generator.upstream.rpmmd import discover_rpmmd

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


# (distro id, release id, arch, url, message): a release whose discovery failed.
DiscoveryError = tuple[str, str, str, str, str]


class Discovery:
    def __init__(self, client: UpstreamClient) -> None:
        self.client = client
        self._memo: dict[tuple[Repository, Source, str], list[KernelPackage] | UpstreamError] = {}

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
                self._memo[key] = lister(self.client, repo, source, arch)
            except UpstreamError as exc:
                self._memo[key] = exc
        result = self._memo[key]
        if isinstance(result, UpstreamError):
            raise result
        return result

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


_DISCOVERIES: weakref.WeakKeyDictionary[UpstreamClient, Discovery] = weakref.WeakKeyDictionary()


def discovery_for(client: UpstreamClient) -> Discovery:
    """The Discovery that lives as long as the client: one per run."""
    if client not in _DISCOVERIES:
        _DISCOVERIES[client] = Discovery(client)
    return _DISCOVERIES[client]


def discover_release(
    client: UpstreamClient, dist: Distribution, release: Release, arch: str
) -> list[KernelPackage]:
    return discovery_for(client).release(dist, release, arch)


def discover_all(
    client: UpstreamClient, targets: Iterable[tuple[Distribution, Release, str]]
) -> tuple[dict[tuple[str, str, str], list[KernelPackage]], list[DiscoveryError]]:
    """Listings for every target, and the targets that failed (the run goes on).

    A failed target is absent from the listings, so the planner neither
    builds nor forgets its kernels; the error is reported instead.
    """
    listings: dict[tuple[str, str, str], list[KernelPackage]] = {}
    errors: list[DiscoveryError] = []
    for dist, release, arch in targets:
        try:
            listings[(dist.id, release.id, arch)] = discover_release(client, dist, release, arch)
        except UpstreamError as exc:
            url = exc.url if isinstance(exc, UpstreamIndexError) else ""
            errors.append((dist.id, release.id, arch, url, str(exc)))
    return listings, errors
