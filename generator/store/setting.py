"""The store setting, pure: `git` (archive/ in the hub's repository) or `oci://REGISTRY/REPO`.

Which store a command uses: `--store`, else BTFHUB_STORE, else the store the
hub's index.json records (its top-level "store" object: the hub-level
default, written by `btfhub store migrate` or the first OCI reconcile), else
git. Plain HTTP is used for a loopback registry (127.0.0.1, ::1, localhost)
or with --insecure-registry, never silently for another host.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import BtfhubError

STORE_ENV = "BTFHUB_STORE"
GIT = "git"
OCI_SCHEME = "oci://"
# The distribution spec's repository name: path components of lowercase
# alphanumerics joined by separators.
_REPOSITORY = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
LOOPBACK_NAMES = frozenset({"localhost"})
# Where an OCI store's builds write archive/..., under the hub's root (not committed).
STAGING = Path(".btfhub-cache") / "store" / "staging"


class StoreSettingError(BtfhubError):
    """A --store / BTFHUB_STORE / index.json store that is not `git` or `oci://HOST/REPO`."""


@dataclass(frozen=True)
class OciStore:
    """An OCI registry repository holding a hub's archive files as blobs."""

    registry: str  # host[:port], as in an image reference: ghcr.io, 127.0.0.1:5000
    repository: str  # owner/btfhub
    insecure: bool = False  # plain HTTP allowed for a host that is not loopback

    @property
    def hostname(self) -> str:
        host = self.registry.rsplit(":", 1)[0] if not self.registry.endswith("]") else self.registry
        return host.strip("[]")

    @property
    def loopback(self) -> bool:
        if self.hostname in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.hostname).is_loopback
        except ValueError:
            return False

    @property
    def base_url(self) -> str:
        """Where the registry's /v2/ API is: https, except loopback or --insecure-registry."""
        scheme = "http" if self.loopback or self.insecure else "https"
        return f"{scheme}://{self.registry}/v2/{self.repository}"

    @property
    def url(self) -> str:
        return f"{OCI_SCHEME}{self.registry}/{self.repository}"

    def to_json(self) -> dict[str, Any]:
        """index.json's top-level "store" object (never the insecure flag: an operator's choice)."""
        return {"kind": "oci", "registry": self.registry, "repository": self.repository}


@dataclass(frozen=True)
class Blob:
    """A hub file as a registry holds it: its archive path, size and sha256 (its digest)."""

    path: str
    size: int
    sha256: str

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"

    def to_json(self) -> dict[str, Any]:
        """A file's entry in index.json's locations."""
        return {"digest": self.digest, "size": self.size}


# None stands for git: archive/ in the hub's own repository.
Store = OciStore | None


def parse_store(text: str, insecure: bool = False, where: str = "--store") -> Store:
    """`git` or `oci://REGISTRY/REPOSITORY` (StoreSettingError naming where it came from)."""
    if text == GIT:
        return None
    if not text.startswith(OCI_SCHEME):
        raise StoreSettingError(f"{where} {text!r}: expected `git` or oci://REGISTRY/REPOSITORY")
    registry, _, repository = text[len(OCI_SCHEME) :].partition("/")
    if "@" in registry:
        raise StoreSettingError(
            f"{where} {text!r}: no credentials in the store's URL; they come from "
            "~/.docker/config.json or BTFHUB_REGISTRY_USERNAME / BTFHUB_REGISTRY_PASSWORD"
        )
    if not _HOST.fullmatch(registry) or not _REPOSITORY.fullmatch(repository):
        raise StoreSettingError(
            f"{where} {text!r}: expected oci://REGISTRY[:PORT]/REPOSITORY with a lowercase "
            "repository name (e.g. oci://ghcr.io/owner/btfhub)"
        )
    return OciStore(registry, repository, insecure)


def store_from_json(raw: Mapping[str, Any] | None) -> Store:
    """index.json's "store" object (schema-checked) as a Store; absent means git."""
    if raw is None or raw.get("kind") == GIT:
        return None
    return OciStore(str(raw["registry"]), str(raw["repository"]))


def store_label(store: Store) -> str:
    return GIT if store is None else store.url


def describe_store(store: Store) -> str:
    """Where a plan's files would go, and where what is archived is read from (plan's line)."""
    if store is None:
        return "store: git (built files go into archive/, committed with index.json)"
    return (
        f"store: {store.url} (built files are staged in {STAGING.as_posix()}/ and pushed "
        "there as blobs; what is archived is read from index.json's locations, "
        "without asking the registry)"
    )


def choose_store(
    flag: str | None, env: Mapping[str, str], recorded: Store, insecure: bool = False
) -> Store:
    """--store, else BTFHUB_STORE, else the hub's recorded store (git when none)."""
    if flag:
        return parse_store(flag, insecure, "--store")
    if env.get(STORE_ENV):
        return parse_store(env[STORE_ENV], insecure, STORE_ENV)
    if recorded is not None and insecure:
        return OciStore(recorded.registry, recorded.repository, True)
    return recorded


def same_store(a: Store, b: Store) -> bool:
    """The same place (the insecure flag is how it is reached, not where)."""
    if a is None or b is None:
        return a is b
    return (a.registry, a.repository) == (b.registry, b.repository)


@dataclass(frozen=True)
class StoreChoice:
    """What the command line asked for; resolved against the hub's recorded store."""

    flag: str | None = None  # --store
    insecure: bool = False  # --insecure-registry

    def resolve(self, recorded: Store, env: Mapping[str, str] | None = None) -> Store:
        return choose_store(self.flag, os.environ if env is None else env, recorded, self.insecure)
