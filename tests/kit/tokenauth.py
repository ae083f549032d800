"""A registry token service the way ghcr.io and Docker Hub run one, for docker-registry.

docker-registry (auth: token) answers an unauthenticated request with 401
and `WWW-Authenticate: Bearer realm=<this server>,service=...,scope=...`;
the client asks this server for a token and sends it back. Tokens are JWTs
signed (RS256, by openssl) with a throwaway self-signed certificate the
registry trusts (its rootcertbundle). Like a public package on ghcr.io:
anyone gets pull, only the one login (Basic auth) gets push.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from generator.demokit.server import LocalServer

SERVICE = "btfhub-test-registry"
ISSUER = "btfhub-test-tokens"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer(LocalServer):
    """Issues pull tokens to anyone and push tokens to `login` only."""

    def __init__(self, directory: Path, login: tuple[str, str]) -> None:
        self.key = directory / "token-key.pem"
        self.cert = directory / "token-cert.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=btfhub-test-tokens", "-keyout", str(self.key), "-out", str(self.cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.x5c = base64.b64encode(der).decode()
        self.basic = "Basic " + base64.b64encode(":".join(login).encode()).decode()
        self.issued: list[list[str]] = []  # the actions of each token, in order
        super().__init__(_handler(self))

    def registry_config(self) -> str:
        """The `auth:` section of docker-registry's config.yml."""
        return (
            "auth:\n  token:\n"
            f"    realm: {self.url}token\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {self.cert}\n"
        )

    def token(self, scope: str, authorized: bool) -> str:
        kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else ("", "", "")
        granted = [a for a in actions.split(",") if a == "pull" or (a == "push" and authorized)]
        self.issued.append(granted)
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {
            "iss": ISSUER,
            "sub": "btfhub" if authorized else "",
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [{"type": kind, "name": name, "actions": granted}] if kind else [],
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return f"{signing_input}.{_b64(signature)}"


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            given = self.headers.get("Authorization")
            if given is not None and given != server.basic:
                body = b'{"errors": [{"code": "UNAUTHORIZED"}]}'
                self.send_response(401)
            else:
                scope = query.get("scope", [""])[0]
                token = server.token(scope, authorized=given is not None)
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
