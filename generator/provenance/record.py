"""index.json's provenance map: one entry per archived file, keyed like `kernels`.

    architectures.<arch>.provenance.<uname> =
        {"file_sha256": <the archive file's sha256: the entry describes those bytes>,
         "package": {"url", "size", "sha256"},    # the source package as built from
         "vouched_by": {"signed_index": {"url", "keys": [fingerprint]},
                        "rpm_header": {"keys": [fingerprint]}}  # either or both
                       | {"unsigned": true},     # nothing signed the chain
         "pahole": {"version", "arguments": [...]},   # {vmlinux}, {btf}: the paths
         "btfhub": <version>}
      | {"legacy": true, "file_sha256": ...}   # built before btfhub recorded any

Pure. Render writes a full entry only from what a build recorded for those
very bytes; any other archived file is legacy: provenance is never inferred.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.model import Provenance, SignedIndex


def is_unsigned(prov: Provenance) -> bool:
    return prov.signed_index is None and not prov.header_keys


def provenance_to_json(prov: Provenance) -> dict[str, Any]:
    vouched: dict[str, Any] = {}
    if prov.signed_index is not None:
        vouched["signed_index"] = {
            "url": prov.signed_index.url,
            "keys": list(prov.signed_index.keys),
        }
    if prov.header_keys:
        vouched["rpm_header"] = {"keys": list(prov.header_keys)}
    if not vouched:
        vouched["unsigned"] = True
    return {
        "file_sha256": prov.file_sha256,
        "package": {
            "url": prov.package_url,
            "size": prov.package_size,
            "sha256": prov.package_sha256,
        },
        "vouched_by": vouched,
        "pahole": {"version": prov.pahole_version, "arguments": list(prov.pahole_arguments)},
        "btfhub": prov.btfhub_version,
    }


def legacy_json(file_sha256: str) -> dict[str, Any]:
    """What index.json says of a file no recorded build describes: only its digest."""
    return {"legacy": True, "file_sha256": file_sha256}


def provenance_from_json(raw: Mapping[str, Any]) -> Provenance | None:
    """The Provenance of a schema-checked entry; None for a legacy one."""
    if raw.get("legacy"):
        return None
    vouched = raw["vouched_by"]
    signed = vouched.get("signed_index")
    return Provenance(
        file_sha256=raw["file_sha256"],
        package_url=raw["package"]["url"],
        package_size=raw["package"]["size"],
        package_sha256=raw["package"]["sha256"],
        signed_index=SignedIndex(signed["url"], tuple(signed["keys"])) if signed else None,
        header_keys=tuple(vouched.get("rpm_header", {}).get("keys", ())),
        pahole_version=raw["pahole"]["version"],
        pahole_arguments=tuple(raw["pahole"]["arguments"]),
        btfhub_version=raw["btfhub"],
    )


def describe_voucher(prov: Provenance) -> str:
    """What vouched for the package, in a line (verify's output)."""
    parts = []
    if prov.signed_index is not None:
        parts.append(f"{prov.signed_index.url} signed by {', '.join(prov.signed_index.keys)}")
    if prov.header_keys:
        parts.append(f"RPM header signed by {', '.join(prov.header_keys)}")
    return "; ".join(parts) or "unsigned"
