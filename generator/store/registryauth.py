"""Who btfhub is to an OCI registry: the operator's login, and the token dance.

Credentials never come from the command line (where `ps` shows them):
BTFHUB_REGISTRY_USERNAME and BTFHUB_REGISTRY_PASSWORD (a CI job's token), else
the Docker client's config ($DOCKER_CONFIG/config.json, ~/.docker/config.json
by default) as Docker reads it: the registry's credential helper
("credHelpers"), else the default one ("credsStore"), run through
generator/store/credhelper.py, else the registry's "auths" entry (its base64
"auth", or username and password; also when a helper has no login for it).
Without any, requests are anonymous, which is how ghcr.io serves a public
package's pulls. The registry client looks for the login only when a
registry first asks for one (a 401), so a run that sends nothing, or pulls
from an open registry, runs no helper.

A registry answers 401 with a challenge (WWW-Authenticate): `Bearer realm,
service, scope` sends the client to a token endpoint (ghcr.io, Docker Hub:
anonymously for public pulls, with basic auth for pushes), `Basic` asks for
the login itself. Parsing the challenge and the token answer is pure; the
request is the registry client's (generator/store/oci.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from generator.errors import BtfhubError
from generator.store.credhelper import helper_get

USERNAME_ENV = "BTFHUB_REGISTRY_USERNAME"
PASSWORD_ENV = "BTFHUB_REGISTRY_PASSWORD"
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    source: str  # where it came from, for messages (never the secret)

    def basic(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()


def _docker_config(env: Mapping[str, str]) -> Path:
    base = env.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def _config_entry(auths: Mapping[str, Any], registry: str) -> Mapping[str, Any] | None:
    # Docker writes "ghcr.io", older clients "https://ghcr.io" or with a /v1/ path.
    for key, value in auths.items():
        if _host_of(key) == registry and isinstance(value, dict):
            return value
    return None


def _host_of(key: str) -> str:
    return re.sub(r"^https?://", "", key).split("/", 1)[0]


def _helper_name(config: Mapping[str, Any], registry: str) -> str | None:
    """The helper config names for registry: its credHelpers entry, else credsStore."""
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _host_of(key) == registry and isinstance(name, str) and name:
                return name
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def _from_entry(entry: Mapping[str, Any], registry: str, path: Path) -> Login | None:
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise BtfhubError(
                f"{path}: the auth of {registry} is not base64 user:password"
            ) from None
        return Login(user, password, str(path))
    if entry.get("username") and entry.get("password"):
        return Login(entry["username"], entry["password"], str(path))
    return None


def find_login(registry: str, env: Mapping[str, str] | None = None) -> Login | None:
    """The operator's login for registry (host[:port]), or None: anonymous.

    A credential helper that is missing or fails is an error naming it
    (credhelper.CredentialHelperError), not a silent anonymous run.
    """
    env = os.environ if env is None else env
    if env.get(USERNAME_ENV) and env.get(PASSWORD_ENV):
        return Login(env[USERNAME_ENV], env[PASSWORD_ENV], f"{USERNAME_ENV}/{PASSWORD_ENV}")
    path = _docker_config(env)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BtfhubError(f"{path}: cannot read the registry login: {exc}") from None
    if not isinstance(config, dict):
        return None
    helper = _helper_name(config, registry)
    if helper is not None:
        found = helper_get(helper, registry, str(path))
        if found is not None:
            return Login(found.username, found.secret, f"docker-credential-{helper}")
    entry = _config_entry(config.get("auths") or {}, registry)
    return None if entry is None else _from_entry(entry, registry, path)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: Mapping[str, str]  # realm, service, scope

    def token_url(self, scope: str) -> str:
        realm = self.params.get("realm", "")
        query = {k: v for k, v in (("service", self.params.get("service")), ("scope", scope)) if v}
        return f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"


def parse_challenge(header: str) -> Challenge | None:
    """A WWW-Authenticate header's scheme and parameters; None when there is none."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    return Challenge(scheme.lower(), dict(_PARAM.findall(rest)))


def token_from_answer(body: bytes, where: str) -> str:
    """The bearer token of a token endpoint's JSON answer ("token" or "access_token")."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise BtfhubError(f"{where}: the registry's token endpoint answered no token")
    return token
