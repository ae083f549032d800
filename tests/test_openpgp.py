"""gpgv as btfhub uses it: the verdict from --status-fd, armored keys, clearsigned text.

Real gpg makes the keys and signatures (throwaway homes); real gpgv checks them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.demokit.signing import Signer
from generator.openpgp import KeyFileError, Keyring, SignatureError, fingerprints, read_key_file


@pytest.fixture(scope="module")
def signers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Signer]]:
    base = tmp_path_factory.mktemp("gpg")
    made = {name: Signer(base / name, name) for name in ("archive", "other")}
    yield made
    for signer in made.values():
        signer.close()


def keyring(*signers: Signer) -> Keyring:
    return Keyring(tuple(s.public_key for s in signers))


def detached(signer: Signer, data: Path) -> bytes:
    signer.gpg("--detach-sign", "-o", f"{data}.{signer.name}.sig", str(data))
    return Path(f"{data}.{signer.name}.sig").read_bytes()


def test_one_trusted_signature_among_unknown_ones_is_enough(
    tmp_path: Path, signers: dict[str, Signer]
) -> None:
    """Debian signs each Release with several keys; gpgv exits 2 when it lacks one of them."""
    data = tmp_path / "Release"
    data.write_bytes(b"Suite: stable\n")
    both = detached(signers["archive"], data) + detached(signers["other"], data)
    ring = keyring(signers["archive"])
    try:
        verdict = ring.verify_detached(data.read_bytes(), both, "Release")
        assert verdict.signers == (signers["archive"].fingerprint(),)
        with pytest.raises(SignatureError, match=r"Release: no good signature by a trusted key"):
            ring.verify_detached(data.read_bytes(), detached(signers["other"], data), "Release")
        with pytest.raises(SignatureError, match=r"Release: bad signature"):
            ring.verify_detached(b"Suite: evil\n", both, "Release")
    finally:
        ring.close()


def test_a_signature_made_before_the_key_expired_counts(tmp_path: Path) -> None:
    """Archived suites stay signed by the key of their time (stretch on archive.debian.org)."""
    old = Signer(tmp_path / "old", "old", expire="1y", faked_time="20200101T000000")
    data = tmp_path / "Release"
    data.write_bytes(b"Suite: oldstable\n")
    old.gpg("--detach-sign", "-o", f"{data}.sig", str(data))  # in 2020, as the key
    key = tmp_path / "old.gpg"
    key.write_bytes(old.gpg("--export"))
    ring = Keyring((key,))
    try:
        assert ring.verify_detached(data.read_bytes(), Path(f"{data}.sig").read_bytes(), "old")
    finally:
        ring.close()
        old.close()


def test_a_signature_over_a_weak_digest_is_refused(tmp_path: Path, rsa_signer: Signer) -> None:
    """As apt refuses SHA-1: a collision would let the signed text be swapped."""
    rsa = rsa_signer
    data = tmp_path / "Release"
    data.write_bytes(b"Suite: stable\n")
    ring = keyring(rsa)
    try:
        for digest, accepted in (("SHA256", True), ("SHA1", False)):
            sig = tmp_path / f"Release.{digest}.sig"
            rsa.gpg("--digest-algo", digest, "--detach-sign", "-o", str(sig), str(data))
            if accepted:
                ring.verify_detached(data.read_bytes(), sig.read_bytes(), "Release")
            else:
                with pytest.raises(SignatureError, match="signed over the weak digest SHA-1"):
                    ring.verify_detached(data.read_bytes(), sig.read_bytes(), "Release")
    finally:
        ring.close()


def test_sha1_counts_only_for_a_keyring_made_to_accept_it(tmp_path: Path) -> None:
    """`sha1_signatures: true` (Photon 3.0, openEuler): SHA-1 yes, MD5 and RIPEMD-160 still no."""
    rsa = Signer(tmp_path / "rsa", "rsa", algorithm="rsa2048")
    data = tmp_path / "header"
    data.write_bytes(b"rpm header\n")
    key = tmp_path / "key.asc"
    key.write_bytes(rsa.public_key.read_bytes())
    strict, lenient = Keyring((key,)), Keyring((key,), sha1=True)
    try:
        sigs = {}
        for digest in ("SHA1", "RIPEMD160"):
            sig = tmp_path / f"header.{digest}.sig"
            rsa.gpg("--digest-algo", digest, "--detach-sign", "-o", str(sig), str(data))
            sigs[digest] = sig.read_bytes()
        assert lenient.verify_detached(data.read_bytes(), sigs["SHA1"], "h").signers == (
            rsa.fingerprint(),
        )
        with pytest.raises(SignatureError, match="weak digest SHA-1"):
            strict.verify_detached(data.read_bytes(), sigs["SHA1"], "h")
        with pytest.raises(SignatureError, match="weak digest RIPEMD-160"):
            lenient.verify_detached(data.read_bytes(), sigs["RIPEMD160"], "h")
    finally:
        strict.close()
        lenient.close()
        rsa.close()


def test_clearsigned_text_is_what_gpgv_vouches_for(
    tmp_path: Path, signers: dict[str, Signer]
) -> None:
    release = tmp_path / "Release"
    release.write_bytes(b"Suite: focal\nSHA256:\n")
    signers["archive"].sign_release(release)
    inrelease = (tmp_path / "InRelease").read_bytes()
    # Lines added outside the signed part are not part of the text returned.
    smuggled = b"Suite: evil\n\n" + inrelease + b"\nSHA256:\n 00 1 main/evil\n"
    ring = keyring(signers["archive"])
    try:
        text, _ = ring.verify_clearsigned(smuggled, "InRelease")
        assert text == b"Suite: focal\nSHA256:\n"
        with pytest.raises(SignatureError, match="bad signature"):
            ring.verify_clearsigned(inrelease.replace(b"focal", b"evil!"), "InRelease")
    finally:
        ring.close()


def test_key_files_armored_or_binary_and_nothing_else(
    tmp_path: Path, signers: dict[str, Signer]
) -> None:
    armored = signers["archive"].public_key
    binary = tmp_path / "key.gpg"
    binary.write_bytes(signers["archive"].gpg("--export"))
    assert read_key_file(armored) == read_key_file(binary) == binary.read_bytes()
    assert fingerprints(armored) == [signers["archive"].fingerprint()]

    lines = armored.read_text().splitlines()
    crc = next(i for i, line in enumerate(lines) if line.startswith("=") and len(line) == 5)
    wrong = base64.b64encode(b"\0\0\0").decode()
    damaged = tmp_path / "damaged.asc"
    damaged.write_text("\n".join([*lines[:crc], "=" + wrong, *lines[crc + 1 :]]) + "\n")
    with pytest.raises(KeyFileError, match=r"damaged\.asc: gpg --dearmor failed: gpg: CRC error"):
        read_key_file(damaged)
    not_a_key = tmp_path / "README.md"
    not_a_key.write_text("# keys\n")
    with pytest.raises(KeyFileError, match="not an OpenPGP public key"):
        read_key_file(not_a_key)
