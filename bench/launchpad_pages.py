"""How many pages of getPublishedBinaries one Ubuntu series costs, per query strategy.

Fills the Launchpad stand-in (tests/kit/launchpad.py) with a realistic
model of Bionic's amd64 kernel publications, then lists them the way
generator/upstream/launchpad.py does (300 entries a page), with three query
strategies, and counts the page requests each makes:

- prefix: one query per pattern beginning, "linux-image-" (what the kind did first);
- series: one per release series and pattern beginning ("linux-image-4.15.0",
  "linux-image-unsigned-4.15.0", ... for Bionic and Bionic HWE);
- flavour: query_names(), one per wanted flavour, "-generic-dbgsym" ... (what it does now).

    .venv/bin/python bench/launchpad_pages.py [--json]

The model (stated, not measured on launchpad.net): each kernel build of a
signed flavour publishes four linux-image-* binaries (signed and unsigned
image, each with its -dbgsym), each first in -proposed then copied to
-updates (two publications), and one meta package (linux-image-<flavour>)
per build and pocket. Builds: the ABI ranges below, one build per ABI.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

# The repository root, for tests.kit.launchpad (test machinery kept out of the package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.model import Repository
from generator.upstream.http import UpstreamClient
from generator.upstream.launchpad import published_binaries, query_names
from generator.upstream.mirrors import Mirrors
from tests.kit.launchpad import LaunchpadStandIn

ROOT = Path(__file__).resolve().parent.parent
SERIES = "bionic"
# (kernel series, flavour, first ABI, last ABI): Bionic's GA, HWE and cloud kernels,
# the public hub's flavours and the others Launchpad publishes beside them.
BUILDS = [
    ("4.15.0", "generic", 20, 212),
    ("4.15.0", "lowlatency", 20, 212),
    ("4.18.0", "generic", 13, 25),
    ("4.18.0", "lowlatency", 13, 25),
    ("5.0.0", "generic", 15, 65),
    ("5.0.0", "lowlatency", 15, 65),
    ("5.3.0", "generic", 18, 76),
    ("5.3.0", "lowlatency", 18, 76),
    ("5.4.0", "generic", 37, 150),
    ("5.4.0", "lowlatency", 37, 150),
    ("4.15.0", "aws", 1007, 1160),
    ("5.4.0", "aws", 1018, 1103),
    ("4.15.0", "azure", 1008, 1168),
    ("5.4.0", "azure", 1020, 1109),
    ("4.15.0", "gcp", 1010, 1153),
    ("5.4.0", "gcp", 1019, 1109),
    ("4.15.0", "gke", 1015, 1077),
    ("5.4.0", "gke", 1018, 1095),
    ("5.4.0", "gkeop", 1001, 1055),
    ("4.15.0", "kvm", 1008, 1110),
    ("4.15.0", "oem", 1003, 1103),
    ("4.15.0", "oracle", 1007, 1080),
    ("5.4.0", "oracle", 1011, 1090),
]
RELEASE_SERIES = ["4.15.0", "4.18.0", "5.0.0", "5.3.0", "5.4.0"]  # Bionic, Bionic HWE
REPO = Repository(
    "launchpad",
    "launchpad",
    "https://api.launchpad.net/1.0/ubuntu/+archive/primary",
    packages=("linux-image-unsigned-{uname}-dbgsym", "linux-image-{uname}-dbgsym"),
    flavours=("generic", "aws", "azure", "gcp", "gke", "gkeop"),
    unsigned=True,
)


def populate(lp: LaunchpadStandIn, blob: Path) -> int:
    for series, flavour, first, last in BUILDS:
        for abi in range(first, last + 1):
            uname = f"{series}-{abi}-{flavour}"
            version = f"{series}-{abi}.{abi + 1}"
            names = [
                f"linux-image-{uname}",
                f"linux-image-unsigned-{uname}",
                f"linux-image-{uname}-dbgsym",
                f"linux-image-unsigned-{uname}-dbgsym",
                f"linux-image-{flavour}",  # the meta package
            ]
            for _pocket in ("proposed", "updates"):
                for name in names:
                    lp.publish(blob, name, version, SERIES, status="Superseded")
    return len(lp.publications)


def strategies() -> dict[str, list[str]]:
    begins = ["linux-image-", "linux-image-unsigned-"]
    return {
        "prefix": ["linux-image-"],
        "series": [f"{b}{s}" for s in RELEASE_SERIES for b in begins],
        "flavour": query_names(REPO, "amd64"),
    }


def measure(work: Path) -> dict[str, object]:
    blob = work / "blob.ddeb"
    blob.write_bytes(b"not read: only pages are counted\n")
    results: dict[str, object] = {}
    with LaunchpadStandIn() as lp:
        total = populate(lp, blob)
        mirrors = Mirrors.parse(lp.mirror_pairs())
        with UpstreamClient(mirrors=mirrors, cache_dir=None) as client:
            for name, queries in strategies().items():
                before = len(lp.requests_for("getPublishedBinaries"))
                entries = sum(
                    len(published_binaries(client, REPO, SERIES, "amd64", q)) for q in queries
                )
                pages = len(lp.requests_for("getPublishedBinaries")) - before
                results[name] = {"queries": len(queries), "pages": pages, "entries": entries}
    return {"publications": total, "series": SERIES, "strategies": results}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="btfhub-lp-pages-") as tmp:
        result = measure(Path(tmp))
    if args.json:
        print(json.dumps(result, sort_keys=True, indent=2))
        return 0
    print(f"{result['publications']} linux-image-* publications in {SERIES}/amd64")
    strategies_found = result["strategies"]
    assert isinstance(strategies_found, dict)
    for name, r in strategies_found.items():
        print(
            f"{name:<8} {r['queries']:>3} queries {r['pages']:>4} pages {r['entries']:>6} entries"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
