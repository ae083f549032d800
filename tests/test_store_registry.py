"""The OCI registry client against a real registry (docker-registry on 127.0.0.1)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.errors import PackageError
from generator.index import _locations
from generator.progress import Reporter
from generator.state import HubState
from generator.store.hubstore import STAGING, push_staged
from generator.store.oci import TITLE, RegistryClient, RegistryError, directory_tag, pinned_tag
from generator.store.registryauth import find_login, parse_challenge, token_from_answer
from generator.store.setting import Blob, OciStore, StoreSettingError, choose_store, parse_store
from generator.upstream.http import UpstreamClient
from tests.kit.registry import Registry, RegistryProxy
from tests.kit.tokenauth import TokenServer


def _blob(data: bytes, path: str = "archive/ubuntu/20.04/x86_64/5.4.0-1.btf.tar.xz") -> Blob:
    return Blob(path, len(data), hashlib.sha256(data).hexdigest())


@pytest.fixture
def proxy(registry: Registry) -> Iterator[RegistryProxy]:
    with RegistryProxy(registry) as server:
        yield server


def _client(host: str) -> RegistryClient:
    http = UpstreamClient(attempts=3, backoff=0)
    return RegistryClient(http, OciStore(host, f"t/{uuid.uuid4().hex[:12]}"), login=None)


def test_push_is_once_per_digest_and_a_pull_is_verified(proxy: RegistryProxy) -> None:
    client = _client(proxy.host)
    data = b"btf tarball bytes" * 100
    blob = _blob(data)
    assert client.push_blob(blob, data) is True
    assert client.push_blob(blob, data) is False  # HEAD says it is there: no upload
    assert [s.method for s in proxy.seen].count("PUT") == 1
    digest = client.put_manifest(directory_tag("archive/ubuntu/20.04/x86_64"), [blob])
    manifest = client.get_manifest("ubuntu_20.04_x86_64")
    assert manifest is not None and digest.startswith("sha256:")
    (layer,) = manifest["layers"]
    assert layer["digest"] == blob.digest
    assert layer["annotations"]["org.opencontainers.image.title"] == blob.path
    with client.open_blob(blob) as stream:
        assert stream.read() == data


def test_a_5xx_or_a_dropped_connection_is_retried(proxy: RegistryProxy) -> None:
    client = _client(proxy.host)
    data = b"x" * 5000
    blob = _blob(data)
    proxy.fail("PUT", r"/blobs/uploads/", status=500, times=1)
    proxy.fail("POST", r"/blobs/uploads/", status=None, times=1)
    assert client.push_blob(blob, data) is True
    statuses = [(s.method, s.status) for s in proxy.seen]
    assert ("POST", 0) in statuses and ("PUT", 500) in statuses and ("PUT", 201) in statuses
    assert client.has_blob(blob)


def test_a_registry_that_keeps_failing_is_a_clear_error(proxy: RegistryProxy) -> None:
    client = _client(proxy.host)
    data = b"y" * 10
    proxy.fail("PUT", r"/blobs/uploads/", status=503, times=None)
    with pytest.raises(RegistryError, match=r"HTTP 503 .*gave up after 3 attempts"):
        client.push_blob(_blob(data), data)
    assert not client.has_blob(_blob(data))


def test_a_tampered_blob_is_refused(registry: Registry) -> None:
    client = _client(registry.host)
    data = b"the real bytes " * 50
    blob = _blob(data)
    client.push_blob(blob, data)
    stored = registry.blob_data(blob.sha256)
    stored.write_bytes(b"X" + data[1:])
    with pytest.raises(PackageError, match="sha256"), client.open_blob(blob) as stream:
        stream.read()


def test_the_registry_checks_what_it_receives(registry: Registry) -> None:
    client = _client(registry.host)
    blob = _blob(b"announced")
    with pytest.raises(RegistryError, match="HTTP 400"):
        client.push_blob(blob, b"something else")


def test_store_settings() -> None:
    assert parse_store("git") is None
    local = parse_store("oci://127.0.0.1:5000/btfhub")
    assert local is not None and local.base_url.startswith("http://")
    remote = parse_store("oci://ghcr.io/owner/btfhub")
    assert remote is not None and remote.base_url == "https://ghcr.io/v2/owner/btfhub"
    insecure = parse_store("oci://registry.lan:5000/hub", insecure=True)
    assert insecure is not None and insecure.base_url.startswith("http://")
    for bad in ("oci://user:secret@ghcr.io/x", "s3://bucket", "oci://ghcr.io/Upper"):
        with pytest.raises(StoreSettingError):
            parse_store(bad)
    env = {"BTFHUB_STORE": "oci://ghcr.io/a/b"}
    assert choose_store(None, env, None) == OciStore("ghcr.io", "a/b")
    assert choose_store("git", env, None) is None
    assert choose_store(None, {}, OciStore("ghcr.io", "c/d")) == OciStore("ghcr.io", "c/d")


def test_logins_come_from_the_environment_or_the_docker_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    auth = base64.b64encode(b"bot:s3cret").decode()
    config.write_text(json.dumps({"auths": {"https://ghcr.io": {"auth": auth}}}))
    login = find_login("ghcr.io", {"DOCKER_CONFIG": str(tmp_path)})
    assert login is not None and (login.username, login.password) == ("bot", "s3cret")
    assert find_login("quay.io", {"DOCKER_CONFIG": str(tmp_path)}) is None
    env = {"BTFHUB_REGISTRY_USERNAME": "ci", "BTFHUB_REGISTRY_PASSWORD": "tok"}
    found = find_login("ghcr.io", {**env, "DOCKER_CONFIG": str(tmp_path)})
    assert found is not None and found.username == "ci"


def test_the_bearer_challenge_gives_the_token_url() -> None:
    # ghcr.io's answer to an anonymous pull, as its API sends it.
    challenge = parse_challenge(
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/h:pull"'
    )
    assert challenge is not None and challenge.scheme == "bearer"
    assert challenge.token_url("repository:o/h:pull") == (
        "https://ghcr.io/token?service=ghcr.io&scope=repository%3Ao%2Fh%3Apull"
    )
    assert token_from_answer(b'{"token": "abc"}', "t") == "abc"


@pytest.fixture(scope="module")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Registry, TokenServer]]:
    """docker-registry behind a token service: anonymous pulls, pushes with the one login."""
    directory = tmp_path_factory.mktemp("token-registry")
    with TokenServer(directory, ("bot", "s3cret")) as tokens:
        running = Registry(directory, auth=tokens.registry_config()).start()
        try:
            yield running, tokens
        finally:
            running.stop()


def test_the_token_flow_anonymous_pulls_and_logged_in_pushes(
    tmp_path: Path, token_registry: tuple[Registry, TokenServer]
) -> None:
    registry, tokens = token_registry
    store = OciStore(registry.host, "owner/btfhub")
    data = b"a public package's file" * 20
    blob = _blob(data)
    anonymous = RegistryClient(UpstreamClient(attempts=2, backoff=0), store, login=None)
    with pytest.raises(RegistryError, match=r"HTTP 401, not allowed anonymously"):
        anonymous.push_blob(blob, data)

    config = tmp_path / "docker"
    config.mkdir()
    auth = base64.b64encode(b"bot:s3cret").decode()
    (config / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    login = find_login(registry.host, {"DOCKER_CONFIG": str(config)})
    pusher = RegistryClient(UpstreamClient(attempts=2, backoff=0), store, login=login)
    assert pusher.push_blob(blob, data) is True
    pusher.put_manifest("ubuntu_20.04_x86_64", [blob])
    assert ["pull", "push"] in tokens.issued

    # Pulled anonymously by digest, like a public ghcr.io package.
    puller = RegistryClient(UpstreamClient(attempts=2, backoff=0), store, login=None)
    with puller.open_blob(blob) as stream:
        assert stream.read() == data
    assert ["pull"] in tokens.issued


def test_index_locations_give_each_kernel_every_file_beside_it() -> None:
    """A modules archive beside the BTF file is the kernel's too; the longest uname owns it."""
    directory = "archive/ubuntu/20.04/x86_64"
    stored = [
        Blob(f"{directory}/5.4.0-1.btf.tar.xz", 10, "a" * 64),
        Blob(f"{directory}/5.4.0-1.modules.tar.xz", 20, "b" * 64),
        Blob(f"{directory}/5.4.0-1.2.btf.tar.xz", 30, "c" * 64),
        Blob(f"{directory}/6.0.0-9.btf.tar.xz", 40, "d" * 64),  # no such kernel listed
    ]
    kernels = {"5.4.0-1": {"state": "archived"}, "5.4.0-1.2": {"state": "archived"}}
    found = _locations(stored, kernels)
    assert found == {
        "5.4.0-1": {
            f"{directory}/5.4.0-1.btf.tar.xz": {"digest": "sha256:" + "a" * 64, "size": 10},
            f"{directory}/5.4.0-1.modules.tar.xz": {"digest": "sha256:" + "b" * 64, "size": 20},
        },
        "5.4.0-1.2": {
            f"{directory}/5.4.0-1.2.btf.tar.xz": {"digest": "sha256:" + "c" * 64, "size": 30}
        },
    }


def test_two_publishers_racing_on_a_directory_keep_every_blob_through_garbage_collection(
    tmp_path: Path,
) -> None:
    """Both start from one index.json; B tags the directory last, then untagged manifests go.

    Without a tag of its own, A's manifest would be untagged once B moved the
    directory's tag, and the collector would delete A's new file, which A's
    index.json names.
    """
    (tmp_path / "registry").mkdir()
    registry = Registry(tmp_path / "registry").start()
    try:
        store = OciStore(registry.host, "owner/btfhub")
        directory = "archive/ubuntu/20.04/x86_64"
        old_data = b"the file both publishers' index.json records" * 10
        old = _blob(old_data, f"{directory}/5.4.0-1.btf.tar.xz")
        first = RegistryClient(UpstreamClient(attempts=2, backoff=0), store, login=None)
        first.push_blob(old, old_data)
        first.put_manifest(directory_tag(directory), [old])
        published: dict[str, bytes] = {old.path: old_data}
        states = []
        for name in ("a", "b"):
            path = f"{directory}/5.4.0-{name}.btf.tar.xz"
            data = f"publisher {name}'s new file".encode() * 10
            staged = tmp_path / name / STAGING / path
            staged.parent.mkdir(parents=True)
            staged.write_bytes(data)
            state = HubState(store=store, locations={old.path: old})
            client = RegistryClient(UpstreamClient(attempts=2, backoff=0), store, login=None)
            push_staged(tmp_path / name, state, client, Reporter())
            states.append(state)
            published[path] = data
        assert sorted(states[0].locations) == [old.path, f"{directory}/5.4.0-a.btf.tar.xz"]

        registry.garbage_collect()

        store = OciStore(registry.host, "owner/btfhub")  # the same data, another port
        puller = RegistryClient(UpstreamClient(attempts=2, backoff=0), store, login=None)
        for state in states:
            for blob in state.locations.values():
                with puller.open_blob(blob) as stream:
                    assert stream.read() == published[blob.path]
        # The directory's tag is B's manifest: a convenience, not what keeps files.
        moved = puller.get_manifest(directory_tag(directory))
        assert moved is not None
        titles = sorted(layer["annotations"][TITLE] for layer in moved["layers"])
        assert titles == sorted(states[1].locations)
    finally:
        registry.stop()


def test_a_pinned_tag_is_the_directory_s_tag_and_its_manifest_s_digest() -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    assert pinned_tag("ubuntu_20.04_x86_64", digest) == "ubuntu_20.04_x86_64-0123456789ab"
    assert len(pinned_tag("x" * 128, digest)) == 128
