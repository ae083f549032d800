"""Operator credentials for repositories behind a subscription (RHEL CDN, SUSE).

The catalog names which kind of credentials a repository needs; the operator
supplies them through environment variables naming files (never the secrets
themselves on a command line, where `ps` would show them). A repository whose
credentials are absent is not an error: its releases are reported as "needs
credentials" and skipped, so a public CI run stays green.

- ``rhel-cdn``: Red Hat's CDN authenticates the client with the entitlement
  certificate and key of a registered system (``/etc/pki/entitlement/*.pem``)
  and serves them under its own CA (``redhat-uep.pem``).
- ``suse``: SUSE's repositories (SCC, or an RMT/SMT mirror of them) take the
  registration credentials (``/etc/zypp/credentials.d/SCCcredentials``) as
  HTTP basic auth.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from generator.errors import OperatorInputMissing, UpstreamError


@dataclass(frozen=True)
class Credentials:
    """What the HTTP client adds to each request under one URL prefix."""

    cert: tuple[str, str] | None = None  # TLS client certificate and key files
    ca: str | None = None  # CA bundle for the server's certificate; None: the system's
    auth: tuple[str, str] | None = None  # HTTP basic auth (user, password)


class CredentialsMissing(OperatorInputMissing):
    """The operator gave no credentials for a repository that needs them."""

    cause = "needs credentials"


@dataclass(frozen=True)
class CredentialKind:
    description: str
    required: tuple[str, ...]  # environment variables that must all be set
    optional: tuple[str, ...] = ()


KINDS: dict[str, CredentialKind] = {
    "rhel-cdn": CredentialKind(
        "a Red Hat entitlement certificate and key",
        ("BTFHUB_RHEL_CERT", "BTFHUB_RHEL_KEY"),
        ("BTFHUB_RHEL_CA",),
    ),
    "suse": CredentialKind(
        "SUSE registration credentials", ("BTFHUB_SUSE_USER", "BTFHUB_SUSE_PASSWORD_FILE")
    ),
}


def _file(variable: str, value: str, repo_id: str) -> str:
    path = Path(value)
    if not path.is_file():
        raise UpstreamError(f"repository {repo_id}: {variable}={value}: no such file")
    return str(path)


def load_credentials(
    kind: str, repo_id: str, environ: Mapping[str, str] | None = None
) -> Credentials:
    """The credentials for a repository, or CredentialsMissing naming what to set."""
    env = os.environ if environ is None else environ
    spec = KINDS.get(kind)
    if spec is None:
        raise UpstreamError(f"repository {repo_id}: unknown credentials kind {kind!r}")
    unset = [v for v in spec.required if not env.get(v)]
    if unset:
        raise CredentialsMissing(
            f"{CredentialsMissing.cause}: repository {repo_id} needs {spec.description} "
            f"(set {' and '.join(unset)})"
        )
    if kind == "rhel-cdn":
        ca = env.get("BTFHUB_RHEL_CA")
        return Credentials(
            cert=(
                _file("BTFHUB_RHEL_CERT", env["BTFHUB_RHEL_CERT"], repo_id),
                _file("BTFHUB_RHEL_KEY", env["BTFHUB_RHEL_KEY"], repo_id),
            ),
            ca=_file("BTFHUB_RHEL_CA", ca, repo_id) if ca else None,
        )
    password_file = _file("BTFHUB_SUSE_PASSWORD_FILE", env["BTFHUB_SUSE_PASSWORD_FILE"], repo_id)
    password = Path(password_file).read_text(encoding="utf-8").strip()
    return Credentials(auth=(env["BTFHUB_SUSE_USER"], password))
