"""Kernel dbgsym packages through Launchpad's REST API (Ubuntu's fallback source).

ddebs.ubuntu.com drops old versions from its pool and indexes; Launchpad keeps
every publication. Two calls of the API (https://api.launchpad.net/1.0/):

1. ``<archive>?ws.op=getPublishedBinaries&binary_name=P&exact_match=false
   &distro_arch_series=<distribution>/<series>/<arch>`` lists the binary
   publications whose name contains P, 75 or ``ws.size`` per page, as JSON
   ``{"entries": [...], "next_collection_link": ...}``; each entry has
   ``self_link``, ``binary_package_name``, ``binary_package_version``,
   ``distro_arch_series_link`` and ``status``. The query is a substring every
   wanted name holds (query_names: ``-<flavour>-dbgsym`` for Ubuntu's
   patterns); the full pattern then picks the kernels, as for apt.
2. ``<entry self_link>?ws.op=binaryFileUrls&include_meta=true`` gives the
   publication's files as ``[{"url", "size", "sha1", "sha256"}]``: the
   .ddeb's size and SHA-256 go into the package record exactly like a
   Packages stanza's, so the build step checks them the same way.

Only Published and Superseded publications count: a Deleted or Obsolete one's
files may be gone from the librarian. The second call (complete_launchpad)
is made only for the package that wins each uname and only when a release
keeps it (not for a kernel ddebs, listed first, already supplies), and only
once per kernel ever when the index cache is on (its answer never changes).
The first call is revalidated on each run: asking per flavour for its
dbgsyms, rather than for every linux-image-* of the series, cuts a
long-lived series' pages several fold (bench/launchpad_pages.py counts them
against the stand-in: 72 -> 21 pages for a model of Bionic amd64).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from debian.debian_support import Version

from generator.errors import BtfhubError
from generator.kinds.launchpad import ARCHIVE_MARKER
from generator.kinds.registry import upstream_arch
from generator.model import KernelPackage, Repository, Source
from generator.upstream.context import UpstreamContext
from generator.upstream.http import UpstreamClient, UpstreamIndexError
from generator.upstream.listers import SHA256_RE, KernelNames, Ranked, flavours, keep_best

PAGE_SIZE = 300  # Launchpad's largest page: fewer round trips
STATUSES = frozenset({"Published", "Superseded"})
# Package files are named <binary>_<version>_<arch>.ddeb (or .deb).
FILE_SUFFIXES = (".ddeb", ".deb")


def distribution_link(repo: Repository) -> str:
    """https://api.launchpad.net/1.0/ubuntu from .../ubuntu/+archive/primary."""
    if ARCHIVE_MARKER not in repo.url:
        raise BtfhubError(
            f"repository {repo.id}: a launchpad URL names an archive "
            f"(e.g. https://api.launchpad.net/1.0/ubuntu/+archive/primary)"
        )
    return repo.url.split(ARCHIVE_MARKER, 1)[0]


def query_names(repo: Repository, uarch: str) -> list[str]:
    """The name substrings to ask for, each a substring of every name it must find.

    With flavours and patterns that go on after {uname} (Ubuntu's -dbgsym),
    every wanted name ends with -<flavour><ending>: one query per flavour and
    ending, which Launchpad answers with the dbgsyms of that flavour only,
    not every linux-image-* of the series (signed and unsigned images, metas,
    unwanted flavours). Otherwise one query per pattern beginning. A name
    another kept one contains is covered by it.
    """
    split = [p.replace("{arch}", uarch).split("{uname}", 1) for p in repo.packages]
    endings = {end for _, end in split}
    wanted = flavours(repo, uarch)
    if wanted and all(endings):
        names = {f"-{flavour}{end}" for flavour in wanted for end in endings}
    else:
        names = {begin for begin, _ in split}
    kept: list[str] = []
    for name in sorted(names, key=lambda n: (len(n), n)):
        if not any(k in name for k in kept):
            kept.append(name)
    return sorted(kept)


def _json(client: UpstreamClient, url: str, immutable: bool = False) -> Any:
    where = client.where(url)
    body = client.get_index(url, immutable=immutable)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UpstreamIndexError(f"{where}: not a Launchpad JSON answer: {exc}", url) from exc


def _http_link(value: Any, where: str, url: str, what: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise UpstreamIndexError(f"{where}: bad {what} {value!r}", url)
    return value


def published_binaries(
    client: UpstreamClient, repo: Repository, series: str, uarch: str, name_part: str
) -> list[dict[str, Any]]:
    """Every entry of getPublishedBinaries for a name substring, following the pages."""
    query = urlencode(
        {
            "ws.op": "getPublishedBinaries",
            "binary_name": name_part,
            "exact_match": "false",
            "distro_arch_series": f"{distribution_link(repo)}/{series}/{uarch}",
            "ordered": "false",
            "ws.size": str(PAGE_SIZE),
        }
    )
    url: str | None = f"{repo.url}?{query}"
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    while url is not None:
        if url in seen:  # a server paging in circles must not hang the run
            raise UpstreamIndexError(f"{client.where(url)}: the pages loop", url)
        seen.add(url)
        page = _json(client, url)
        where = client.where(url)
        if not isinstance(page, dict) or not isinstance(page.get("entries"), list):
            raise UpstreamIndexError(f"{where}: no entries list: not a collection page", url)
        for entry in page["entries"]:
            if not isinstance(entry, dict):
                raise UpstreamIndexError(f"{where}: an entry is not an object", url)
            entries.append(entry)
        nxt = page.get("next_collection_link")
        url = None if nxt is None else _http_link(nxt, where, url, "next_collection_link")
    return entries


def _file(client: UpstreamClient, name: str, self_link: str) -> tuple[str, int, str]:
    """(url, size, sha256) of a publication's package file."""
    url = f"{self_link}?ws.op=binaryFileUrls&include_meta=true"
    where = client.where(url)
    # A publication's files never change: with the index cache, each kernel
    # costs this request once, not on every scheduled run.
    files = _json(client, url, immutable=True)
    if not isinstance(files, list):
        raise UpstreamIndexError(f"{where}: binaryFileUrls did not return a list", url)
    for item in files:
        if not isinstance(item, dict):
            raise UpstreamIndexError(f"{where}: binaryFileUrls without include_meta?", url)
        file_url = _http_link(item.get("url"), where, url, "file url")
        basename = file_url.rsplit("/", 1)[-1]
        if not basename.startswith(f"{name}_") or not basename.endswith(FILE_SUFFIXES):
            continue
        size, sha256 = item.get("size"), item.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise UpstreamIndexError(f"{where}: {basename}: bad size {size!r}", url)
        if not isinstance(sha256, str) or not SHA256_RE.match(sha256.lower()):
            raise UpstreamIndexError(f"{where}: {basename}: no usable sha256", url)
        return file_url, size, sha256.lower()
    raise UpstreamIndexError(f"{where}: publication of {name} has no package file", url)


def complete_launchpad(
    upstream: UpstreamContext, repo: Repository, pkg: KernelPackage
) -> KernelPackage:
    """A listed package (url: its publication, no size or sha256) with its file's URL,
    size and SHA-256 from binaryFileUrls: the second call, made only for the
    packages a release keeps (SourceListings), never for a kernel an earlier
    source already supplies."""
    if pkg.sha256 is not None:
        return pkg
    file_url, size, sha256 = _file(upstream.client, pkg.name, pkg.url)
    return replace(
        pkg,
        url=file_url,
        size=size,
        sha256=sha256,
        filename="+files/" + file_url.rsplit("/", 1)[-1],
    )


def list_launchpad(
    upstream: UpstreamContext, repo: Repository, source: Source, arch: str
) -> list[KernelPackage]:
    """Kernel packages of one architecture published in the source's series, sorted by uname.

    As for apt: for one uname the earliest matching pattern wins, then the
    highest version. Each package's url is its publication's self_link and
    it has no size or sha256 yet: complete_launchpad() asks for those.
    """
    uarch = upstream_arch(repo, arch)
    names = KernelNames.of(repo, uarch)
    # uname -> (package name, its publication's self_link), ranked as apt ranks.
    best: dict[str, Ranked[tuple[str, str]]] = {}
    for series in source.suites:
        das = f"{distribution_link(repo)}/{series}/{uarch}"
        for name_part in query_names(repo, uarch):
            for entry in published_binaries(upstream.client, repo, series, uarch, name_part):
                name = entry.get("binary_package_name")
                if not isinstance(name, str) or entry.get("status") not in STATUSES:
                    continue
                # The filter is the server's; checked again so a lax one cannot mix arches.
                if entry.get("distro_arch_series_link") != das:
                    continue
                hit = names.match(name)
                if hit is None:
                    continue
                rank, uname = hit
                link = _http_link(entry.get("self_link"), repo.url, repo.url, "self_link")
                try:
                    version = Version(str(entry.get("binary_package_version")))
                except ValueError as exc:
                    raise UpstreamIndexError(f"{repo.url}: {name}: {exc}", repo.url) from exc
                keep_best(best, uname, Ranked(rank, version, (name, link)))
    return [
        KernelPackage(
            uname=uname,
            arch=arch,
            name=best[uname].item[0],
            version=str(best[uname].version),
            url=best[uname].item[1],
            size=None,
            sha256=None,
            repository=repo.id,
            filename="",
            format="deb",
        )
        for uname in sorted(best)
    ]
