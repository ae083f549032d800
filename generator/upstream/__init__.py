"""Upstream repositories: the only code in btfhub that talks HTTP.

- ``http``: UpstreamClient (mirrors, retries, the conditional-GET index
  cache) and verified package streams.
- ``mirrors``: --mirror / BTFHUB_MIRRORS prefix rewriting.
- ``apt``, ``rpmmd``, ``launchpad``, ``htmllisting``: list the kernel debug
  packages one repository publishes for one architecture (each the lister
  its kind's record in generator/kinds/ names); ``listers``: what they share.
- ``discover``: per release, across its sources, filtered by kernel series,
  each repository read once per run.
"""
