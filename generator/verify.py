"""Every package verified in full before anything derived from it is published.

Reading stops as soon as vmlinux is out, which is what makes a build fast;
the verification must not give that up. So, once vmlinux is written, a
thread drains the rest of the package through the hash (raw bytes, no
decompression) while pahole encodes, and the build is published only when
that finished and matched:

- a package whose index lists a SHA-256 (every apt package, rpm-md ones):
  size and SHA-256 over the whole file must match the index;
- an RPM from a signed repository: its main header must carry a good
  signature by one of the repository's keys (checked before the payload is
  read), and the extracted vmlinux's digest must match the one that signed
  header lists. For an RPM whose index gives no checksum (Oracle's flat
  directories) that is the whole verification, and nothing past vmlinux is
  read.

A package that fails either check fails its kernel, with both values in
the message; nothing is written to archive/.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import BinaryIO

from generator.errors import PackageError
from generator.model import KernelPackage
from generator.openpgp import Keyring, SignatureError
from generator.packages.rpm import vmlinux_paths
from generator.packages.rpmsig import RpmHeaders, read_headers
from generator.packages.stream import PrefixedReader
from generator.upstream.http import PackageStream

CHUNK = 1 << 20


class PackageVerification:
    """The checks of one package, run alongside its build (a context manager)."""

    def __init__(
        self, stream: PackageStream, pkg: KernelPackage, keyring: Keyring | None, where: str
    ) -> None:
        if pkg.sha256 is None and (pkg.format != "rpm" or keyring is None):
            raise PackageError(
                f"{where}: the index lists no checksum and the package has no signature "
                "btfhub can check (only RPMs from a signed repository can do without): "
                "refusing to build from it"
            )
        self._stream = stream
        self._pkg = pkg
        self._keyring = keyring if pkg.format == "rpm" else None
        self._where = where
        self._headers: RpmHeaders | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._vmlinux_digest: str | None = None
        # What the checks cost (the real-kernel benchmark reports them): the
        # background thread's own time, and how long finish() had to wait for
        # it, which is all the wall time verification adds to a build.
        self.background_seconds = 0.0
        self.waited_seconds = 0.0
        # Who signed the RPM's header (index.json's provenance); empty for a .deb.
        self.header_keys: tuple[str, ...] = ()

    def __enter__(self) -> PackageVerification:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def reader(self) -> BinaryIO:
        """What the package reader reads: for a signed RPM, its header is checked first."""
        if self._keyring is None:
            return self._stream
        self._headers = read_headers(self._stream)
        signature = self._headers.header_signature()
        if signature is None:
            raise PackageError(
                f"{self._where}: the package carries no header signature (unsigned rpm)"
            )
        what = f"{self._where} (rpm header signature)"
        try:
            verdict = self._keyring.verify_detached(self._headers.main.signed, signature, what)
        except SignatureError as exc:
            raise PackageError(str(exc)) from None
        self.header_keys = verdict.signers
        # The package reader parses lead and headers again, from memory.
        replay = PrefixedReader(self._headers.consumed, self._stream)
        return replay  # type: ignore[return-value]  # read() is all the readers use

    def vmlinux_extracted(self, vmlinux: Path) -> None:
        """Start the background checks; vmlinux is opened now (pahole's caller unlinks it)."""
        expected: tuple[str, frozenset[str]] | None = None
        if self._headers is not None:
            expected = vmlinux_digests(self._headers, self._pkg.uname)
        handle = vmlinux.open("rb") if expected is not None else None

        def work() -> None:
            started = time.monotonic()
            try:
                if handle is not None and expected is not None:
                    with handle:
                        digest = hashlib.new(expected[0])
                        while not self._stop.is_set():
                            chunk = handle.read(CHUNK)
                            if not chunk:
                                break
                            digest.update(chunk)
                        self._vmlinux_digest = digest.hexdigest()
                if self._pkg.sha256 is not None:
                    while not self._stop.is_set() and self._stream.read(CHUNK):
                        pass
            except BaseException as exc:  # re-raised in the build's thread by finish()
                self._error = exc
            finally:
                self.background_seconds = time.monotonic() - started

        self._thread = threading.Thread(target=work, name="verify-package", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        """Wait for the checks; PackageError unless every one passed."""
        if self._thread is None:
            raise PackageError(f"{self._where}: vmlinux was never extracted, nothing verified")
        started = time.monotonic()
        self._thread.join()
        self.waited_seconds = time.monotonic() - started
        if self._error is not None:
            raise self._error
        if self._pkg.sha256 is not None and not self._stream.verified:
            raise PackageError(f"{self._where}: the package was not read to its end")
        if self._headers is not None:
            algorithm, digests = vmlinux_digests(self._headers, self._pkg.uname)
            expected = " or ".join(sorted(digests))
            if self._vmlinux_digest not in digests:
                raise PackageError(
                    f"{self._where}: vmlinux {algorithm} {self._vmlinux_digest} does not match "
                    f"{expected} from the package's signed header"
                )


def vmlinux_digests(headers: RpmHeaders, uname: str) -> tuple[str, frozenset[str]]:
    """(algorithm, digests) the signed header lists for the package's vmlinux path(s).

    Red Hat's kernel-debuginfo keeps vmlinux under lib/modules/<uname>/,
    SUSE's under boot/vmlinux-<uname>.debug; the extracted file must match a
    digest the signed header gives for one of them.
    """
    found: list[tuple[str, str]] = []
    first_error: PackageError | None = None
    for path in vmlinux_paths(uname):
        try:
            found.append(headers.file_digest("/" + path))
        except PackageError as exc:
            first_error = first_error or exc
    if not found:
        assert first_error is not None
        raise first_error
    return found[0][0], frozenset(d for _, d in found)
