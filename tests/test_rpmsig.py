"""The RPM header signature reader: what it covers, and malformed headers refused cleanly.

A real package built by rpmbuild and signed by rpmsign; rpm itself
(`rpm -qp --qf`) is the reference for the file digests.
"""

from __future__ import annotations

import io
import re
import subprocess
import time
from pathlib import Path

import pytest

from generator.demokit.signing import Signer, default_signer
from generator.errors import PackageError
from generator.openpgp import Keyring, SignatureError
from generator.packages.rpmsig import RpmHeaders, read_headers
from tests.kit.rpmpkg import with_header_signature
from tests.kit.shelf import build_rpm
from tests.kit.signing import v3_rsa_sha256_signature

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


def verify(parsed: RpmHeaders, keyring: Keyring, what: str) -> None:
    """The main header is signed by a key of keyring, as generator.verify checks it."""
    signature = parsed.header_signature()
    assert signature is not None, f"{what}: no header signature"
    keyring.verify_detached(parsed.main.signed, signature, what)


def test_file_digests_are_the_ones_rpm_reads(signed_rpm: Path, trusted: Keyring) -> None:
    parsed = headers(signed_rpm.read_bytes())
    verify(parsed, trusted, signed_rpm.name)
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


def rpm_checksig(rpm: Path, key: Path, tmp_path: Path) -> str:
    """rpm's own verdict, with only `key` imported into a scratch rpmdb."""
    root = tmp_path / f"rpmdb-{rpm.stem}"
    root.mkdir()
    subprocess.run(["rpmkeys", "--root", str(root), "--import", str(key)], check=True)
    return subprocess.run(
        ["rpmkeys", "--root", str(root), "-Kv", str(rpm)], capture_output=True, text=True
    ).stdout


def test_rpm_agrees_the_header_signature_is_good(signed_rpm: Path, tmp_path: Path) -> None:
    verdict = rpm_checksig(signed_rpm, default_signer().public_key, tmp_path)
    assert re.search(r"Header V4 EdDSA/SHA256 Signature, key ID [0-9a-f]{8}: OK", verdict), verdict


def test_a_v3_header_signature_as_el7_packages_carry_verifies(
    tmp_path: Path, fixture_elf: Path, rsa_signer: Signer
) -> None:
    """CentOS/RHEL 7 RPMs carry V3 RSA/SHA256 header signatures; gpg makes only V4 ones."""
    rsa = rsa_signer
    unsigned = build_rpm(
        tmp_path,
        "kernel-debuginfo",
        "3.10.0",
        "1160.el7",
        "x86_64",
        UNAME,
        fixture_elf,
        signed=False,
    )
    data = unsigned.read_bytes()
    signature = v3_rsa_sha256_signature(rsa, headers(data).main.signed, int(time.time()))
    el7 = tmp_path / "el7" / unsigned.name
    el7.parent.mkdir()
    el7.write_bytes(with_header_signature(data, signature))

    assert "Header V3 RSA/SHA256 Signature, key ID" in rpm_checksig(el7, rsa.public_key, tmp_path)
    ring = Keyring((rsa.public_key,))
    try:
        parsed = headers(el7.read_bytes())
        verify(parsed, ring, el7.name)
        assert parsed.file_digest(VMLINUX)[0] == "sha256"
    finally:
        ring.close()


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
            verify(damaged, trusted, "mutated")


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
