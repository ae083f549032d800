"""The demo's upstream repositories, written as the upstreams lay them out.

write_apt_repo() and write_rpmmd_repo() lay packages out in the upstream
formats (dists/<suite>/Release + Packages.xz; repodata/repomd.xml +
primary.xml.gz) from package files on disk, for demokit/server.py's
MirrorServer to serve. Metadata is read from the real
package with dpkg-deb / rpm, or given explicitly (AptPackage, RpmPackage)
for decoys that need no real contents: discovery never opens a package.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import zstandard

from generator.demokit.signing import Signer, default_signer

# -- shared helpers ----------------------------------------------------------------


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def compress(data: bytes, codec: str) -> bytes:
    """Compress with "xz", "gz", "zst", "bz2" or "" (none); deterministic output."""
    if codec == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64)
    if codec == "gz":
        return gzip.compress(data, mtime=0)
    if codec == "zst":
        return zstandard.ZstdCompressor(write_checksum=True).compress(data)
    if codec == "bz2":
        return bz2.compress(data)
    if codec == "":
        return data
    raise ValueError(f"unknown compression {codec!r}")


def _place(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.resolve() != src.resolve():
        shutil.copyfile(src, dest)


# -- apt ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AptPackage:
    """A package file and the control fields its Packages stanza shows."""

    path: Path
    package: str
    version: str
    architecture: str
    source: str = ""  # defaults to the package name

    @classmethod
    def from_deb(cls, path: Path, source: str = "") -> AptPackage:
        fields = subprocess.run(
            ["dpkg-deb", "-f", str(path), "Package", "Version", "Architecture", "Source"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        values = {}
        for line in fields.splitlines():
            name, _, value = line.partition(":")
            values[name.strip()] = value.strip()
        return cls(
            path,
            values["Package"],
            values["Version"],
            values["Architecture"],
            source or values.get("Source", "").split(" ")[0],
        )

    @property
    def source_name(self) -> str:
        return self.source or self.package


def pool_dir(component: str, source: str) -> str:
    prefix = source[:4] if source.startswith("lib") else source[:1]
    return f"pool/{component}/{prefix}/{source}"


def apt_stanza(
    package: str, source: str, version: str, arch: str, filename: str, size: int, sha256: str
) -> str:
    return (
        "\n".join(
            [
                f"Package: {package}",
                *([f"Source: {source}"] if source and source != package else []),
                f"Version: {version}",
                f"Architecture: {arch}",
                "Maintainer: btfhub tests <tests@example.invalid>",
                f"Filename: {filename}",
                f"Size: {size}",
                f"SHA256: {sha256}",
                "Description: btfhub test fixture",
                " A continuation line, as real descriptions have.",
            ]
        )
        + "\n"
    )


def write_packages(
    repo: Path,
    suite: str,
    component: str,
    arch: str,
    stanzas: list[tuple[str, str, str]],
    compression: str | Sequence[str],
) -> None:
    text = "\n".join(s for _, _, s in sorted(stanzas)).encode()
    index_dir = repo / "dists" / suite / component / f"binary-{arch}"
    index_dir.mkdir(parents=True, exist_ok=True)
    codecs = [compression] if isinstance(compression, str) else list(compression)
    for codec in codecs:
        (index_dir / ("Packages" + (f".{codec}" if codec else ""))).write_bytes(
            compress(text, codec)
        )


def write_apt_repo(
    root: Path,
    base_subdir: str,
    suite: str,
    component: str,
    arch: str,
    debs: Sequence[Path | AptPackage],
    compression: str | Sequence[str] = "xz",
    *,
    signed: bool = True,
    signer: Signer | None = None,
) -> Path:
    """Write <root>/<base_subdir>/{pool,dists/<suite>} for one component and arch.

    compression: "xz", "gz", "bz2", "" (plain) or several; each form is
    written and listed in Release. Release lists every index present under
    dists/<suite>/, so several calls build up several components or arches.
    Returns the repository root directory.
    """
    repo = root / base_subdir
    stanzas = []
    for item in debs:
        pkg = item if isinstance(item, AptPackage) else AptPackage.from_deb(item)
        filename = f"{pool_dir(component, pkg.source_name)}/{pkg.path.name}"
        _place(pkg.path, repo / filename)
        stanza = apt_stanza(
            pkg.package,
            pkg.source,
            pkg.version,
            pkg.architecture,
            filename,
            pkg.path.stat().st_size,
            sha256_file(pkg.path),
        )
        stanzas.append((pkg.package, pkg.version, stanza))
    write_packages(repo, suite, component, arch, stanzas, compression)
    write_release(repo / "dists" / suite, suite, signed=signed, signer=signer)
    return repo


# Where a mirror directory keeps its copy of Launchpad's API.
LAUNCHPAD_API = "https://api.launchpad.net/1.0/"
LAUNCHPAD_DIR = "launchpad/api/1.0/"


def write_empty_launchpad(directory: Path) -> None:
    """A Launchpad archive that publishes nothing, as static files.

    The shipped Ubuntu releases read Launchpad after ddebs (a fallback): the
    demo, and tests about ddebs, point Launchpad here, where every
    getPublishedBinaries query (MirrorServer ignores the query string) answers
    the empty collection page the real API gives for a name nothing matches.
    tests/kit/launchpad.py is the API that publishes something.
    """
    page = directory / LAUNCHPAD_DIR / "ubuntu/+archive/primary"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text('{"start": 0, "total_size": 0, "entries": []}\n')


def write_release(
    suite_dir: Path, suite: str, *, signed: bool = True, signer: Signer | None = None
) -> Path:
    """dists/<suite>/Release listing every file below it with size and SHA-256.

    Signed like an upstream suite (InRelease and Release.gpg) by `signer`,
    the process's test key by default; signed=False leaves neither.
    """
    files = sorted(
        p
        for p in suite_dir.rglob("*")
        if p.is_file() and p.name not in ("Release", "InRelease", "Release.gpg")
    )
    arches = sorted(
        {p.parent.name[len("binary-") :] for p in files if p.parent.name.startswith("binary-")}
    )
    components = sorted({p.relative_to(suite_dir).parts[0] for p in files})
    lines = [
        "Origin: btfhub-tests",
        "Label: btfhub-tests",
        f"Suite: {suite}",
        f"Codename: {suite.split('-')[0]}",
        "Date: Thu, 01 Jan 1970 00:00:00 UTC",
        f"Architectures: {' '.join(arches)}",
        f"Components: {' '.join(components)}",
        "Description: btfhub test repository",
        "MD5Sum:",
    ]
    for p in files:
        data, rel = p.read_bytes(), p.relative_to(suite_dir).as_posix()
        lines.append(f" {hashlib.md5(data).hexdigest()} {len(data):>16} {rel}")
    lines.append("SHA256:")
    for p in files:
        data, rel = p.read_bytes(), p.relative_to(suite_dir).as_posix()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data):>16} {rel}")
    release = suite_dir / "Release"
    release.write_text("\n".join(lines) + "\n")
    for stale in ("InRelease", "Release.gpg"):
        (suite_dir / stale).unlink(missing_ok=True)
    if signed:
        (signer or default_signer()).sign_release(release)
    return release


# -- rpm-md -------------------------------------------------------------------------


@dataclass(frozen=True)
class RpmPackage:
    """A package file and what its primary.xml entry shows."""

    path: Path
    name: str
    version: str
    release: str
    arch: str
    epoch: str = "0"
    checksum_type: str = "sha256"  # anything else: the digest written is sha1

    @classmethod
    def from_rpm(cls, path: Path) -> RpmPackage:
        out = subprocess.run(
            [
                "rpm",
                "-qp",
                "--nosignature",
                "--qf",
                "%{NAME}\\n%{EPOCHNUM}\\n%{VERSION}\\n%{RELEASE}\\n%{ARCH}\\n",
                str(path),
            ],
            capture_output=True,
            check=True,
            text=True,
        ).stdout.splitlines()
        name, epoch, version, release, arch = out[:5]
        return cls(path, name, version, release, arch, epoch)

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}"


PRIMARY_EXT = {"gz": ".gz", "xz": ".xz", "zst": ".zst", "bz2": ".bz2", "": ""}


@dataclass(frozen=True)
class IndexedRpm:
    """A primary.xml entry with no package file behind it (index-only mirrors)."""

    name: str
    version: str
    release: str
    arch: str
    size: int
    sha256: str
    href: str  # location relative to the repo root, e.g. Packages/k/<file>.rpm
    epoch: str = "0"

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}"


def primary_entry(entry: IndexedRpm, checksum_type: str = "sha256") -> str:
    return (
        '<package type="rpm">\n'
        f"  <name>{escape(entry.name)}</name>\n"
        f"  <arch>{escape(entry.arch)}</arch>\n"
        f'  <version epoch="{entry.epoch}" ver="{entry.version}" rel="{entry.release}"/>\n'
        f'  <checksum type="{checksum_type}" pkgid="YES">{entry.sha256}</checksum>\n'
        "  <summary>btfhub test fixture</summary>\n"
        "  <description>btfhub test fixture &amp; friends</description>\n"
        "  <packager>btfhub tests</packager>\n"
        "  <url>https://example.invalid/</url>\n"
        '  <time file="0" build="0"/>\n'
        f'  <size package="{entry.size}" installed="{entry.size * 3}" '
        f'archive="{entry.size * 3}"/>\n'
        f"  <location href={quoteattr(entry.href)}/>\n"
        "  <format>\n"
        "    <rpm:license>GPL-2.0</rpm:license>\n"
        f"    <rpm:sourcerpm>{escape(entry.nevra)}.src.rpm</rpm:sourcerpm>\n"
        '    <rpm:provides><rpm:entry name="kernel-debuginfo-fixture"/></rpm:provides>\n'
        "  </format>\n"
        "</package>\n"
    )


def write_rpmmd_repo(
    repo_root: Path,
    rpms: Sequence[Path | RpmPackage],
    primary_compression: str = "gz",
    flat: bool = True,
    package_dir: str | None = None,
    *,
    repomd_signer: Signer | None = None,
) -> Path:
    """Write repodata/{repomd.xml,<sha>-primary.xml.<ext>} and place the packages.

    Packages go in repo_root (flat, CentOS 7 debuginfo style), in
    Packages/<first letter>/ (flat=False, Fedora/CentOS 8 style), or in
    package_dir relative to repo_root, which may climb out with "../" so the
    hrefs do too. Returns repo_root.
    """
    repo_root.mkdir(parents=True, exist_ok=True)
    entries = []
    for item in rpms:
        pkg = item if isinstance(item, RpmPackage) else RpmPackage.from_rpm(item)
        subdir = (
            package_dir
            if package_dir is not None
            else ("" if flat else f"Packages/{pkg.name[0].lower()}")
        )
        href = f"{subdir.rstrip('/')}/{pkg.path.name}" if subdir else pkg.path.name
        _place(pkg.path, (repo_root / href))
        if pkg.checksum_type == "sha256":
            digest = sha256_file(pkg.path)
        else:
            digest = hashlib.sha1(pkg.path.read_bytes()).hexdigest()
        indexed = IndexedRpm(
            pkg.name,
            pkg.version,
            pkg.release,
            pkg.arch,
            pkg.path.stat().st_size,
            digest,
            href,
            pkg.epoch,
        )
        entries.append((pkg.nevra, primary_entry(indexed, pkg.checksum_type)))
    write_repodata(repo_root, entries, primary_compression, repomd_signer)
    return repo_root


def write_repodata(
    repo_root: Path,
    entries: list[tuple[str, str]],
    primary_compression: str,
    repomd_signer: Signer | None = None,
) -> None:
    primary = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<metadata xmlns="http://linux.duke.edu/metadata/common" '
        'xmlns:rpm="http://linux.duke.edu/metadata/rpm" '
        f'packages="{len(entries)}">\n' + "".join(e for _, e in sorted(entries)) + "</metadata>\n"
    ).encode()
    filelists = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="0"/>\n'
    )
    repodata = repo_root / "repodata"
    shutil.rmtree(repodata, ignore_errors=True)
    repodata.mkdir()
    data_entries = []
    for kind, raw, codec in (
        ("primary", primary, primary_compression),
        ("filelists", filelists, "gz"),
    ):
        packed = compress(raw, codec)
        digest = hashlib.sha256(packed).hexdigest()
        name = f"{digest}-{kind}.xml{PRIMARY_EXT[codec]}"
        (repodata / name).write_bytes(packed)
        data_entries.append(
            f'  <data type="{kind}">\n'
            f'    <checksum type="sha256">{digest}</checksum>\n'
            f'    <open-checksum type="sha256">{hashlib.sha256(raw).hexdigest()}</open-checksum>\n'
            f'    <location href="repodata/{name}"/>\n'
            "    <timestamp>0</timestamp>\n"
            f"    <size>{len(packed)}</size>\n"
            f"    <open-size>{len(raw)}</open-size>\n"
            "  </data>\n"
        )
    # filelists first: discovery must pick primary by type, not by position.
    (repodata / "repomd.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<repomd xmlns="http://linux.duke.edu/metadata/repo" '
        'xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n'
        "  <revision>0</revision>\n" + "".join(reversed(data_entries)) + "</repomd>\n"
    )
    # Most debuginfo repositories publish no repomd.xml.asc (their RPMs are
    # signed instead); a test that wants one passes a signer.
    if repomd_signer is not None:
        repomd_signer.sign_detached(repodata / "repomd.xml")


def primary_path(repo_root: Path) -> Path:
    """The primary.xml.* file a write_rpmmd_repo() call wrote."""
    (found,) = (repo_root / "repodata").glob("*-primary.xml*")
    return found
