"""Errors a person reads when upstream cannot be reached: fast, one line per host, a hint.

Offline, a new user's first `btfhub plan --distro ubuntu` used to take 28 s
(four attempts with backoff for each of six URLs on a host whose name does
not resolve), print six copies of urllib3's "Max retries exceeded" text and
exit 0. Failures retrying cannot fix (name resolution, TLS verification,
404) now fail at once, and the releases a dead host blocks share one line.
"""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.catalog import load_catalog
from generator.cli import main
from generator.model import Selection
from generator.planner import select
from generator.upstream.http import UpstreamClient, UpstreamIndexError
from tests.kit.hub import closed_port, make_hub, quick_upstream
from tests.kit.mirror import FaultyMirror

UBUNTU = "http://ddebs.ubuntu.com/"


def ubuntu_targets(hub: Path) -> list[str]:
    """The (release, arch) of Ubuntu the hub's catalog builds: all behind one host."""
    catalog = load_catalog(hub)
    selected = select(catalog, Selection(distro="ubuntu"))
    assert len(selected) > 1
    return sorted(f"{d.id}/{r.id}/{arch}" for d, r, arch in selected)


def host_lines(text: str, host: str) -> list[str]:
    return [line for line in text.splitlines() if f"{host}: cannot be reached" in line]


def test_a_name_that_does_not_resolve_fails_at_once_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = make_hub(tmp_path / "hub")
    mirror = f"--mirror={UBUNTU}=http://nonexistent.invalid/"
    start = time.monotonic()
    # The default client, real backoff included: only the absence of retries keeps it quick.
    code = main(["plan", "--root", str(hub), "--distro", "ubuntu", mirror])
    elapsed = time.monotonic() - start
    out, err = capsys.readouterr()
    assert code == 1
    assert elapsed < 8, f"took {elapsed:.1f} s: retried a name that does not resolve?"
    (line,) = host_lines(out, "nonexistent.invalid")
    assert "(the host name does not resolve)" in line
    blocked = line.split("release/arch: ", 1)[1]
    assert sorted(blocked.split(", ")) == ubuntu_targets(hub)
    assert "hint:" in out and "--mirror" in out
    assert "Max retries exceeded" not in out + err
    assert "discovery failed" not in out  # no per-release copies of the same failure


def test_a_closed_port_names_its_host_once_and_plan_json_still_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = make_hub(tmp_path / "hub")
    dead = f"127.0.0.1:{closed_port()}"
    argv = ["plan", "--root", str(hub), "--distro", "ubuntu", f"--mirror={UBUNTU}=http://{dead}/"]
    code = main([*argv, "--json"], upstream=quick_upstream)
    out, err = capsys.readouterr()
    assert code == 1
    errors = json.loads(out)["errors"]
    targets = sorted(f"{e['distro']}/{e['release']}/{e['arch']}" for e in errors)
    assert targets == ubuntu_targets(hub)
    assert {(e["host"], e["cause"], e["unreachable"]) for e in errors} == {
        (dead, "the connection was refused", True)
    }
    (line,) = host_lines(err, dead)
    assert line.startswith(f"FAILED {dead}: cannot be reached (the connection was refused)")
    assert line.endswith(", ".join(ubuntu_targets(hub)))
    assert "--mirror" in err


def test_no_retries_for_a_name_that_does_not_resolve() -> None:
    with UpstreamClient(cache_dir=None) as client:  # the default backoff of 1 s
        with pytest.raises(UpstreamIndexError) as err:
            client.get_index("http://nonexistent.invalid/dists/focal/Release")
        assert client.stats.requests == 1
    assert err.value.cause == "the host name does not resolve"
    assert err.value.unreachable
    assert err.value.host == "nonexistent.invalid"


def test_no_retries_for_404(mirror_server: FaultyMirror) -> None:
    with UpstreamClient(cache_dir=None) as client:
        with pytest.raises(UpstreamIndexError) as err:
            client.get_index(f"{mirror_server.url}dists/focal/Release")
        assert client.stats.requests == 1
    assert err.value.cause == "HTTP 404 Not Found"
    assert not err.value.unreachable


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate no one trusts."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            # P-256, not RSA: the key is made in milliseconds, not up to a second.
            *("openssl", "req", "-x509", "-nodes", "-days", "1", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_no_retries_when_tls_verification_fails(https_server: str) -> None:
    with UpstreamClient(cache_dir=None) as client:
        with pytest.raises(UpstreamIndexError) as err:
            client.get_index(f"{https_server}dists/focal/Release")
        assert client.stats.requests == 1
    assert err.value.cause == "TLS verification failed"
    assert not err.value.unreachable
