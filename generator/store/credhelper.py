"""The Docker client's credential helpers: the one place btfhub runs `docker-credential-NAME`.

`docker login` on a desktop (and on CI runners with a keyring) keeps no
password in ~/.docker/config.json: the config names a helper, "credsStore"
for every registry or "credHelpers" per registry, and the login lives in the
helper's store (the OS keychain, pass, secretservice, ...). The helper's
protocol is Docker's: `docker-credential-NAME get`, the server's address on
stdin, `{"ServerURL", "Username", "Secret"}` on stdout, or a non-zero exit
saying "credentials not found" when it has none.

The helper is started through generator/children.py (it dies with btfhub)
under a time limit: a helper that waits for a password prompt nobody sees
must not hang a CI job. What it prints on success is never repeated in a
message; on failure its first line is (helpers print their errors there).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from generator.children import run_child
from generator.errors import BtfhubError

PREFIX = "docker-credential-"
# Long enough for a keychain to unlock; short enough that a hidden prompt
# fails a run in seconds rather than at CI's timeout.
HELPER_TIMEOUT = 30.0
NOT_FOUND = "credentials not found"
# A helper's Username for an OAuth2 refresh token rather than a password.
IDENTITY_TOKEN = "<token>"
# Docker Hub's logins are kept under its v1 index address, not a host name.
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"


class CredentialHelperError(BtfhubError):
    """A credential helper is missing, failed, timed out or answered nonsense."""


@dataclass(frozen=True)
class HelperLogin:
    username: str
    secret: str


def server_address(registry: str) -> str:
    """What a helper is asked for: the registry's host[:port] (Docker Hub's v1 address)."""
    return DOCKER_HUB_SERVER if registry in DOCKER_HUB_HOSTS else registry


def _first_line(output: bytes) -> str:
    text = output.decode("utf-8", "replace").strip()
    return text.splitlines()[0][:200] if text else ""


def helper_get(name: str, registry: str, where: str) -> HelperLogin | None:
    """The login docker-credential-<name> keeps for registry; None when it has none.

    where: the config that named the helper, for messages.
    """
    program = PREFIX + name
    what = f"{program} (named by {where})"
    try:
        done = run_child(
            [program, "get"], input=server_address(registry).encode(), timeout=HELPER_TIMEOUT
        )
    except FileNotFoundError:
        raise CredentialHelperError(f"{what} is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(
            f"{what} did not answer for {registry} in {HELPER_TIMEOUT:.0f} s"
        ) from None
    if done.returncode != 0:
        said = _first_line(done.stdout) or _first_line(done.stderr)
        if NOT_FOUND in said.lower():
            return None
        raise CredentialHelperError(
            f"{what} failed for {registry} (exit {done.returncode}): {said or 'no message'}"
        )
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = None
    username = answer.get("Username") if isinstance(answer, dict) else None
    secret = answer.get("Secret") if isinstance(answer, dict) else None
    if not isinstance(username, str) or not isinstance(secret, str) or not secret:
        # Never echo the answer: it may hold the secret in another shape.
        raise CredentialHelperError(f"{what} answered for {registry} without a Username and Secret")
    if username == IDENTITY_TOKEN:
        raise CredentialHelperError(
            f"{what} holds an identity token for {registry}, which btfhub cannot use; "
            "set BTFHUB_REGISTRY_USERNAME and BTFHUB_REGISTRY_PASSWORD instead"
        )
    return HelperLogin(username, secret)
