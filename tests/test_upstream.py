"""Upstream discovery against a real HTTP server on 127.0.0.1 (tests/mirror.py).

Repositories are laid out in the real formats from real packages (dpkg-deb,
rpmbuild); decoys that only need an index entry are plain files with
explicit metadata. Public URLs appear only behind a --mirror rewrite to the
local server, so nothing here can reach the internet.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3

from generator.demokit.mirror import (
    AptPackage,
    RpmPackage,
    compress,
    primary_path,
    sha256_file,
    write_apt_repo,
    write_release,
    write_rpmmd_repo,
)
from generator.demokit.signing import default_signer
from generator.errors import BtfhubError, PackageError, UpstreamError
from generator.model import (
    Catalog,
    Column,
    Distribution,
    KernelPackage,
    Release,
    ReleaseArch,
    Repository,
    Source,
    series_matches,
)
from generator.trust import TrustPolicy
from generator.upstream.apt import discover_apt
from generator.upstream.context import UpstreamContext
from generator.upstream.discover import SourceListings, discover_all
from generator.upstream.http import UpstreamClient, UpstreamIndexError
from generator.upstream.listers import flavour_of
from generator.upstream.mirrors import Mirrors
from generator.upstream.rpmmd import discover_rpmmd
from generator.upstream.transport import RetryPolicy
from tests.kit.corrupt import DAMAGED_BYTES
from tests.kit.debpkg import UBUNTU_PATTERNS, small_ddeb
from tests.kit.hub import closed_port
from tests.kit.mirror import FaultyMirror, SlowMirror
from tests.kit.packageserver import Redirector
from tests.kit.shelf import build_rpm

UBUNTU = "http://ddebs.ubuntu.com/"
CENTOS = "http://debuginfo.centos.org/7/{arch}/"


def make_client(tmp_path: Path, server: FaultyMirror, **kw: object) -> UpstreamContext:
    """What a run hands the listers, with a client whose public URLs all lead to the local
    server (and the keys BTFHUB_KEYRINGS names: the test mirrors')."""
    mirrors = Mirrors.parse(
        [
            f"{UBUNTU}={server.url}ubuntu/",
            f"http://debuginfo.centos.org/={server.url}centos/",
            f"https://archives.fedoraproject.org/={server.url}fedora/",
        ]
    )
    options: dict[str, object] = {"cache_dir": tmp_path / "cache", "backoff": 0.0}
    options.update(kw)
    client = UpstreamClient(mirrors=mirrors, **options)  # type: ignore[arg-type]
    return UpstreamContext.of(client, TrustPolicy.from_sources())


# -- packages, built once -----------------------------------------------------------


def _decoy(base: Path, name: str, version: str, arch: str = "amd64") -> AptPackage:
    """An index entry whose file is just bytes: discovery never opens packages."""
    path = base / f"{name}_{version}_{arch}.deb"
    path.write_bytes(f"decoy {name} {version}\n".encode())
    return AptPackage(path, name, version, arch, "linux")


@pytest.fixture(scope="session")
def ubuntu_pkgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, AptPackage]:
    base = tmp_path_factory.mktemp("ddebs")
    return {
        "u26": small_ddeb(
            base, "linux-image-unsigned-5.4.0-26-generic-dbgsym", "5.4.0-26.30", "linux"
        ),
        "s26": small_ddeb(base, "linux-image-5.4.0-26-generic-dbgsym", "5.4.0-26.30", "linux"),
        "low26": small_ddeb(
            base, "linux-image-unsigned-5.4.0-26-lowlatency-dbgsym", "5.4.0-26.30", "linux"
        ),
        "u42old": small_ddeb(
            base, "linux-image-unsigned-5.4.0-42-generic-dbgsym", "5.4.0-42.45", "linux"
        ),
        "u42": small_ddeb(
            base, "linux-image-unsigned-5.4.0-42-generic-dbgsym", "5.4.0-42.46", "linux"
        ),
        # The signed (near-empty) package with a higher version still loses to unsigned.
        "s42new": small_ddeb(base, "linux-image-5.4.0-42-generic-dbgsym", "5.4.0-42.47", "linux"),
        "aws": small_ddeb(base, "linux-image-5.4.0-1018-aws-dbgsym", "5.4.0-1018.18", "linux-aws"),
        "hwe9": small_ddeb(
            base,
            "linux-image-unsigned-5.8.0-43-generic-dbgsym",
            "5.8.0-43.49~20.04.9",
            "linux-hwe-5.8",
        ),
        # ~20.04.10 > ~20.04.9 in dpkg order, < as strings: proves a real version compare.
        "hwe10": small_ddeb(
            base,
            "linux-image-unsigned-5.8.0-43-generic-dbgsym",
            "5.8.0-43.49~20.04.10",
            "linux-hwe-5.8",
        ),
        "arm42": small_ddeb(
            base,
            "linux-image-unsigned-5.4.0-42-generic-dbgsym",
            "5.4.0-42.46",
            "linux",
            arch="arm64",
        ),
        "headers": _decoy(base, "linux-headers-5.4.0-26-generic", "5.4.0-26.30"),
        "nodbg": _decoy(base, "linux-image-unsigned-5.4.0-26-generic", "5.4.0-26.30"),
        "modules": _decoy(base, "linux-modules-5.4.0-26-generic-dbgsym", "5.4.0-26.30"),
        "meta": _decoy(base, "linux-image-generic-dbgsym", "5.4.0.26.32"),
    }


def write_ubuntu(server: FaultyMirror, pkgs: dict[str, AptPackage]) -> Path:
    """focal (xz), focal-updates (gz), focal-proposed (plain), like ddebs.ubuntu.com."""
    root = server.directory
    focal = [pkgs[k] for k in ("u26", "s26", "low26", "u42old", "headers", "nodbg", "modules")]
    write_apt_repo(root, "ubuntu", "focal", "main", "amd64", [*focal, pkgs["meta"]], "xz")
    write_apt_repo(root, "ubuntu", "focal", "main", "arm64", [pkgs["arm42"]], "xz")
    updates = [pkgs["u42"], pkgs["aws"], pkgs["hwe9"]]
    write_apt_repo(root, "ubuntu", "focal-updates", "main", "amd64", updates, "gz")
    proposed = [pkgs["hwe10"], pkgs["s42new"]]
    return write_apt_repo(root, "ubuntu", "focal-proposed", "main", "amd64", proposed, "")


def ddebs_repo(**kw: object) -> Repository:
    options: dict[str, object] = {"packages": UBUNTU_PATTERNS, "flavours": ("generic", "aws")}
    options.update(kw)
    return Repository(id="ddebs", kind="apt", url=UBUNTU, **options)  # type: ignore[arg-type]


FOCAL = Source("ddebs", suites=("focal", "focal-updates", "focal-proposed"))


def summary(pkgs: list[KernelPackage]) -> list[tuple[str, str, str]]:
    return [(p.uname, p.name, p.version) for p in pkgs]


# -- apt ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suites",
    [
        ("focal", "focal-updates", "focal-proposed"),
        ("focal-proposed", "focal-updates", "focal"),
    ],
)
def test_apt_discovery_ubuntu(
    tmp_path: Path,
    mirror_server: FaultyMirror,
    ubuntu_pkgs: dict[str, AptPackage],
    suites: tuple[str, ...],
) -> None:
    repo_dir = write_ubuntu(mirror_server, ubuntu_pkgs)
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_apt(upstream, ddebs_repo(), Source("ddebs", suites=suites), "x86_64")
    # Same answer whatever the suite order: highest Version wins, unsigned beats signed.
    assert summary(found) == [
        ("5.4.0-1018-aws", "linux-image-5.4.0-1018-aws-dbgsym", "5.4.0-1018.18"),
        ("5.4.0-26-generic", "linux-image-unsigned-5.4.0-26-generic-dbgsym", "5.4.0-26.30"),
        ("5.4.0-42-generic", "linux-image-unsigned-5.4.0-42-generic-dbgsym", "5.4.0-42.46"),
        (
            "5.8.0-43-generic",
            "linux-image-unsigned-5.8.0-43-generic-dbgsym",
            "5.8.0-43.49~20.04.10",
        ),
    ]
    hwe = found[3]
    assert hwe.filename == (
        "pool/main/l/linux-hwe-5.8/"
        "linux-image-unsigned-5.8.0-43-generic-dbgsym_5.8.0-43.49~20.04.10_amd64.deb"
    )
    # The URL is the public one: the mirror is applied when fetching, not stored.
    assert hwe.url == UBUNTU + hwe.filename
    assert (hwe.arch, hwe.format, hwe.repository) == ("x86_64", "deb", "ddebs")
    on_disk = repo_dir / hwe.filename
    assert hwe.size == on_disk.stat().st_size
    assert hwe.sha256 == sha256_file(on_disk)


def test_apt_arm64_uses_its_own_index(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_apt(upstream, ddebs_repo(), Source("ddebs", suites=("focal",)), "arm64")
    assert [(p.uname, p.arch) for p in found] == [("5.4.0-42-generic", "arm64")]
    assert found[0].filename.endswith("_arm64.deb")
    paths = [r.path for r in mirror_server.log]
    assert "/ubuntu/dists/focal/main/binary-arm64/Packages.xz" in paths
    assert not any("binary-amd64" in p for p in paths)


def test_apt_no_flavours_keeps_every_flavour(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_apt(
            upstream, ddebs_repo(flavours=()), Source("ddebs", ("focal",)), "x86_64"
        )
    assert [p.uname for p in found] == [
        "5.4.0-26-generic",
        "5.4.0-26-lowlatency",
        "5.4.0-42-generic",
    ]


def test_apt_debian_flavours_with_arch(tmp_path: Path, mirror_server: FaultyMirror) -> None:
    # Debian spells flavours with the arch; "amd64" must not let "rt-amd64" in.
    base = tmp_path / "debs"
    base.mkdir()
    names = ["4.19.0-20-amd64", "4.19.0-20-cloud-amd64", "4.19.0-20-rt-amd64"]
    debs = [_decoy(base, f"linux-image-{n}-dbg", "4.19.235-1") for n in names]
    write_apt_repo(mirror_server.directory, "debian", "buster", "main", "amd64", debs)
    repo = Repository(
        id="debian",
        kind="apt",
        url=f"{mirror_server.url}debian",  # no trailing slash: still a directory
        packages=("linux-image-{uname}-dbg",),
        flavours=("{arch}", "cloud-{arch}"),
    )
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_apt(upstream, repo, Source("debian", suites=("buster",)), "x86_64")
    assert [p.uname for p in found] == ["4.19.0-20-amd64", "4.19.0-20-cloud-amd64"]
    assert found[0].url.startswith(f"{mirror_server.url}debian/pool/main/l/linux/")


@pytest.mark.parametrize(
    ("uname", "flavour"),
    [
        ("5.4.0-42-generic", "generic"),
        ("4.19.0-20-cloud-amd64", "cloud-amd64"),
        ("5.10.0-0.bpo.15-rt-amd64", "rt-amd64"),
        ("5.4.0-1018-aws", "aws"),
        ("5.4.0", ""),
    ],
)
def test_flavour_of(uname: str, flavour: str) -> None:
    assert flavour_of(uname) == flavour


def test_apt_prefers_xz_and_needs_only_listed_forms(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    # Like the real archive: Release lists plain Packages, which is not served.
    repo = write_apt_repo(
        mirror_server.directory,
        "ubuntu",
        "focal",
        "main",
        "amd64",
        [ubuntu_pkgs["u26"]],
        ("xz", "gz", ""),
    )
    (repo / "dists/focal/main/binary-amd64/Packages").unlink()
    (repo / "dists/focal/main/binary-amd64/Packages.gz").write_bytes(b"not even gzip")
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_apt(upstream, ddebs_repo(), Source("ddebs", ("focal",)), "x86_64")
    assert [p.uname for p in found] == ["5.4.0-26-generic"]
    assert [r.path for r in mirror_server.log] == [
        "/ubuntu/dists/focal/InRelease",
        "/ubuntu/dists/focal/main/binary-amd64/Packages.xz",
    ]


def test_apt_gz_when_xz_is_not_listed(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    repo = write_apt_repo(
        mirror_server.directory, "ubuntu", "focal", "main", "amd64", [ubuntu_pkgs["u26"]], "gz"
    )
    # An unlisted Packages.xz (stale, say) is never used.
    (repo / "dists/focal/main/binary-amd64/Packages.xz").write_bytes(compress(b"", "xz"))
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_apt(upstream, ddebs_repo(), Source("ddebs", ("focal",)), "x86_64")
    assert [p.uname for p in found] == ["5.4.0-26-generic"]
    assert mirror_server.log[-1].path.endswith("/Packages.gz")


# -- apt errors: each names the URL ---------------------------------------------------


def _discover_focal(tmp_path: Path, server: FaultyMirror, arch: str = "x86_64") -> None:
    with make_client(tmp_path, server) as upstream:
        discover_apt(upstream, ddebs_repo(), Source("ddebs", ("focal",)), arch)


def test_apt_missing_release_names_both_urls(tmp_path: Path, mirror_server: FaultyMirror) -> None:
    with pytest.raises(UpstreamIndexError) as err:
        _discover_focal(tmp_path, mirror_server)
    message = str(err.value)
    assert f"{mirror_server.url}ubuntu/dists/focal/Release" in message
    assert f"(mirror of {UBUNTU}dists/focal/Release)" in message
    assert "HTTP 404" in message
    assert err.value.url == f"{UBUNTU}dists/focal/Release"
    # InRelease, then Release: each 404 is an answer, not retried.
    assert [r.path for r in mirror_server.log] == [
        "/ubuntu/dists/focal/InRelease",
        "/ubuntu/dists/focal/Release",
    ]


def test_apt_arch_not_listed(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_apt_repo(
        mirror_server.directory, "ubuntu", "focal", "main", "amd64", [ubuntu_pkgs["u26"]]
    )
    with pytest.raises(UpstreamError, match=r"dists/focal/InRelease.*main/binary-arm64/Packages"):
        _discover_focal(tmp_path, mirror_server, "arm64")


def _packages_xz(server: FaultyMirror) -> Path:
    return server.directory / "ubuntu/dists/focal/main/binary-amd64/Packages.xz"


def test_apt_packages_checksum_mismatch(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_apt_repo(
        mirror_server.directory, "ubuntu", "focal", "main", "amd64", [ubuntu_pkgs["u26"]]
    )
    index = _packages_xz(mirror_server)
    data = bytearray(index.read_bytes())
    data[20] ^= 0xFF  # same size, different bytes
    index.write_bytes(bytes(data))
    with pytest.raises(UpstreamError, match=r"binary-amd64/Packages\.xz.*sha256 .* does not match"):
        _discover_focal(tmp_path, mirror_server)
    # A body that failed verification is never cached (a rerun fetches it again).
    rewritten = f"{mirror_server.url}ubuntu/dists/focal/main/binary-amd64/Packages.xz"
    key = hashlib.sha256(rewritten.encode()).hexdigest()
    assert (tmp_path / "cache" / f"{key}.json").exists() is False
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1  # the Release only


def test_apt_packages_size_mismatch(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_apt_repo(
        mirror_server.directory, "ubuntu", "focal", "main", "amd64", [ubuntu_pkgs["u26"]]
    )
    index = _packages_xz(mirror_server)
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(UpstreamError, match=r"Packages\.xz.*bytes, but the index listing it says"):
        _discover_focal(tmp_path, mirror_server)


def test_apt_truncated_xz_listed_as_is(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    # The Release matches the broken file: only the xz stream itself can tell.
    write_apt_repo(
        mirror_server.directory, "ubuntu", "focal", "main", "amd64", [ubuntu_pkgs["u26"]]
    )
    index = _packages_xz(mirror_server)
    index.write_bytes(index.read_bytes()[:-30])
    write_release(mirror_server.directory / "ubuntu/dists/focal", "focal")
    with pytest.raises(UpstreamError, match=r"Packages\.xz.*bad xz stream"):
        _discover_focal(tmp_path, mirror_server)


def test_apt_body_cut_short_by_the_server(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_apt_repo(
        mirror_server.directory, "ubuntu", "focal", "main", "amd64", [ubuntu_pkgs["u26"]]
    )
    path = "/ubuntu/dists/focal/main/binary-amd64/Packages.xz"
    mirror_server.truncate(path, keep=40)
    with pytest.raises(UpstreamError, match=r"Packages\.xz.*gave up after 4 attempts"):
        _discover_focal(tmp_path, mirror_server)
    assert len(mirror_server.requests_for(path)) == 4


@pytest.mark.parametrize(
    ("stanzas", "error"),
    [
        (b"Package: x\nVersion 1\n", r"Packages\): line 5: not a deb822 field: 'Version 1'"),
        (b" leading continuation\n", r"line 4: continuation line outside a field"),
        (b"Version: 1\n", r"a paragraph has no Package field"),
        (
            b"Package: linux-image-5.4.0-9-generic-dbgsym\nVersion: 1\nFilename: a.deb\n",
            r"linux-image-5.4.0-9-generic-dbgsym lacks size, sha256",
        ),
        (
            b"Package: linux-image-5.4.0-9-generic-dbgsym\nVersion: 1\nSize: 1\n"
            b"SHA256: " + b"a" * 64 + b"\nFilename: http://elsewhere.example/a.deb\n",
            r"bad Filename",
        ),
    ],
)
def test_apt_malformed_packages(
    tmp_path: Path, mirror_server: FaultyMirror, stanzas: bytes, error: str
) -> None:
    index_dir = mirror_server.directory / "ubuntu/dists/focal/main/binary-amd64"
    index_dir.mkdir(parents=True)
    (index_dir / "Packages").write_bytes(b"Package: fine\nVersion: 1\n\n" + stanzas)
    write_release(mirror_server.directory / "ubuntu/dists/focal", "focal")
    with pytest.raises(UpstreamError, match=re.escape(mirror_server.url) + ".*" + error):
        _discover_focal(tmp_path, mirror_server)


def test_apt_release_without_sha256(tmp_path: Path, mirror_server: FaultyMirror) -> None:
    suite = mirror_server.directory / "ubuntu/dists/focal"
    suite.mkdir(parents=True)
    (suite / "Release").write_text("Origin: x\nMD5Sum:\n 0123 12 main/binary-amd64/Packages\n")
    default_signer().sign_release(suite / "Release")
    with pytest.raises(UpstreamError, match=r"dists/focal/InRelease.*no SHA256 field"):
        _discover_focal(tmp_path, mirror_server)


# -- mirrors ---------------------------------------------------------------------------


def test_mirrors_longest_prefix_wins() -> None:
    mirrors = Mirrors.parse(
        ["http://a.example/=http://m.example/all/", "http://a.example/deep/=http://d.example/"]
    )
    assert mirrors.rewrite("http://a.example/deep/x") == "http://d.example/x"
    assert mirrors.rewrite("http://a.example/other/x") == "http://m.example/all/other/x"
    assert mirrors.rewrite("http://b.example/x") == "http://b.example/x"


def test_mirrors_from_env_and_command_line() -> None:
    env = "http://a.example/=http://env.example/ http://b.example/=http://envb.example/"
    mirrors = Mirrors.parse(["http://a.example/=http://cli.example/"], env)
    assert mirrors.rewrite("http://a.example/x") == "http://cli.example/x"  # the CLI wins
    assert mirrors.rewrite("http://b.example/x") == "http://envb.example/x"


@pytest.mark.parametrize(
    ("pairs", "env", "error"),
    [
        (
            ["http://a.example/"],
            None,
            r"--mirror: bad mirror 'http://a.example/': expected FROM=TO",
        ),
        (["=http://b.example/"], None, "expected FROM=TO"),
        (["http://a.example/="], None, "expected FROM=TO"),
        (["a.example=http://b.example"], None, r"'a.example' is not a URL"),
        (["http://a.example/=http://b.example"], None, "both end with '/'"),
        (["http://a.example/=file:///srv/mirror/"], None, "TO must be an http"),
        (["http://a.example/=http://b.example/\x1b[2J/"], None, "TO must be an http"),
        ([], "http://a.example/=http://b.example/ junk", r"BTFHUB_MIRRORS: bad mirror 'junk'"),
        (
            ["http://a.example/=http://b.example/", "http://a.example/=http://c.example/"],
            None,
            "given twice",
        ),
    ],
)
def test_mirrors_bad_pairs(pairs: list[str], env: str | None, error: str) -> None:
    with pytest.raises(BtfhubError, match=error):
        Mirrors.parse(pairs, env)


def test_every_request_goes_through_the_mirror(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    with make_client(tmp_path, mirror_server) as upstream:
        (pkg, *_) = discover_apt(upstream, ddebs_repo(), FOCAL, "x86_64")
        with upstream.client.open_stream(pkg.url, pkg.size, pkg.sha256) as stream:
            stream.read()
        assert stream.verified
    assert mirror_server.log[-1].path == "/ubuntu/" + pkg.filename
    assert all(r.path.startswith("/ubuntu/") for r in mirror_server.log)
    assert all(r.headers["User-Agent"].startswith("btfhub/") for r in mirror_server.log)


# -- conditional GET and the index cache --------------------------------------------


def test_rerun_downloads_no_unchanged_index(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    with make_client(tmp_path, mirror_server) as upstream:
        first = discover_apt(upstream, ddebs_repo(), FOCAL, "x86_64")
    assert upstream.client.stats.index_bytes > 0
    assert mirror_server.statuses() == [200] * 6  # 3 Release + 3 Packages

    # The server counts a response's bytes once it has written them, which can be
    # after the client has read them: the count is cleared once every answer is in.
    mirror_server.wait_done()
    mirror_server.clear_log()
    with make_client(tmp_path, mirror_server) as upstream:  # a new run, same cache
        second = discover_apt(upstream, ddebs_repo(), FOCAL, "x86_64")
    assert second == first
    # Release files are revalidated (304); Packages whose SHA-256 the Release
    # still lists come from the cache without a request.
    assert [(r.path.rsplit("/", 2)[-2:], r.status) for r in mirror_server.log] == [
        (["focal", "InRelease"], 304),
        (["focal-updates", "InRelease"], 304),
        (["focal-proposed", "InRelease"], 304),
    ]
    assert mirror_server.bytes_sent == 0
    assert (
        upstream.client.stats.index_bytes,
        upstream.client.stats.not_modified,
        upstream.client.stats.cache_hits,
    ) == (
        0,
        3,
        3,
    )
    assert "If-None-Match" in mirror_server.log[0].headers
    assert "If-Modified-Since" in mirror_server.log[0].headers

    # Upstream publishes a new kernel: only that suite's indexes are fetched again.
    time.sleep(0.01)  # a distinct mtime, hence a distinct ETag
    write_apt_repo(
        mirror_server.directory,
        "ubuntu",
        "focal-proposed",
        "main",
        "amd64",
        [ubuntu_pkgs["hwe10"], ubuntu_pkgs["s42new"], ubuntu_pkgs["low26"]],
        "",
    )
    mirror_server.clear_log()
    with make_client(tmp_path, mirror_server) as upstream:
        third = discover_apt(upstream, ddebs_repo(flavours=()), FOCAL, "x86_64")
    assert "5.4.0-26-lowlatency" in [p.uname for p in third]
    assert [(r.path, r.status) for r in mirror_server.log if r.status == 200] == [
        ("/ubuntu/dists/focal-proposed/InRelease", 200),
        ("/ubuntu/dists/focal-proposed/main/binary-amd64/Packages", 200),
    ]


def test_without_a_cache_every_run_downloads(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    for _ in range(2):
        with make_client(tmp_path, mirror_server, cache_dir=None) as upstream:
            discover_apt(upstream, ddebs_repo(), FOCAL, "x86_64")
    assert mirror_server.statuses() == [200] * 12


def test_a_corrupt_cache_entry_is_not_trusted(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    with make_client(tmp_path, mirror_server) as upstream:
        first = discover_apt(upstream, ddebs_repo(), FOCAL, "x86_64")
    for body in (tmp_path / "cache").glob("*.body"):
        body.write_bytes(b"Origin: evil\n")
    # Without the parsed listings the Packages bodies are needed again (their
    # cache is tested in test_listing_cache_*).
    shutil.rmtree(tmp_path / "cache" / "listings")
    mirror_server.clear_log()
    with make_client(tmp_path, mirror_server) as upstream:
        assert discover_apt(upstream, ddebs_repo(), FOCAL, "x86_64") == first
    assert mirror_server.statuses() == [200] * 6
    assert all("If-None-Match" not in r.headers for r in mirror_server.log)


def test_index_cache_is_keyed_by_the_rewritten_url(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    with make_client(tmp_path, mirror_server) as upstream:
        upstream.client.get_index(UBUNTU + "dists/focal/Release")
    (meta,) = (tmp_path / "cache").glob("*.json")
    rewritten = f"{mirror_server.url}ubuntu/dists/focal/Release"
    assert meta.stem == hashlib.sha256(rewritten.encode()).hexdigest()


# -- retries ---------------------------------------------------------------------------


def test_retries_then_succeeds_with_exponential_backoff(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    mirror_server.fail("/ubuntu/dists/focal/InRelease", 500, times=1)
    mirror_server.fail("/ubuntu/dists/focal/InRelease", 503, times=1)
    mirror_server.fail("/ubuntu/dists/focal/InRelease", 502, times=1)
    sleeps: list[float] = []
    with make_client(tmp_path, mirror_server, backoff=0.5, sleep=sleeps.append) as upstream:
        found = discover_apt(upstream, ddebs_repo(), Source("ddebs", ("focal",)), "x86_64")
    assert [p.uname for p in found] == ["5.4.0-26-generic", "5.4.0-42-generic"]
    assert [r.status for r in mirror_server.requests_for("/ubuntu/dists/focal/InRelease")] == [
        500,
        503,
        502,
        200,
    ]
    # urllib3's backoff: none before the first retry, then backoff * 2**(n-1).
    assert sleeps == [1.0, 2.0]
    assert upstream.client.stats.retries == 3


@pytest.mark.parametrize("fault", ["429", "drop"])
def test_retries_429_and_dropped_connections(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage], fault: str
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    path = "/ubuntu/dists/focal/InRelease"
    if fault == "429":
        mirror_server.fail(path, 429, times=2)
    else:
        mirror_server.drop(path, times=2)
    with make_client(tmp_path, mirror_server) as upstream:
        assert discover_apt(upstream, ddebs_repo(), Source("ddebs", ("focal",)), "x86_64")
    assert len(mirror_server.requests_for(path)) == 3


def test_gives_up_after_bounded_attempts(tmp_path: Path, mirror_server: FaultyMirror) -> None:
    mirror_server.fail("/ubuntu/dists/focal/InRelease", 502, times=None)
    with pytest.raises(UpstreamError) as err:
        _discover_focal(tmp_path, mirror_server)
    assert "HTTP 502" in str(err.value)
    assert "gave up after 4 attempts" in str(err.value)
    assert f"{mirror_server.url}ubuntu/dists/focal/InRelease" in str(err.value)
    assert len(mirror_server.log) == 4


@pytest.mark.parametrize(("retry_after", "slept"), [(None, 1.0), ("3", 3.0), ("1000", 60.0)])
def test_retry_policy_waits_the_backoff_or_the_retry_after(
    retry_after: str | None, slept: float
) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy.for_attempts(4, 0.5, sleeps.append, None)
    headers = {"Retry-After": retry_after} if retry_after else {}
    response = urllib3.HTTPResponse(status=503, headers=headers)
    for _ in range(2):  # the second retry: urllib3 waits backoff * 2 there
        policy = policy.increment("GET", "/dists/focal/Release", response=response)
    policy.sleep(response)
    assert sleeps == [slept]  # Retry-After capped at MAX_RETRY_AFTER (60 s)


def test_unreachable_host_names_the_url(tmp_path: Path) -> None:
    port = closed_port()
    client = UpstreamClient(cache_dir=None, attempts=2, backoff=0.0, timeout=(2.0, 2.0))
    url = f"http://127.0.0.1:{port}/dists/x/Release"
    with pytest.raises(
        UpstreamError,
        match=re.escape(url) + r": the connection was refused \(.*\) \(gave up after 2 attempts\)",
    ):
        client.get_index(url)
    assert client.stats.requests == 2


# -- rpm-md ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def centos_rpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("rpms")
    out: dict[str, Path] = {}
    for key, (name, version, release, arch) in {
        "123": ("kernel-debuginfo", "3.10.0", "123.el7", "x86_64"),
        "123.4.2": ("kernel-debuginfo", "3.10.0", "123.4.2.el7", "x86_64"),
        "1234": ("kernel-debuginfo", "3.10.0", "1234.el7", "x86_64"),
        "1160": ("kernel-debuginfo", "3.10.0", "1160.el7", "x86_64"),
        "common": ("kernel-debuginfo-common-x86_64", "3.10.0", "123.el7", "x86_64"),
        "arm": ("kernel-debuginfo", "4.18.0", "80.el8", "aarch64"),
    }.items():
        uname = f"{version}-{release}.{arch}"
        out[key] = build_rpm(base / key, name, version, release, arch, uname, vmlinux=None)
    return out


def _meta_only(
    base: Path, name: str, version: str, release: str, arch: str, **kw: str
) -> RpmPackage:
    path = base / f"{name}-{version}-{release}.{arch}.rpm"
    path.write_bytes(f"decoy {name}\n".encode())
    return RpmPackage(path, name, version, release, arch, **kw)


def centos_repo() -> Repository:
    return Repository(
        id="centos-debuginfo", kind="rpm-md", url=CENTOS, packages=("kernel-debuginfo",)
    )


CENTOS_FLAT = Source("centos-debuginfo", paths=("",))


def write_centos(
    server: FaultyMirror, tmp_path: Path, rpms: dict[str, Path], codec: str = "gz"
) -> Path:
    decoys = tmp_path / "decoys"
    decoys.mkdir(exist_ok=True)
    entries: list[Path | RpmPackage] = [
        rpms[k] for k in ("123", "123.4.2", "1234", "1160", "common")
    ]
    entries += [
        _meta_only(decoys, "kernel-debuginfo", "3.10.0", "123.el7", "i686"),
        _meta_only(decoys, "kernel-uek-debuginfo", "4.1.12", "37.el7uek", "x86_64"),
        _meta_only(decoys, "kernel-debuginfo-common", "3.10.0", "123.el7", "x86_64"),
        # A uname no kernel-debuginfo has: only a prefix match would list it.
        _meta_only(decoys, "kernel-debuginfo-common-x86_64", "3.10.0", "957.el7", "x86_64"),
        _meta_only(
            decoys, "kernel-tools-debuginfo", "3.10.0", "1160.el7", "x86_64", checksum_type="sha"
        ),
    ]
    return write_rpmmd_repo(server.directory / "centos/7/x86_64", entries, codec, flat=True)


@pytest.mark.parametrize("codec", ["gz", "xz", "zst", "bz2", ""])
def test_rpmmd_flat_centos7(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path], codec: str
) -> None:
    root = write_centos(mirror_server, tmp_path, centos_rpms, codec)
    assert primary_path(root).name.endswith("primary.xml" + (f".{codec}" if codec else ""))
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")
    assert summary(found) == [
        ("3.10.0-1160.el7.x86_64", "kernel-debuginfo", "3.10.0-1160.el7"),
        ("3.10.0-123.4.2.el7.x86_64", "kernel-debuginfo", "3.10.0-123.4.2.el7"),
        ("3.10.0-123.el7.x86_64", "kernel-debuginfo", "3.10.0-123.el7"),
        ("3.10.0-1234.el7.x86_64", "kernel-debuginfo", "3.10.0-1234.el7"),
    ]
    pkg = found[2]
    assert pkg.filename == "kernel-debuginfo-3.10.0-123.el7.x86_64.rpm"
    assert pkg.url == "http://debuginfo.centos.org/7/x86_64/" + pkg.filename
    assert (pkg.arch, pkg.format) == ("x86_64", "rpm")
    assert pkg.sha256 == sha256_file(centos_rpms["123"])
    assert pkg.size == centos_rpms["123"].stat().st_size


def test_rpmmd_arch_in_url(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    write_rpmmd_repo(mirror_server.directory / "centos/7/aarch64", [centos_rpms["arm"]])
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "arm64")
    assert [(p.uname, p.arch) for p in found] == [("4.18.0-80.el8.aarch64", "arm64")]
    assert found[0].url.startswith("http://debuginfo.centos.org/7/aarch64/")


def test_rpmmd_fedora_relative_hrefs(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    # The repo root is .../debug/tree/ while packages live in .../debug/Packages/k/.
    base = mirror_server.directory / "fedora/pub/archive/fedora/linux/releases/31/Everything/x86_64"
    write_rpmmd_repo(base / "debug/tree", [centos_rpms["1160"]], "zst", package_dir="../Packages/k")
    repo = Repository(
        id="fedora-archive",
        kind="rpm-md",
        url="https://archives.fedoraproject.org/pub/archive/fedora/linux/",
        packages=("kernel-debuginfo",),
    )
    source = Source("fedora-archive", paths=("releases/31/Everything/{arch}/debug/tree/",))
    with make_client(tmp_path, mirror_server) as upstream:
        (pkg,) = discover_rpmmd(upstream, repo, source, "x86_64")
        assert pkg.filename == "../Packages/k/kernel-debuginfo-3.10.0-1160.el7.x86_64.rpm"
        assert pkg.url == (
            "https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/31/"
            "Everything/x86_64/debug/Packages/k/kernel-debuginfo-3.10.0-1160.el7.x86_64.rpm"
        )
        with upstream.client.open_stream(pkg.url, pkg.size, pkg.sha256) as stream:
            assert stream.read(4) == b"\xed\xab\xee\xdb"  # an RPM lead: the href resolved
            stream.read()
        assert stream.verified


def test_rpmmd_non_flat_packages_dir(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    write_rpmmd_repo(mirror_server.directory / "centos/7/x86_64", [centos_rpms["123"]], flat=False)
    with make_client(tmp_path, mirror_server) as upstream:
        (pkg,) = discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")
    assert pkg.filename == "Packages/k/kernel-debuginfo-3.10.0-123.el7.x86_64.rpm"


def test_rpmmd_first_path_wins_for_one_uname(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    write_rpmmd_repo(mirror_server.directory / "centos/7/x86_64/a", [centos_rpms["123"]])
    write_rpmmd_repo(
        mirror_server.directory / "centos/7/x86_64/b", [centos_rpms["123"], centos_rpms["1160"]]
    )
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_rpmmd(upstream, centos_repo(), Source("c", paths=("b/", "a/")), "x86_64")
    assert [(p.uname, p.filename) for p in found] == [
        ("3.10.0-1160.el7.x86_64", "kernel-debuginfo-3.10.0-1160.el7.x86_64.rpm"),
        ("3.10.0-123.el7.x86_64", "kernel-debuginfo-3.10.0-123.el7.x86_64.rpm"),
    ]
    assert all("/7/x86_64/b/" in p.url for p in found)


def _replace_primary(root: Path, data: bytes) -> None:
    """Swap primary.xml.* for `data` and make repomd.xml list it faithfully."""
    primary = primary_path(root)
    repomd = root / "repodata/repomd.xml"
    text = repomd.read_text()
    old = hashlib.sha256(primary.read_bytes()).hexdigest()
    new = hashlib.sha256(data).hexdigest()
    text = text.replace(f">{old}</checksum>", f">{new}</checksum>")  # not the href
    text = text.replace(f"<size>{primary.stat().st_size}</size>", f"<size>{len(data)}</size>")
    primary.write_bytes(data)
    repomd.write_text(text)


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda raw: compress(raw[: len(raw) // 2], "gz"), r"primary\.xml\.gz\): bad XML"),
        (lambda raw: compress(b"<metadata><package>", "gz"), r"primary\.xml\.gz\): bad XML"),
        (lambda raw: compress(raw, "gz")[:-12], r"primary\.xml\.gz\): bad gzip stream"),
        (lambda raw: compress(raw, "zst")[:-8], r"primary\.xml\.gz\): bad zstd stream"),
        (lambda raw: b"\x1f\x8b\x08\x00garbage", r"primary\.xml\.gz\): bad gzip stream"),
    ],
)
def test_rpmmd_malformed_primary(
    tmp_path: Path,
    mirror_server: FaultyMirror,
    centos_rpms: dict[str, Path],
    mangle: object,
    error: str,
) -> None:
    import gzip

    root = write_centos(mirror_server, tmp_path, centos_rpms)
    raw = gzip.decompress(primary_path(root).read_bytes())
    _replace_primary(root, mangle(raw))  # type: ignore[operator]
    with (
        pytest.raises(UpstreamError, match=re.escape(mirror_server.url) + ".*" + error),
        make_client(tmp_path, mirror_server) as upstream,
    ):
        discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")


def test_rpmmd_primary_checksum_mismatch(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    root = write_centos(mirror_server, tmp_path, centos_rpms)
    primary = primary_path(root)
    data = bytearray(primary.read_bytes())
    data[-9] ^= 0x01
    primary.write_bytes(bytes(data))
    with (
        pytest.raises(UpstreamError, match=r"primary\.xml\.gz\): sha256 .* does not match"),
        make_client(tmp_path, mirror_server) as upstream,
    ):
        discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")


@pytest.mark.parametrize(
    ("repomd", "error"),
    [
        (None, r"repodata/repomd\.xml.*HTTP 404"),
        (b"<repomd><data", r"repomd\.xml.*bad XML"),
        (
            b'<repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="other"/></repomd>',
            r'repomd\.xml.*no <data type="primary">',
        ),
    ],
)
def test_rpmmd_bad_repomd(
    tmp_path: Path, mirror_server: FaultyMirror, repomd: bytes | None, error: str
) -> None:
    if repomd is not None:
        (mirror_server.directory / "centos/7/x86_64/repodata").mkdir(parents=True)
        (mirror_server.directory / "centos/7/x86_64/repodata/repomd.xml").write_bytes(repomd)
    with (
        pytest.raises(UpstreamError, match=error),
        make_client(tmp_path, mirror_server) as upstream,
    ):
        discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")


def test_rpmmd_refuses_a_kernel_without_sha256(tmp_path: Path, mirror_server: FaultyMirror) -> None:
    # A sha1 decoy under another name is ignored (test_rpmmd_flat_centos7); a kernel is not.
    pkg = _meta_only(
        tmp_path, "kernel-debuginfo", "3.10.0", "957.el7", "x86_64", checksum_type="sha"
    )
    write_rpmmd_repo(mirror_server.directory / "centos/7/x86_64", [pkg])
    with (
        pytest.raises(
            UpstreamError, match=r"3\.10\.0-957\.el7\.x86_64 has a sha checksum, not sha256"
        ),
        make_client(tmp_path, mirror_server) as upstream,
    ):
        discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")


def test_rpmmd_refuses_a_hostile_uname(tmp_path: Path, mirror_server: FaultyMirror) -> None:
    (tmp_path / "k.rpm").write_bytes(b"x")
    pkg = RpmPackage(tmp_path / "k.rpm", "kernel-debuginfo", "3.10.0", "1/../../x", "x86_64")
    write_rpmmd_repo(mirror_server.directory / "centos/7/x86_64", [pkg])
    with (
        pytest.raises(UpstreamError, match="unusable kernel release"),
        make_client(tmp_path, mirror_server) as upstream,
    ):
        discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")


# -- the parsed listing cache (generator/upstream/listingcache.py) ---------------------


def _listing_entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "listings").glob("*.json"))


def _discover_centos(tmp_path: Path, server: FaultyMirror, **kw: object) -> list[KernelPackage]:
    with make_client(tmp_path, server, **kw) as upstream:
        return discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")


def test_listing_cache_hit_neither_fetches_nor_reads_the_primary(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    root = write_centos(mirror_server, tmp_path, centos_rpms, "xz")
    reference = _discover_centos(tmp_path, mirror_server, cache_dir=None)  # no cache at all
    with make_client(tmp_path, mirror_server) as upstream:
        first = discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")
    assert first == reference
    assert upstream.client.stats.listing_hits == 0
    (entry,) = _listing_entries(tmp_path)
    primary = primary_path(root)
    document = json.loads(entry.read_text())
    assert document["index"] == "sha256:" + sha256_file(primary)
    assert sorted(m["package"]["uname"] for m in document["matches"]) == [
        p.uname for p in reference
    ]
    assert len(reference) == 4

    # Drop the primary's cached body: were it needed again, it would be fetched.
    primary_url = f"{mirror_server.url}centos/7/x86_64/repodata/{primary.name}"
    (tmp_path / "cache" / f"{hashlib.sha256(primary_url.encode()).hexdigest()}.body").unlink()
    mirror_server.clear_log()
    with make_client(tmp_path, mirror_server) as upstream:
        assert discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64") == reference
    assert [(r.path, r.status) for r in mirror_server.log] == [
        ("/centos/7/x86_64/repodata/repomd.xml", 304),
        ("/centos/7/x86_64/repodata/repomd.xml.asc", 404),
    ]
    stats = upstream.client.stats
    assert (stats.listing_hits, stats.cache_hits, stats.index_bytes) == (1, 1, 0)


def test_listing_cache_misses_when_the_index_changes(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    write_rpmmd_repo(mirror_server.directory / "centos/7/x86_64", [centos_rpms["123"]])
    assert [p.uname for p in _discover_centos(tmp_path, mirror_server)] == ["3.10.0-123.el7.x86_64"]
    # Upstream publishes a kernel: a new primary, named by a new checksum in repomd.xml.
    time.sleep(0.01)  # a distinct mtime, hence a distinct ETag
    root = write_rpmmd_repo(
        mirror_server.directory / "centos/7/x86_64", [centos_rpms["123"], centos_rpms["1160"]]
    )
    mirror_server.clear_log()
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64")
    assert [p.uname for p in found] == ["3.10.0-1160.el7.x86_64", "3.10.0-123.el7.x86_64"]
    assert found == _discover_centos(tmp_path, mirror_server, cache_dir=None)
    assert upstream.client.stats.listing_hits == 0
    assert (f"/centos/7/x86_64/repodata/{primary_path(root).name}", 200) in [
        (r.path, r.status) for r in mirror_server.log
    ]
    assert len(_listing_entries(tmp_path)) == 2  # one per checksum


def _mangle_key(document: dict[str, Any]) -> None:
    document["key"] = "0" * 64  # an entry copied over another's name


def _mangle_uname(document: dict[str, Any]) -> None:
    document["matches"][0]["package"]["uname"] = "../../../etc/evil"


def _mangle_field(document: dict[str, Any]) -> None:
    del document["matches"][0]["package"]["sha256"]


@pytest.mark.parametrize(
    "corrupt",
    [
        *DAMAGED_BYTES,
        _mangle_key,
        _mangle_uname,
        _mangle_field,
    ],
)
def test_a_corrupt_listing_entry_is_ignored_and_rewritten(
    tmp_path: Path,
    mirror_server: FaultyMirror,
    centos_rpms: dict[str, Path],
    corrupt: Callable[[Any], Any],
) -> None:
    write_centos(mirror_server, tmp_path, centos_rpms)
    first = _discover_centos(tmp_path, mirror_server)
    (entry,) = _listing_entries(tmp_path)
    good = entry.read_bytes()
    if corrupt in (_mangle_key, _mangle_uname, _mangle_field):
        document = json.loads(good)
        corrupt(document)
        entry.write_text(json.dumps(document))
    else:
        entry.write_bytes(corrupt(good))
    with make_client(tmp_path, mirror_server) as upstream:
        assert discover_rpmmd(upstream, centos_repo(), CENTOS_FLAT, "x86_64") == first
    # Parsed again from the primary (its body cached, checksum known: no request).
    assert (upstream.client.stats.listing_hits, upstream.client.stats.cache_hits) == (0, 1)
    assert entry.read_bytes() == good


def test_listings_of_one_index_differ_by_package_patterns(
    tmp_path: Path, mirror_server: FaultyMirror, ubuntu_pkgs: dict[str, AptPackage]
) -> None:
    write_ubuntu(mirror_server, ubuntu_pkgs)
    repos = [
        ddebs_repo(),
        ddebs_repo(packages=("linux-image-{uname}-dbgsym",)),  # the signed ones only
        ddebs_repo(packages=tuple(reversed(UBUNTU_PATTERNS))),  # another preference
        ddebs_repo(flavours=("generic",)),
    ]
    found = []
    for repo in repos:
        with make_client(tmp_path, mirror_server) as upstream:
            found.append(summary(discover_apt(upstream, repo, FOCAL, "x86_64")))
        assert upstream.client.stats.listing_hits == 0  # no repository reuses another's entries
        with make_client(tmp_path, mirror_server, cache_dir=None) as upstream:
            assert summary(discover_apt(upstream, repo, FOCAL, "x86_64")) == found[-1]
    assert len({tuple(f) for f in found}) == len(repos)
    assert len(_listing_entries(tmp_path)) == 3 * len(repos)  # 3 Packages files each
    # Asked again, each repository finds its own entries.
    for repo, expected in zip(repos, found, strict=True):
        with make_client(tmp_path, mirror_server) as upstream:
            assert summary(discover_apt(upstream, repo, FOCAL, "x86_64")) == expected
        assert upstream.client.stats.listing_hits == 3


# -- SourceListings.listing: series and sharing -------------------------------------


@pytest.mark.parametrize(
    ("series", "uname", "matches"),
    [
        ("3.10.0-123", "3.10.0-123.el7.x86_64", True),
        ("3.10.0-123", "3.10.0-123.4.2.el7.x86_64", True),
        ("3.10.0-123", "3.10.0-1234.el7.x86_64", False),
        ("3.10.0-1160", "3.10.0-1160.105.1.el7.x86_64", True),
        ("5.4.0", "5.4.0-42-generic", True),
        ("5.4.0", "5.4.01-42-generic", False),
        ("5.4", "5.4.0-42-generic", True),
        ("5.4", "5.40.0-1-generic", False),
        ("5.8.0", "5.4.0-42-generic", False),
        ("5.4.0", "5.4.0", True),
    ],
)
def test_series_matches(series: str, uname: str, matches: bool) -> None:
    assert series_matches(series, uname) is matches


def _release(
    distro: str, rid: str, series: tuple[str, ...], sources: tuple[Source, ...]
) -> Release:
    return Release(
        distro=distro,
        id=rid,
        name=rid,
        directory="7",
        kernel=series[0],
        series=series,
        bpf=True,
        btf=False,
        hub=True,
        architectures=("x86_64",),
        sources=sources,
    )


def test_releases_sharing_a_repository_fetch_it_once(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    write_centos(mirror_server, tmp_path, centos_rpms)
    releases = (
        _release("centos7", "7.0.1406", ("3.10.0-123",), (CENTOS_FLAT,)),
        _release("centos7", "7.9.2009", ("3.10.0-1160",), (CENTOS_FLAT,)),
        _release("centos7", "7.5.1804", ("3.10.0-862",), (CENTOS_FLAT,)),
    )
    dist = Distribution(
        id="centos7",
        title="CentOS 7",
        archive_dir="centos",
        columns=(Column("Kernel", "kernel"),),
        releases=releases,
        repositories=(centos_repo(),),
    )
    with make_client(tmp_path, mirror_server) as upstream:
        listings = SourceListings(upstream)
        found = {
            r.id: [p.uname for p in listings.listing(dist, r, "x86_64").packages] for r in releases
        }
    assert found == {
        "7.0.1406": ["3.10.0-123.4.2.el7.x86_64", "3.10.0-123.el7.x86_64"],
        "7.9.2009": ["3.10.0-1160.el7.x86_64"],
        "7.5.1804": [],
    }
    # repomd.xml, its signature (a 404: the RPMs' own are the anchor) and primary,
    # once for three releases.
    assert len(mirror_server.log) == 3


def test_discover_all_keeps_going_after_a_failure(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    write_centos(mirror_server, tmp_path, centos_rpms)
    broken = Source("centos-debuginfo", paths=("missing/",))
    good = _release("centos7", "7.0.1406", ("3.10.0-123",), (CENTOS_FLAT,))
    bad = _release("centos7", "7.1.1503", ("3.10.0-229",), (broken,))
    bad2 = _release("centos7", "7.2.1511", ("3.10.0-327",), (broken,))
    dist = Distribution(
        id="centos7",
        title="CentOS 7",
        archive_dir="centos",
        columns=(Column("Kernel", "kernel"),),
        releases=(good, bad, bad2),
        repositories=(centos_repo(),),
    )
    catalog = Catalog((dist,))
    meanwhile: list[int] = []
    with make_client(tmp_path, mirror_server) as upstream:
        found = discover_all(
            upstream,
            [(dist, r, "x86_64") for r in catalog.distributions[0].releases],
            meanwhile=lambda: meanwhile.append(len(meanwhile)),
        )
    assert meanwhile == [0]  # once (here, with no worker process: after the listing)
    assert list(found.kernels) == [ReleaseArch("centos7", "7.0.1406", "x86_64")]
    url = "http://debuginfo.centos.org/7/x86_64/missing/repodata/repomd.xml"
    assert [(e.target, e.url) for e in found.failures] == [
        (ReleaseArch("centos7", "7.1.1503", "x86_64"), url),
        (ReleaseArch("centos7", "7.2.1511", "x86_64"), url),
    ]
    assert "HTTP 404" in found.failures[0].message
    assert found.failures[0].cause == "HTTP 404 Not Found"
    assert not found.failures[0].unreachable
    # The failure is remembered: the shared broken repository was asked once.
    assert len(mirror_server.requests_for("/centos/7/x86_64/missing/repodata/repomd.xml")) == 1


def test_discover_all_lists_sources_at_once_and_reports_as_in_order(tmp_path: Path) -> None:
    decoys = tmp_path / "decoys"
    decoys.mkdir()
    paths = [f"r{i}/" for i in range(6)]
    releases = [
        _release("centos7", f"7.{i}", ("3.10.0",), (Source("centos-debuginfo", paths=(p,)),))
        for i, p in enumerate(paths)
    ]
    missing = Source("centos-debuginfo", paths=("missing/",))
    releases += [_release("centos7", f"8.{i}", ("3.10.0",), (missing,)) for i in range(2)]
    releases += [_release("centos7", "9.0", ("3.10.0",), (Source("unknown", paths=("",)),))]
    dist = Distribution(
        id="centos7",
        title="CentOS 7",
        archive_dir="centos",
        columns=(Column("Kernel", "kernel"),),
        releases=tuple(releases),
        repositories=(centos_repo(),),
    )
    targets = [(dist, r, "x86_64") for r in releases]
    found = {}
    # 20 ms: long enough for 4 threads' requests to overlap, short enough that the
    # serial run's ~25 requests take half a second.
    with SlowMirror(tmp_path / "mirror", delay=0.02) as server:
        for i, path in enumerate(paths):
            kernel = _meta_only(decoys, "kernel-debuginfo", "3.10.0", f"{i}.el7", "x86_64")
            write_rpmmd_repo(server.directory / "centos/7/x86_64" / path, [kernel])
        for workers in (1, 4):
            server.clear_log()
            server.most_in_flight = 0
            with make_client(tmp_path / str(workers), server) as upstream:
                found[workers] = discover_all(upstream, targets, workers)
            assert server.most_in_flight == 1 if workers == 1 else server.most_in_flight > 1
            # The source two releases share was asked for once.
            assert len(server.requests_for("/centos/7/x86_64/missing/repodata/repomd.xml")) == 1
    assert found[4] == found[1]
    assert [t.release for t in found[4].kernels] == [f"7.{i}" for i in range(6)]
    assert [f.target.release for f in found[4].failures] == ["8.0", "8.1", "9.0"]
    assert "unknown repository 'unknown'" in found[4].failures[2].message


def test_release_listing_first_source_wins(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    write_rpmmd_repo(mirror_server.directory / "centos/7/x86_64/a", [centos_rpms["123"]])
    write_rpmmd_repo(mirror_server.directory / "centos/7/x86_64/b", [centos_rpms["123"]])
    sources = (Source("centos-debuginfo", paths=("b/",)), Source("centos-debuginfo", paths=("a/",)))
    release = _release("centos7", "7.0.1406", ("3.10.0-123",), sources)
    dist = Distribution(
        id="centos7",
        title="CentOS 7",
        archive_dir="centos",
        columns=(Column("Kernel", "kernel"),),
        releases=(release,),
        repositories=(centos_repo(),),
    )
    with make_client(tmp_path, mirror_server) as upstream:
        (pkg,) = SourceListings(upstream).listing(dist, release, "x86_64").packages
    assert "/x86_64/b/" in pkg.url


# -- open_stream: packages ------------------------------------------------------------


@pytest.fixture
def blob(mirror_server: FaultyMirror) -> tuple[str, int, str]:
    """A 1 MiB package-like file on the server: (url, size, sha256)."""
    data = os.urandom(1 << 20)
    path = mirror_server.directory / "pool/blob.deb"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return f"{mirror_server.url}pool/blob.deb", len(data), hashlib.sha256(data).hexdigest()


def test_open_stream_reads_and_verifies(tmp_path: Path, blob: tuple[str, int, str]) -> None:
    url, size, sha = blob
    seen: list[int] = []
    with (
        UpstreamClient(cache_dir=None, backoff=0.0) as client,
        client.open_stream(url, size, sha, on_bytes=seen.append) as stream,
    ):
        data = stream.read()
        assert stream.verified
    assert hashlib.sha256(data).hexdigest() == sha
    assert sum(seen) == size == client.stats.package_bytes


def test_open_stream_sha256_mismatch_raises_at_eof(blob: tuple[str, int, str]) -> None:
    url, size, _ = blob
    with (
        UpstreamClient(cache_dir=None, backoff=0.0) as client,
        client.open_stream(url, size, "0" * 64) as stream,
    ):
        stream.read(1000)  # fine so far: the hash is only known at the end
        with pytest.raises(
            PackageError, match=re.escape(url) + r": sha256 [0-9a-f]{64} does not match 0{64}"
        ):
            stream.read()
        assert not stream.verified


def test_open_stream_size_mismatch_is_caught_before_downloading(
    mirror_server: FaultyMirror, blob: tuple[str, int, str]
) -> None:
    url, size, sha = blob
    with (
        UpstreamClient(cache_dir=None, backoff=0.0) as client,
        pytest.raises(PackageError, match=f"server announces {size} bytes, but the index says 5"),
        client.open_stream(url, 5, sha),
    ):
        pass


@pytest.mark.parametrize(
    ("expected_delta", "error"), [(-1, "more than the"), (1, "bytes, but the index says")]
)
def test_open_stream_without_content_length(
    mirror_server: FaultyMirror, blob: tuple[str, int, str], expected_delta: int, error: str
) -> None:
    url, size, sha = blob
    mirror_server.without_length("/pool/blob.deb")
    with (
        UpstreamClient(cache_dir=None, backoff=0.0) as client,
        client.open_stream(url, size + expected_delta, sha) as stream,
        pytest.raises(PackageError, match=re.escape(url) + ".*" + error),
    ):
        stream.read()


def test_open_stream_early_close_drops_the_connection(mirror_server: FaultyMirror) -> None:
    data = os.urandom(48 << 20)  # larger than any socket buffers in between
    (mirror_server.directory / "big.ddeb").write_bytes(data)
    url = f"{mirror_server.url}big.ddeb"
    client = UpstreamClient(cache_dir=None, backoff=0.0)
    with client.open_stream(url, len(data), hashlib.sha256(data).hexdigest()) as stream:
        assert stream.read(4096) == data[:4096]
    assert not stream.verified
    assert stream.closed
    assert client.stats.package_bytes < len(data) // 2
    client.close()
    mirror_server.wait_done()
    (request,) = mirror_server.log
    assert request.sent < len(data)  # the server stopped writing: we hung up


def test_open_stream_retries_before_the_first_byte(
    mirror_server: FaultyMirror, blob: tuple[str, int, str]
) -> None:
    url, size, sha = blob
    mirror_server.fail("/pool/blob.deb", 503, times=1)
    mirror_server.truncate("/pool/blob.deb", keep=0, times=1)
    with (
        UpstreamClient(cache_dir=None, backoff=0.0) as client,
        client.open_stream(url, size, sha) as stream,
    ):
        stream.read()
        assert stream.verified
    assert [r.status for r in mirror_server.log] == [503, 200, 200]


def test_open_stream_gives_up_when_every_answer_is_cut_short(
    mirror_server: FaultyMirror, blob: tuple[str, int, str]
) -> None:
    url, size, sha = blob
    mirror_server.truncate("/pool/blob.deb", keep=size - 1000, times=None)
    with (
        UpstreamClient(cache_dir=None, backoff=0.0) as client,
        client.open_stream(url, size, sha) as stream,
    ):
        first = stream.read(4096)
        assert len(first) == 4096
        with pytest.raises(
            PackageError,
            match=re.escape(url)
            + r": connection failed after \d+ bytes: .* \(gave up after 4 attempts\)",
        ):
            stream.read()
    # Each answer asked for the rest (this server ignores Range and starts over).
    ranges = [r.headers.get("Range") for r in mirror_server.log]
    assert ranges[0] is None
    assert len(ranges) == 4
    assert all(r is not None and r.startswith("bytes=") for r in ranges[1:])


def test_open_stream_http_error(mirror_server: FaultyMirror, blob: tuple[str, int, str]) -> None:
    url, size, sha = blob
    client = UpstreamClient(cache_dir=None, backoff=0.0)
    missing = url.replace("blob", "missing")
    with (
        pytest.raises(PackageError, match=r"pool/missing\.deb: HTTP 404"),
        client.open_stream(missing, size, sha),
    ):
        pass
    mirror_server.fail("/pool/blob.deb", 500, times=None)
    with (
        pytest.raises(PackageError, match=r"HTTP 500.*gave up after 4 attempts"),
        client.open_stream(url, size, sha),
    ):
        pass
    assert [r.status for r in mirror_server.log] == [404, 500, 500, 500, 500]
    client.close()


def test_apt_suite_with_a_slash(tmp_path: Path, mirror_server: FaultyMirror) -> None:
    # Debian's security archive names suites "buster/updates": dists/buster/updates/Release.
    base = tmp_path / "debs"
    base.mkdir()
    debs = [_decoy(base, "linux-image-4.19.0-21-cloud-amd64-dbg", "4.19.249-2")]
    write_apt_repo(mirror_server.directory, "security", "buster/updates", "main", "amd64", debs)
    repo = Repository(
        id="security",
        kind="apt",
        url=f"{mirror_server.url}security/",
        packages=("linux-image-{uname}-dbg",),
        flavours=("cloud-{arch}",),
    )
    with make_client(tmp_path, mirror_server) as upstream:
        (pkg,) = discover_apt(
            upstream, repo, Source("security", suites=("buster/updates",)), "x86_64"
        )
    assert pkg.uname == "4.19.0-21-cloud-amd64"
    assert mirror_server.log[0].path == "/security/dists/buster/updates/InRelease"


# -- the environment's proxies and ~/.netrc; redirects -----------------------------------


def _repomd(server: FaultyMirror, tmp_path: Path, rpms: dict[str, Path]) -> bytes:
    root = write_rpmmd_repo(server.directory / "centos/7/x86_64", [rpms["123"]])
    return (root / "repodata/repomd.xml").read_bytes()


def test_index_requests_go_through_the_environments_proxy(
    tmp_path: Path,
    mirror_server: FaultyMirror,
    centos_rpms: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repomd = _repomd(mirror_server, tmp_path, centos_rpms)
    # The local server plays the proxy: it serves the path of the absolute URL it is
    # asked for. upstream.invalid does not resolve, so only the proxy can answer.
    monkeypatch.setenv("http_proxy", mirror_server.url)
    for var in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    url = "http://upstream.invalid/centos/7/x86_64/repodata/repomd.xml"
    with UpstreamClient(cache_dir=tmp_path / "cache", backoff=0.0) as client:
        assert client.get_index(url) == repomd
    with UpstreamClient(cache_dir=tmp_path / "cache", backoff=0.0) as client:
        assert client.get_index(url) == repomd  # revalidated through the proxy
    assert mirror_server.statuses() == [200, 304]
    monkeypatch.setenv("no_proxy", "upstream.invalid")
    with (
        pytest.raises(UpstreamIndexError, match="does not resolve"),
        UpstreamClient(cache_dir=None, backoff=0.0) as client,
    ):
        client.get_index(url)


def test_index_requests_send_netrc_credentials_per_host(
    tmp_path: Path, centos_rpms: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login mirror password s3cret\n")
    netrc.chmod(0o600)
    with FaultyMirror(tmp_path / "private", basic_auth=("mirror", "s3cret")) as server:
        repomd = _repomd(server, tmp_path, centos_rpms)
        url = f"{server.url}centos/7/x86_64/repodata/repomd.xml"
        monkeypatch.setenv("NETRC", str(tmp_path / "elsewhere"))
        with (
            pytest.raises(UpstreamIndexError, match="HTTP 401"),
            UpstreamClient(cache_dir=None, backoff=0.0) as client,
        ):
            client.get_index(url)
        monkeypatch.setenv("NETRC", str(netrc))
        with UpstreamClient(cache_dir=None, backoff=0.0) as client:
            assert client.get_index(url) == repomd
            assert client.find_index(url + ".asc") is None  # the same host: the same login
        assert server.statuses() == [401, 200, 404]


def test_an_index_request_that_redirects_is_followed(
    tmp_path: Path, mirror_server: FaultyMirror, centos_rpms: dict[str, Path]
) -> None:
    repomd = _repomd(mirror_server, tmp_path, centos_rpms)
    with Redirector(mirror_server.url) as redirector:
        url = f"{redirector.url}centos/7/x86_64/repodata/repomd.xml"
        with UpstreamClient(cache_dir=tmp_path / "cache", backoff=0.0) as client:
            assert client.get_index(url) == repomd
        assert client.stats.requests == 2  # the redirect, then where it leads
        with UpstreamClient(cache_dir=tmp_path / "cache", backoff=0.0) as client:
            assert client.get_index(url) == repomd
    assert mirror_server.statuses() == [200, 304]  # the redirect kept the conditional GET
