"""Fuzzing (hypothesis) of the package readers and the index parsers.

Arbitrary bytes and mutations of real packages and indexes (built at test
time) must end in the project's own error (PackageError for a package,
UpstreamIndexError for an index) or a clean success, within a bounded time:
never a hang, never another exception. Each example runs under a SIGALRM
watchdog, so a loop that never ends fails the test instead of hanging it.

The example count is bounded (BTFHUB_FUZZ_EXAMPLES, default 150 per
target) so the suite stays quick; raise it for a longer campaign, e.g.
BTFHUB_FUZZ_EXAMPLES=5000 BTFHUB_FUZZ_RANDOM=1 .venv/bin/pytest tests/test_fuzz.py. Bugs found
keep their input as an @example, so they are checked on every run.
"""

from __future__ import annotations

import gzip
import lzma
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from generator.errors import PackageError
from generator.packages import ar, cpio, extract_vmlinux, rpmheader
from generator.packages.deb import _extract_from_tar
from generator.upstream import apt, htmllisting, rpmmd
from generator.upstream.compression import decompressed_chunks
from generator.upstream.http import UpstreamIndexError
from tests.kit.debpkg import build_kernel_deb, tar_bytes, tar_file, write_ar
from tests.kit.shelf import build_rpm
from tests.kit.streams import OneWayStream, as_io

EXAMPLES = int(os.environ.get("BTFHUB_FUZZ_EXAMPLES", "150"))
# Per example: generous for a 2-core machine shared with other jobs, far
# below what a hang would take.
WATCHDOG_SECONDS = 10.0
DEB_UNAME = "5.4.0-42-generic"
RPM_UNAME = "5.14.0-70.el9.x86_64"
URL = "http://fuzz.example/index"

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the watchdog bounds time; deadlines flake on a busy machine
    # The same examples on every run, so CI stays reproducible; a campaign sets
    # BTFHUB_FUZZ_RANDOM=1 to explore new ones (hypothesis prints a failure's seed).
    derandomize=os.environ.get("BTFHUB_FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


class Hang(AssertionError):
    """An example ran longer than the watchdog allows."""


@contextmanager
def watchdog(seconds: float = WATCHDOG_SECONDS) -> Iterator[None]:
    def fire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds} s: a hang on this input")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def clean(expected: type[Exception], run: Callable[[], object]) -> None:
    """Run under the watchdog; only success or `expected` may come out."""
    with watchdog(), suppress(expected):
        run()


# -- corpora: real packages and indexes, built once -----------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("fuzz-corpus")
    out: dict[str, bytes] = {}
    for comp in ("xz", "gz", "zst", "none"):
        out[f"deb-{comp}"] = build_kernel_deb(tmp / comp, DEB_UNAME, fixture_elf, comp).read_bytes()
    # A multi-block xz data.tar, as Debian's threaded xz writes it: the
    # parallel block decoder of generator.packages.xz reads it.
    tar = tar_bytes(
        [
            tar_file("./usr/share/doc/a", os.urandom(20000)),
            tar_file(f"./usr/lib/debug/boot/vmlinux-{DEB_UNAME}", fixture_elf.read_bytes()),
        ]
    )
    blocks = subprocess.run(
        ["xz", "-T2", "--block-size=8192", "-c"], input=tar, capture_output=True, check=True
    ).stdout
    members = [("debian-binary", b"2.0\n"), ("control.tar.gz", b""), ("data.tar.xz", blocks)]
    out["deb-xz-blocks"] = write_ar(tmp / "blocks.deb", members).read_bytes()
    for comp in ("xz", "zstd", "gzip", "bzip2", "none"):
        rpm = build_rpm(
            tmp / f"rpm-{comp}",
            "kernel-debuginfo",
            "5.14.0",
            "70.el9",
            "x86_64",
            RPM_UNAME,
            fixture_elf,
            comp,
        )
        out[f"rpm-{comp}"] = rpm.read_bytes()
    return out


DIGEST = b"0d4a0b8bcdda3b1b4a7bd13a04c4ca8d6bb5be5066e5a4f0c1e84ff34d8ddb4a"
RELEASE = b"""Origin: Ubuntu
Suite: focal
Codename: focal
Architectures: amd64 arm64
Components: main
SHA256:
 0d4a0b8bcdda3b1b4a7bd13a04c4ca8d6bb5be5066e5a4f0c1e84ff34d8ddb4a 1234 main/binary-amd64/Packages
 5e0b3a6e1c8c1b3f5e2d4c7b9a8f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5 456 main/binary-amd64/Packages.xz
"""

PACKAGES = b"""Package: linux-image-unsigned-5.4.0-42-generic-dbgsym
Source: linux
Version: 5.4.0-42.46
Architecture: amd64
Filename: pool/main/l/linux/linux-image-unsigned-5.4.0-42-generic-dbgsym_5.4.0-42.46_amd64.ddeb
Size: 123456
SHA256: 0d4a0b8bcdda3b1b4a7bd13a04c4ca8d6bb5be5066e5a4f0c1e84ff34d8ddb4a
Description: Linux kernel debug image
 continued.

Package: linux-image-5.4.0-42-generic-dbgsym
Version: 5.4.0-42.46
Architecture: amd64
Filename: pool/main/l/linux/linux-image-5.4.0-42-generic-dbgsym_5.4.0-42.46_amd64.ddeb
Size: 1234
SHA256: 5e0b3a6e1c8c1b3f5e2d4c7b9a8f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5
"""

REPOMD = b"""<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo">
  <data type="primary">
    <checksum type="sha256">%(digest)s</checksum>
    <location href="repodata/primary.xml.gz"/>
    <size>1234</size>
  </data>
</repomd>
""" % {b"digest": DIGEST}

PRIMARY = b"""<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" packages="1">
<package type="rpm">
  <name>kernel-debuginfo</name>
  <arch>x86_64</arch>
  <version epoch="0" ver="3.10.0" rel="1160.el7"/>
  <checksum type="sha256" pkgid="YES">%(digest)s</checksum>
  <size package="123456" installed="1" archive="1"/>
  <location href="kernel-debuginfo-3.10.0-1160.el7.x86_64.rpm"/>
</package>
</metadata>
""" % {b"digest": DIGEST}


# -- mutations ----------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """base with a few bytes flipped, a slice cut out or duplicated, or truncated."""
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "dup", "truncate", "insert"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def mutated_choice(names: list[str]) -> st.SearchStrategy[tuple[str, int]]:
    """(corpus name, seed): the test draws its mutation of that corpus entry."""
    return st.tuples(st.sampled_from(names), st.integers(0, 2**32 - 1))


# -- package readers -----------------------------------------------------------------


def _extract(data: bytes, fmt: str, uname: str, dest: Path, size: int | None = None) -> None:
    try:
        extract_vmlinux(as_io(OneWayStream(data)), fmt, uname, dest, package="p", size=size)
    finally:
        dest.unlink(missing_ok=True)


@FUZZ
@given(
    data=st.data(),
    name=st.sampled_from(["deb-xz", "deb-gz", "deb-zst", "deb-none", "deb-xz-blocks"]),
)
def test_fuzz_deb_mutations(
    corpus: dict[str, bytes],
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
    name: str,
) -> None:
    package = data.draw(mutated(corpus[name]))
    dest = tmp_path_factory.getbasetemp() / "fuzz-deb-vmlinux"
    clean(PackageError, lambda: _extract(package, "deb", DEB_UNAME, dest, len(package)))


@FUZZ
@given(
    data=st.data(),
    name=st.sampled_from(["rpm-xz", "rpm-zstd", "rpm-gzip", "rpm-bzip2", "rpm-none"]),
)
def test_fuzz_rpm_mutations(
    corpus: dict[str, bytes],
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
    name: str,
) -> None:
    package = data.draw(mutated(corpus[name]))
    dest = tmp_path_factory.getbasetemp() / "fuzz-rpm-vmlinux"
    clean(PackageError, lambda: _extract(package, "rpm", RPM_UNAME, dest, len(package)))


@FUZZ
@given(st.binary(max_size=4096))
@example(b"!<arch>\n" + b"x" * 48 + b"-1        `\n")
def test_fuzz_ar_arbitrary(data: bytes) -> None:
    def run() -> None:
        for member in ar.iter_members(OneWayStream(b"!<arch>\n" + data), len(data) + 8):
            assert member.size >= 0
            assert len(member.data.read(100)) <= member.size

    clean(PackageError, run)
    clean(PackageError, lambda: list(ar.iter_members(OneWayStream(data))))


def _cpio_header(size: bytes, namesize: bytes = b"00000002") -> bytes:
    fields = [b"00000000"] * 13
    fields[6], fields[11] = size, namesize
    return b"070701" + b"".join(fields) + b"x\0"


@FUZZ
@given(st.binary(max_size=4096))
# Found by this test: int(x, 16) reads "-0000001", " 000000a", "0x00000a"
# and "0000_00a", so a negative size made the member reader read everything.
@example(_cpio_header(b"-0000001") + b"\0" * 64)
@example(_cpio_header(b"0000_001") + b"\0" * 64)
@example(_cpio_header(b"00000004", b"-0000002"))
def test_fuzz_cpio_arbitrary(data: bytes) -> None:
    def run(stream: bytes) -> None:
        for member in cpio.iter_members(OneWayStream(stream)):
            assert member.size >= 0
            assert len(member.data.read(100)) <= member.size

    clean(PackageError, lambda: run(data))
    clean(PackageError, lambda: run(b"070701" + data))


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_rpm_lead_and_headers_arbitrary(data: bytes) -> None:
    lead = b"\xed\xab\xee\xdb\x03\x00\x00\x00" + b"\0" * 70 + b"\x00\x05" + b"\0" * 16

    def run() -> None:
        stream = OneWayStream(lead + data)
        rpmheader.read_lead(stream)
        signature = rpmheader.read_header(stream, "signature", pad=True)
        signature.ints(rpmheader.SIGTAG_SIZE)
        rpmheader.file_list(rpmheader.read_header(stream, "main", pad=False))

    clean(PackageError, run)
    clean(PackageError, lambda: rpmheader.read_lead(OneWayStream(data)))
    intro = b"\x8e\xad\xe8\x01\0\0\0\0"

    def header_only() -> None:
        header = rpmheader.read_header(OneWayStream(intro + data), "main", pad=False)
        rpmheader.file_list(header)
        for tag in header.entries:
            for read in (header.ints, header.strings):
                with suppress(PackageError):
                    read(tag)

    clean(PackageError, header_only)


@FUZZ
@given(st.binary(max_size=8192))
def test_fuzz_tar_stream_arbitrary(data: bytes) -> None:
    dest = Path(os.environ.get("TMPDIR", "/tmp")) / f"btfhub-fuzz-tar-{os.getpid()}"
    try:
        clean(PackageError, lambda: _extract_from_tar(OneWayStream(data), DEB_UNAME, dest))
    finally:
        dest.unlink(missing_ok=True)


# -- index parsers -------------------------------------------------------------------


def _stanzas(body: bytes) -> None:
    # As discover_apt reads each paragraph (it refuses one without Package first).
    for stanza in apt.iter_stanzas(body.splitlines(keepends=True), "Packages", URL):
        if "package" in stanza:
            apt._package(stanza, DEB_UNAME, "x86_64", _REPO, "http://x/", "Packages", URL)


_REPO = apt.Repository(id="r", kind="apt", url="http://x/", packages=("x-{uname}",))


@FUZZ
@given(data=st.data())
# Found by this test: str.isdigit() accepts "²" and other digits int() refuses,
# so a Size or SHA256 line with one raised ValueError, not a clean index error.
@example(data=None)
def test_fuzz_release_and_packages(data: st.DataObject | None) -> None:
    if data is None:
        release = RELEASE.replace(b" 1234 ", " 12\u00b2 ".encode())
        packages = PACKAGES.replace(b"Size: 1234\n", "Size: 1\u00b2\n".encode())
    else:
        release = data.draw(st.one_of(mutated(RELEASE), st.binary(max_size=2048)))
        packages = data.draw(st.one_of(mutated(PACKAGES), st.binary(max_size=2048)))
    clean(UpstreamIndexError, lambda: apt.parse_release(release, "Release", URL))
    clean(UpstreamIndexError, lambda: _stanzas(packages))


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9)
    )
    + b']><repomd xmlns="http://linux.duke.edu/metadata/repo">&j;</repomd>'
)


@FUZZ
@given(
    repomd=st.one_of(mutated(REPOMD), st.binary(max_size=2048)),
    primary=st.one_of(mutated(PRIMARY), st.binary(max_size=2048)),
    codec=st.sampled_from(["gzip", "xz", "none"]),
)
# Found by this test: encoding="TTF-8" made expat raise LookupError.
@example(repomd=REPOMD.replace(b"UTF-8", b"TTF-8"), primary=PRIMARY, codec="none")
@example(repomd=REPOMD, primary=PRIMARY.replace(b"UTF-8", b"TTF-8"), codec="gzip")
# An entity expansion bomb is refused by expat's amplification limit, quickly.
@example(
    repomd=BILLION_LAUGHS, primary=BILLION_LAUGHS.replace(b"repomd", b"metadata"), codec="none"
)
def test_fuzz_repomd_and_primary(repomd: bytes, primary: bytes, codec: str) -> None:
    compress = {"gzip": gzip.compress, "xz": lzma.compress, "none": bytes}[codec]
    compressed = compress(primary)
    repo = rpmmd.Repository(id="r", kind="rpm-md", url="http://x/", packages=("kernel-debuginfo",))

    def parse_primary() -> None:
        for elem in rpmmd._packages(compressed, "primary", URL):
            rpmmd._package(elem, "x86_64", repo, "http://x/", "primary", URL)

    clean(UpstreamIndexError, lambda: rpmmd._primary_location(repomd, "repomd", URL))
    clean(UpstreamIndexError, parse_primary)


@FUZZ
@given(
    magic=st.sampled_from([b"\x1f\x8b", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"BZh", b""]),
    body=st.binary(max_size=2048),
)
def test_fuzz_index_decompression(magic: bytes, body: bytes) -> None:
    clean(UpstreamIndexError, lambda: b"".join(decompressed_chunks(magic + body, "index", URL)))


def test_watchdog_catches_a_hang() -> None:
    """The watchdog itself: a loop that never ends is reported, not waited for."""

    def spin() -> None:
        while True:
            pass

    with pytest.raises(Hang), watchdog(0.2):
        spin()


def test_corpus_is_valid(corpus: dict[str, bytes], tmp_path: Path) -> None:
    """Unmutated, every corpus package yields its vmlinux: mutations start from real input."""
    for name, data in corpus.items():
        fmt, uname = ("deb", DEB_UNAME) if name.startswith("deb") else ("rpm", RPM_UNAME)
        dest = tmp_path / name
        extract_vmlinux(as_io(OneWayStream(data)), fmt, uname, dest, size=len(data))
        assert dest.stat().st_size > 0, name


LISTING = b"""<html><head><title>Index of /ol8/debuginfo</title></head><body>
<h1>Index of /ol8/debuginfo</h1><pre><a href="?C=N;O=D">Name</a>
<a href="/ol8/">Parent Directory</a>
<a href="kernel-uek-debuginfo-5.4.17-2136.300.7.el8uek.x86_64.rpm">kernel-uek-debuginfo-5.4.17</a>
<a href="kernel-debuginfo-common-x86_64-4.18.0-305.el8.x86_64.rpm">common</a>
<a href="http://elsewhere.example/x.rpm">x</a>
</pre></body></html>
"""


@FUZZ
@given(body=st.one_of(mutated(LISTING), st.binary(max_size=2048)))
# Found by this test: an href of "http://[host/x" made urlsplit raise ValueError.
@example(body=LISTING.replace(b"http://elsewhere", b"http://[elsewhere"))
def test_fuzz_html_listing(body: bytes) -> None:
    base = "https://oss.oracle.com/ol8/debuginfo/"
    clean(UpstreamIndexError, lambda: htmllisting.listing_files(body, base, "listing", URL))
