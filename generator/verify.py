"""Every package verified in full before anything derived from it is published.

Reading stops as soon as vmlinux is out, which is what makes a build fast;
the verification must not give that up. VerifiedPackage owns the order:

1. read: an RPM from a signed repository has its lead and headers read
   first (once: the payload reader takes its file list from the same
   parse), and its main header must carry a good signature by one of the
   repository's keys before a byte of the payload is read;
2. extracted: vmlinux is written (decoding stops there; a multi-block
   .deb member is spooled as it is read and hashed, its blocks listed from
   the package's last bytes read ahead, which the stream holds against its
   own at its end: see packages/spool.py), and the checks
   of the rest start in a thread of their own while the caller runs pahole:
   the rest of the package read through the stream's SHA-256 (raw bytes,
   no decompression), and for a signed RPM the vmlinux's digest, taken from
   a handle opened before the caller may unlink the file;
3. finished: finish() waits for those checks; the caller stores nothing
   unless it returned.

What must match:

- a package whose index lists a SHA-256 (every apt package, rpm-md ones):
  size and SHA-256 over the whole file must match the index;
- an RPM from a signed repository: the header signature, and the
  extracted vmlinux's digest against the one that signed header lists.
  For an RPM whose index gives no checksum (Oracle's flat directories)
  that is the whole verification, and nothing past vmlinux is read.

A package that fails either check fails its kernel, with both values in
the message; nothing is written to archive/.

Kernel modules (a ModuleSink given): the background thread first goes on
decoding the package past vmlinux and writes the wanted modules (the stream
hashes whatever reads it, so the same read feeds the checks), then drains
what is left; a signed RPM's modules must match its header's digests too.
Without a sink nothing changes: the tail is hashed, never decoded.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Generator
from pathlib import Path

from generator.errors import PackageError
from generator.fsutil import storage_error
from generator.model import KernelPackage
from generator.openpgp import Keyring, SignatureError
from generator.packages import ModuleSink, walk_package
from generator.packages.rpm import vmlinux_paths
from generator.packages.rpmsig import RpmHeaders, read_headers
from generator.packages.stream import CHUNK
from generator.upstream.packagestream import PackageStream


class VerifiedPackage:
    """One package: vmlinux extracted from it, the whole of it verified (a context manager).

    What vouched for the package, once finish() returned (index.json's
    provenance): index_sha256, the signed index's digest the whole file
    matched, and header_keys, the fingerprints of the keys whose signature
    over the RPM header checked out (empty for a .deb); never neither.
    """

    def __init__(
        self,
        stream: PackageStream,
        pkg: KernelPackage,
        keyring: Keyring | None,
        where: str,
        modules: ModuleSink | None = None,
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
        self._modules = modules
        self._module_digests: dict[str, str] = {}  # member path -> a signed RPM header's digest
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._vmlinux_digest: str | None = None
        self._expected: tuple[str, frozenset[str]] | None = None
        self._headers: RpmHeaders | None = None
        self.index_sha256: str | None = None
        self.header_keys: tuple[str, ...] = ()
        # What the steps cost (timings, the real-kernel benchmark): reading
        # up to vmlinux, the background thread's own time, and how long
        # finish() waited for it, all the wall time verification adds.
        self.extract_seconds = 0.0
        self.background_seconds = 0.0
        self.waited_seconds = 0.0

    def __enter__(self) -> VerifiedPackage:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def extract_vmlinux(self, dest: Path) -> None:
        """Read (and check the signed header), write vmlinux to dest, start the checks.

        StorageError when the disk is full; PackageError for a package that
        is unreadable, holds no vmlinux or carries no good signature.
        """
        if self._thread is not None:
            raise RuntimeError(f"{self._where}: vmlinux was already extracted")
        started = time.monotonic()
        headers = self._signed_headers()
        try:
            if headers is not None:
                self._expected = vmlinux_digests(headers, self._pkg.uname)
                if self._modules is not None:
                    self._modules.algorithm = self._expected[0]
            walk = walk_package(
                self._stream,
                self._pkg.format,
                self._pkg.uname,
                dest,
                package=self._pkg.filename.rsplit("/", 1)[-1] or self._pkg.name,
                size=self._pkg.size,
                rpm_headers=headers,
                modules=self._modules,
                # Its last bytes held against the package's own at its end (the drain).
                read_tail=self._stream.read_tail if self._pkg.sha256 is not None else None,
            )
            next(walk)
            if self._modules is None:
                walk.close()  # decoding stops at vmlinux: the rest is only hashed
            handle = None
            if headers is not None:
                handle = dest.open("rb")  # the caller unlinks vmlinux once pahole is done
        except OSError as exc:
            full = storage_error(exc, dest.parent)
            if full is not None:
                raise full from exc
            raise
        self.extract_seconds = time.monotonic() - started
        self._headers = headers
        self._thread = threading.Thread(
            target=self._check_rest,
            args=(handle, walk if self._modules is not None else None),
            name="verify-package",
            daemon=True,
        )
        self._thread.start()

    def _signed_headers(self) -> RpmHeaders | None:
        """A signed RPM's headers, their signature checked; None for any other package."""
        if self._keyring is None:
            return None
        headers = read_headers(self._stream)
        signature = headers.header_signature()
        if signature is None:
            raise PackageError(
                f"{self._where}: the package carries no header signature (unsigned rpm)"
            )
        what = f"{self._where} (rpm header signature)"
        try:
            verdict = self._keyring.verify_detached(headers.main.signed, signature, what)
        except SignatureError as exc:
            raise PackageError(str(exc)) from None
        self.header_keys = verdict.signers
        return headers

    def _check_rest(
        self, vmlinux: io.BufferedReader | None, walk: Generator[None, None, None] | None
    ) -> None:
        """In the background: the modules taken, vmlinux's digest, the rest drained."""
        started = time.monotonic()
        try:
            if walk is not None:
                for _ in walk:  # decodes on past vmlinux, the sink writing the modules
                    pass
            if vmlinux is not None and self._expected is not None:
                with vmlinux:
                    digest = hashlib.file_digest(vmlinux, self._expected[0])
                self._vmlinux_digest = digest.hexdigest()
            if self._modules is not None and self._headers is not None:
                for found in self._modules.found.values():
                    self._module_digests[found.member] = self._headers.file_digest(
                        "/" + found.member
                    )[1]
            if self._pkg.sha256 is not None:
                # Only hashed (by the stream), never decompressed: the one drain.
                while not self._stop.is_set() and self._stream.read(CHUNK):
                    pass
        except BaseException as exc:  # re-raised in the build's thread by finish()
            self._error = exc
        finally:
            self.background_seconds = time.monotonic() - started

    def finish(self) -> None:
        """Wait for the checks; PackageError unless every one passed."""
        if self._thread is None:
            raise PackageError(f"{self._where}: vmlinux was never extracted, nothing verified")
        started = time.monotonic()
        self._thread.join()
        self.waited_seconds = time.monotonic() - started
        if self._error is not None:
            raise self._error
        if self._pkg.sha256 is not None:
            if not self._stream.verified:
                raise PackageError(f"{self._where}: the package was not read to its end")
            self.index_sha256 = self._pkg.sha256
        if self._expected is not None:
            algorithm, digests = self._expected
            if self._vmlinux_digest not in digests:
                raise PackageError(
                    f"{self._where}: vmlinux {algorithm} {self._vmlinux_digest} does not match "
                    f"{' or '.join(sorted(digests))} from the package's signed header"
                )
        if self._modules is not None:
            for found in self._modules.found.values():
                listed = self._module_digests.get(found.member)
                if self._headers is not None and listed != found.digest:
                    raise PackageError(
                        f"{self._where}: {found.member} {self._modules.algorithm} "
                        f"{found.digest} does not match {listed} from the package's signed header"
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
