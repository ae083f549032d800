"""A hub's index.json as bytes, checked against index.json.asc when hub keys are given.

The index is what vouches for every file a consumer fetches (size and
sha256), and it comes over the same channel as the files: a mirror, a fork
or a CDN cache that can change a file can change the index too. The hub's
own key closes that gap. With hub keys (`--hub-key FILE`, BTFHUB_HUB_KEYS)
the index must carry a detached signature, index.json.asc beside it, that
gpgv finds good by one of those keys over the exact bytes read; otherwise
it is refused before a field of it is used. Without hub keys it is read
as before and reported unsigned.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from generator.consumer.download import HubClient
from generator.errors import BtfhubError
from generator.openpgp import Keyring, SignatureError

SIGNATURE_SUFFIX = ".asc"


class UntrustedIndex(BtfhubError):
    """Hub keys were given and the index's signature is missing or does not verify."""


def read_index_bytes(location: str, client: HubClient | None, local: Path | None) -> bytes:
    """The bytes at location: a URL through client, or the file local."""
    if local is None:
        assert client is not None
        return client.http.get_index(location)
    return local.read_bytes()


def _signature(location: str, client: HubClient | None, local: Path | None) -> bytes | None:
    if local is None:
        assert client is not None
        return client.http.find_index(location + SIGNATURE_SUFFIX)
    try:
        return local.with_name(local.name + SIGNATURE_SUFFIX).read_bytes()
    except FileNotFoundError:
        return None


def check_signature(
    location: str,
    data: bytes,
    hub_keys: Sequence[Path],
    client: HubClient | None,
    local: Path | None,
) -> tuple[str, ...] | None:
    """The fingerprints that signed data (None with no hub keys); UntrustedIndex otherwise."""
    if not hub_keys:
        return None
    signature = _signature(location, client, local)
    if signature is None:
        raise UntrustedIndex(
            f"{location}: refusing the index: no signature ({location}{SIGNATURE_SUFFIX} "
            "does not exist) and hub keys were given"
        )
    keyring = Keyring(tuple(hub_keys))
    try:
        verdict = keyring.verify_detached(data, signature, f"{location}{SIGNATURE_SUFFIX}")
    except SignatureError as exc:
        raise UntrustedIndex(f"refusing the index: {exc}") from None
    finally:
        keyring.close()
    return verdict.signers
