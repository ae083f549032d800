"""V3 signatures, as CentOS/RHEL 7's rpmsign wrote them.

gpg makes only V4 signatures, but the header signatures of EL7-era RPMs are
V3 ("Header V3 RSA/SHA256 Signature"). To test that they verify, this
writes one the way RFC 4880 5.2.2 lays it out, with the signer's RSA key
(taken from gpg's unencrypted secret-key export) and PKCS #1 v1.5.
"""

from __future__ import annotations

import hashlib

from generator.demokit.signing import Signer

# DER DigestInfo prefix of SHA-256 (RFC 8017 9.2).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        head = data[i]
        i += 1
        if head & 0x40:  # new format: one length octet form is all gpg uses here
            tag, first = head & 0x3F, data[i]
            if first < 192:
                length, i = first, i + 1
            elif first < 224:
                length, i = ((first - 192) << 8) + data[i + 1] + 192, i + 2
            else:
                length, i = int.from_bytes(data[i + 1 : i + 5]), i + 5
        else:
            tag, size = (head >> 2) & 0x0F, (1, 2, 4)[head & 3]
            length, i = int.from_bytes(data[i : i + size]), i + size
        out.append((tag, data[i : i + length]))
        i += length
    return out


def _mpi(data: bytes, pos: int) -> tuple[int, int]:
    size = (int.from_bytes(data[pos : pos + 2]) + 7) // 8
    return int.from_bytes(data[pos + 2 : pos + 2 + size]), pos + 2 + size


def v3_rsa_sha256_signature(signer: Signer, data: bytes, created: int) -> bytes:
    """A binary V3 RSA/SHA-256 signature packet of `data` by the signer's RSA key."""
    secret = signer.gpg("--export-secret-keys")
    tag, body = _packets(secret)[0]
    if tag != 5 or body[0] != 4 or body[5] != 1:
        raise RuntimeError("v3 signatures need the signer's primary key to be RSA")
    n, pos = _mpi(body, 6)
    _, pos = _mpi(body, pos)
    public = body[:pos]
    if body[pos] != 0:
        raise RuntimeError("the secret key is protected (make the Signer without a passphrase)")
    d, _ = _mpi(body, pos + 1)
    fingerprint = hashlib.sha1(b"\x99" + len(public).to_bytes(2) + public).digest()
    hashed = b"\x00" + created.to_bytes(4)  # signature class 0 (binary), creation time
    digest = hashlib.sha256(data + hashed).digest()
    info = SHA256_DIGEST_INFO + digest
    k = (n.bit_length() + 7) // 8
    encoded = b"\x00\x01" + b"\xff" * (k - 3 - len(info)) + b"\x00" + info
    sig = pow(int.from_bytes(encoded), d, n)
    packet = (
        bytes([3, 5])
        + hashed
        + fingerprint[-8:]  # key id
        + bytes([1, 8])  # RSA, SHA-256
        + digest[:2]
        + sig.bit_length().to_bytes(2)
        + sig.to_bytes((sig.bit_length() + 7) // 8)
    )
    return bytes([0x89]) + len(packet).to_bytes(2) + packet  # old format, tag 2
