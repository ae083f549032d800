"""OpenPGP signatures, checked with gpgv: the only code that runs gpgv.

Keys are committed as armored text (reviewable in a diff, fingerprints
checked by a test); gpgv reads only binary keyrings, so a Keyring
has gpg dearmor its files once into a temporary binary keyring for the run.

gpgv's exit status is not the verdict: with several signatures (Debian
signs each Release with two or three keys) it exits non-zero as soon as
one signature is by a key it lacks, even when another is good. As apt
does, the verdict comes from --status-fd: at least one VALIDSIG by a key of
the keyring, and no BADSIG. A signature by an expired key (EXPKEYSIG) is
accepted: archived suites (stretch on archive.debian.org) stay signed by the
key of their time, and an expired key does not make a past signature forged.
A revoked key (REVKEYSIG) is refused, and so is a signature over a weak
digest (MD5, SHA-1, RIPEMD-160), as apt refuses it: a SHA-1 collision lets
a signed text be swapped for another. The one exception is a keyring made
with sha1=True, for a repository whose publisher signs over SHA-1 only
(its manifest says `sha1_signatures: true`); MD5 and RIPEMD-160 stay refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from generator.children import run_child, tied_command
from generator.errors import BtfhubError

ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
GPGV_TIMEOUT = 120.0  # seconds; a Release is small, an RPM header a few MiB
GPG_TIMEOUT = 120.0  # seconds; key files and index.json are small
# OpenPGP hash algorithm ids (RFC 4880 9.4) too weak to vouch for anything.
WEAK_DIGESTS = {1: "MD5", 2: "SHA-1", 3: "RIPEMD-160"}
SHA1 = 2


class SignatureError(BtfhubError):
    """A signature is bad, missing, or by a key the keyring does not hold."""


class KeyFileError(BtfhubError):
    """A key file cannot be read as OpenPGP public keys."""


def run_gpg(args: Sequence[str], what: str, home: Path, data: bytes | None = None) -> bytes:
    """gpg in the GnuPG home `home` (never the user's), through children.py; its stdout.

    KeyFileError naming `what` when gpg fails or runs over GPG_TIMEOUT.
    """
    cmd = ["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""]
    try:
        proc = run_child(
            [*cmd, *args],
            input=data,
            env={**os.environ, "GNUPGHOME": str(home)},
            timeout=GPG_TIMEOUT,
        )
    except FileNotFoundError:
        raise BtfhubError("gpg is not installed (run scripts/setup.sh)") from None
    except subprocess.TimeoutExpired:
        raise KeyFileError(f"{what}: gpg {args[0]} ran over {GPG_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.decode("utf-8", "replace").split())[-300:]
        raise KeyFileError(f"{what}: gpg {args[0]} failed: {detail}")
    return proc.stdout


def _scratch_gpg(args: Sequence[str], what: str, data: bytes | None = None) -> bytes:
    """gpg for a question about public keys, in a GnuPG home made for it and removed."""
    with tempfile.TemporaryDirectory(prefix="btfhub-gpg-") as home:
        return run_gpg(args, what, Path(home), data)


# The SHA-256 of an armored key file's bytes -> the binary packets gpg made of
# them. A run makes one keyring per set of key files, and the sets share files
# (--keyring and BTFHUB_KEYRINGS ones join every set): a gpg process per
# distinct file and process, not one per keyring (nor per command run in process).
_DEARMORED: dict[bytes, bytes] = {}


def read_key_file(path: Path) -> bytes:
    """Binary OpenPGP packets from an armored (.asc) or binary (.gpg) key file.

    Armor (every key block in the file, its CRC checked) is undone by
    `gpg --dearmor`: gpgv reads binary keyrings only.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"key file {path}: {exc.strerror or exc}") from None
    if ARMOR_BEGIN.encode() in data:
        digest = hashlib.sha256(data).digest()
        packets = _DEARMORED.get(digest)
        if packets is None:
            packets = _scratch_gpg(["--dearmor"], f"key file {path}", data)
            _DEARMORED[digest] = packets
        return packets
    # A binary key starts with a public-key packet: old format 0x99 / new 0xC6.
    if not data or data[0] not in (0x98, 0x99, 0x9A, 0xC6):
        raise KeyFileError(f"key file {path}: not an OpenPGP public key (armored or binary)")
    return data


@dataclass(frozen=True)
class Verdict:
    """What gpgv found: the fingerprints of the keys whose signatures were good."""

    signers: tuple[str, ...]


@dataclass
class Keyring:
    """Trusted public keys from one or more key files, as one binary keyring for gpgv."""

    files: tuple[Path, ...]
    # SHA-1 signatures count (a publisher that signs with nothing stronger).
    sha1: bool = False
    _path: Path | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    def describe(self) -> str:
        return ", ".join(str(f) for f in self.files)

    def path(self) -> Path:
        """The binary keyring, written once (thread-safe) and removed with the object."""
        with self._lock:
            if self._path is None:
                packets = b"".join(read_key_file(f) for f in self.files)
                digest = hashlib.sha256(packets).hexdigest()[:16]
                self._tmp = tempfile.TemporaryDirectory(prefix="btfhub-keys-")
                path = Path(self._tmp.name) / f"trusted-{digest}.gpg"
                path.write_bytes(packets)
                self._path = path
            return self._path

    def _gpgv(self, args: Sequence[str], what: str) -> tuple[subprocess.CompletedProcess[str], str]:
        if shutil.which("gpgv") is None:
            raise BtfhubError("gpgv is not installed (run scripts/setup.sh)")
        status_r, status_w = os.pipe()
        try:
            cmd = [
                "gpgv",
                "--status-fd",
                str(status_w),
                "--keyring",
                str(self.path()),
                *args,
            ]
            try:
                proc = subprocess.run(
                    # Tied to this process: a killed btfhub leaves no gpgv behind.
                    tied_command(cmd),
                    capture_output=True,
                    text=True,
                    check=False,
                    pass_fds=(status_w,),
                    timeout=GPGV_TIMEOUT,
                    # No gpg home is read or written: gpgv needs none, and a
                    # user's own trusted keys must not widen the run's keyring.
                    env={**os.environ, "GNUPGHOME": str(self.path().parent)},
                )
            except FileNotFoundError as exc:
                # setpriv (util-linux) runs it: either one may be what is missing.
                missing = exc.filename or "gpgv"
                raise BtfhubError(f"{missing} is not installed (run scripts/setup.sh)") from None
            except subprocess.TimeoutExpired:
                raise SignatureError(f"{what}: gpgv ran over {GPGV_TIMEOUT:.0f} s") from None
            os.close(status_w)
            status_w = -1
            with os.fdopen(status_r, "r", errors="replace") as f:
                status_r = -1
                status = f.read()
        finally:
            if status_w >= 0:
                os.close(status_w)
            if status_r >= 0:
                os.close(status_r)
        return proc, status

    def _verdict(self, proc: subprocess.CompletedProcess[str], status: str, what: str) -> Verdict:
        good: list[str] = []
        bad: list[str] = []
        unknown: list[str] = []
        for line in status.splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[0] != "[GNUPG:]":
                continue
            word = parts[1]
            if word == "VALIDSIG" and len(parts) >= 10:
                # VALIDSIG fpr date ts expire version reserved pk-algo hash-algo class
                # primary-fpr: the last is the primary key's (a subkey may sign).
                digest = int(parts[9]) if parts[9].isdigit() else 0
                if digest in WEAK_DIGESTS and not (digest == SHA1 and self.sha1):
                    bad.append(f"{parts[-1]} signed over the weak digest {WEAK_DIGESTS[digest]}")
                else:
                    good.append(parts[-1].upper())
            elif word in ("BADSIG", "REVKEYSIG"):
                bad.append(" ".join(parts[1:4]))
            elif word == "NO_PUBKEY" and len(parts) >= 3:
                unknown.append(parts[2])
        if bad:
            raise SignatureError(f"{what}: bad signature ({'; '.join(bad)})")
        if not good:
            if unknown:
                detail = f"signed only by unknown key(s) {', '.join(unknown)}"
            else:
                detail = " ".join(proc.stderr.split())[-300:] or f"gpgv exit {proc.returncode}"
            raise SignatureError(
                f"{what}: no good signature by a trusted key (keyring {self.describe()}): {detail}"
            )
        return Verdict(tuple(good))

    def verify_detached(self, data: bytes, signature: bytes, what: str) -> Verdict:
        """`signature` (armored or binary, detached) is a good signature of `data`."""
        with tempfile.TemporaryDirectory(prefix="btfhub-gpgv-") as tmp:
            data_file, sig_file = Path(tmp, "data"), Path(tmp, "data.sig")
            data_file.write_bytes(data)
            sig_file.write_bytes(signature)
            proc, status = self._gpgv([str(sig_file), str(data_file)], what)
        return self._verdict(proc, status, what)

    def verify_clearsigned(self, document: bytes, what: str) -> tuple[bytes, Verdict]:
        """The signed text of a clearsigned document (InRelease), as gpgv extracts it.

        The text comes from gpgv, never from parsing the document here: lines
        outside the signed part (an attacker's additions) are not in it.
        """
        with tempfile.TemporaryDirectory(prefix="btfhub-gpgv-") as tmp:
            doc_file, out_file = Path(tmp, "InRelease"), Path(tmp, "signed")
            doc_file.write_bytes(document)
            proc, status = self._gpgv(["--output", str(out_file), str(doc_file)], what)
            verdict = self._verdict(proc, status, what)
            try:
                signed = out_file.read_bytes()
            except OSError:
                raise SignatureError(f"{what}: gpgv wrote no signed text") from None
        return signed, verdict

    def close(self) -> None:
        with self._lock:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
                self._path = None


def fingerprints(path: Path) -> list[str]:
    """Primary-key fingerprints of a key file, as `gpg --show-keys` reports them."""
    listed = _scratch_gpg(["--with-colons", "--show-keys", str(path)], f"key file {path}")
    out: list[str] = []
    primary = False
    for line in listed.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            primary = True
        elif fields[0] == "sub":
            primary = False
        elif fields[0] == "fpr" and primary:
            out.append(fields[9])
            primary = False
    return out


class SigningKey:
    """A secret key file (BTFHUB_SIGNING_KEY) that signs the hub's index.json, detached.

    gpg (not gpgv) signs, in a GnuPG home of its own that holds only this
    key, made for the object and removed with it. gpg starts a gpg-agent for
    the secret key, detached from btfhub: close() stops it (gpgconf), so no
    agent outlives the run. The key must have no passphrase: it is a CI
    secret, protected where it is stored.
    """

    def __init__(self, key_file: Path) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="btfhub-sign-")
        self._home = Path(self._tmp.name)
        self._home.chmod(0o700)
        self._env = {**os.environ, "GNUPGHOME": str(self._home)}
        try:
            if not key_file.is_file():
                raise KeyFileError(f"signing key {key_file}: no such file")
            self._gpg(["--import", str(key_file)], f"signing key {key_file}")
            listed = self._gpg(["--with-colons", "--list-secret-keys"], str(key_file)).decode()
            fprs = [line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")]
            if not fprs:
                raise KeyFileError(f"signing key {key_file}: holds no secret key")
            self.fingerprint = fprs[0]  # the primary key's comes first
            public = self._home / "public.gpg"
            public.write_bytes(self._gpg(["--export", self.fingerprint], str(key_file)))
            self.keyring = Keyring((public,))
        except BaseException:
            self.close()
            raise

    def _gpg(self, args: Sequence[str], what: str, data: bytes | None = None) -> bytes:
        return run_gpg(args, what, self._home, data)

    def sign(self, data: bytes, what: str) -> bytes:
        """An armored detached signature of data, by this key."""
        args = ["--armor", "--detach-sign", "--local-user", self.fingerprint, "--output", "-"]
        return self._gpg(args, f"signing {what}", data)

    def signed(self, data: bytes, signature: bytes | None) -> bool:
        """True when signature is a good one of data by this key (no need to sign again)."""
        if signature is None:
            return False
        try:
            self.keyring.verify_detached(data, signature, "index signature")
        except SignatureError:
            return False
        return True

    def close(self) -> None:
        if self._home.exists():
            with contextlib.suppress(FileNotFoundError):  # no gpgconf: gpg never ran either
                run_child(["gpgconf", "--kill", "gpg-agent"], env=self._env)
        if hasattr(self, "keyring"):
            self.keyring.close()
        self._tmp.cleanup()

    def __enter__(self) -> SigningKey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
