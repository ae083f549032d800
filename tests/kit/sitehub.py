"""The hub the coverage site's tests build their site from: the consumer hub, with real BTF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generator.btf.encode import encode_btf
from generator.demokit.elf import build_elf
from tests.consumerkit import build_consumer_hub

FIXTURE_BTF = "fixture.btf"  # beside the hub: what every archived file holds


def site_hub(work: Path) -> Path:
    """work/hub, every archived kernel holding the fixture ELF's BTF (work/fixture.btf)."""
    encode_btf(build_elf(work / "elf"), work / FIXTURE_BTF)
    return build_consumer_hub(work / "hub", (work / FIXTURE_BTF).read_bytes())


# What other features add to an architecture of index.json (issues 16 and 18),
# in the shapes the common brief gives; the site shows them when present.
PROVENANCE = {"builder": "btfhub 0.1.0", "pahole": "1.30", "package_sha256": "ab" * 32}
MODULES = {
    "path": "archive/ubuntu/20.04/x86_64/5.4.0-42-generic.modules.tar.xz",
    "size": 123456,
    "sha256": "cd" * 32,
    "modules": {
        "ext4": {"size": 10, "sha256": "01" * 32},
        "xfs": {"size": 20, "sha256": "02" * 32},
    },
    "absent": ["btrfs"],
}


def with_optional_maps(index: dict[str, Any], distro: str, release: str, uname: str) -> str:
    """index.json text with provenance and modules maps for one x86_64 kernel."""
    arch = index["distributions"][distro]["releases"][release]["architectures"]["x86_64"]
    arch["provenance"] = {uname: PROVENANCE}
    arch["modules"] = {uname: MODULES}
    return json.dumps(index, indent=2, sort_keys=True) + "\n"
