"""Kernel debuginfo packages in rpm-md repositories (CentOS, Fedora, Oracle, Alma ...).

repodata/repomd.xml names the primary index with its checksum; primary.xml
lists every package with name, arch, version, SHA-256, size and location.
CentOS 7's flat debuginfo directory lists every EL7 kernel ever built, so the
primary index is parsed as a stream (iterparse, clearing each element once
read) rather than as one tree.

Names match exactly: kernel-debuginfo-common-* holds sources and no vmlinux.
An entry whose checksum is not SHA-256 is refused with an error rather than
skipped: btfhub never builds from a package it cannot verify, and a kernel
that silently drops out of the plan is the failure users of the public hub
complain about most.

Trust: repomd.xml is checked against its detached signature repomd.xml.asc
where the upstream publishes one (a bad or unknown-key signature fails the
release). Most debuginfo repositories publish none; their anchor is each
RPM's own header signature, which the build checks for every package of a
repository not marked `unsigned: true` (generator.verify).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from urllib.parse import urljoin

from generator.errors import BtfhubError
from generator.kinds.registry import upstream_arch
from generator.model import KernelPackage, Repository, SignedIndex, Source
from generator.openpgp import SignatureError
from generator.upstream.compression import open_decompressed
from generator.upstream.context import UpstreamContext
from generator.upstream.http import Checksum, UpstreamClient, UpstreamIndexError
from generator.upstream.listers import UNAME_RE, repo_root
from generator.upstream.listingcache import IndexMatch, parse_inputs
from generator.upstream.mirrorlist import MIRROR_LIST, resolve_mirror_list

REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
# hashlib names for the checksum types rpm-md uses ("sha" is SHA-1 in createrepo).
HASHES = {"sha": "sha1", "sha1": "sha1", "sha256": "sha256", "sha512": "sha512"}
# What expat raises on a bad document: ParseError, but LookupError for an
# unknown encoding="..." (found by tests/test_fuzz.py) and ValueError for
# bytes that do not decode.
XML_ERRORS = (ET.ParseError, LookupError, ValueError)


def _primary_location(body: bytes, where: str, url: str) -> tuple[str, int | None, Checksum]:
    try:
        tree = ET.fromstring(body)
    except XML_ERRORS as exc:
        raise UpstreamIndexError(f"{where}: bad XML: {exc}", url) from exc
    for data in tree.iter(f"{REPO_NS}data"):
        if data.get("type") != "primary":
            continue
        location = data.find(f"{REPO_NS}location")
        checksum = data.find(f"{REPO_NS}checksum")
        size = data.findtext(f"{REPO_NS}size")
        href = location.get("href") if location is not None else None
        if href is None or checksum is None or not checksum.text:
            raise UpstreamIndexError(f"{where}: the primary entry lacks location or checksum", url)
        algorithm = HASHES.get(checksum.get("type", ""))
        if algorithm is None:
            raise UpstreamIndexError(
                f"{where}: unknown checksum type {checksum.get('type')!r} for primary", url
            )
        return (
            href,
            int(size) if size and size.strip().isascii() and size.strip().isdigit() else None,
            Checksum(algorithm, checksum.text.strip().lower()),
        )
    raise UpstreamIndexError(f'{where}: no <data type="primary">', url)


def _text(elem: ET.Element, tag: str) -> str:
    return (elem.findtext(f"{COMMON_NS}{tag}") or "").strip()


SUSE_NAME_RE = re.compile(r"^kernel-(?P<flavour>[a-z0-9_]+)-debuginfo$")
PHOTON_NAME_RE = re.compile(r"^linux(?:-(?P<flavour>[a-z0-9_]+))?-debuginfo$")


def kernel_release(repo: Repository, name: str, ver: str, rel: str, uarch: str) -> str | None:
    """uname -r of a kernel debuginfo package, None when the name gives none.

    SUSE's kernel-default-debuginfo 5.3.18-59.5.2 is uname 5.3.18-59.5-default:
    the release's last number counts rebuilds and is not part of uname -r.
    Photon's specs define uname_r as %{version}-%{release}, plus -<flavour>
    for every kernel but the generic one, and no architecture: linux-debuginfo
    4.19.283-1.ph3 is 4.19.283-1.ph3, linux-esx-debuginfo 4.19.283-1.ph3-esx.
    """
    if repo.kernel_release == "suse":
        m = SUSE_NAME_RE.match(name)
        if m is None or "." not in rel:
            return None
        return f"{ver}-{rel.rsplit('.', 1)[0]}-{m.group('flavour')}"
    if repo.kernel_release == "photon":
        p = PHOTON_NAME_RE.match(name)
        if p is None:
            return None
        return f"{ver}-{rel}" + (f"-{p.group('flavour')}" if p.group("flavour") else "")
    return f"{ver}-{rel}.{uarch}"


def _package(
    elem: ET.Element, arch: str, repo: Repository, root: str, where: str, url: str
) -> KernelPackage:
    name = _text(elem, "name")
    version = elem.find(f"{COMMON_NS}version")
    checksum = elem.find(f"{COMMON_NS}checksum")
    size = elem.find(f"{COMMON_NS}size")
    location = elem.find(f"{COMMON_NS}location")
    if version is None or size is None or location is None or checksum is None:
        raise UpstreamIndexError(f"{where}: a {name} entry lacks version, size or location", url)
    ver, rel, epoch = version.get("ver"), version.get("rel"), version.get("epoch", "0")
    href, package_size = location.get("href"), size.get("package", "")
    # isascii(): str.isdigit() also accepts "²", which int() refuses.
    if not ver or not rel or not href or not (package_size.isascii() and package_size.isdigit()):
        raise UpstreamIndexError(f"{where}: a {name} entry has a bad version, size or href", url)
    uarch = _text(elem, "arch")
    if checksum.get("type") != "sha256" or not checksum.text:
        raise UpstreamIndexError(
            f"{where}: {name}-{ver}-{rel}.{uarch} has a {checksum.get('type')} checksum, "
            "not sha256: btfhub builds only packages it can verify",
            url,
        )
    uname = kernel_release(repo, name, ver, rel, uarch)
    if uname is None or not UNAME_RE.fullmatch(uname):
        raise UpstreamIndexError(f"{where}: {name}: unusable kernel release {uname!r}", url)
    base = location.get(XML_BASE)  # rpm-md lets an entry name another base URL
    if base:
        base = base if base.endswith("/") else base + "/"
    return KernelPackage(
        uname=uname,
        arch=arch,
        name=name,
        version=f"{ver}-{rel}" if epoch in ("", "0") else f"{epoch}:{ver}-{rel}",
        url=urljoin(base or root, href),
        size=int(package_size),
        sha256=checksum.text.strip().lower(),
        repository=repo.id,
        filename=href,
        format="rpm",
    )


def _packages(body: bytes, where: str, url: str) -> Iterator[ET.Element]:
    with open_decompressed(body, where, url) as f:
        try:
            events = ET.iterparse(f, events=("start", "end"))
            _, root = next(events)
            for event, elem in events:
                if event == "end" and elem.tag == f"{COMMON_NS}package":
                    yield elem
                    root.clear()  # keep memory flat over a 100k-package index
        except XML_ERRORS as exc:
            raise UpstreamIndexError(f"{where}: bad XML: {exc}", url) from exc


def _parse_primary(
    client: UpstreamClient,
    repo: Repository,
    arch: str,
    root: str,
    url: str,
    size: int | None,
    checksum: Checksum,
) -> list[IndexMatch]:
    """The kernel packages a primary index lists, in its order (fetched and verified first)."""
    uarch = upstream_arch(repo, arch)
    names = set(repo.packages)
    where = client.where(url)
    body = client.get_index(url, size=size, checksum=checksum)
    return [
        IndexMatch(_package(elem, arch, repo, root, where, url))
        for elem in _packages(body, where, url)
        if elem.get("type", "rpm") == "rpm"
        and _text(elem, "name") in names
        and _text(elem, "arch") == uarch
    ]


def _check_repomd_signature(
    upstream: UpstreamContext, repo: Repository, repomd: bytes, url: str
) -> SignedIndex | None:
    client = upstream.client
    where = client.where(url)
    try:
        keyring = upstream.trust.keyring(repo)
    except BtfhubError as exc:
        raise UpstreamIndexError(f"{where}: {exc}", url) from None
    if keyring is None:
        return None
    signature = client.find_index(url + ".asc")
    if signature is None:
        return None  # the packages' header signatures are the anchor (generator.verify)
    try:
        verdict = keyring.verify_detached(repomd, signature, f"{client.where(url + '.asc')}")
    except SignatureError as exc:
        raise UpstreamIndexError(str(exc), url + ".asc") from None
    return SignedIndex(url, verdict.signers)


def discover_rpmmd(
    upstream: UpstreamContext, repo: Repository, source: Source, arch: str
) -> list[KernelPackage]:
    """Kernel packages of one architecture across the source's repo roots, sorted by uname.

    The first path listing a uname wins (the manifest orders them).
    """
    client = upstream.client
    uarch = upstream_arch(repo, arch)
    names = set(repo.packages)
    found: dict[str, KernelPackage] = {}
    for path in source.paths:
        root = repo_root(repo, arch, path)
        if repo.mirrorlist:
            root = resolve_mirror_list(client, urljoin(root, MIRROR_LIST), uarch)
        repomd_url = urljoin(root, "repodata/repomd.xml")
        repomd = client.get_index(repomd_url)
        signed = _check_repomd_signature(upstream, repo, repomd, repomd_url)
        href, size, checksum = _primary_location(repomd, client.where(repomd_url), repomd_url)
        url = urljoin(root, href)
        # Everything _package's result depends on besides the primary's bytes.
        inputs = parse_inputs(
            repo, root, arch, packages=sorted(names), kernel_release=repo.kernel_release
        )
        parse = partial(_parse_primary, client, repo, arch, root, url, size, checksum)
        for match in upstream.listing(checksum, inputs, parse):
            # Listings are cached unsigned: the signature is this run's check.
            found.setdefault(match.package.uname, replace(match.package, signed_index=signed))
    return [found[u] for u in sorted(found)]
