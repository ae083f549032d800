"""Kernel debuginfo RPMs in a flat directory with an HTML listing (Oracle Linux).

https://oss.oracle.com/ol7/debuginfo/ and .../ol8/debuginfo/ publish no
repodata: just an Apache-style directory listing with x86_64 and aarch64
packages side by side. The links are read with html.parser (a page is not a
regular language: attributes may be quoted either way, split across lines,
or carry entities), kept when they name a file in the directory itself, and
matched against the manifest's package patterns.

A listing has no checksum and no exact size, so the packages it yields carry
``sha256=None`` and ``size=None``: trust has to come from the RPM's own
signature, which the build step checks (and refuses the package until it can).
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from generator.kinds.registry import upstream_arch
from generator.model import KernelPackage, Repository, Source
from generator.upstream.context import UpstreamContext
from generator.upstream.http import UpstreamIndexError
from generator.upstream.listers import UNAME_RE, KernelNames, repo_root

# kernel-debuginfo-common-x86_64-<ver>.rpm holds sources, no vmlinux.
COMMON_MARKER = "-common-"


class _Links(HTMLParser):
    """The href of every <a> element, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value:
                    self.hrefs.append(value)


def listing_files(body: bytes, base: str, where: str, url: str) -> list[str]:
    """Names of the files the listing at `base` links to in that same directory."""
    parser = _Links()
    try:
        parser.feed(body.decode("utf-8", "replace"))
        parser.close()
    except AssertionError as exc:  # html.parser's way of giving up on malformed markup
        raise UpstreamIndexError(f"{where}: unreadable HTML listing: {exc}", url) from exc
    names = []
    for href in parser.hrefs:
        try:
            target = urljoin(base, href)
            parts = urlsplit(target)
        except ValueError:  # "http://[host/..." (found by tests/test_fuzz.py): not a file here
            continue
        if parts.query or parts.fragment or not target.startswith(base):
            continue  # sort links (?C=N;O=D), the parent directory, other hosts
        name = unquote(target[len(base) :])
        if name and "/" not in name:
            names.append(name)
    return names


def discover_htmllisting(
    upstream: UpstreamContext, repo: Repository, source: Source, arch: str
) -> list[KernelPackage]:
    """Kernel packages of one architecture in the source's listings, sorted by uname.

    For one uname the first matching pattern wins, then the first path.
    """
    client = upstream.client
    uarch = upstream_arch(repo, arch)
    names = KernelNames.of(repo, uarch)
    found: dict[str, tuple[int, KernelPackage]] = {}
    for path in source.paths:
        base = repo_root(repo, arch, path)
        where = client.where(base)
        for name in listing_files(client.get_index(base), base, where, base):
            if COMMON_MARKER in name:
                continue
            hit = names.match(name)
            if hit is None:
                continue
            rank, uname = hit
            if not uname.endswith(f".{uarch}") or not UNAME_RE.match(uname):
                continue
            pkg = KernelPackage(
                uname=uname,
                arch=arch,
                name=name.removesuffix(".rpm").removesuffix(f"-{uname}"),
                version=uname.removesuffix(f".{uarch}"),
                url=urljoin(base, name),
                size=None,
                sha256=None,
                repository=repo.id,
                filename=(path.replace("{arch}", uarch) + name) if path else name,
                format="rpm",
            )
            if uname not in found or rank < found[uname][0]:
                found[uname] = (rank, pkg)
    return [found[u][1] for u in sorted(found)]
