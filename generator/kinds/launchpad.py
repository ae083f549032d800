"""launchpad: Launchpad's REST API, the published binaries of an archive (Ubuntu's fallback)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from generator.kinds.base import DEB_ARCHES, FLAVOURS_KEY, Finding, RepositoryKind

ARCHIVE_MARKER = "/+archive/"


def rules(repo: Mapping[str, Any]) -> Iterator[Finding]:
    url = repo.get("url")
    if isinstance(url, str) and ARCHIVE_MARKER not in url:
        yield Finding(
            ("url",),
            "a launchpad URL names an archive, e.g. "
            "https://api.launchpad.net/1.0/ubuntu/+archive/primary",
        )
    elif isinstance(url, str) and not url.startswith("https://"):
        # No signature covers the API's answers (file URLs, sizes, SHA-256):
        # TLS to Launchpad is all that vouches for them.
        yield Finding(("url",), "a launchpad URL is https: TLS is all that vouches for it")
    if repo.get("unsigned") is not True:
        # Nothing can sign it (it has no keyring key), and a run, plan and
        # index.json must say which files no signature vouches for.
        yield Finding(
            (), "a launchpad repository says `unsigned: true`: its API answers carry no signature"
        )


KIND = RepositoryKind(
    name="launchpad",
    summary="Launchpad's REST API: the published binaries of an archive, then each one's file "
    "URL, size and SHA-256; the URL names the archive, e.g. "
    "https://api.launchpad.net/1.0/ubuntu/+archive/primary",
    arches=DEB_ARCHES,
    source_key="suites",
    source_doc="distribution series, e.g. [focal] (every pocket of a series is read at once)",
    packages_doc="name patterns holding {uname}, the preferred first "
    "(a kernel matched by several uses the first)",
    patterns=True,
    lister="generator.upstream.launchpad:list_launchpad",
    completer="generator.upstream.launchpad:complete_launchpad",
    keys=FLAVOURS_KEY,
    rules=rules,
)
