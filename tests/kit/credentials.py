"""A registry login the Docker way, for the store tests: htpasswd and credential helpers.

htpasswd_auth writes the bcrypt htpasswd file docker-registry's `auth:
htpasswd` reads (it takes bcrypt only) and returns that config section.
write_helper writes a real `docker-credential-NAME` program (a shell script)
that speaks the helper protocol: `get`, a server address on stdin, the JSON
login on stdout, or "credentials not found" and exit 1; it appends every
address it is asked for to a log, so a test sees when it ran.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import bcrypt

REALM = "btfhub-test"


def htpasswd_auth(directory: Path, username: str, password: str) -> str:
    """The `auth:` section of docker-registry's config.yml for this one login."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = directory / "htpasswd"
    path.write_text(f"{username}:{hashed}\n")
    return f"auth:\n  htpasswd:\n    realm: {REALM}\n    path: {path}\n"


def write_helper(
    bin_dir: Path, name: str, logins: dict[str, tuple[str, str]], body: str = ""
) -> Path:
    """bin_dir/docker-credential-<name> answering logins (server -> (user, secret)).

    body: shell run first instead (a helper that fails or hangs). Returns the log's path.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / f"{name}.log"
    cases = "".join(
        f"  {shlex.quote(server)}) printf '%s\\n' "
        f"{shlex.quote(json.dumps({'ServerURL': server, 'Username': u, 'Secret': s}))} ;;\n"
        for server, (u, s) in logins.items()
    )
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || { echo "unsupported action $1"; exit 1; }\n'
        "read -r server\n"
        f'printf "%s\\n" "$server" >> {shlex.quote(str(log))}\n'
        f"{body}\n"
        'case "$server" in\n'
        f"{cases}"
        '  *) echo "credentials not found in native keychain"; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return log


def asked(log: Path) -> list[str]:
    """The server addresses a helper was asked for, in order."""
    return log.read_text().split() if log.exists() else []
