"""Kernel debug packages in an apt repository (Ubuntu ddebs, Debian main).

The chain of trust follows apt's: dists/<suite>/Release lists every index
with its size and SHA-256, each Packages index lists every package with its
size and SHA-256. Release's own signature (Release.gpg) is checked with
gpgv when the repository names a keyring in its manifest. deb822 is
parsed here rather than with python-debian, whose parser guesses encodings
and skips malformed lines silently: a broken index must fail loudly with its URL and line number.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from debian.debian_support import Version

from generator.errors import BtfhubError
from generator.model import KernelPackage, Repository, Source
from generator.upstream.compression import open_decompressed
from generator.upstream.http import Checksum, UpstreamClient, UpstreamIndexError

# Preference among the compressed forms of one index, best first.
INDEX_SUFFIXES = (".xz", ".gz", "")

# A uname -r starts with a digit. Requiring it keeps "linux-image-{uname}-dbgsym"
# from matching linux-image-unsigned-5.4.0-42-generic-dbgsym with uname "unsigned-...".
UNAME_RE = r"(?P<uname>[0-9][A-Za-z0-9.+~_-]*)"

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def repo_root(repo: Repository, arch: str) -> str:
    """The repository URL for one architecture, ending with '/' so urljoin appends."""
    url = repo.url.replace("{arch}", repo.upstream_arch(arch))
    return url if url.endswith("/") else url + "/"


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


def verify_signature(data: bytes, signature: bytes, keyring: str, where: str, url: str) -> None:
    """gpgv: `signature` (Release.gpg) is a good signature of `data` by a key in `keyring`."""
    with tempfile.TemporaryDirectory(prefix="btfhub-gpgv-") as tmp:
        data_file, sig_file = Path(tmp, "Release"), Path(tmp, "Release.gpg")
        data_file.write_bytes(data)
        sig_file.write_bytes(signature)
        try:
            proc = subprocess.run(
                ["gpgv", "--keyring", keyring, str(sig_file), str(data_file)],
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError:
            raise BtfhubError("gpgv is not installed (run scripts/setup.sh)") from None
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.split())[-300:]
        raise UpstreamIndexError(
            f"{where}: bad or missing signature (Release.gpg, keyring {keyring}): {detail}", url
        )


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


def package_matchers(repo: Repository, uarch: str) -> list[re.Pattern[str]]:
    matchers = []
    for pattern in repo.packages:
        if "{uname}" not in pattern:
            raise BtfhubError(f"repository {repo.id}: package pattern {pattern!r} lacks {{uname}}")
        pieces = [re.escape(p.replace("{arch}", uarch)) for p in pattern.split("{uname}")]
        matchers.append(re.compile(UNAME_RE.join(pieces)))
    return matchers


def flavours(repo: Repository, uarch: str) -> frozenset[str]:
    return frozenset(f.replace("{arch}", uarch) for f in repo.flavours)


def flavour_of(uname: str) -> str:
    """What follows <version>-<abi>-: "generic" in 5.4.0-42-generic, "cloud-amd64"
    in 4.19.0-20-cloud-amd64, "rt-amd64" in 5.10.0-0.bpo.15-rt-amd64.

    Compared whole, not as a suffix: flavour "amd64" must not let rt-amd64 in.
    """
    parts = uname.split("-", 2)
    return parts[2] if len(parts) == 3 else ""


@dataclass(frozen=True)
class _Candidate:
    rank: int  # index of the package pattern that matched; lower is preferred
    version: Version
    package: KernelPackage

    def beats(self, other: _Candidate) -> bool:
        if self.rank != other.rank:
            return self.rank < other.rank
        return bool(self.version > other.version)


def _match(matchers: list[re.Pattern[str]], name: str) -> tuple[int, str] | None:
    for rank, matcher in enumerate(matchers):
        m = matcher.fullmatch(name)
        if m:
            return rank, m.group("uname")
    return None


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


def discover_apt(
    client: UpstreamClient, repo: Repository, source: Source, arch: str
) -> list[KernelPackage]:
    """Kernel packages of one architecture across the source's suites, sorted by uname.

    For one uname the earliest matching package pattern wins (Ubuntu's
    unsigned image over the near-empty signed one), then the highest Version.
    """
    uarch = repo.upstream_arch(arch)
    root = repo_root(repo, arch)
    matchers = package_matchers(repo, uarch)
    wanted_flavours = flavours(repo, uarch)
    best: dict[str, _Candidate] = {}
    for suite in source.suites:
        release_url = urljoin(root, f"dists/{suite}/Release")
        release_where = client.where(release_url)
        release = client.get_index(release_url)
        if repo.keyring is not None:
            signature = client.get_index(release_url + ".gpg")
            verify_signature(release, signature, repo.keyring, release_where, release_url)
        entries = parse_release(release, release_where, release_url)
        for component in repo.components:
            entry = pick_index(entries, component, uarch, release_where, release_url)
            url = urljoin(root, f"dists/{suite}/{entry.name}")
            where = client.where(url)
            body = client.get_index(url, size=entry.size, checksum=Checksum("sha256", entry.sha256))
            with open_decompressed(body, where, url) as f:
                for stanza in iter_stanzas(f, where, url):
                    name = stanza.get("package")
                    if name is None:
                        raise UpstreamIndexError(f"{where}: a paragraph has no Package field", url)
                    hit = _match(matchers, name)
                    if hit is None or stanza.get("architecture", uarch) != uarch:
                        continue
                    rank, uname = hit
                    if wanted_flavours and flavour_of(uname) not in wanted_flavours:
                        continue
                    pkg = _package(stanza, uname, arch, repo, root, where, url)
                    try:
                        version = Version(pkg.version)
                    except ValueError as exc:
                        raise UpstreamIndexError(f"{where}: package {name}: {exc}", url) from exc
                    candidate = _Candidate(rank, version, pkg)
                    if uname not in best or candidate.beats(best[uname]):
                        best[uname] = candidate
    return [best[u].package for u in sorted(best)]
