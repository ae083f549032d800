"""A repository's tree that upstream moved (archive.debian.org): `moved_to`.

Debian moves a release's suites from deb.debian.org to archive.debian.org some
time after its end of life; the hub must keep reading the release's kernels
without a catalog edit on that day, yet must not mistake an upstream that is
down for one that moved.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.catalog import load_catalog
from generator.demokit.mirror import AptPackage, write_apt_repo
from generator.model import Repository, Source
from generator.trust import TrustPolicy
from generator.upstream.context import UpstreamContext
from generator.upstream.discover import SourceListings
from generator.upstream.http import UpstreamClient, UpstreamIndexError
from generator.upstream.mirrors import Mirrors
from tests.kit.debpkg import UBUNTU_PATTERNS, small_ddeb
from tests.kit.mirror import FaultyMirror

REPO = Path(__file__).resolve().parent.parent
CURRENT = "http://deb.example.org/debian/"
ARCHIVE = "http://archive.example.org/debian/"
SOURCE = Source("deb", suites=("bullseye",))


def _repo(moved_to: str | None = ARCHIVE) -> Repository:
    return Repository(
        id="deb",
        kind="apt",
        url=CURRENT,
        packages=UBUNTU_PATTERNS,
        flavours=("generic",),
        moved_to=moved_to,
    )


def _upstream(tmp_path: Path, server: FaultyMirror) -> UpstreamContext:
    mirrors = Mirrors.parse([f"{CURRENT}={server.url}current/", f"{ARCHIVE}={server.url}old/"])
    client = UpstreamClient(mirrors=mirrors, cache_dir=tmp_path / "cache", backoff=0.0)
    return UpstreamContext.of(client, TrustPolicy.from_sources())


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> AptPackage:
    base = tmp_path_factory.mktemp("moved")
    return small_ddeb(base, "linux-image-unsigned-5.10.0-9-generic-dbgsym", "5.10.0-9.1", "linux")


def test_a_tree_gone_from_its_url_is_read_where_it_moved(
    tmp_path: Path, mirror_server: FaultyMirror, kernel: AptPackage
) -> None:
    write_apt_repo(mirror_server.directory, "old", "bullseye", "main", "amd64", [kernel])
    with _upstream(tmp_path, mirror_server) as upstream:
        found = SourceListings(upstream).source(_repo(), SOURCE, "x86_64")
    assert [(p.uname, p.repository) for p in found] == [("5.10.0-9-generic", "deb")]
    # The package is fetched from the tree that listed it.
    assert found[0].url == ARCHIVE + found[0].filename
    paths = [r.path for r in mirror_server.log]
    assert paths[:2] == ["/current/dists/bullseye/InRelease", "/current/dists/bullseye/Release"]
    assert "/old/dists/bullseye/InRelease" in paths


def test_the_current_tree_is_preferred_while_it_is_there(
    tmp_path: Path, mirror_server: FaultyMirror, kernel: AptPackage
) -> None:
    write_apt_repo(mirror_server.directory, "current", "bullseye", "main", "amd64", [kernel])
    write_apt_repo(mirror_server.directory, "old", "bullseye", "main", "amd64", [kernel])
    with _upstream(tmp_path, mirror_server) as upstream:
        found = SourceListings(upstream).source(_repo(), SOURCE, "x86_64")
    assert found[0].url == CURRENT + found[0].filename
    assert not any(r.path.startswith("/old/") for r in mirror_server.log)


def test_an_upstream_that_is_down_is_not_taken_for_moved(
    tmp_path: Path, mirror_server: FaultyMirror, kernel: AptPackage
) -> None:
    write_apt_repo(mirror_server.directory, "old", "bullseye", "main", "amd64", [kernel])
    mirror_server.fail("/current/dists/bullseye/InRelease", status=503, times=None)
    with _upstream(tmp_path, mirror_server) as upstream, pytest.raises(UpstreamIndexError) as err:
        SourceListings(upstream).source(_repo(), SOURCE, "x86_64")
    assert "HTTP 503" in str(err.value)
    assert not any(r.path.startswith("/old/") for r in mirror_server.log)


def test_gone_from_both_names_both(tmp_path: Path, mirror_server: FaultyMirror) -> None:
    with _upstream(tmp_path, mirror_server) as upstream, pytest.raises(UpstreamIndexError) as err:
        SourceListings(upstream).source(_repo(), SOURCE, "x86_64")
    message = str(err.value)
    assert "current/dists/bullseye/Release" in message and "HTTP 404" in message
    assert "where it moves to" in message and "old/dists/bullseye/Release" in message
    assert err.value.url == ARCHIVE + "dists/bullseye/Release"


def test_without_moved_to_a_gone_tree_is_an_error(
    tmp_path: Path, mirror_server: FaultyMirror, kernel: AptPackage
) -> None:
    write_apt_repo(mirror_server.directory, "old", "bullseye", "main", "amd64", [kernel])
    with _upstream(tmp_path, mirror_server) as upstream, pytest.raises(UpstreamIndexError) as err:
        SourceListings(upstream).source(_repo(moved_to=None), SOURCE, "x86_64")
    assert err.value.status == 404


def test_debian_bullseye_moves_to_archive_debian_org() -> None:
    debian = load_catalog(REPO).distribution("debian")
    assert debian.repository("debian").moved_to == "http://archive.debian.org/debian/"
    assert (
        debian.repository("debian-security").moved_to
        == "http://archive.debian.org/debian-security/"
    )
