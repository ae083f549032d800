"""The one HTTP transport against real servers on 127.0.0.1: a package stream that
drops and resumes, credentials that stay on their host, a server that stops
answering, and the CA bundle the environment names."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import urllib3

from generator.demokit.server import MirrorServer
from generator.errors import PackageError
from generator.upstream.credentials import Credentials
from generator.upstream.http import UpstreamClient, UpstreamIndexError
from tests.kit.mirror import FaultyMirror
from tests.kit.packageserver import Answer, PackageServer, Redirector
from tests.kit.tls import ClientCertMirrorServer, make_pki

SIZE = 3 << 20
CUT = 1_000_000  # where the first answer breaks off


@pytest.fixture(scope="module")
def package() -> bytes:
    return os.urandom(SIZE)


def read_package(server: PackageServer, data: bytes) -> tuple[bytes, bool]:
    """The bytes a reader gets from the server's package, and whether the stream verified."""
    sha256 = hashlib.sha256(data).hexdigest()
    with (
        UpstreamClient(cache_dir=None, backoff=0.0) as client,
        client.open_stream(server.package_url, len(data), sha256) as stream,
    ):
        got = b"".join(iter(lambda: stream.read(1 << 16), b""))
        return got, stream.verified


def test_a_dropped_package_resumes_with_range_from_the_byte_it_reached(package: bytes) -> None:
    with PackageServer([Answer(package, cut=CUT), Answer(package)]) as server:
        got, verified = read_package(server, package)
    assert got == package
    assert verified
    first, second = server.served
    assert (first.status, first.sent, "Range" in first.headers) == (200, CUT, False)
    # Asked for the rest from the byte the stream had when the connection broke
    # (at most CUT: urllib3 may not hand out the last partial read), for the same version.
    start = int(second.headers["Range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < start <= CUT
    assert second.headers["If-Range"].startswith('"')
    assert (second.status, second.sent) == (206, SIZE - start)


def test_a_server_that_ignores_range_restarts_the_hash_from_zero(package: bytes) -> None:
    answers = [Answer(package, cut=CUT, ranges=False), Answer(package, ranges=False)]
    with PackageServer(answers) as server:
        got, verified = read_package(server, package)
    assert got == package
    assert verified  # the SHA-256 over the second answer alone matched
    _, second = server.served
    assert "Range" in second.headers
    assert (second.status, second.sent) == (200, SIZE)


def test_a_package_that_changed_between_answers_fails_the_stream(package: bytes) -> None:
    other = bytes(b ^ 0xFF for b in package[:CUT]) + package[CUT:]
    answers = [Answer(package, cut=CUT, ranges=False), Answer(other, ranges=False)]
    with (
        PackageServer(answers) as server,
        pytest.raises(PackageError, match=r"the package changed while it was read"),
    ):
        read_package(server, package)


def read_with_tail(server: PackageServer, data: bytes, n: int) -> tuple[bytes | None, bool]:
    """The package's last n bytes read ahead, once 100 bytes are in; whether it verified."""
    sha256 = hashlib.sha256(data).hexdigest()
    with (
        UpstreamClient(cache_dir=None, backoff=0.0) as client,
        client.open_stream(server.package_url, len(data), sha256) as stream,
    ):
        stream.read(100)
        tail = stream.read_tail(n)
        while stream.read(1 << 16):
            pass
        return tail, stream.verified


def test_a_tail_read_ahead_is_the_package_s_last_bytes_and_checked_at_the_end(
    package: bytes,
) -> None:
    with PackageServer([Answer(package)]) as server:
        tail, verified = read_with_tail(server, package, 65536)
    assert tail == package[-65536:]
    assert verified
    (ahead,) = [s for s in server.served if s.headers.get("Range", "").startswith("bytes=-")]
    assert ahead.headers["Range"] == "bytes=-65536"
    assert ahead.headers["If-Range"].startswith('"')  # the ETag of the version being read
    assert (ahead.status, ahead.sent) == (206, 65536)
    # A stream that broke off and resumed (with Range from the byte reached) still checks it.
    with PackageServer([Answer(package, cut=CUT), Answer(package)]) as server:
        assert read_with_tail(server, package, 65536) == (package[-65536:], True)
    resumed = [s.headers.get("Range", "") for s in server.served]
    assert any(r.startswith("bytes=") and r.endswith("-") for r in resumed)


def test_a_tail_that_is_not_the_package_s_own_fails_the_package(package: bytes) -> None:
    """A mirror lying about the last bytes (which a .deb's blocks are listed from)."""
    forged = package[:-1000] + bytes(1000)
    with (
        PackageServer([Answer(package)], forged_tail=forged) as server,
        pytest.raises(PackageError, match=r"last 65536 bytes, fetched apart .* not the package"),
    ):
        read_with_tail(server, package, 65536)


def test_no_tail_from_a_server_that_ignores_range(package: bytes) -> None:
    with PackageServer([Answer(package, ranges=False)]) as server:
        # Its answer, the whole package, is closed unread (the server may still be writing it).
        assert read_with_tail(server, package, 65536) == (None, True)


def test_a_stream_that_keeps_breaking_gives_up_after_the_attempts(package: bytes) -> None:
    # Every answer breaks off after 100 kB: the retry policy's budget, not progress, ends it.
    with (
        PackageServer([Answer(package, cut=100_000)]) as server,
        pytest.raises(
            PackageError,
            match=re.escape(server.package_url)
            + r": connection failed after \d+ bytes: .*\(gave up after 4 attempts\)",
        ),
    ):
        read_package(server, package)
    assert len(server.served) == 4


def test_credentials_do_not_follow_a_redirect_to_another_host(
    tmp_path: Path, mirror_server: FaultyMirror
) -> None:
    (mirror_server.directory / "index").write_text("the index\n")
    with Redirector(mirror_server.url) as private:
        with UpstreamClient(cache_dir=None, backoff=0.0) as client:
            client.authorize(private.url, Credentials(auth=("SCC_1234", "s3cret")))
            assert client.get_index(f"{private.url}index") == b"the index\n"
        token = base64.b64encode(b"SCC_1234:s3cret").decode()
        assert [h.get("Authorization") for h in private.headers] == [f"Basic {token}"]
    (served,) = mirror_server.requests_for("/index")
    assert "Authorization" not in served.headers
    assert "s3cret" not in str(served.headers) and token not in str(served.headers)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


def test_a_server_that_stops_answering_times_out_and_is_retried(silent_server: str) -> None:
    url = f"{silent_server}dists/focal/Release"
    with UpstreamClient(cache_dir=None, attempts=2, backoff=0.0, timeout=(2.0, 0.3)) as client:
        with pytest.raises(UpstreamIndexError) as err:
            client.get_index(url)
        assert client.stats.requests == 2
    assert err.value.cause == "the server stopped answering"
    assert not err.value.unreachable
    assert str(err.value).startswith(f"{url}: the server stopped answering")
    assert str(err.value).endswith("(gave up after 2 attempts)")


def test_the_ca_bundle_the_environment_names_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path / "pki")
    with ClientCertMirrorServer(tmp_path / "cdn", pki) as cdn:
        (cdn.directory / "index").write_text("entitled\n")
        url = f"{cdn.url}index"
        client_cert = Credentials(cert=(str(pki.client_cert), str(pki.client_key)))
        with UpstreamClient(cache_dir=None, backoff=0.0) as client:
            client.authorize(cdn.url, client_cert)
            with pytest.raises(UpstreamIndexError, match="TLS verification failed"):
                client.get_index(url)
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
        with UpstreamClient(cache_dir=None, backoff=0.0) as client:
            client.authorize(cdn.url, client_cert)
            assert client.get_index(url) == b"entitled\n"


def test_a_bandwidth_limited_mirror_shares_its_rate_among_downloads(tmp_path: Path) -> None:
    """MirrorServer(rate=...) is one link: two downloads at once get half of it each.

    (bench/fleet_bench.py's runner network.) Only a lower bound on the time
    is asserted: a loaded machine can make it slower, never faster.
    """
    size, rate = 1 << 20, 4 << 20  # two files of 1 MiB at 4 MiB/s: at least 0.5 s
    for name in ("a", "b"):
        (tmp_path / "mirror" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "mirror" / name).write_bytes(os.urandom(size))
    with MirrorServer(tmp_path / "mirror", rate=rate) as server:
        start = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            bodies = list(pool.map(lambda n: urllib3.request("GET", server.url + n).data, "ab"))
        elapsed = time.monotonic() - start
    assert [len(b) for b in bodies] == [size, size]
    assert elapsed >= 0.95 * 2 * size / rate
    assert server.bytes_sent == 2 * size


def test_the_demo_mirror_serves_only_its_directory_and_follows_links_added_later(
    tmp_path: Path,
) -> None:
    """MirrorServer remembers where a path leads (a no-op asks thousands): never beyond
    its directory, and a path that led nowhere is looked up again once a link is added."""
    mirror, outside = tmp_path / "mirror", tmp_path / "secret"
    (mirror / "el" / "7").mkdir(parents=True)
    (mirror / "el" / "7" / "repomd.xml").write_bytes(b"<repomd/>")
    (mirror / "dir").mkdir()
    (mirror / "dir" / "index.html").write_bytes(b"<html/>")
    outside.write_bytes(b"not served")
    (mirror / "out").symlink_to(outside)
    pool = urllib3.PoolManager()
    with MirrorServer(mirror) as server:

        def get(path: str, **headers: str) -> tuple[int, bytes]:
            answer = pool.request("GET", server.url + path, headers=headers, redirect=False)
            return answer.status, answer.data

        assert get("el/7/repomd.xml") == get("el/7/repomd.xml") == (200, b"<repomd/>")
        assert get("gone/7/repomd.xml")[0] == 404
        (mirror / "gone").symlink_to(mirror / "el")
        assert get("gone/7/repomd.xml") == (200, b"<repomd/>")
        assert get("dir/") == (200, b"<html/>")
        for escape in ("out", "out", "%2e%2e/secret", "el/../../secret"):
            assert get(escape)[0] == 404, escape
        etag = pool.request("HEAD", server.url + "el/7/repomd.xml").headers["ETag"]
        assert get("el/7/repomd.xml", **{"If-None-Match": etag}) == (304, b"")
        (mirror / "el" / "7" / "repomd.xml").write_bytes(b"<repomd>changed</repomd>")
        assert get("el/7/repomd.xml", **{"If-None-Match": etag})[0] == 200


def test_the_demo_mirror_serves_one_range_as_a_real_mirror_does(tmp_path: Path) -> None:
    """A range from a byte on (a resumed stream), between two, or the last bytes (a tail)."""
    (tmp_path / "p.deb").write_bytes(bytes(range(100)))
    pool = urllib3.PoolManager()
    with MirrorServer(tmp_path) as server:

        def get(**headers: str) -> tuple[int, str | None, bytes]:
            answer = pool.request("GET", server.url + "p.deb", headers=headers)
            return answer.status, answer.headers.get("Content-Range"), answer.data

        assert get(Range="bytes=90-") == (206, "bytes 90-99/100", bytes(range(90, 100)))
        assert get(Range="bytes=2-4") == (206, "bytes 2-4/100", bytes([2, 3, 4]))
        assert get(Range="bytes=-3") == (206, "bytes 97-99/100", bytes([97, 98, 99]))
        assert get(Range="bytes=-300")[:2] == (206, "bytes 0-99/100")
        etag = pool.request("HEAD", server.url + "p.deb").headers["ETag"]
        assert get(Range="bytes=-3", **{"If-Range": etag})[0] == 206
        # Another version named, several ranges, none inside the file: the whole file.
        for headers in (
            {"Range": "bytes=-3", "If-Range": '"other"'},
            {"Range": "bytes=0-1,5-6"},
            {"Range": "bytes=200-"},
        ):
            assert get(**headers) == (200, None, bytes(range(100))), headers
