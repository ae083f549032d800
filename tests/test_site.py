"""`btfhub site`: the files it writes, from a local or served index.json, and its refusals.

What the page does in a browser is tests/test_site_browser.py's; here, the
command and its data: the same inputs give the same bytes, the links and
commands name the index readers use, bad input leaves the output as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.consumer.hostmap import HOST_RULES_FILE, load_host_rules
from generator.consumer.hubindex import HubIndex
from generator.model import KernelState
from generator.site.data import Coverage, build_site_data
from generator.site.extras import (
    LEGACY,
    RECORDED,
    Shared,
    kernel_extras,
    modules_extra,
    provenance_extra,
    voucher_words,
)
from generator.site.output import hub_links
from generator.site.page import DATA_GLOBAL, note_html
from tests.kit.consumer import copy_consumer_hub
from tests.kit.hub import btfhub, tree_digest
from tests.kit.mirror import FaultyMirror
from tests.kit.sitehub import MODULES, PROVENANCE, index_kernels, with_optional_maps

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, consumer_template: Path) -> Path:
    return copy_consumer_hub(consumer_template, tmp_path_factory.mktemp("site-hub"))


@pytest.fixture
def served(hub: Path) -> Iterator[FaultyMirror]:
    with FaultyMirror(hub) as server:
        yield server


def site_document(output: Path) -> dict[str, Any]:
    """What data.js hands the page (it is `window.X = JSON.parse("<json>");`)."""
    first = (output / "data.js").read_text().split("\n", 1)[0]
    prefix = f"window.{DATA_GLOBAL} = JSON.parse("
    assert first.startswith(prefix) and first.endswith(");")
    document: dict[str, Any] = json.loads(json.loads(first[len(prefix) : -2]))
    return document


def kernel_rows(document: dict[str, Any]) -> dict[str, list[Any]]:
    return {row[1]: row for row in document["kernels"]}


def test_the_same_inputs_give_the_same_bytes(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path
) -> None:
    first = btfhub(capsys, hub, "site", "--output", str(tmp_path / "a"))
    assert first.code == 0, first.err
    manifests = len(list((hub / "catalog").glob("*.yaml")))
    expected = f"{len(index_kernels(hub))} kernel(s) of {manifests} distribution(s), 4 files"
    assert expected in first.out
    assert btfhub(capsys, hub, "site", "--output", str(tmp_path / "b")).code == 0
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "data.js", "index.html", "site.css", "site.js",
    ]  # fmt: skip
    again = btfhub(capsys, hub, "site", "--output", str(tmp_path / "a"))
    assert again.out.count("(unchanged)") == 4 and "(wrote)" not in again.out


def test_the_data_holds_every_kernel_its_state_and_the_host_rules(
    capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path
) -> None:
    assert btfhub(capsys, hub, "site", "--output", str(tmp_path / "site")).code == 0
    document = site_document(tmp_path / "site")
    rows = kernel_rows(document)
    index = json.loads((hub / "index.json").read_text())
    focal = index["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"]
    archived = focal["kernels"]["5.4.0-42-generic"]
    assert rows["5.4.0-42-generic"][2:5] == ["archived", archived["size"], archived["sha256"]]
    failed = rows["5.4.0-99-generic"]
    assert failed[2] == "failed" and failed[5].startswith("package holds no vmlinux")
    assert rows["5.13.0-52-generic"][2] == "ships-btf"
    assert rows["5.4.0-100-generic"][2] == "missing"
    # The file in no catalog release is searchable under its own directory.
    slot = document["slots"][rows["6.5.0-1.fc31.x86_64"][0]]
    assert slot == [-1, -1, "x86_64", "fedora", "31"]
    # The rules are the catalog's file, as data for the page's interpreter.
    rules = load_host_rules(hub / HOST_RULES_FILE)
    assert document["rules"]["architectures"] == dict(rules.architectures)
    assert [d["id"] for d in document["rules"]["distributions"]] == [
        d.id for d in rules.distributions
    ]
    # A local index: readers' commands name it by its absolute path, links go to the checkout.
    assert document["links"] == {
        "index": str((hub / "index.json").resolve()),
        "base_url": None,
        "download": hub.resolve().as_uri() + "/",
    }
    page = (tmp_path / "site" / "index.html").read_text()
    # The search's scripts come before the overview: it answers before a large one is parsed.
    assert page.index('<script src="data.js"></script>') < page.index('<script src="site.js">')
    assert page.index('<script src="site.js">') < page.index('id="coverage"')
    loads = re.findall(r'<(?:script|img|iframe)[^>]*src="([^"]*)"|<link[^>]*href="([^"]*)"', page)
    assert sorted(filter(None, sum(loads, ()))) == ["data.js", "site.css", "site.js"]


def test_a_served_index_and_the_urls_readers_use(
    capsys: pytest.CaptureFixture[str], hub: Path, served: FaultyMirror, tmp_path: Path
) -> None:
    index_url = f"{served.url}index.json"
    run = btfhub(capsys, tmp_path, "site", "--index", index_url, "--output", str(tmp_path / "s"))
    # --root is tmp_path: no catalog there, and nothing downloaded.
    assert run.code == 1 and "no manifests found" in run.err and served.log == []
    run = btfhub(capsys, hub, "site", "--index", index_url, "--output", str(tmp_path / "s"))
    assert run.code == 0, run.err
    assert [r.path for r in served.log] == ["/index.json"]
    links = site_document(tmp_path / "s")["links"]
    assert links == {"index": index_url, "base_url": None, "download": served.url}
    mirror = "https://mirror.example/hub/"
    run = btfhub(capsys, hub, "site", "--index", index_url, "--base-url", mirror,
                 "--output", str(tmp_path / "s"))  # fmt: skip
    assert run.code == 0, run.err
    links = site_document(tmp_path / "s")["links"]
    assert links == {"index": index_url, "base_url": mirror, "download": mirror}
    # The pages workflow: built from the checkout, naming the published index.
    published = "https://raw.githubusercontent.com/org/hub/main/index.json"
    run = btfhub(capsys, hub, "site", "--index-url", published, "--output", str(tmp_path / "s"))
    links = site_document(tmp_path / "s")["links"]
    assert links == {
        "index": published,
        "base_url": None,
        "download": "https://raw.githubusercontent.com/org/hub/main/",
    }


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda index: index.update(schema_version=7), "schema_version"),
        (lambda index: index["distributions"]["ubuntu"]["releases"].pop("focal"),
         "index.json has no release focal of ubuntu"),
    ],
)  # fmt: skip
def test_a_damaged_or_foreign_index_leaves_the_output_as_it_was(
    capsys: pytest.CaptureFixture[str],
    hub: Path,
    tmp_path: Path,
    damage: Any,
    message: str,
) -> None:
    output = tmp_path / "site"
    assert btfhub(capsys, hub, "site", "--output", str(output)).code == 0
    before = tree_digest(output)
    index = json.loads((hub / "index.json").read_text())
    damage(index)
    bad = tmp_path / "index.json"
    bad.write_text(json.dumps(index))
    run = btfhub(capsys, hub, "site", "--index", str(bad), "--output", str(output))
    assert run.code == 1 and message in run.err
    assert tree_digest(output) == before


def test_refusals(capsys: pytest.CaptureFixture[str], hub: Path, tmp_path: Path) -> None:
    run = btfhub(capsys, hub, "site", "--index", str(tmp_path / "none.json"),
                 "--output", str(tmp_path / "site"))  # fmt: skip
    assert run.code == 1 and "no such index" in run.err
    assert not (tmp_path / "site").exists()
    (tmp_path / "file").write_text("x")
    run = btfhub(capsys, hub, "site", "--output", str(tmp_path / "file"))
    assert run.code == 1 and "not a directory" in run.err


def test_optional_maps_of_other_features_reach_the_page(hub: Path, tmp_path: Path) -> None:
    from generator.catalog import load_catalog

    index = json.loads(with_optional_maps(
        json.loads((hub / "index.json").read_text()), "ubuntu", "focal", "5.4.0-42-generic"
    ))  # fmt: skip
    source = HubIndex(index, str(hub / "index.json"), None, hub)
    data = build_site_data(
        load_catalog(hub),
        index,
        load_host_rules(hub / HOST_RULES_FILE),
        hub_links(source, None),
    )
    rows = {row[1]: row for row in data.script["kernels"]}
    # Render recorded every other archived file as legacy (built before provenance);
    # only that kernel has a recorded entry, and modules: [... built from, provenance, modules].
    extra = {uname: row[7:] for uname, row in rows.items() if len(row) > 7}
    # (The file in no catalog release has no architecture entry to carry any.)
    archived = {u for u, row in rows.items() if row[2] == "archived"} - {"6.5.0-1.fc31.x86_64"}
    assert set(extra) == archived
    assert all(extra[u] == [[LEGACY, None]] for u in archived - {"5.4.0-42-generic"})
    shared = data.script["shared"]
    package = index["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"][
        "provenance"
    ]["5.4.0-42-generic"]["package"]
    provenance, modules = rows["5.4.0-42-generic"][7:]
    url = PROVENANCE["package"]["url"]
    base, rest = url.rsplit("/", 1)
    assert provenance[:2] == [RECORDED, None]  # it describes the archived bytes
    assert [shared[provenance[2]], *provenance[3:7]] == [
        base + "/",
        rest,
        package["size"],
        package["sha256"],
        "deb",
    ]
    assert shared[provenance[7]] == (
        "the signed index https://ddebs.example/dists/focal-updates/InRelease "
        "(key F2EDC64DC5AEE1F6B9C621F0C8CAB6595FDFF622)"
    )
    assert shared[provenance[8]] == (
        "pahole 1.30 -j2 --btf_encode_detached={btf} {vmlinux}; btfhub 0.1.0"
    )
    assert modules[:3] == [MODULES["path"], MODULES["size"], MODULES["sha256"]]
    assert (shared[modules[3]], shared[modules[4]]) == (["ext4", "xfs"], ["btrfs"])


def test_provenance_in_its_other_shapes_and_what_many_kernels_share_stored_once() -> None:
    shared = Shared()
    legacy = provenance_extra({"legacy": True, "file_sha256": "aa" * 32}, "aa" * 32, shared)
    assert legacy == [LEGACY, None]
    stale = provenance_extra({"legacy": True, "file_sha256": "bb" * 32}, "aa" * 32, shared)
    assert stale == [LEGACY, "bb" * 32]
    assert voucher_words({"unsigned": True}).startswith("nothing: its repository is marked")
    both = voucher_words(
        {"signed_index": {"url": "https://x/repomd.xml", "keys": ["A", "B"]},
         "rpm_header": {"keys": ["C"]}}
    )  # fmt: skip
    assert both == (
        "the signed index https://x/repomd.xml (keys A, B); the package's signed RPM header (key C)"
    )
    # Two kernels of one release: the URL's directory and the words, stored once.
    entry = {**PROVENANCE, "file_sha256": "aa" * 32}
    first = provenance_extra(entry, "aa" * 32, shared)
    second = provenance_extra(entry, "aa" * 32, shared)
    assert first is not None and first == second
    assert len(shared.values) == 3
    # What the site does not recognise is skipped, not an error.
    assert provenance_extra("a string", "aa" * 32, shared) is None
    assert modules_extra([], shared) is None
    assert kernel_extras({"provenance": {"other": entry}}, "5.4.0-42-generic", None, shared) == []
    modules_only = kernel_extras({"modules": {"k": MODULES}}, "k", None, shared)
    assert modules_only[0] is None and modules_only[1][0] == MODULES["path"]
    assert len(modules_only[1]) == 5  # nothing failed
    # A modules build that failed: why, after the file (None when there is none).
    failed = modules_extra({"failed": {"reason": "HTTP 404"}}, shared)
    assert failed is not None and failed[0] is None and failed[5] == "HTTP 404"
    both = modules_extra({**MODULES, "failed": {"reason": "HTTP 500"}}, shared)
    assert both is not None and both[0] == MODULES["path"] and both[5] == "HTTP 500"


def test_notes_are_markdown_with_raw_html_escaped() -> None:
    html = note_html(
        "**Note**: see [HERE](https://example.org) and `x`\n\n<script>alert(1)</script>"
    )
    assert "<strong>Note</strong>" in html and '<a href="https://example.org">HERE</a>' in html
    assert "<code>x</code>" in html and "<script>" not in html and "&lt;script&gt;" in html


def test_a_coverage_bar_is_where_each_state_ends() -> None:
    counts = ((KernelState.ARCHIVED, 2), (KernelState.FAILED, 1), (KernelState.SHIPS_BTF, 3))
    bar = Coverage("x86_64", counts, 6, "").bar_style
    # site.css paints each state from the previous end to its own; a state with none is empty.
    assert bar == "--a:33.33%;--f:50%;--m:50%;--s:100%"
