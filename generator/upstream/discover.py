"""What upstream publishes for each release: repositories read once, kernels by series.

Releases share repositories heavily: CentOS 7's ten point releases all read
one flat debuginfo directory, Ubuntu's HWE rows read the same suites as
their base release. SourceListings remembers each (repository, source,
arch) listing for the run, failures included, so a repository that is down
costs one round of requests rather than one per release; discover_all lists
the distinct sources a few at a time (prefetch) when they wait on a distant
upstream, before assembling the releases in order.

Each repository is listed by its kind's lister, and its packages completed
by its kind's completer, as its record in generator/kinds/ names them
(registry.KINDS, the one registry of kinds).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from generator.errors import BtfhubError, OperatorInputMissing
from generator.kinds.registry import kind_of
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
from generator.upstream.confirm import confirm_roots
from generator.upstream.context import UpstreamContext
from generator.upstream.credentials import load_credentials
from generator.upstream.fanout import WORKERS, run_probed
from generator.upstream.http import GONE, UpstreamIndexError
from generator.upstream.sourcememo import IndexRead, memo_key, recording

Lister = Callable[[UpstreamContext, Repository, Source, str], list[KernelPackage]]
# A kind whose listing leaves a costly part of each package for later (Launchpad:
# one binaryFileUrls call per kernel for its file, size and SHA-256) has a
# completer: run only for the packages a release keeps, never for a uname an
# earlier source gave.
Completer = Callable[[UpstreamContext, Repository, KernelPackage], KernelPackage]


# Resolved once per name: resolve_name goes through the import system on every
# call, a tenth of a no-op's discovery over 3,500 sources.
_resolve = functools.cache(pkgutil.resolve_name)


def lister_of(repo: Repository) -> Lister:
    """The lister the repository's kind names (imported on first use)."""
    lister: Lister = _resolve(kind_of(repo).lister)
    return lister


def completer_of(repo: Repository) -> Completer | None:
    name = kind_of(repo).completer
    completer: Completer | None = None if name is None else _resolve(name)
    return completer


def credentials_prefix(repo: Repository) -> str:
    """The URL prefix a repository's credentials are sent to: its URL up to any {arch}."""
    return repo.url.split("{", 1)[0]


class SourceListings:
    """The kernel packages each (repository, source, arch) lists, read once per run."""

    def __init__(self, upstream: UpstreamContext) -> None:
        self.upstream = upstream
        self._memo: dict[tuple[Repository, Source, str], list[KernelPackage] | BtfhubError] = {}
        self._completed: dict[tuple[Repository, KernelPackage], KernelPackage] = {}
        self._completers: dict[str, Completer | None] = {}
        self._confirmed: dict[IndexRead, IndexRead | None] = {}
        self._keys: dict[tuple[Repository, Source, str], tuple[str, bool] | None] = {}

    def source(self, repo: Repository, source: Source, arch: str) -> list[KernelPackage]:
        key = (repo, source, arch)
        if key not in self._memo:
            try:
                if repo.credentials is not None:
                    # CredentialsMissing (an OperatorInputMissing) is remembered like any
                    # failure: the operator's environment does not change mid-run.
                    self.upstream.client.authorize(
                        credentials_prefix(repo), load_credentials(repo.credentials, repo.id)
                    )
                if repo.signing_key_id is not None:
                    # Before any request: without its key nothing it lists could be built.
                    self.upstream.trust.keyring(repo)
                self._memo[key] = self._kept_or_listed(repo, source, arch)
            except BtfhubError as exc:
                self._memo[key] = exc
        result = self._memo[key]
        if isinstance(result, BtfhubError):
            raise result
        return result

    def _kept_or_listed(self, repo: Repository, source: Source, arch: str) -> list[KernelPackage]:
        """The listing kept from an earlier run when upstream confirms it, else listed now."""
        memo = self.upstream.memo
        if memo is None:
            return self._list(repo, source, arch)
        found = self._memo_key(repo, source, arch)
        if found is None:
            return self._list(repo, source, arch)  # the lister reports it
        key, signed = found
        kept = memo.replay(key, self._revalidate)
        if kept is not None:
            self.upstream.client.stats.add(source_hits=1)
            return kept
        with recording() as reads:
            packages = self._list(repo, source, arch)
        memo.record(key, reads, packages, signed)
        return packages

    def _memo_key(self, repo: Repository, source: Source, arch: str) -> tuple[str, bool] | None:
        """The source's key in the memo and whether it has a keyring; None when its
        keyring cannot be had (the lister says why). Once per source and run."""
        if (repo, source, arch) not in self._keys:
            try:
                keyring = self.upstream.trust.keyring(repo)
            except BtfhubError:
                self._keys[(repo, source, arch)] = None
            else:
                key = memo_key(repo, source, arch, "" if keyring is None else repr(keyring))
                self._keys[(repo, source, arch)] = (key, keyring is not None)
        return self._keys[(repo, source, arch)]

    def _list(self, repo: Repository, source: Source, arch: str) -> list[KernelPackage]:
        """The lister's answer, from the repository's moved_to tree when url's is gone.

        Only a 404/410 means "moved": a timeout or a 5xx is the upstream being
        down, and reading another tree then would hide it. The lister is looked
        up (its module imported) here, only to list: a run that keeps every
        listing never imports a parser.
        """
        lister = lister_of(repo)
        try:
            return lister(self.upstream, repo, source, arch)
        except UpstreamIndexError as exc:
            if repo.moved_to is None or exc.status not in GONE:
                raise
            moved = dataclasses.replace(repo, url=repo.moved_to, moved_to=None)
            try:
                return lister(self.upstream, moved, source, arch)
            except UpstreamIndexError as moved_exc:
                raise UpstreamIndexError(
                    f"{exc} (and where it moves to: {moved_exc})",
                    moved_exc.url,
                    moved_exc.cause,
                    moved_exc.unreachable,
                    moved_exc.host,
                    moved_exc.status,
                ) from None

    def prefetch(
        self,
        targets: Iterable[tuple[Distribution, Release, str]],
        workers: int,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        """List the sources of these targets ahead, `workers` at a time when that pays
        (fanout.run_probed), after the roots of their kept listings were confirmed
        at once in worker processes (confirm.confirm_roots).

        Results and failures land in the memo that listing() reads, so what a
        run reports, and in which order, is what a sequential run would
        report; each distinct source is listed once.
        """
        keys: dict[tuple[Repository, Source, str], None] = {}
        for dist, release, arch in targets:
            for source in release.sources:
                repo = next((r for r in dist.repositories if r.id == source.repository), None)
                if repo is not None:  # an unknown id is listing()'s error to report
                    keys[(repo, source, arch)] = None
        todo = [key for key in keys if key not in self._memo]
        self._confirm_ahead(todo, meanwhile)
        run_probed(todo, lambda key: self._list_quietly(*key), workers)

    def _confirm_ahead(
        self, todo: list[tuple[Repository, Source, str]], meanwhile: Callable[[], None] | None
    ) -> None:
        """Have worker processes ask every kept listing's roots at once (a no-op's
        requests); meanwhile runs while they do, when there are any."""
        memo = self.upstream.memo
        if memo is None:
            return
        reads: dict[IndexRead, None] = {}
        for repo, source, arch in todo:
            if repo.credentials is not None:
                continue  # authorized by source(), in this process only
            found = self._memo_key(repo, source, arch)
            roots = None if found is None else memo.roots(found[0])
            reads.update(dict.fromkeys(roots or ()))
        self._confirmed = confirm_roots(list(reads), self.upstream.client, meanwhile)

    def _revalidate(self, read: IndexRead) -> IndexRead | None:
        # What a worker confirmed is not asked again; what it could not confirm
        # (an error, a worker lost) is asked here, and fails here as it would have.
        if read in self._confirmed:
            return self._confirmed[read]
        return self.upstream.client.revalidate(read)

    def _list_quietly(self, repo: Repository, source: Source, arch: str) -> None:
        # A failure is memoized; listing() raises it for the targets that need it.
        with contextlib.suppress(BtfhubError):
            self.source(repo, source, arch)

    def complete(self, repo: Repository, pkg: KernelPackage) -> KernelPackage:
        """The package as the plan needs it (see Completer), once per run."""
        if repo.kind not in self._completers:  # looked up once per kind, not per package
            self._completers[repo.kind] = completer_of(repo)
        completer = self._completers[repo.kind]
        if completer is None:
            return pkg
        key = (repo, pkg)
        if key not in self._completed:
            self._completed[key] = completer(self.upstream, repo, pkg)
        return self._completed[key]

    def listing(self, dist: Distribution, release: Release, arch: str) -> ReleaseListing:
        """The release's kernels for one arch, sorted by uname, and the fallbacks that failed.

        A uname found by several sources comes from the first one: the
        manifest lists sources in order of preference (the archive before a
        fallback), as it lists package patterns. A source that fails fails
        the release, unless it is a fallback: then the others still list it.
        """
        found: dict[str, KernelPackage] = {}
        gaps: list[tuple[Repository, BtfhubError]] = []
        for source in release.sources:
            try:
                repo = dist.repository(source.repository)
            except KeyError:
                raise BtfhubError(
                    f"{dist.id}: release {release.id} names unknown repository "
                    f"{source.repository!r}"
                ) from None
            try:
                # All of a source or nothing of it: a fallback failing halfway
                # adds none of its kernels.
                added = {
                    pkg.uname: self.complete(repo, pkg)
                    for pkg in self.source(repo, source, arch)
                    if pkg.uname not in found
                    and any(series_matches(s, pkg.uname) for s in release.series)
                }
            except OperatorInputMissing:
                raise  # the release is skipped, never half-listed
            except BtfhubError as exc:
                if not source.fallback:
                    raise
                gaps.append((repo, exc))
                continue
            found.update(added)
        return ReleaseListing([found[u] for u in sorted(found)], tuple(gaps))


@dataclass(frozen=True)
class ReleaseListing:
    """What the sources of one (release, arch) list, and the fallback sources that failed."""

    packages: list[KernelPackage]
    gaps: tuple[tuple[Repository, BtfhubError], ...] = ()


def discovery_failure(
    target: ReleaseArch, exc: BtfhubError, repository: str = ""
) -> DiscoveryFailure:
    if isinstance(exc, UpstreamIndexError):
        return DiscoveryFailure(
            target, exc.url, str(exc), exc.cause, exc.unreachable, exc.host, repository
        )
    return DiscoveryFailure(target, "", str(exc), repository=repository)


def discover_all(
    upstream: UpstreamContext,
    targets: Iterable[tuple[Distribution, Release, str]],
    workers: int = WORKERS,
    meanwhile: Callable[[], None] | None = None,
) -> UpstreamListing:
    """Listings for every target, and the targets that failed (the run goes on).

    A failed target is absent from the listings, so the planner neither
    builds nor forgets its kernels; the failure is reported instead. A target
    whose fallback source failed is listed from its other sources and named
    in `incomplete`, one entry per failed fallback.

    meanwhile runs once: while worker processes confirm kept listings (the
    run's own work in the time it would wait), else after the listing.
    """
    targets = list(targets)
    listings = SourceListings(upstream)
    pending = [meanwhile] if meanwhile is not None else []

    def run_pending() -> None:
        while pending:
            pending.pop()()

    try:
        listings.prefetch(targets, workers, run_pending)
        found = _assemble(listings, targets)
        run_pending()
        return found
    finally:
        if upstream.memo is not None:
            upstream.memo.save()  # what was listed stays listed, even when a bug stops the run


def _assemble(
    listings: SourceListings, targets: list[tuple[Distribution, Release, str]]
) -> UpstreamListing:
    kernels: dict[ReleaseArch, tuple[KernelPackage, ...]] = {}
    failures: list[DiscoveryFailure] = []
    skipped: list[DiscoveryFailure] = []
    incomplete: list[DiscoveryFailure] = []
    for dist, release, arch in targets:
        target = ReleaseArch(dist.id, release.id, arch)
        try:
            found = listings.listing(dist, release, arch)
            kernels[target] = tuple(found.packages)
            incomplete += [discovery_failure(target, exc, repo.id) for repo, exc in found.gaps]
        except OperatorInputMissing as exc:
            # Not a failure: a public run without subscriptions or a key stays green.
            skipped.append(DiscoveryFailure(target, "", str(exc), exc.cause))
        except BtfhubError as exc:
            failures.append(discovery_failure(target, exc))
    return UpstreamListing(kernels, tuple(failures), tuple(skipped), tuple(incomplete))
