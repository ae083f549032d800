"""What a run reads upstream with, handed to every lister and build explicitly.

The HTTP client, the run's trust policy (which keys must sign what each
repository publishes) and the parsed-listing cache are three things with
three owners; a lister receives them together in an UpstreamContext rather
than reaching one through another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from generator.trust import TrustPolicy
from generator.upstream.http import Checksum, UpstreamClient
from generator.upstream.listingcache import SUBDIR, IndexMatch, ListingCache
from generator.upstream.sourcememo import SourceMemo


@dataclass(frozen=True)
class UpstreamContext:
    """The client, the trusted keys, the listing cache (None: every index is parsed) and
    the listings kept from earlier runs (None: every source is listed).

    Closing it closes the client and the trust policy's keyrings.
    """

    client: UpstreamClient
    trust: TrustPolicy
    listings: ListingCache | None = None
    memo: SourceMemo | None = None

    @classmethod
    def of(cls, client: UpstreamClient, trust: TrustPolicy) -> UpstreamContext:
        """A run's context: the parsed listings beside the client's index cache, if it has one."""
        cache = client.cache_dir
        if cache is None:
            return cls(client, trust)
        return cls(client, trust, ListingCache(cache / SUBDIR), SourceMemo(cache))

    def listing(
        self,
        checksum: Checksum,
        inputs: Mapping[str, Any],
        parse: Callable[[], list[IndexMatch]],
    ) -> list[IndexMatch]:
        """What an index lists, parsed: from the listing cache when an entry for this
        checksum and these parse inputs exists, else parse() (which fetches the index
        through get_index) and remember the result."""
        if self.listings is None:
            return parse()
        index = f"{checksum.algorithm}:{checksum.hexdigest.lower()}"
        matches, hit = self.listings.get_or_parse(index, inputs, parse)
        if hit:
            self.client.stats.add(cache_hits=1, listing_hits=1)
        return matches

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self.trust.close()

    def __enter__(self) -> UpstreamContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
