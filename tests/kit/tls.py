"""HTTPS for tests: a throw-away PKI made with openssl, and a FaultyMirror that
requires a client certificate, as Red Hat's CDN does for entitlement certificates.

make_pki() writes a CA, a server certificate for 127.0.0.1 and a client
certificate signed by that CA, plus a "rogue" client certificate from another
CA that the server must refuse. Keys are P-256: fast to make on every run.
"""

from __future__ import annotations

import ssl
import sys
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from generator.demokit.tools import run
from tests.kit.mirror import FaultyMirror

DAYS = "2"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # signed by another CA
    rogue_key: Path


def _key_and_csr(directory: Path, name: str, subject: str) -> tuple[Path, Path]:
    key, csr = directory / f"{name}.key", directory / f"{name}.csr"
    run(
        [
            "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subject,
        ]
    )  # fmt: skip
    return key, csr


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
            "-days", DAYS, "-subj", f"/CN=btfhub test {name}",
        ]
    )  # fmt: skip
    return cert, key


def _sign(directory: Path, name: str, csr: Path, ca: tuple[Path, Path], ext: str) -> Path:
    cert, extfile = directory / f"{name}.pem", directory / f"{name}.ext"
    extfile.write_text(ext + "\n")
    run(
        [
            "openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-CAcreateserial", "-out", str(cert), "-days", DAYS, "-extfile", str(extfile),
        ]
    )  # fmt: skip
    return cert


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    rogue_ca = _ca(directory, "rogue-ca")
    server_key, server_csr = _key_and_csr(directory, "server", "/CN=127.0.0.1")
    server = _sign(
        directory,
        "server",
        server_csr,
        ca,
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    )
    client_key, client_csr = _key_and_csr(directory, "client", "/CN=btfhub entitlement")
    client = _sign(directory, "client", client_csr, ca, "extendedKeyUsage=clientAuth")
    rogue_key, rogue_csr = _key_and_csr(directory, "rogue", "/CN=btfhub rogue")
    rogue = _sign(directory, "rogue", rogue_csr, rogue_ca, "extendedKeyUsage=clientAuth")
    return Pki(ca[0], server, server_key, client, client_key, rogue, rogue_key)


class ClientCertMirrorServer(FaultyMirror):
    """A FaultyMirror over HTTPS that refuses any client without a certificate from pki.ca."""

    def __init__(self, directory: Path, pki: Pki) -> None:
        super().__init__(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        context.load_verify_locations(pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED
        # The handshake runs at accept(): a refused client never reaches the handler.
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.handle_error = self._handle_error  # type: ignore[method-assign]

    def _handle_error(self, request: object, client_address: object) -> None:
        # With TLS 1.3 a refused client certificate surfaces at the handler's
        # first read: expected here, not worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            return
        ThreadingHTTPServer.handle_error(self._httpd, request, client_address)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"https://{host!s}:{port}/"
