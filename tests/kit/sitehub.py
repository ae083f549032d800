"""What the site's tests add to the consumer hub (tests/kit/consumer.py): the optional maps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# What other features add to an architecture of index.json (issues 16 and 18),
# in the shapes their schemas give (generator/provenance/record.py on the
# provenance branch; the common brief's modules map); the site shows them when present.
PROVENANCE: dict[str, Any] = {
    "file_sha256": "",  # with_optional_maps sets the kernel's own
    "package": {
        "url": "https://ddebs.example/pool/main/l/linux/linux-image-5.4.0-42-generic-dbgsym.ddeb",
        "size": 876543210,
        "sha256": "ab" * 32,
        "name": "linux-image-unsigned-5.4.0-42-generic-dbgsym",
        "version": "5.4.0-42.46",
        "repository": "ddebs",
        "filename": "pool/main/l/linux/linux-image-5.4.0-42-generic-dbgsym.ddeb",
        "format": "deb",
    },
    "vouched_by": {
        "signed_index": {
            "url": "https://ddebs.example/dists/focal-updates/InRelease",
            "keys": ["F2EDC64DC5AEE1F6B9C621F0C8CAB6595FDFF622"],
        }
    },
    "pahole": {"version": "1.30", "arguments": ["-j2", "--btf_encode_detached={btf}", "{vmlinux}"]},
    "btfhub": "0.1.0",
}
MODULES = {
    "path": "archive/ubuntu/20.04/x86_64/5.4.0-42-generic.modules.tar.xz",
    "size": 123456,
    "sha256": "cd" * 32,
    "modules": {
        "xfs": {"size": 20, "sha256": "02" * 32},
        "ext4": {"size": 10, "sha256": "01" * 32},
    },
    "absent": ["btrfs"],
}


def index_kernels(hub: Path) -> list[tuple[str, str]]:
    """(uname, state) of every kernel entry of hub's index.json, the files in no catalog
    release included: a file in a directory several releases share counts once per release,
    as the site lists it."""
    index = json.loads((hub / "index.json").read_text())
    found = [
        (uname, kernel["state"])
        for distro in index["distributions"].values()
        for release in distro["releases"].values()
        for arch in release["architectures"].values()
        for uname, kernel in arch["kernels"].items()
    ]
    for entry in index.get("unassigned", []):
        found.append((entry["path"].rsplit("/", 1)[1].removesuffix(".btf.tar.xz"), "archived"))
    return found


def with_optional_maps(index: dict[str, Any], distro: str, release: str, uname: str) -> str:
    """index.json text (revision 2) with provenance and modules maps for one x86_64 kernel."""
    arch = index["distributions"][distro]["releases"][release]["architectures"]["x86_64"]
    kernel = arch["kernels"][uname]
    # The package provenance records is the one the kernel's entry names, plus URL and format.
    package = {**PROVENANCE["package"], **kernel["package"]}
    provenance = {**PROVENANCE, "file_sha256": kernel["sha256"], "package": package}
    arch["provenance"] = {uname: provenance}
    arch["modules"] = {uname: MODULES}
    index["revision"] = 2
    return json.dumps(index, indent=2, sort_keys=True) + "\n"
