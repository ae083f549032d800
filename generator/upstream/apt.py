"""Kernel debug packages in an apt repository (Ubuntu ddebs, Debian main).

The chain of trust follows apt's: dists/<suite>/InRelease (or Release with
its detached Release.gpg) is signed by the repository's archive key and
lists every index with its size and SHA-256; each Packages index lists
every package with its size and SHA-256. The signature is checked with
gpgv against the repository's keyring (generator.trust) unless its
manifest entry says `unsigned: true`; the Release text that is parsed is
the one gpgv vouches for. deb822 is
parsed here rather than with python-debian, whose parser guesses encodings
and skips malformed lines silently: a broken index must fail loudly with its URL and line number.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from urllib.parse import urljoin

from debian.debian_support import Version

from generator.errors import BtfhubError
from generator.kinds.registry import upstream_arch
from generator.model import KernelPackage, Repository, SignedIndex, Source
from generator.openpgp import SignatureError
from generator.upstream.compression import open_decompressed
from generator.upstream.context import UpstreamContext
from generator.upstream.http import Checksum, UpstreamClient, UpstreamIndexError
from generator.upstream.listers import SHA256_RE, KernelNames, Ranked, keep_best, repo_root
from generator.upstream.listingcache import IndexMatch, parse_inputs

# Preference among the compressed forms of one index, best first.
INDEX_SUFFIXES = (".xz", ".gz", "")


def iter_stanzas(lines: Iterable[bytes], where: str, url: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs as {lower-case field: value}; continuation lines joined by \\n."""
    fields: dict[str, str] = {}
    last: str | None = None
    for lineno, raw in enumerate(lines, 1):
        # Only ASCII fields are used; a stray Latin-1 byte in a Description is harmless.
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
            continue
        if line[0] in " \t":
            if last is None:
                raise UpstreamIndexError(
                    f"{where}: line {lineno}: continuation line outside a field", url
                )
            fields[last] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or any(c.isspace() for c in name):
            raise UpstreamIndexError(
                f"{where}: line {lineno}: not a deb822 field: {line[:80]!r}", url
            )
        last = name.lower()
        fields[last] = value.strip()
    if fields:
        yield fields


@dataclass(frozen=True)
class IndexEntry:
    name: str  # relative to dists/<suite>/, e.g. main/binary-amd64/Packages.xz
    size: int
    sha256: str


def signed_release(
    upstream: UpstreamContext, repo: Repository, root: str, suite: str
) -> tuple[bytes, str, str, SignedIndex | None]:
    """(Release text, where, url, its signature) of one suite, checked unless unsigned.

    InRelease first, as apt does; Release + Release.gpg when a suite has no
    InRelease (older archives). A bad signature, one by an unknown key or
    none at all fails the suite with the URL of what was read.
    """
    client = upstream.client
    release_url = urljoin(root, f"dists/{suite}/Release")
    try:
        keyring = upstream.trust.keyring(repo)
    except BtfhubError as exc:
        raise UpstreamIndexError(f"{client.where(release_url)}: {exc}", release_url) from None
    if keyring is None:  # unsigned: true in the manifest
        return client.get_index(release_url), client.where(release_url), release_url, None
    inrelease_url = urljoin(root, f"dists/{suite}/InRelease")
    inrelease = client.find_index(inrelease_url)
    if inrelease is not None:
        where = client.where(inrelease_url)
        try:
            text, verdict = keyring.verify_clearsigned(inrelease, where)
        except SignatureError as exc:
            raise UpstreamIndexError(str(exc), inrelease_url) from None
        return text, where, inrelease_url, SignedIndex(inrelease_url, verdict.signers)
    where = client.where(release_url)
    release = client.get_index(release_url)
    signature = client.find_index(release_url + ".gpg")
    if signature is None:
        raise UpstreamIndexError(
            f"{where}: not signed: neither InRelease nor Release.gpg exists (HTTP 404); "
            "a repository without signatures must say `unsigned: true` in its manifest",
            release_url,
        )
    try:
        verdict = keyring.verify_detached(release, signature, f"{where} (Release.gpg)")
    except SignatureError as exc:
        raise UpstreamIndexError(str(exc), release_url) from None
    return release, where, release_url, SignedIndex(release_url, verdict.signers)


def parse_release(body: bytes, where: str, url: str) -> dict[str, IndexEntry]:
    """The SHA256 section of a Release file, by index path."""
    stanzas = list(iter_stanzas(body.splitlines(keepends=True), where, url))
    if not stanzas or "sha256" not in stanzas[0]:
        raise UpstreamIndexError(
            f"{where}: no SHA256 field: not a Release file, or one btfhub cannot trust", url
        )
    entries: dict[str, IndexEntry] = {}
    for line in stanzas[0]["sha256"].splitlines():
        if not line.strip():
            continue
        parts = line.split()
        # isascii(): str.isdigit() also accepts "²", which int() refuses.
        size_ok = parts[1].isascii() and parts[1].isdigit() if len(parts) == 3 else False
        if not size_ok or not SHA256_RE.match(parts[0].lower()):
            raise UpstreamIndexError(f"{where}: bad SHA256 line {line!r}", url)
        entries[parts[2]] = IndexEntry(parts[2], int(parts[1]), parts[0].lower())
    return entries


def pick_index(
    entries: dict[str, IndexEntry], component: str, uarch: str, where: str, url: str
) -> IndexEntry:
    base = f"{component}/binary-{uarch}/Packages"
    for suffix in INDEX_SUFFIXES:
        if base + suffix in entries:
            return entries[base + suffix]
    raise UpstreamIndexError(f"{where}: lists no {base}{{.xz,.gz,}}", url)


def _package(
    stanza: dict[str, str], uname: str, arch: str, repo: Repository, root: str, where: str, url: str
) -> KernelPackage:
    name = stanza["package"]
    missing = [f for f in ("version", "filename", "size", "sha256") if not stanza.get(f)]
    if missing:
        raise UpstreamIndexError(f"{where}: package {name} lacks {', '.join(missing)}", url)
    filename, size, sha256 = stanza["filename"], stanza["size"], stanza["sha256"].lower()
    if not (size.isascii() and size.isdigit()) or not SHA256_RE.match(sha256):
        raise UpstreamIndexError(f"{where}: package {name}: bad Size or SHA256", url)
    # Filename is relative to the repository root; an absolute URL or path
    # would let an index send btfhub to another host, around --mirror.
    if "://" in filename or filename.startswith("/") or ".." in filename.split("/"):
        raise UpstreamIndexError(f"{where}: package {name}: bad Filename {filename!r}", url)
    return KernelPackage(
        uname=uname,
        arch=arch,
        name=name,
        version=stanza["version"],
        url=urljoin(root, filename),
        size=int(size),
        sha256=sha256,
        repository=repo.id,
        filename=filename,
        format="deb",
    )


def _parse_packages(
    client: UpstreamClient, repo: Repository, arch: str, root: str, url: str, entry: IndexEntry
) -> list[IndexMatch]:
    """The kernel packages a Packages index lists, in its order (fetched and verified first).

    Only packages whose Version parses are returned: one that does not fails the index.
    """
    uarch = upstream_arch(repo, arch)
    names = KernelNames.of(repo, uarch)
    where = client.where(url)
    body = client.get_index(url, size=entry.size, checksum=Checksum("sha256", entry.sha256))
    matches = []
    with open_decompressed(body, where, url) as f:
        for stanza in iter_stanzas(f, where, url):
            name = stanza.get("package")
            if name is None:
                raise UpstreamIndexError(f"{where}: a paragraph has no Package field", url)
            hit = names.match(name)
            if hit is None or stanza.get("architecture", uarch) != uarch:
                continue
            rank, uname = hit
            pkg = _package(stanza, uname, arch, repo, root, where, url)
            try:
                Version(pkg.version)
            except ValueError as exc:
                raise UpstreamIndexError(f"{where}: package {name}: {exc}", url) from exc
            matches.append(IndexMatch(pkg, rank))
    return matches


def discover_apt(
    upstream: UpstreamContext, repo: Repository, source: Source, arch: str
) -> list[KernelPackage]:
    """Kernel packages of one architecture across the source's suites, sorted by uname.

    For one uname the earliest matching package pattern wins (Ubuntu's
    unsigned image over the near-empty signed one), then the highest Version.
    """
    uarch = upstream_arch(repo, arch)
    root = repo_root(repo, arch)
    names = KernelNames.of(repo, uarch)  # a bad pattern fails before any request
    # Everything _parse_packages's result depends on besides the index's bytes.
    inputs = parse_inputs(
        repo,
        root,
        arch,
        packages=list(repo.packages),  # in order: the rank is the position
        flavours=sorted(names.flavours),
    )
    best: dict[str, Ranked[KernelPackage]] = {}
    for suite in source.suites:
        release, release_where, release_url, signed = signed_release(upstream, repo, root, suite)
        entries = parse_release(release, release_where, release_url)
        for component in repo.components:
            entry = pick_index(entries, component, uarch, release_where, release_url)
            url = urljoin(root, f"dists/{suite}/{entry.name}")
            checksum = Checksum("sha256", entry.sha256)
            parse = partial(_parse_packages, upstream.client, repo, arch, root, url, entry)
            for match in upstream.listing(checksum, inputs, parse):
                pkg = match.package
                try:
                    version = Version(pkg.version)
                except ValueError as exc:  # only a cache entry edited by hand gets here
                    raise UpstreamIndexError(f"{url}: package {pkg.name}: {exc}", url) from exc
                # Listings are cached unsigned: the signature is this run's check.
                pkg = replace(pkg, signed_index=signed)
                keep_best(best, pkg.uname, Ranked(match.rank, version, pkg))
    return [best[u].item for u in sorted(best)]
