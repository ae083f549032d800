"""The new repository kinds against real servers on 127.0.0.1: HTML listings
(Oracle), mirror.list (Amazon), Launchpad's API (a stand-in answering its
shapes), rpm-md with SUSE kernel names, and per-repository credentials."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.demokit.mirror import RpmPackage, write_rpmmd_repo
from generator.errors import UpstreamError
from generator.model import KernelPackage, Repository, Source
from generator.trust import TrustPolicy
from generator.upstream import launchpad
from generator.upstream.context import UpstreamContext
from generator.upstream.credentials import Credentials, CredentialsMissing, load_credentials
from generator.upstream.htmllisting import discover_htmllisting, listing_files
from generator.upstream.http import UpstreamClient, UpstreamIndexError
from generator.upstream.mirrorlist import parse_mirror_list
from generator.upstream.mirrors import Mirrors
from generator.upstream.rpmmd import discover_rpmmd
from tests.kit.launchpad import LaunchpadStandIn
from tests.kit.listing import write_html_listing
from tests.kit.mirror import FaultyMirror

ORACLE = "https://oss.oracle.com/ol7/debuginfo/"


def client_for(*pairs: str) -> UpstreamClient:
    return UpstreamClient(mirrors=Mirrors.parse(list(pairs), None), backoff=0.0)


def upstream_for(*pairs: str, cache_dir: Path | None = None) -> UpstreamContext:
    """What a run hands the listers, reading through these mirrors."""
    client = UpstreamClient(
        mirrors=Mirrors.parse(list(pairs), None), cache_dir=cache_dir, backoff=0.0
    )
    return UpstreamContext.of(client, TrustPolicy.from_sources())


def discover_launchpad(
    upstream: UpstreamContext, repo: Repository, source: Source, arch: str
) -> list[KernelPackage]:
    """Every package Launchpad lists, completed, as SourceListings does for those it keeps."""
    listed = launchpad.list_launchpad(upstream, repo, source, arch)
    return [launchpad.complete_launchpad(upstream, repo, p) for p in listed]


# -- HTML listings (Oracle) ------------------------------------------------------------


def test_listing_files_reads_every_link_form_and_keeps_only_this_directory() -> None:
    page = b"""<html><body><pre>
    <a href="?C=N;O=D">Name</a> <a href=?C=M;O=A>Last modified</a>
    <a href="/ol7/">Parent Directory</a>
    <a href="kernel-debuginfo-3.10.0-1160.el7.x86_64.rpm">kernel-debuginfo-3.10.0-1160...</a>
    <A HREF='kernel-uek-debuginfo-4.14.35-1902.300.11.el7uek.x86_64.rpm'>x</A>
    <a
       href=kernel-uek-debuginfo-5.4.17-2011.0.7.el7uek.aarch64.rpm>split over lines</a>
    <a href="kernel%2Bdebuginfo-1.0-1.x86_64.rpm">escaped</a>
    <a href="a&amp;b.rpm">entity</a>
    <a href="https://elsewhere.example/kernel-debuginfo-9.9.9-1.x86_64.rpm">other host</a>
    <a href="sub/kernel-debuginfo-9.9.9-1.x86_64.rpm">subdirectory</a>
    </pre></body></html>"""
    assert listing_files(page, ORACLE, ORACLE, ORACLE) == [
        "kernel-debuginfo-3.10.0-1160.el7.x86_64.rpm",
        "kernel-uek-debuginfo-4.14.35-1902.300.11.el7uek.x86_64.rpm",
        "kernel-uek-debuginfo-5.4.17-2011.0.7.el7uek.aarch64.rpm",
        "kernel+debuginfo-1.0-1.x86_64.rpm",
        "a&b.rpm",
    ]


ORACLE_FILES = (
    "kernel-debuginfo-3.10.0-1160.119.1.0.1.el7.x86_64.rpm",
    "kernel-debuginfo-common-x86_64-3.10.0-1160.119.1.0.1.el7.x86_64.rpm",
    "kernel-uek-debuginfo-4.14.35-1902.306.2.el7uek.x86_64.rpm",
    "kernel-uek-debuginfo-common-4.14.35-1902.306.2.el7uek.x86_64.rpm",
    "kernel-uek-debuginfo-4.14.35-1902.306.2.el7uek.aarch64.rpm",
    "kernel-uek-debuginfo-common-4.14.35-1902.306.2.el7uek.aarch64.rpm",
    "kernel-tools-debuginfo-3.10.0-1160.119.1.0.1.el7.x86_64.rpm",
    "kernel-debuginfo-3.10.0-1160.el7.src.rpm",
)


@pytest.fixture
def oracle(mirror_server: FaultyMirror) -> Iterator[UpstreamContext]:
    directory = mirror_server.directory / "oracle/ol7/debuginfo"
    directory.mkdir(parents=True)
    for name in ORACLE_FILES:
        (directory / name).write_bytes(b"not read by discovery\n")
    write_html_listing(directory, "/ol7/debuginfo")
    with upstream_for(f"https://oss.oracle.com/={mirror_server.url}oracle/") as upstream:
        yield upstream


def test_oracle_listing_gives_rhck_and_uek_per_arch_without_checksums(
    oracle: UpstreamContext,
) -> None:
    repo = Repository(
        "ol7",
        "html-listing",
        ORACLE,
        packages=("kernel-debuginfo-{uname}.rpm", "kernel-uek-debuginfo-{uname}.rpm"),
    )
    source = Source("ol7", paths=("",))

    x86 = discover_htmllisting(oracle, repo, source, "x86_64")
    arm = discover_htmllisting(oracle, repo, source, "arm64")

    assert [(p.uname, p.name) for p in x86] == [
        ("3.10.0-1160.119.1.0.1.el7.x86_64", "kernel-debuginfo"),
        ("4.14.35-1902.306.2.el7uek.x86_64", "kernel-uek-debuginfo"),
    ]
    assert [p.uname for p in arm] == ["4.14.35-1902.306.2.el7uek.aarch64"]
    # No index checksum exists: the record says so rather than inventing one.
    assert {(p.sha256, p.size, p.format) for p in x86 + arm} == {(None, None, "rpm")}
    assert x86[1].url == ORACLE + "kernel-uek-debuginfo-4.14.35-1902.306.2.el7uek.x86_64.rpm"
    assert x86[1].version == "4.14.35-1902.306.2.el7uek"


def test_oracle_listing_that_is_gone_names_its_url(
    oracle: UpstreamContext, mirror_server: FaultyMirror
) -> None:
    repo = Repository(
        "ol8", "html-listing", "https://oss.oracle.com/ol8/debuginfo/", packages=("k-{uname}.rpm",)
    )
    with pytest.raises(UpstreamIndexError, match="HTTP 404") as err:
        discover_htmllisting(oracle, repo, Source("ol8", paths=("",)), "x86_64")
    assert err.value.url == "https://oss.oracle.com/ol8/debuginfo/"


# -- mirror.list (Amazon) --------------------------------------------------------------


def test_mirror_list_first_url_with_basearch() -> None:
    body = b"# Amazon Linux mirrors\n\nhttp://packages.example/2018.03/main/$basearch\nhttp://b/\n"
    assert parse_mirror_list(body, "x86_64", "w", "u") == (
        "http://packages.example/2018.03/main/x86_64/"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "names no repository"),
        (b"# only a comment\n", "names no repository"),
        (b"file:///etc/passwd\n", "not an http"),
        (b"http://\n", "not an http"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_mirror_list_refuses_what_is_not_a_repository(body: bytes, message: str) -> None:
    with pytest.raises(UpstreamIndexError, match=message):
        parse_mirror_list(body, "x86_64", "where", "url")


def index_entry(files: Path, name: str, version: str, release: str) -> RpmPackage:
    """An x86_64 package an index lists, its file a few bytes (discovery never opens it)."""
    files.mkdir(exist_ok=True)
    path = files / f"{name}-{version}-{release}.x86_64.rpm"
    path.write_bytes(name.encode())
    return RpmPackage(path, name, version, release, "x86_64")


# -- rpm-md with SUSE kernel names -----------------------------------------------------


def test_suse_kernel_release_drops_the_rebuild_number(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    entry = functools.partial(index_entry, tmp_path / "files")
    write_rpmmd_repo(
        mirror_server.directory / "suse/update_debug",
        [
            entry("kernel-default-debuginfo", "5.3.18", "59.5.2"),
            entry("kernel-azure-debuginfo", "5.3.18", "18.24.1"),
            entry("kernel-default-debuginfo-base", "5.3.18", "59.5.2"),
        ],
    )
    repo = Repository(
        "suse",
        "rpm-md",
        "https://updates.suse.example/",
        packages=("kernel-default-debuginfo", "kernel-azure-debuginfo"),
        kernel_release="suse",
    )
    with upstream_for(f"https://updates.suse.example/={mirror_server.url}suse/") as upstream:
        found = discover_rpmmd(upstream, repo, Source("suse", paths=("update_debug/",)), "x86_64")
    assert [p.uname for p in found] == ["5.3.18-18.24-azure", "5.3.18-59.5-default"]


def test_photon_kernel_release_is_version_release_and_flavour(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    """As Photon's specs define uname_r: no architecture, -<flavour> but for linux itself."""
    entry = functools.partial(index_entry, tmp_path / "files")
    write_rpmmd_repo(
        mirror_server.directory / "photon/3.0/photon_debuginfo_3.0_x86_64",
        [
            entry("linux-debuginfo", "4.19.283", "1.ph3"),
            entry("linux-esx-debuginfo", "4.19.283", "1.ph3"),
            entry("linux-secure-debuginfo", "4.19.283", "2.ph3"),
            entry("linux-esx-devel", "4.19.283", "1.ph3"),  # not asked for
        ],
        package_dir="x86_64",
    )
    repo = Repository(
        "photon",
        "rpm-md",
        "https://packages.broadcom.example/photon/",
        packages=("linux-debuginfo", "linux-esx-debuginfo", "linux-secure-debuginfo"),
        kernel_release="photon",
    )
    source = Source("photon", paths=("3.0/photon_debuginfo_3.0_{arch}/",))
    with upstream_for(f"https://packages.broadcom.example/={mirror_server.url}") as upstream:
        found = discover_rpmmd(upstream, repo, source, "x86_64")
    assert [(p.uname, p.name) for p in found] == [
        ("4.19.283-1.ph3", "linux-debuginfo"),
        ("4.19.283-1.ph3-esx", "linux-esx-debuginfo"),
        ("4.19.283-2.ph3-secure", "linux-secure-debuginfo"),
    ]
    assert found[1].url == (
        "https://packages.broadcom.example/photon/3.0/photon_debuginfo_3.0_x86_64/"
        "x86_64/linux-esx-debuginfo-4.19.283-1.ph3.x86_64.rpm"
    )


# -- Launchpad --------------------------------------------------------------------------

LP_REPO = Repository(
    "launchpad",
    "launchpad",
    "https://api.launchpad.net/1.0/ubuntu/+archive/primary",
    packages=("linux-image-unsigned-{uname}-dbgsym", "linux-image-{uname}-dbgsym"),
    flavours=("generic",),
)


@pytest.fixture
def stand_in() -> Iterator[LaunchpadStandIn]:
    with LaunchpadStandIn() as server:
        yield server


def _file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(f"package {name}\n".encode())
    return path


def test_launchpad_lists_dbgsyms_across_pages_and_carries_size_and_sha256(
    tmp_path: Path, stand_in: LaunchpadStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launchpad, "PAGE_SIZE", 2)  # several pages from a few entries
    k42 = "5.4.0-42-generic"

    def publish(name: str, version: str, series: str = "focal", **kw: str) -> Path:
        path = _file(tmp_path, f"{name}_{version}_amd64.ddeb")
        stand_in.publish(path, name, version, series, kw.pop("arch", "amd64"), **kw)
        return path

    old = publish(f"linux-image-unsigned-{k42}-dbgsym", "5.4.0-42.46")
    new = publish(f"linux-image-unsigned-{k42}-dbgsym", "5.4.0-42.47", status="Superseded")
    publish(f"linux-image-{k42}-dbgsym", "5.4.0-42.47")  # the signed stub: ranked lower
    stub_only = publish("linux-image-5.4.0-26-generic-dbgsym", "5.4.0-26.30")
    publish("linux-image-unsigned-5.4.0-42-lowlatency-dbgsym", "5.4.0-42.47")  # flavour
    publish("linux-image-unsigned-5.4.0-48-generic-dbgsym", "5.4.0-48.52", status="Deleted")
    publish("linux-image-unsigned-5.4.0-42-generic", "5.4.0-42.47")  # not a dbgsym
    publish("linux-image-unsigned-4.15.0-20-generic-dbgsym", "4.15.0-20.21", series="bionic")
    publish("linux-image-unsigned-5.4.0-42-generic-dbgsym", "5.4.0-42.47", arch="arm64")
    assert old.exists()

    with upstream_for(*stand_in.mirror_pairs()) as upstream:
        found = discover_launchpad(upstream, LP_REPO, Source("lp", suites=("focal",)), "x86_64")

    assert [(p.uname, p.name, p.version) for p in found] == [
        ("5.4.0-26-generic", "linux-image-5.4.0-26-generic-dbgsym", "5.4.0-26.30"),
        (k42, f"linux-image-unsigned-{k42}-dbgsym", "5.4.0-42.47"),
    ]
    assert found[1].sha256 == hashlib.sha256(new.read_bytes()).hexdigest()
    assert found[1].size == new.stat().st_size
    assert found[0].sha256 == hashlib.sha256(stub_only.read_bytes()).hexdigest()
    assert found[1].url == (f"https://launchpad.net/ubuntu/+archive/primary/+files/{new.name}")
    assert found[1].format == "deb"
    # One query per flavour for its dbgsyms (both patterns end in -dbgsym), over
    # several pages; the lowlatency and non-dbgsym decoys are not even sent.
    queries = stand_in.requests_for("getPublishedBinaries")
    assert all("binary_name=-generic-dbgsym&" in q for q in queries)
    assert len(queries) == 3  # 5 generic dbgsyms of focal/amd64, 2 a page
    # File metadata is asked for the winners only.
    assert len(stand_in.requests_for("binaryFileUrls")) == 2


def test_launchpad_answer_that_is_not_json_names_the_url(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    (mirror_server.directory / "api/1.0/ubuntu/+archive").mkdir(parents=True)
    (mirror_server.directory / "api/1.0/ubuntu/+archive/primary").write_text("<html>oops")
    with (
        upstream_for(f"https://api.launchpad.net/1.0/={mirror_server.url}api/1.0/") as upstream,
        pytest.raises(UpstreamIndexError, match="not a Launchpad JSON answer") as err,
    ):
        discover_launchpad(upstream, LP_REPO, Source("launchpad", suites=("focal",)), "x86_64")
    assert err.value.url.startswith(LP_REPO.url + "?ws.op=getPublishedBinaries")


def test_launchpad_file_without_sha256_is_refused(
    tmp_path: Path, stand_in: LaunchpadStandIn
) -> None:
    path = _file(tmp_path, "linux-image-unsigned-5.4.0-42-generic-dbgsym_1_amd64.ddeb")
    stand_in.publish(path, "linux-image-unsigned-5.4.0-42-generic-dbgsym", "1", "focal")
    stand_in.publications[0].sha256 = "not-a-digest"
    with (
        upstream_for(*stand_in.mirror_pairs()) as upstream,
        pytest.raises(UpstreamIndexError, match="no usable sha256"),
    ):
        discover_launchpad(upstream, LP_REPO, Source("launchpad", suites=("focal",)), "x86_64")


# -- credentials -----------------------------------------------------------------------


def test_credentials_missing_name_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(CredentialsMissing, match="set BTFHUB_RHEL_CERT and BTFHUB_RHEL_KEY"):
        load_credentials("rhel-cdn", "rhel-cdn", {})
    with pytest.raises(CredentialsMissing, match="set BTFHUB_SUSE_PASSWORD_FILE"):
        load_credentials("suse", "suse", {"BTFHUB_SUSE_USER": "SCC_x"})
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("c")
    # A variable naming a file that is not there is the operator's mistake: an error.
    with pytest.raises(UpstreamError, match=r"BTFHUB_RHEL_KEY=.*no such file") as err:
        load_credentials(
            "rhel-cdn", "rhel-cdn", {"BTFHUB_RHEL_CERT": str(cert), "BTFHUB_RHEL_KEY": str(key)}
        )
    assert not isinstance(err.value, CredentialsMissing)
    key.write_text("k")
    assert load_credentials(
        "rhel-cdn", "rhel-cdn", {"BTFHUB_RHEL_CERT": str(cert), "BTFHUB_RHEL_KEY": str(key)}
    ) == Credentials(cert=(str(cert), str(key)))


def test_basic_auth_goes_only_to_the_repository_that_needs_it(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    creds = load_credentials(
        "suse", "suse", {"BTFHUB_SUSE_USER": "SCC_1234", "BTFHUB_SUSE_PASSWORD_FILE": str(password)}
    )
    for name in ("private/index", "public/index"):
        (mirror_server.directory / name).parent.mkdir(parents=True, exist_ok=True)
        (mirror_server.directory / name).write_text(name)
    with client_for(f"https://updates.suse.example/={mirror_server.url}") as client:
        client.authorize("https://updates.suse.example/private/", creds)
        client.get_index("https://updates.suse.example/private/index")
        client.get_index("https://updates.suse.example/public/index")
    (private,) = mirror_server.requests_for("/private/index")
    (public,) = mirror_server.requests_for("/public/index")
    expected = "Basic " + base64.b64encode(b"SCC_1234:s3cret").decode()
    assert private.headers.get("Authorization") == expected
    assert "Authorization" not in public.headers
    assert json.dumps(public.headers).count("s3cret") == 0


def test_launchpad_file_list_is_fetched_once_per_kernel_with_a_cache(
    tmp_path: Path, stand_in: LaunchpadStandIn
) -> None:
    path = _file(tmp_path, "linux-image-unsigned-5.4.0-42-generic-dbgsym_1_amd64.ddeb")
    stand_in.publish(path, "linux-image-unsigned-5.4.0-42-generic-dbgsym", "1", "focal")
    source = Source("lp", suites=("focal",))
    for _ in range(2):  # two runs sharing the on-disk index cache
        with upstream_for(*stand_in.mirror_pairs(), cache_dir=tmp_path / "cache") as upstream:
            (pkg,) = discover_launchpad(upstream, LP_REPO, source, "x86_64")
            assert pkg.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(stand_in.requests_for("binaryFileUrls")) == 1
    assert len(stand_in.requests_for("getPublishedBinaries")) == 2  # the listing may move on


@pytest.mark.parametrize(
    ("packages", "flavours", "names"),
    [
        # Ubuntu's: both patterns end in -dbgsym, so one query per flavour covers both.
        (
            ("linux-image-unsigned-{uname}-dbgsym", "linux-image-{uname}-dbgsym"),
            ("generic", "aws", "gke", "gkeop"),
            ["-aws-dbgsym", "-generic-dbgsym", "-gke-dbgsym", "-gkeop-dbgsym"],
        ),
        # No flavours: the beginnings, "linux-image-" covering "linux-image-unsigned-".
        (
            ("linux-image-unsigned-{uname}-dbgsym", "linux-image-{uname}-dbgsym"),
            (),
            ["linux-image-"],
        ),
        # A pattern ending at {uname}: its names need not hold -<flavour>-dbgsym.
        (
            ("linux-image-{uname}-dbgsym", "kernel-{uname}"),
            ("generic",),
            ["kernel-", "linux-image-"],
        ),
    ],
)
def test_launchpad_query_names_are_substrings_of_every_wanted_name(
    packages: tuple[str, ...], flavours: tuple[str, ...], names: list[str]
) -> None:
    repo = Repository("lp", "launchpad", LP_REPO.url, packages=packages, flavours=flavours)
    assert launchpad.query_names(repo, "amd64") == names
