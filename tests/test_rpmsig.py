"""The RPM header signature reader: what it covers, and malformed headers refused cleanly.

A real package built by rpmbuild and signed by rpmsign; rpm itself
(`rpm -qp --qf`) is the reference for the file digests.
"""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import pytest

from generator.errors import PackageError
from generator.mirrorkit.rpmpkg import build_rpm
from generator.mirrorkit.signing import default_signer
from generator.openpgp import Keyring, SignatureError
from generator.packages.rpmsig import RpmHeaders, read_headers

UNAME = "4.18.0-348.el8.x86_64"
VMLINUX = f"/usr/lib/debug/lib/modules/{UNAME}/vmlinux"


@pytest.fixture(scope="module")
def signed_rpm(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> Path:
    out = tmp_path_factory.mktemp("rpm")
    return build_rpm(out, "kernel-debuginfo", "4.18.0", "348.el8", "x86_64", UNAME, fixture_elf)


@pytest.fixture(scope="module")
def trusted() -> Keyring:
    return Keyring((default_signer().public_key,))


def headers(data: bytes) -> RpmHeaders:
    return read_headers(io.BytesIO(data))


def test_file_digests_are_the_ones_rpm_reads(signed_rpm: Path, trusted: Keyring) -> None:
    parsed = headers(signed_rpm.read_bytes())
    parsed.verify(trusted, signed_rpm.name)
    query = subprocess.run(
        [
            "rpm",
            "-qp",
            "--nosignature",
            "--qf",
            "[%{FILENAMES} %{FILEDIGESTS}\\n]",
            str(signed_rpm),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = dict(line.split() for line in query.splitlines() if line.split()[1:])
    assert parsed.file_digest(VMLINUX) == ("sha256", listed[VMLINUX])
    assert parsed.consumed == signed_rpm.read_bytes()[: len(parsed.consumed)]
    with pytest.raises(PackageError, match="lists no digest for /usr/lib/debug/nothing"):
        parsed.file_digest("/usr/lib/debug/nothing")


def test_any_change_to_the_signed_header_breaks_the_signature(
    signed_rpm: Path, trusted: Keyring
) -> None:
    data = signed_rpm.read_bytes()
    parsed = headers(data)
    start = len(parsed.lead) + len(parsed.signature.raw) + len(parsed.signature.padding)
    end = start + len(parsed.main.raw)
    # Every 97th byte of the main header (tag table and data alike), flipped.
    for offset in range(start + 16, end, 97):
        mutated = bytearray(data)
        mutated[offset] ^= 0x01
        try:
            damaged = headers(bytes(mutated))
        except PackageError:
            continue  # refused as malformed: fine too
        with pytest.raises(SignatureError):
            damaged.verify(trusted, "mutated")


def test_malformed_and_truncated_headers_fail_cleanly_and_fast(signed_rpm: Path) -> None:
    data = signed_rpm.read_bytes()
    parsed = headers(data)
    size = len(parsed.consumed)
    started = time.monotonic()
    cases = [data[:cut] for cut in range(0, size, 61)]
    for offset in range(0, size, 13):
        for value in (0x00, 0xFF, 0x80):
            mutated = bytearray(data[:size])
            mutated[offset] = value
            cases.append(bytes(mutated))
    for case in cases:
        try:
            found = headers(case)
            found.header_signature()
            found.file_digest(VMLINUX)
        except PackageError:
            pass
    assert time.monotonic() - started < 30, "the header reader must stay fast on garbage"
