"""Repository kinds: one record each (generator/kinds/), one registry.

The committed manifest schema is what the records make of it; every record's
lister and completer exist; and a kind registered by a test (a module's
record plus one registry line, here the test's own) is validated, planned
and listed from a real HTTP server like a shipped one.
"""

from __future__ import annotations

import inspect
import json
import pkgutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urljoin

import pytest

from generator.cli import main
from generator.kinds import registry, schema
from generator.kinds.base import RPM_ARCHES, TREE_KEYS, Finding, RepositoryKind
from generator.model import KernelPackage, Repository, Source
from generator.upstream.context import UpstreamContext
from generator.upstream.discover import Completer, Lister
from generator.upstream.http import UpstreamIndexError
from generator.upstream.listers import UNAME_RE, repo_root
from generator.validation import load_schema
from tests.kit.hub import btfhub
from tests.kit.mirror import FaultyMirror

REPO = Path(__file__).resolve().parent.parent


def test_the_committed_manifest_schema_is_current() -> None:
    committed = (REPO / "generator" / schema.SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == schema.render(), (
        "generator/schemas/manifest.schema.json is stale: run `python -m generator.kinds.schema`"
    )


def test_every_kind_names_a_lister_and_completer_that_exist() -> None:
    assert [k.name for k in registry.KINDS] == ["apt", "rpm-md", "launchpad", "html-listing"]
    # As many parameters as discovery passes (discover.Lister, discover.Completer).
    for kind in registry.KINDS:
        lister = pkgutil.resolve_name(kind.lister)
        assert len(inspect.signature(lister).parameters) == len(get_args(Lister)[0])
        if kind.completer is not None:
            completer = pkgutil.resolve_name(kind.completer)
            assert len(inspect.signature(completer).parameters) == len(get_args(Completer)[0])
    assert [k.name for k in registry.KINDS if k.completer] == ["launchpad"]


def test_the_schema_says_which_kinds_have_a_key() -> None:
    props = load_schema()["$defs"]["repository"]["properties"]
    assert props["kind"]["enum"] == ["apt", "rpm-md", "launchpad", "html-listing"]
    assert props["flavours"]["description"].startswith("apt and launchpad only: ")
    assert props["moved_to"]["description"].startswith("apt, rpm-md and html-listing only: ")
    assert props["mirrorlist"]["description"].startswith("rpm-md only: ")
    assert "launchpad only" not in json.dumps(props["id"])


def test_two_kinds_giving_one_key_different_schemas_are_refused() -> None:
    other = RepositoryKind(
        **{**_fields(registry.KINDS[0]), "name": "other", "keys": {"keyring": {"type": "integer"}}}
    )
    with pytest.raises(schema.KindsDisagree, match="apt and other give 'keyring'"):
        schema.with_kinds(load_schema(), (*registry.KINDS, other))


def _fields(kind: RepositoryKind) -> dict[str, Any]:
    return {name: getattr(kind, name) for name in inspect.signature(RepositoryKind).parameters}


# -- a kind of the test's own: its record, its lister, one registry line -----------------


def toy_lister(
    upstream: UpstreamContext, repo: Repository, source: Source, arch: str
) -> list[KernelPackage]:
    """A toy index: <path>/<channel>.list, one '<filename> <uname> <size> <sha256>' a line."""
    found = []
    for path in source.paths:
        root = repo_root(repo, arch, path)
        url = urljoin(root, f"{repo.option('channel', 'stable')}.list")
        for line in upstream.client.get_index(url).decode().splitlines():
            filename, uname, size, sha256 = line.split()
            if not UNAME_RE.match(uname):
                raise UpstreamIndexError(f"{url}: bad uname {uname!r}", url)
            package = KernelPackage(
                uname=uname,
                arch=arch,
                name="kernel-debuginfo",
                version=uname,
                url=urljoin(root, filename),
                size=int(size),
                sha256=sha256,
                repository=repo.id,
                filename=filename,
                format="rpm",
            )
            found.append(package)
    return sorted(found, key=lambda p: p.uname)


def toy_rules(repo: Mapping[str, Any]) -> Iterator[Finding]:
    if repo.get("channel") == "nightly":
        yield Finding(("channel",), "toy repositories have no nightly channel")


TOY = RepositoryKind(
    name="toy",
    summary="a text file of kernels per channel",
    arches=RPM_ARCHES,
    source_key="paths",
    source_doc="directories holding <channel>.list",
    packages_doc="exact package names",
    patterns=False,
    lister=f"{__name__}:toy_lister",
    keys={
        **TREE_KEYS,
        "channel": {"description": "the list to read (default stable).", "type": "string"},
    },
    rules=toy_rules,
)


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one line that registers a kind, for this test."""
    monkeypatch.setattr(registry, "KINDS", (*registry.KINDS, TOY))


TOY_MANIFEST = """\
# yaml-language-server: $schema=../schemas/manifest.schema.json
title: Toy
archive_dir: toy
directory: "1"
architectures: [x86_64]
columns:
  - {header: Release, field: name}
repositories:
  - id: toys
    kind: toy
    url: http://toy.example/{arch}/
    packages: [kernel-debuginfo]
    unsigned: true
    channel: %s
releases:
  - name: One
    kernel: "6.1"
    hub: true
    sources:
      - {repository: toys, paths: [""]}
"""

SHA = "ab" * 32


def toy_hub(tmp_path: Path, channel: str, extra: str = "") -> Path:
    hub = tmp_path / "hub"
    (hub / "catalog").mkdir(parents=True, exist_ok=True)
    (hub / "catalog" / "toy.yaml").write_text(TOY_MANIFEST % channel + extra)
    return hub


def test_a_kind_not_registered_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = toy_hub(tmp_path, "edge")

    assert main(["validate", "--root", str(hub)]) == 1

    assert capsys.readouterr().out.splitlines()[0] == (
        "catalog/toy.yaml:10:11: repositories[0].kind: unknown repository kind 'toy' "
        "(expected one of: apt, rpm-md, launchpad, html-listing)"
    )


APT_WITH_CHANNEL = """\
  - id: deb
    kind: apt
    url: http://deb.example/
    packages: ["linux-{uname}"]
    unsigned: true
    channel: edge
"""
BAD_SOURCES = """\
  - name: Two
    kernel: "6.2"
    sources:
      - {repository: toys, suites: [two]}
      - {repository: deb, paths: [x]}
"""


def test_a_registered_kind_is_validated_by_its_record(
    toy_registered: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--root", str(toy_hub(tmp_path, "edge"))]) == 0
    capsys.readouterr()
    hub = toy_hub(tmp_path, "nightly", BAD_SOURCES)
    catalog = hub / "catalog" / "toy.yaml"
    catalog.write_text(catalog.read_text().replace("releases:\n", APT_WITH_CHANNEL + "releases:\n"))

    assert main(["validate", "--root", str(hub)]) == 1

    assert capsys.readouterr().out.splitlines() == [
        "catalog/toy.yaml:14:14: repositories[0].channel: toy repositories have no nightly channel",
        "catalog/toy.yaml:20:5: repositories[1].channel: only toy repositories have this key",
        "catalog/toy.yaml:30:9: releases[1].sources[0]: repository 'toys' is toy: "
        "the source needs paths",
        "catalog/toy.yaml:30:28: releases[1].sources[0].suites: "
        "repository 'toys' is toy: it has no suites",
        "catalog/toy.yaml:31:9: releases[1].sources[1]: repository 'deb' is apt: "
        "the source needs suites",
        "catalog/toy.yaml:31:27: releases[1].sources[1].paths: "
        "repository 'deb' is apt: it has no paths",
    ]


def test_a_registered_kind_is_planned_from_what_its_lister_reads(
    toy_registered: None,
    tmp_path: Path,
    mirror_server: FaultyMirror,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub = toy_hub(tmp_path, "edge")
    tree = mirror_server.directory / "toy" / "x86_64"
    tree.mkdir(parents=True)
    (tree / "edge.list").write_text(
        f"k-6.1.9.rpm 6.1.9-1.x86_64 123 {SHA}\nk-6.2.rpm 6.2.0-1.x86_64 9 {SHA}\n"
    )
    (tree / "stable.list").write_text(f"k-6.1.1.rpm 6.1.1-1.x86_64 1 {SHA}\n")
    mirror = ("--mirror", f"http://toy.example/={mirror_server.url}toy/")

    plan = btfhub(capsys, hub, "plan", *mirror, "--json")

    assert plan.code == 0, plan.err
    doc = json.loads(plan.out)
    assert doc["errors"] == []
    # Its own key (channel) chose the list; the release's series kept 6.1 only.
    (kernel,) = doc["kernels"]
    assert (kernel["uname"], kernel["state"], kernel["archive_path"]) == (
        "6.1.9-1.x86_64",
        "missing",
        "archive/toy/1/x86_64/6.1.9-1.x86_64.btf.tar.xz",
    )
    assert (kernel["package"]["url"], kernel["package"]["size"]) == (
        "http://toy.example/x86_64/k-6.1.9.rpm",
        123,
    )
