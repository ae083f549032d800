"""The OCI registry: the distribution API's few calls, over the generator's one transport.

A hub file is a blob (its digest is its sha256, so identical files are
stored once); the files of one archive directory
(archive/<distro>/<release>/<arch>) are the layers of one OCI image manifest,
tagged after the directory, each annotated with its archive path
(org.opencontainers.image.title, which `oras pull` names the file by). The
tagged manifest is what keeps the blobs from the registry's garbage
collection: tagged also by its own digest (pinned_tag), since the
directory's tag moves on to the next push's manifest, or to a concurrent
publisher's.

The calls: HEAD and GET a blob, POST+PUT a monolithic upload, PUT a
manifest, and the token flow of a 401 (generator/store/registryauth.py).
All go through UpstreamClient.send, so they follow the run's one retry
policy (generator/upstream/transport.py): a 5xx or a dropped connection is
retried, then is a RegistryError naming the call. A blob is read through
the same verified stream packages use: size and sha256 checked at its end.

Not the `oras` SDK: it brings requests and its own retry loop beside the
transport every other request follows; these calls are few and fixed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from generator.errors import BtfhubError, PackageError
from generator.store.registryauth import Login, find_login, parse_challenge, token_from_answer
from generator.store.setting import Blob, OciStore
from generator.upstream.http import UpstreamClient
from generator.upstream.packagestream import PackageBody, PackageStream

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.btfhub.archive.v1"
FILE_TYPE = "application/vnd.btfhub.archive.file.v1"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
TITLE = "org.opencontainers.image.title"


class RegistryError(BtfhubError):
    """A registry call failed (after the retries), or the registry refused it."""


def directory_tag(directory: str) -> str:
    """The manifest tag of archive/<distro>/<release>/<arch>: `<distro>_<release>_<arch>`.

    Tags allow [A-Za-z0-9_.-] (128 at most, not starting with . or -); other
    characters become '-'.
    """
    parts = directory.split("/")[1:]
    tag = "_".join("".join(c if c.isalnum() or c in "._-" else "-" for c in p) for p in parts)
    return tag.lstrip(".-")[:128] or "archive"


def pinned_tag(tag: str, manifest_digest: str) -> str:
    """The tag a manifest keeps for good: `<tag>-<its digest's first 12 hex digits>`.

    The directory's own tag moves to each new manifest; two publishers
    tagging one directory at once would each overwrite the other's, leaving
    the loser's new blobs referenced by an untagged manifest, which a
    registry's clean-up of untagged manifests (`garbage-collect
    --delete-untagged`, ghcr.io's policies) deletes with its blobs. Each
    manifest also tagged by its own digest keeps every blob a run recorded
    referenced, whoever tagged the directory last.
    """
    suffix = "-" + manifest_digest.removeprefix("sha256:")[:12]
    return tag[: 128 - len(suffix)] + suffix


def manifest_for(blobs: Sequence[Blob]) -> bytes:
    """The image manifest whose layers are blobs (sorted by path), as bytes to PUT."""
    layers = [
        {
            "mediaType": FILE_TYPE,
            "digest": b.digest,
            "size": b.size,
            "annotations": {TITLE: b.path},
        }
        for b in sorted(blobs, key=lambda b: b.path)
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": EMPTY_TYPE,
            "digest": "sha256:" + hashlib.sha256(EMPTY).hexdigest(),
            "size": len(EMPTY),
        },
        "layers": layers,
    }
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


class RegistryClient:
    """One repository of one registry, through an UpstreamClient (its transport and stats)."""

    def __init__(
        self, http: UpstreamClient, store: OciStore, login: Login | bool | None = True
    ) -> None:
        """login True: the operator's (environment, Docker config), found when a registry
        first asks for one; None: anonymous."""
        self.http = http
        self.store = store
        self._login: Login | None = None if login is True else login or None
        self._login_wanted = login is True  # not looked for yet
        self._authorization: dict[str, str] = {}  # scope ("pull", "push") -> header
        self._lock = threading.Lock()

    @property
    def login(self) -> Login | None:
        """The login, looked for once (a credential helper may run): only after a 401."""
        with self._lock:
            if self._login_wanted:
                self._login = find_login(self.store.registry)
                self._login_wanted = False
            return self._login

    # -- requests -------------------------------------------------------------

    def _fail(self, message: str) -> RegistryError:
        return RegistryError(f"registry {self.store.url}: {message}")

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        preload: bool = True,
    ) -> BaseHTTPResponse:
        """One call; a 401 is answered once with the challenge's token or the login."""
        for attempt in range(2):
            sent = dict(headers or {})
            with self._lock:
                auth = self._authorization.get(scope)
            if auth is not None:
                sent["Authorization"] = auth
            response = self.http.send(
                method,
                url,
                sent,
                lambda m, _: self._fail(f"{method} {m}"),
                body=body,
                preload=preload,
            )
            if response.status != 401 or attempt:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            response.drain_conn()
            response.release_conn()
            self._authorize(scope, challenge)
        raise AssertionError("unreachable")

    def _authorize(self, scope: str, header: str) -> None:
        challenge = parse_challenge(header)
        if challenge is None:
            raise self._fail("HTTP 401 without a WWW-Authenticate challenge")
        login = self.login
        if challenge.scheme == "basic":
            if login is None:
                raise self._fail(self._no_login(scope))
            value = login.basic()
        elif challenge.scheme == "bearer":
            actions = "pull" if scope == "pull" else "pull,push"
            url = challenge.token_url(f"repository:{self.store.repository}:{actions}")
            headers = {"Authorization": login.basic()} if login else {}
            answer = self.http.send("GET", url, headers, lambda m, _: self._fail(m))
            if answer.status != 200:
                who = f"the login from {login.source}" if login else "anonymously"
                raise self._fail(f"no {actions} token {who}: HTTP {answer.status} at {url}")
            value = "Bearer " + token_from_answer(answer.data, url)
        else:
            raise self._fail(f"unsupported authentication {challenge.scheme!r}")
        with self._lock:
            self._authorization[scope] = value

    def _no_login(self, scope: str) -> str:
        return (
            f"asks for a login to {scope}; none found (set BTFHUB_REGISTRY_USERNAME and "
            "BTFHUB_REGISTRY_PASSWORD, or `docker login` it)"
        )

    def _refused(self, what: str, response: BaseHTTPResponse) -> RegistryError:
        text = response.data[:300].decode("utf-8", "replace").strip()
        if response.status in (401, 403):
            login = self.login
            who = f"with the login from {login.source}" if login else "anonymously"
            return self._fail(f"{what}: HTTP {response.status}, not allowed {who}: {text}")
        return self._fail(f"{what}: HTTP {response.status} {response.reason}: {text}")

    # -- blobs ----------------------------------------------------------------

    def blob_url(self, digest: str) -> str:
        return f"{self.store.base_url}/blobs/{digest}"

    def has_blob(self, blob: Blob, scope: str = "pull") -> bool:
        response = self._send("HEAD", self.blob_url(blob.digest), scope)
        if response.status == 404:
            return False
        if response.status != 200:
            raise self._refused(f"HEAD {blob.digest}", response)
        length = response.headers.get("Content-Length")
        return length is None or int(length) == blob.size

    def push_blob(self, blob: Blob, data: bytes) -> bool:
        """Upload blob's bytes unless the registry has them; True when uploaded.

        The registry checks the digest of what it receives (400 otherwise).
        """
        if self.has_blob(blob, "push"):
            return False
        started = self._send("POST", f"{self.store.base_url}/blobs/uploads/", "push")
        location = started.headers.get("Location")
        if started.status != 202 or not location:
            raise self._refused(f"starting the upload of {blob.path}", started)
        upload = urljoin(self.blob_url(""), location)
        upload += ("&" if "?" in upload else "?") + f"digest={blob.digest}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        done = self._send("PUT", upload, "push", headers, data)
        if done.status == 201:
            return True
        # A PUT retried after its first attempt did land finds its session
        # closed: what counts is whether the registry now has the blob.
        if done.status == 404 and self.has_blob(blob, "push"):
            return True
        raise self._refused(f"uploading {blob.path}", done)

    @contextmanager
    def open_blob(self, blob: Blob) -> Iterator[PackageStream]:
        """blob's bytes as a stream checked against its size and sha256 at the end.

        A connection dropped mid-body resumes with Range under the run's retry
        policy; a mismatch is PackageError from the read that reaches the end.
        """

        def opener(headers: Mapping[str, str], retries: Retry) -> BaseHTTPResponse:
            response = self._send("GET", self.blob_url(blob.digest), "pull", headers, None, False)
            if response.status not in (200, 206):
                raise self._refused(f"GET {blob.path} ({blob.digest})", response)
            return response

        where = f"{self.store.url}@{blob.digest} ({blob.path})"
        stream = PackageStream(
            PackageBody(
                opener,
                self.http.transport.retry,
                where,
                blob.size,
                blob.sha256,
                lambda n: self.http.stats.add(package_bytes=n),
            )
        )
        try:
            yield stream
        finally:
            stream.close()

    # -- manifests ------------------------------------------------------------

    def put_manifest(self, tag: str, blobs: Sequence[Blob]) -> str:
        """Tag the manifest of blobs (pushing its empty config first); its digest.

        Tagged twice: first for good (pinned_tag: what keeps its blobs), then
        tag itself, which moves to it (what `oras pull <repo>:<tag>` reads).
        """
        empty = Blob("", len(EMPTY), hashlib.sha256(EMPTY).hexdigest())
        self.push_blob(empty, EMPTY)
        body = manifest_for(blobs)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        for name in (pinned_tag(tag, digest), tag):
            response = self._send(
                "PUT",
                f"{self.store.base_url}/manifests/{name}",
                "push",
                {"Content-Type": MANIFEST_TYPE},
                body,
            )
            if response.status != 201:
                raise self._refused(f"PUT manifest {name}", response)
        return digest

    def get_manifest(self, tag: str) -> dict[str, Any] | None:
        """The manifest tagged tag, or None when there is none."""
        response = self._send(
            "GET", f"{self.store.base_url}/manifests/{tag}", "pull", {"Accept": MANIFEST_TYPE}
        )
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._refused(f"GET manifest {tag}", response)
        try:
            found: dict[str, Any] = json.loads(response.data)
        except ValueError:
            raise self._fail(f"manifest {tag} is not JSON") from None
        return found


def read_blob_file(path: Path, blob: Blob) -> bytes:
    """path's bytes, refused unless they are blob's (a staged file changed since it was built)."""
    data = path.read_bytes()
    if len(data) != blob.size or hashlib.sha256(data).hexdigest() != blob.sha256:
        raise PackageError(f"{path}: not the {blob.size} bytes with sha256 {blob.sha256}")
    return data
