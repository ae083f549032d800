"""Listings kept from run to run while upstream confirms their roots (upstream/sourcememo.py).

Against the real mirror server on 127.0.0.1: an rpm-md repository of
index-only entries (discovery never opens a package), its repomd.xml
revalidated with the ETag and Last-Modified the server sent.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from generator.demokit.mirror import RpmPackage, write_rpmmd_repo
from generator.demokit.signing import default_signer
from generator.errors import BtfhubError
from generator.model import KernelPackage, Repository, Source
from generator.trust import TrustPolicy
from generator.upstream.context import UpstreamContext
from generator.upstream.discover import SourceListings
from generator.upstream.http import UpstreamClient
from generator.upstream.mirrors import Mirrors
from generator.upstream.sourcememo import FILE_NAME, IndexRead, SourceMemo, memo_key
from tests.kit.corrupt import DAMAGED_BYTES
from tests.kit.mirror import FaultyMirror

UPSTREAM = "http://debuginfo.example.org/"
SOURCE = Source("el", paths=("",))
REPOMD = "/el/x86_64/repodata/repomd.xml"


def _repo(**kw: Any) -> Repository:
    fields: dict[str, Any] = {
        "id": "el",
        "kind": "rpm-md",
        "url": UPSTREAM + "el/{arch}/",
        "packages": ("kernel-debuginfo",),
    }
    fields.update(kw)
    return Repository(**fields)


def _publish(server: FaultyMirror, releases: list[str]) -> Path:
    """An rpm-md tree listing kernel-debuginfo 3.10.0-<release> entries (no package bytes)."""
    decoys = server.directory / "decoys"
    decoys.mkdir(parents=True, exist_ok=True)
    entries = []
    for release in releases:
        path = decoys / f"kernel-debuginfo-3.10.0-{release}.x86_64.rpm"
        path.write_bytes(f"decoy {release}\n".encode())
        entries.append(RpmPackage(path, "kernel-debuginfo", "3.10.0", release, "x86_64"))
    return write_rpmmd_repo(server.directory / "el/x86_64", entries)


def _list(
    tmp_path: Path, server: FaultyMirror, repo: Repository | None = None
) -> tuple[list[KernelPackage], UpstreamClient]:
    """One run's listing of the source (a fresh client and memo, the same cache directory)."""
    mirrors = Mirrors.parse([f"{UPSTREAM}={server.url}"])
    client = UpstreamClient(mirrors=mirrors, cache_dir=tmp_path / "cache", backoff=0.0)
    with UpstreamContext.of(client, TrustPolicy.from_sources()) as upstream:
        try:
            return SourceListings(upstream).source(repo or _repo(), SOURCE, "x86_64"), client
        finally:
            assert upstream.memo is not None
            upstream.memo.save()  # as discover_all does at its end


def _requests(server: FaultyMirror) -> list[tuple[str, int]]:
    return [(r.path, r.status) for r in server.log]


def _memo_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / FILE_NAME


def _drop_index_cache(tmp_path: Path) -> None:
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file() and path.name != FILE_NAME:
            path.unlink()


def test_a_kept_listing_costs_one_conditional_request_per_root(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    _publish(mirror_server, ["123.el7", "1160.el7"])
    first, client = _list(tmp_path, mirror_server)
    assert [p.uname for p in first] == ["3.10.0-1160.el7.x86_64", "3.10.0-123.el7.x86_64"]
    assert client.stats.source_hits == 0
    entries = json.loads(_memo_file(tmp_path).read_text())["entries"]
    ((entry),) = entries.values()
    # The roots: repomd.xml and the signature it does not have (the primary follows from them).
    assert [(r["url"].removeprefix(UPSTREAM), r["sha256"] is None) for r in entry["reads"]] == [
        ("el/x86_64/repodata/repomd.xml", False),
        ("el/x86_64/repodata/repomd.xml.asc", True),
    ]
    # Nothing else of the cache is needed: the kept listing stands on the server's word.
    _drop_index_cache(tmp_path)
    mirror_server.clear_log()
    again, client = _list(tmp_path, mirror_server)
    assert again == first
    assert _requests(mirror_server) == [(REPOMD, 304), (REPOMD + ".asc", 404)]
    stats = client.stats
    assert (stats.source_hits, stats.index_bytes, stats.listing_hits) == (1, 0, 0)
    # No index fetched, parsed or kept: the cache holds the memo alone.
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [FILE_NAME]


def test_a_new_kernel_upstream_lists_the_source_again(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    _publish(mirror_server, ["123.el7"])
    _list(tmp_path, mirror_server)
    repomd = _publish(mirror_server, ["123.el7", "1160.el7"]) / "repodata/repomd.xml"
    os.utime(repomd, ns=(1, 1))  # a distinct ETag, whatever the clock's resolution
    found, client = _list(tmp_path, mirror_server)
    assert [p.uname for p in found] == ["3.10.0-1160.el7.x86_64", "3.10.0-123.el7.x86_64"]
    assert client.stats.source_hits == 0
    # The new listing is kept in turn.
    again, client = _list(tmp_path, mirror_server)
    assert (again, client.stats.source_hits) == (found, 1)


def test_the_same_bytes_under_a_new_etag_keep_the_listing(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    repomd = _publish(mirror_server, ["123.el7"]) / "repodata/repomd.xml"
    first, _ = _list(tmp_path, mirror_server)
    os.utime(repomd, ns=(1, 1))  # a mirror resynced: same file, new ETag and date
    mirror_server.clear_log()
    again, client = _list(tmp_path, mirror_server)
    assert (again, client.stats.source_hits) == (first, 1)
    assert _requests(mirror_server)[0] == (REPOMD, 200)
    # The entry now holds the new validators: the next run gets its 304.
    mirror_server.clear_log()
    _list(tmp_path, mirror_server)
    assert _requests(mirror_server)[0] == (REPOMD, 304)


def test_a_signature_that_appears_is_checked_and_the_listing_no_longer_kept(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    root = _publish(mirror_server, ["123.el7"])
    first, _ = _list(tmp_path, mirror_server)
    assert first[0].signed_index is None
    default_signer().sign_detached(root / "repodata/repomd.xml")
    for _ in range(2):  # and on every run after
        found, client = _list(tmp_path, mirror_server)
        assert found[0].signed_index is not None
        assert found[0].signed_index.url == UPSTREAM + "el/x86_64/repodata/repomd.xml"
        assert client.stats.source_hits == 0
        assert json.loads(_memo_file(tmp_path).read_text())["entries"] == {}


def test_an_unsigned_repository_and_a_signed_one_never_share_an_entry(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    _publish(mirror_server, ["123.el7"])
    _list(tmp_path, mirror_server, _repo(unsigned=True))
    found, client = _list(tmp_path, mirror_server)  # the same tree, signatures now looked for
    assert client.stats.source_hits == 0
    assert len(json.loads(_memo_file(tmp_path).read_text())["entries"]) == 2
    # unsigned: .asc is never asked for, so it is no root of that listing.
    mirror_server.clear_log()
    assert _list(tmp_path, mirror_server, _repo(unsigned=True))[0] == found
    assert _requests(mirror_server) == [(REPOMD, 304)]


def test_a_failure_is_not_kept_and_a_down_server_fails_a_kept_source(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    mirror_server.fail(REPOMD, 500, times=None)
    with pytest.raises(BtfhubError, match="HTTP 500"):
        _list(tmp_path, mirror_server)
    assert not _memo_file(tmp_path).exists()
    mirror_server.clear_faults()
    _publish(mirror_server, ["123.el7"])
    _list(tmp_path, mirror_server)
    # A kept listing is not served past an upstream that is down: the run reports it.
    mirror_server.fail(REPOMD, 503, times=None)
    with pytest.raises(BtfhubError, match="HTTP 503"):
        _list(tmp_path, mirror_server)


def test_a_tree_that_moved_is_kept_with_both_answers(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    (mirror_server.directory / "el").mkdir(parents=True)
    moved = _repo(url=UPSTREAM + "gone/{arch}/", moved_to=UPSTREAM + "el/{arch}/")
    _publish(mirror_server, ["123.el7"])
    first, _ = _list(tmp_path, mirror_server, moved)
    mirror_server.clear_log()
    again, client = _list(tmp_path, mirror_server, moved)
    assert (again, client.stats.source_hits) == (first, 1)
    assert _requests(mirror_server) == [
        ("/gone/x86_64/repodata/repomd.xml", 404),
        (REPOMD, 304),
        (REPOMD + ".asc", 404),
    ]
    # The old tree back: its answer changed, so the source is listed again, from there.
    (mirror_server.directory / "gone").symlink_to(mirror_server.directory / "el")
    found, client = _list(tmp_path, mirror_server, moved)
    assert client.stats.source_hits == 0
    assert found[0].url.startswith(UPSTREAM + "gone/")


def _mangle_uname(document: dict[str, Any]) -> None:
    (entry,) = document["entries"].values()
    entry["packages"][0]["uname"] = "../../../etc/evil"


def _mangle_parser(document: dict[str, Any]) -> None:
    document["parser"] = "0" * 64  # written by other listers' code


def _mangle_read(document: dict[str, Any]) -> None:
    (entry,) = document["entries"].values()
    del entry["reads"][0]["etag"]


@pytest.mark.parametrize(
    "corrupt",
    [
        *DAMAGED_BYTES,
        _mangle_uname,
        _mangle_parser,
        _mangle_read,
    ],
)
def test_a_corrupt_memo_is_ignored_and_rewritten(
    tmp_path: Path, mirror_server: FaultyMirror, corrupt: Callable[[Any], Any]
) -> None:
    _publish(mirror_server, ["123.el7"])
    first, _ = _list(tmp_path, mirror_server)
    memo = _memo_file(tmp_path)
    if corrupt in (_mangle_uname, _mangle_parser, _mangle_read):
        document = json.loads(memo.read_bytes())
        corrupt(document)
        memo.write_text(json.dumps(document))
    else:
        memo.write_bytes(corrupt(memo.read_bytes()))
    found, client = _list(tmp_path, mirror_server)
    assert (found, client.stats.source_hits) == (first, 0)
    assert _list(tmp_path, mirror_server)[1].stats.source_hits == 1  # rewritten whole


def test_the_key_covers_every_input_of_a_listing() -> None:
    base = memo_key(_repo(), SOURCE, "x86_64", "")
    others = [
        memo_key(_repo(packages=("kernel-debuginfo", "kernel-rt-debuginfo")), SOURCE, "x86_64", ""),
        memo_key(_repo(url=UPSTREAM + "other/{arch}/"), SOURCE, "x86_64", ""),
        memo_key(_repo(), Source("el", paths=("", "updates/")), "x86_64", ""),
        memo_key(_repo(), SOURCE, "arm64", ""),
        memo_key(_repo(), SOURCE, "x86_64", "Keyring(files=(PosixPath('/k.asc'),), sha1=False)"),
    ]
    assert len({base, *others}) == 1 + len(others)
    assert memo_key(_repo(), SOURCE, "x86_64", "") == base


def test_entries_unused_for_thirty_days_are_dropped(tmp_path: Path) -> None:
    package = KernelPackage(
        "3.10.0-123.el7.x86_64", "x86_64", "kernel-debuginfo", "3.10.0-123.el7",
        "http://h/k.rpm", 1, "0" * 64, "el", "k.rpm", "rpm",
    )  # fmt: skip
    read = IndexRead("http://h/repodata/repomd.xml", "1" * 64, '"e"', None)
    day = datetime.date(2026, 1, 1)
    old = SourceMemo(tmp_path, today=day)
    old.record("a" * 64, [read], [package], keyring=False)
    old.record("b" * 64, [read], [package], keyring=False)
    old.save()
    later = SourceMemo(tmp_path, today=day + datetime.timedelta(days=31))
    assert later.replay("b" * 64, lambda r: r) == [package]  # used again: kept on
    later.record("c" * 64, [read], [], keyring=False)  # empty and unsigned: kept
    later.record("d" * 64, [read], [], keyring=True)  # empty with a keyring: never
    later.save()
    last = SourceMemo(tmp_path, today=day + datetime.timedelta(days=31))
    # "a", unused since day 1, went when the file was written 31 days on.
    assert last.replay("a" * 64, lambda r: r) is None
    assert last.replay("b" * 64, lambda r: r) == [package]
    assert last.replay("c" * 64, lambda r: r) == []
    assert last.replay("d" * 64, lambda r: r) is None
    assert last.replay("b" * 64, lambda r: None) is None  # a root that changed
