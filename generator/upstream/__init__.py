"""Upstream repositories: the only code in btfhub that talks HTTP.

- ``transport``: the one HTTP transport (urllib3, one retry policy).
- ``http``: UpstreamClient over it: mirrors, indexes through ``indexcache``,
  packages as verified, resumable streams (``packagestream``).
- ``context``: UpstreamContext, what listers and builds are handed (the
  client, the run's trust policy, the listing cache).
- ``mirrors``: --mirror / BTFHUB_MIRRORS prefix rewriting.
- ``apt``, ``rpmmd``, ``launchpad``, ``htmllisting``: list the kernel debug
  packages one repository publishes for one architecture (each the lister
  its kind's record in generator/kinds/ names); ``listers``: what they share.
- ``discover``: per release, across its sources, filtered by kernel series,
  each repository read once per run.
"""
