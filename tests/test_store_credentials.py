"""Registry logins from Docker's credential helpers, against a real docker-registry with htpasswd.

The helpers are real programs on PATH (tests/kit/credentials.py), run the way
the Docker client runs them; the registry asks for Basic auth as
`auth: htpasswd` configures it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.store import credhelper
from generator.store.credhelper import CredentialHelperError
from generator.store.oci import RegistryClient, RegistryError
from generator.store.setting import Blob, OciStore
from generator.upstream.http import UpstreamClient
from tests.kit.credentials import asked, htpasswd_auth, write_helper
from tests.kit.registry import Registry

USER, SECRET = "bot", "hunter2-s3cret"


@pytest.fixture(scope="module")
def locked_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """docker-registry that takes only the one htpasswd login, for pulls and pushes alike."""
    directory = tmp_path_factory.mktemp("htpasswd-registry")
    running = Registry(directory, auth=htpasswd_auth(directory, USER, SECRET)).start()
    yield running
    running.stop()


@pytest.fixture
def docker_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DOCKER_CONFIG and a bin directory first on PATH, for this test only."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for var in ("BTFHUB_REGISTRY_USERNAME", "BTFHUB_REGISTRY_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _config(home: Path, config: dict[str, object]) -> None:
    (home / "config.json").write_text(json.dumps(config))


def _client(host: str) -> RegistryClient:
    """A client that looks for the operator's login itself (the commands' way)."""
    store = OciStore(host, f"t/{uuid.uuid4().hex[:12]}")
    return RegistryClient(UpstreamClient(attempts=2, backoff=0), store)


def _blob(data: bytes) -> Blob:
    return Blob(
        "archive/ubuntu/20.04/x86_64/5.4.0-1.btf.tar.xz",
        len(data),
        hashlib.sha256(data).hexdigest(),
    )


def test_the_creds_store_helper_logs_in_a_push_and_a_pull(
    locked_registry: Registry, docker_home: Path
) -> None:
    host = locked_registry.host
    log = write_helper(docker_home / "bin", "btfhubtest", {host: (USER, SECRET)})
    _config(docker_home, {"auths": {host: {}}, "credsStore": "btfhubtest"})
    data = b"a file pushed with a keychain's login" * 10
    blob = _blob(data)
    client = _client(host)
    assert client.push_blob(blob, data) is True
    client.put_manifest("ubuntu_20.04_x86_64", [blob])
    with client.open_blob(blob) as stream:
        assert stream.read() == data
    # Asked once, with the registry's host as docker asks, then the login is kept.
    assert asked(log) == [host]
    assert client.login is not None and client.login.source == "docker-credential-btfhubtest"

    anonymous = RegistryClient(UpstreamClient(attempts=2, backoff=0), client.store, login=None)
    with pytest.raises(RegistryError, match="asks for a login to pull; none found"):
        anonymous.has_blob(blob)


def test_a_registry_s_own_helper_comes_before_the_default_one(
    locked_registry: Registry, docker_home: Path
) -> None:
    host = locked_registry.host
    own = write_helper(docker_home / "bin", "own", {host: (USER, SECRET)})
    default = write_helper(docker_home / "bin", "default", {})
    _config(docker_home, {"credsStore": "default", "credHelpers": {host: "own"}})
    data = b"credHelpers wins"
    assert _client(host).push_blob(_blob(data), data) is True
    assert asked(own) == [host] and asked(default) == []


def test_a_helper_without_the_login_falls_back_to_the_config_s_entry(
    locked_registry: Registry, docker_home: Path
) -> None:
    host = locked_registry.host
    log = write_helper(docker_home / "bin", "empty", {})
    auth = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    _config(docker_home, {"credsStore": "empty", "auths": {host: {"auth": auth}}})
    data = b"the inline auth"
    client = _client(host)
    assert client.push_blob(_blob(data), data) is True
    assert asked(log) == [host]
    assert client.login is not None and client.login.source.endswith("config.json")

    # Neither the helper nor the config has one: anonymous, and the registry says no.
    _config(docker_home, {"credsStore": "empty"})
    with pytest.raises(RegistryError, match="asks for a login to push; none found"):
        _client(host).push_blob(_blob(data), data)


def test_a_registry_that_asks_nothing_runs_no_helper(registry: Registry, docker_home: Path) -> None:
    log = write_helper(docker_home / "bin", "unused", {registry.host: (USER, SECRET)})
    _config(docker_home, {"credsStore": "unused"})
    data = b"an open registry"
    assert _client(registry.host).push_blob(_blob(data), data) is True
    assert asked(log) == []


def test_a_failing_helper_is_an_error_naming_it_and_never_the_secret(
    locked_registry: Registry, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = locked_registry.host
    bin_dir = docker_home / "bin"
    data = b"never sent"
    blob = _blob(data)
    cases = {
        "locked": ('echo "the password store is locked"; exit 3', r"docker-credential-locked .*"
                   r"failed for .* \(exit 3\): the password store is locked"),
        "garbled": (f"echo 'Secret={SECRET}'; exit 0", r"docker-credential-garbled .*"
                    "without a Username and Secret"),
        "oauth": ("printf '%s\\n' '{\"Username\": \"<token>\", \"Secret\": \"" + SECRET + "\"}'; "
                  "exit 0", "identity token"),
        "hangs": ("exec sleep 30", r"docker-credential-hangs .*did not answer .* in 1 s"),
        "absent": ("", r"docker-credential-absent \(named by .*config.json\) is not on PATH"),
    }  # fmt: skip
    monkeypatch.setattr(credhelper, "HELPER_TIMEOUT", 1.0)
    for name, (body, message) in cases.items():
        if name != "absent":
            write_helper(bin_dir, name, {host: (USER, SECRET)}, body)
        _config(docker_home, {"credsStore": name})
        with pytest.raises(CredentialHelperError, match=message) as failed:
            _client(host).push_blob(blob, data)
        assert SECRET not in str(failed.value), name
