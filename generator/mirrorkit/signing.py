"""Signing for test and demo mirrors: a throwaway key, signed the way upstreams sign.

Upstream repositories are signed (InRelease and Release.gpg, repomd.xml.asc,
RPM header signatures), and btfhub refuses what is not, so the local
mirrors of the tests and the demo are signed too: by a key generated at
run time in a temporary GnuPG home, never by weakening the default. The
run is told to trust it with BTFHUB_KEYRINGS or --keyring (public_key).

Each process gets one default signer (default_signer()), generated on
first use and removed at exit; tests that need a second key ("a stranger")
make their own Signer.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import subprocess
import tempfile
import threading
from pathlib import Path


class Signer:
    """A GnuPG home holding one passphrase-less ed25519 signing key."""

    def __init__(
        self,
        home: Path,
        name: str = "btfhub test archive",
        *,
        expire: str = "never",
        faked_time: str | None = None,
        algorithm: str = "ed25519",
    ) -> None:
        """faked_time (e.g. 20200101T000000): make the key and sign as of then (an old archive)."""
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home = home
        self.name = name
        self.env = {**os.environ, "GNUPGHOME": str(home)}
        self._faked = ["--faked-system-time", faked_time] if faked_time else []
        uid = f"{name} <{name.replace(' ', '-')}@example.invalid>"
        self.gpg("--quick-gen-key", uid, algorithm, "sign", expire)
        self.public_key = home / "public-key.asc"
        self.public_key.write_bytes(self.gpg("--armor", "--export"))

    def gpg(self, *args: str) -> bytes:
        cmd = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""]
        cmd += self._faked
        proc = subprocess.run([*cmd, *args], env=self.env, capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"gpg {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def fingerprint(self) -> str:
        for line in self.gpg("--with-colons", "--list-keys").decode().splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        raise RuntimeError("the signer has no key")

    def sign_release(self, release: Path) -> None:
        """InRelease (clearsigned) and Release.gpg (detached, armored) next to Release."""
        self.gpg("--clearsign", "-o", str(release.with_name("InRelease")), str(release))
        self.gpg("--armor", "--detach-sign", "-o", f"{release}.gpg", str(release))

    def sign_detached(self, path: Path, suffix: str = ".asc") -> Path:
        """An armored detached signature of path (repomd.xml.asc)."""
        out = path.with_name(path.name + suffix)
        self.gpg("--armor", "--detach-sign", "-o", str(out), str(path))
        return out

    def sign_rpm(self, rpm: Path) -> None:
        """Add an RPM header signature with rpmsign, as distributions' build systems do."""
        cmd = [
            "rpmsign",
            "--addsign",
            "--define",
            f"_gpg_name {self.fingerprint()}",
            "--define",
            "__gpg /usr/bin/gpg",
            "--define",
            f"_gpg_path {self.home}",
            str(rpm),
        ]
        # No terminal: rpmsign would otherwise try to ask for a passphrase on it.
        proc = subprocess.run(
            cmd, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"rpmsign {rpm}: {proc.stderr.decode(errors='replace')}")

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self.env, check=False)


_default: Signer | None = None
_default_lock = threading.Lock()


def default_signer() -> Signer:
    """The process's test archive key (made on first use, removed at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            tmp = tempfile.TemporaryDirectory(prefix="btfhub-test-gpg-")
            signer = Signer(Path(tmp.name) / "home")

            def cleanup() -> None:
                signer.close()
                tmp.cleanup()

            atexit.register(cleanup)
            _default = signer
        return _default


# -- V3 signatures, as CentOS/RHEL 7's rpmsign wrote them ------------------------------
#
# gpg makes only V4 signatures, but the header signatures of EL7-era RPMs are
# V3 ("Header V3 RSA/SHA256 Signature"). To test that they verify, this
# writes one the way RFC 4880 5.2.2 lays it out, with the signer's RSA key
# (taken from gpg's unencrypted secret-key export) and PKCS #1 v1.5.

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
