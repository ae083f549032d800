"""index.json's provenance map: one entry per archived file, keyed like `kernels`.

    architectures.<arch>.provenance.<uname> =
        {"file_sha256": <the archive file's sha256: the entry describes those bytes>,
         "package": {"url", "size", "sha256",       # the source package as built from
                     "name", "version", "repository", "filename", "format"},
         "vouched_by": {"signed_index": {"url", "keys": [fingerprint]},
                        "rpm_header": {"keys": [fingerprint]}}   # either or both
                       | {"unsigned": true},      # no signature anchors the chain
         "pahole": {"version", "arguments": [...]},   # {vmlinux}, {btf}: the paths
         "btfhub": <version>}
      | {"legacy": true, "file_sha256": ...}   # built before btfhub recorded any

Pure. Render writes a full entry only from what a build recorded for those
very bytes; any other archived file is legacy: provenance is never inferred.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.model import KernelId, Provenance
from generator.planner import package_from_json


def is_unsigned(prov: Provenance) -> bool:
    return prov.package.signed_index is None and not prov.header_keys


def provenance_to_json(prov: Provenance) -> dict[str, Any]:
    pkg = prov.package
    vouched: dict[str, Any] = {}
    if pkg.signed_index is not None:
        vouched["signed_index"] = {
            "url": pkg.signed_index.url,
            "keys": list(pkg.signed_index.keys),
        }
    if prov.header_keys:
        vouched["rpm_header"] = {"keys": list(prov.header_keys)}
    return {
        "file_sha256": prov.file_sha256,
        "package": {
            "url": pkg.url,
            "size": pkg.size,
            "sha256": pkg.sha256,
            "name": pkg.name,
            "version": pkg.version,
            "repository": pkg.repository,
            "filename": pkg.filename,
            "format": pkg.format,
        },
        "vouched_by": vouched or {"unsigned": True},
        "pahole": {"version": prov.pahole_version, "arguments": list(prov.pahole_arguments)},
        "btfhub": prov.btfhub_version,
    }


def legacy_json(file_sha256: str) -> dict[str, Any]:
    """What index.json says of a file no recorded build describes: only its digest."""
    return {"legacy": True, "file_sha256": file_sha256}


def provenance_from_json(kernel: KernelId, raw: Mapping[str, Any]) -> Provenance | None:
    """The Provenance of a schema-checked entry for kernel; None for a legacy one."""
    if raw.get("legacy"):
        return None
    vouched = raw["vouched_by"]
    package = {**raw["package"], "signed_index": vouched.get("signed_index")}
    return Provenance(
        file_sha256=raw["file_sha256"],
        package=package_from_json(kernel.uname, kernel.arch, package),
        header_keys=tuple(vouched.get("rpm_header", {}).get("keys", ())),
        pahole_version=raw["pahole"]["version"],
        pahole_arguments=tuple(raw["pahole"]["arguments"]),
        btfhub_version=raw["btfhub"],
    )


def describe_voucher(prov: Provenance) -> str:
    """What vouched for the package, in a line (verify's output)."""
    signed = prov.package.signed_index
    parts = [f"{signed.url} signed by {', '.join(signed.keys)}"] if signed else []
    if prov.header_keys:
        parts.append(f"RPM header signed by {', '.join(prov.header_keys)}")
    return "; ".join(parts) or "unsigned"
