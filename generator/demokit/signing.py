"""Signing for the demo's and the tests' mirrors: a throwaway key, signed the way upstreams sign.

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
        digest: str | None = None,
    ) -> None:
        """faked_time (e.g. 20200101T000000): make the key and sign as of then (an old archive).

        digest (e.g. SHA1, with an RSA key): sign over it, as publishers that
        sign with nothing stronger do (Photon OS 3.0, openEuler 20.03).
        """
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home = home
        self.name = name
        self.env = {**os.environ, "GNUPGHOME": str(home)}
        self._options = ["--faked-system-time", faked_time] if faked_time else []
        self._options += ["--digest-algo", digest] if digest else []
        self.digest = digest
        # (gpg mode, sha256 of the bytes) -> the signature: a test run writes the
        # same Release and repomd.xml bytes hundreds of times, and a signature
        # of the same bytes by the same key stays valid (a gpg process saved each).
        self._signatures: dict[tuple[str, bytes], bytes] = {}
        self._lock = threading.Lock()
        uid = f"{name} <{name.replace(' ', '-')}@example.invalid>"
        self.gpg("--quick-gen-key", uid, algorithm, "sign", expire)
        self.public_key = home / "public-key.asc"
        self.public_key.write_bytes(self.gpg("--armor", "--export"))
        self._fingerprint: str | None = None

    def gpg(self, *args: str) -> bytes:
        cmd = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""]
        cmd += self._options
        proc = subprocess.run([*cmd, *args], env=self.env, capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"gpg {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            for line in self.gpg("--with-colons", "--list-keys").decode().splitlines():
                if line.startswith("fpr:"):
                    self._fingerprint = line.split(":")[9]
                    break
            else:
                raise RuntimeError("the signer has no key")
        return self._fingerprint

    def sign_release(self, release: Path) -> None:
        """InRelease (clearsigned) and Release.gpg (detached, armored) next to Release."""
        release.with_name("InRelease").write_bytes(self._signature("--clearsign", release))
        Path(f"{release}.gpg").write_bytes(self._signature("--detach-sign", release))

    def sign_detached(self, path: Path, suffix: str = ".asc") -> Path:
        """An armored detached signature of path (repomd.xml.asc)."""
        out = path.with_name(path.name + suffix)
        out.write_bytes(self._signature("--detach-sign", path))
        return out

    def _signature(self, mode: str, path: Path) -> bytes:
        """gpg's armored output of `mode` over path's bytes, made once for the same bytes."""
        data = path.read_bytes()
        key = (mode, hashlib.sha256(data).digest())
        with self._lock:
            signature = self._signatures.get(key)
        if signature is None:
            signature = self.gpg("--armor", mode, "-o", "-", str(path))
            with self._lock:
                self._signatures[key] = signature
        return signature

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
            *(["--define", f"_gpg_digest_algo {self.digest}"] if self.digest else []),
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
