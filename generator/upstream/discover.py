"""What upstream publishes for each release: repositories read once, kernels by series.

Releases share repositories heavily: CentOS 7's ten point releases all read
one flat debuginfo directory, Ubuntu's HWE rows read the same suites as
their base release. SourceListings remembers each (repository, source,
arch) listing for the run, failures included, so a repository that is down
costs one round of requests rather than one per release; discover_all lists
the distinct sources a few at a time (prefetch) when they wait on a distant
upstream, before assembling the releases in order.

Repository kinds are dispatched by kind string through LISTERS, the one
registry of listers: a new kind is a module with a Lister and a line here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

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
# Sources listed at once by discover_all. Listing waits on the network far more
# than it computes; a few connections per run stay polite to public mirrors.
WORKERS = 4
# At most this many sources are listed one by one first, timed, to decide whether
# the rest are worth listing in threads (SourceListings.prefetch).
PROBE = 32

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
                self._memo[key] = lister(self.client, repo, source, arch)
            except BtfhubError as exc:
                self._memo[key] = exc
        result = self._memo[key]
        if isinstance(result, BtfhubError):
            raise result
        return result

    def prefetch(self, targets: Iterable[tuple[Distribution, Release, str]], workers: int) -> None:
        """List the sources of these targets ahead, `workers` at a time when that pays.

        Each listing is a chain of small requests (repomd.xml, then its
        primary; InRelease, then Packages). Against a distant upstream most of
        its time is waiting for answers, and threads overlap the waits (the
        client is shared safely between them). Against a near one (a mirror
        on the LAN or loopback, answering a 304 in a fraction of a
        millisecond) the client's own Python work dominates, and threads only
        contend for the GIL: measured on 2 cores, 4 threads cost 1.2-1.4 s
        more CPU than one over 3,500 repositories and saved no time. So the
        first sources are listed one by one while timing them, and the rest
        go to the threads only when those waited longer than they computed.

        Results and failures land in the memo that release() reads, so what a
        run reports, and in which order, is what a sequential run would
        report; each distinct source is listed once.
        """
        keys: dict[tuple[Repository, Source, str], None] = {}
        for dist, release, arch in targets:
            for source in release.sources:
                repo = next((r for r in dist.repositories if r.id == source.repository), None)
                if repo is not None:  # an unknown id is release()'s error to report
                    keys[(repo, source, arch)] = None
        todo = [key for key in keys if key not in self._memo]
        if workers <= 1 or len(todo) < 2:
            return
        probe = max(1, min(PROBE, len(todo) // 8))
        start, cpu = time.perf_counter(), time.thread_time()
        for key in todo[:probe]:
            self._list_quietly(*key)
        computed = time.thread_time() - cpu
        if time.perf_counter() - start - computed <= computed:
            return  # release() lists the rest in order, in this thread
        pool = ThreadPoolExecutor(min(workers, len(todo) - probe), thread_name_prefix="discover")
        try:
            for future in [pool.submit(self._list_quietly, *key) for key in todo[probe:]]:
                future.result()  # a bug (not a BtfhubError) raises here, as it would unthreaded
        finally:
            # Ctrl-C or a bug: drop what has not started rather than list it all first.
            pool.shutdown(wait=True, cancel_futures=True)

    def _list_quietly(self, repo: Repository, source: Source, arch: str) -> None:
        # A failure is memoized; release() raises it for the targets that need it.
        with contextlib.suppress(BtfhubError):
            self.source(repo, source, arch)

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
    client: UpstreamClient,
    targets: Iterable[tuple[Distribution, Release, str]],
    workers: int = WORKERS,
) -> UpstreamListing:
    """Listings for every target, and the targets that failed (the run goes on).

    A failed target is absent from the listings, so the planner neither
    builds nor forgets its kernels; the failure is reported instead.
    """
    targets = list(targets)
    listings = SourceListings(client)
    listings.prefetch(targets, workers)
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
