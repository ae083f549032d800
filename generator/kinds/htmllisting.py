"""html-listing: a flat directory of RPMs with an HTML index page (Oracle's debuginfo)."""

from __future__ import annotations

from generator.kinds.base import RPM_ARCHES, SHA1_KEY, TREE_KEYS, RepositoryKind

KIND = RepositoryKind(
    name="html-listing",
    summary="a flat directory of RPMs with an HTML index page and no repodata, as Oracle's "
    "debuginfo directories: no checksum, so the RPM's signature must vouch for each package",
    arches=RPM_ARCHES,
    source_key="paths",
    source_doc="listed directories relative to the repository URL; {arch} allowed",
    packages_doc="file name patterns holding {uname}, e.g. kernel-uek-debuginfo-{uname}.rpm "
    "(files with -common- are never read)",
    patterns=True,
    lister="generator.upstream.htmllisting:discover_htmllisting",
    keys={**TREE_KEYS, **SHA1_KEY},
)
