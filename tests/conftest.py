"""Shared pytest fixtures.

Every test runs hermetic (see hermetic_environment): no user or system git
configuration, no mirrors from the developer's environment. A run leaves no
process behind (no_process_left_behind): not a gpg-agent, not a server, not
a pahole.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from generator.demokit.elf import build_elf
from generator.demokit.signing import Signer, default_signer
from generator.trust import KEYRINGS_ENV
from tests.kit import cilium, processes, shelf
from tests.kit.registry import Registry

if TYPE_CHECKING:
    from tests.kit.mirror import FaultyMirror

# Some fixtures import their kit module when first used: xdist's controller
# loads this file too (before it starts the workers) and runs no test, and
# tests/kit/hubrepo.py and mirror.py import most of generator (0.15 s).


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run tests marked slow (a real distribution kernel: minutes, ~300 MB)",
    )


def pytest_configure(config: pytest.Config) -> None:
    _keep_bytecode()
    _temp_in_memory()
    # Before any fixture starts a process: every process of the run inherits the mark.
    os.environ.setdefault(processes.RUN_MARKER, f"{os.getpid()}-{uuid.uuid4().hex}")
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is not None:
        # An xdist worker checks its own processes only: the other worker's are still running.
        os.environ[processes.RUN_MARKER] += f"-{worker}"


# A RAM file system most Linux machines mount: where a run's temporary files go.
MEMORY_TMP = Path("/dev/shm")


def _temp_in_memory() -> None:
    """Temporary files (pytest's tmp_path, every tool's TMPDIR) on a tmpfs when there is one.

    The tests write hubs the way btfhub writes one: every file fsynced before
    its rename, the lock file too. On a disk each fsync waits for the disk
    (some 400 in tests/test_reconcile_e2e.py alone, a third of its wall time);
    on a tmpfs it returns at once, with the same file system otherwise
    (renames, hard links, ENOSPC). An explicit TMPDIR or --basetemp is kept.
    Set before the workers and the tests' processes start, so they inherit it;
    pytest's numbered directories (pytest-of-USER/pytest-N) are kept there as
    in /tmp, the last three runs.
    """
    if "TMPDIR" in os.environ or not _is_tmpfs(MEMORY_TMP) or not os.access(MEMORY_TMP, os.W_OK):
        return
    os.environ["TMPDIR"] = str(MEMORY_TMP)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again


def _is_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[1:3] == [str(path), "tmpfs"] for line in mounts)


def _keep_bytecode() -> None:
    """Compiled modules kept where Python keeps them, even with PYTHONDONTWRITEBYTECODE set.

    Without a cache every process compiles all it imports again: pytest's
    rewritten test modules (5-9 s of CPU in each worker) and every btfhub a
    test starts (a quarter of its 0.8 s). The usual __pycache__ directories,
    not a PYTHONPYCACHEPREFIX: under a prefix Python ignores the bytecode
    pip wrote for site-packages, the interpreter's for the standard library
    and scripts/setup.sh's for generator/, and a fresh clone's first run
    compiled some 1,000 modules again in every worker (90 s against 77 s).
    Set before the workers and the tests' processes start, so they inherit it.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """-n auto (pyproject's addopts): every core for whole directories, one process for files.

    A worker costs a second or two to start; a run of a few test files is quicker without.
    """
    if all(Path(arg.split("::")[0]).is_dir() for arg in config.args):
        return None  # xdist's default: one worker per core
    return 0


# Modules of few tests that each take seconds (a browser, SIGKILLed builds of a
# 40 MB package, the demo, the cilium build). xdist's loadscope hands out modules
# by their number of tests, most first, so these came last and one worker ran
# them alone at the end of the run. They go first instead.
LONG_MODULES = (
    "tests/test_site_browser.py",
    "tests/test_kill_safety.py",
    "tests/test_demo.py",
    "tests/test_modules_core.py",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """loadscope with LONG_MODULES handed out first (else xdist's own scheduler)."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LongModulesFirst(LoadScopeScheduling):  # type: ignore[misc]
        def _assign_work_unit(self, node: Any) -> None:
            # xdist's own queue (an OrderedDict of scope -> tests); if a later xdist
            # keeps it otherwise, its own order stands rather than the run failing.
            queue = getattr(self, "workqueue", None)
            for scope in LONG_MODULES if isinstance(queue, OrderedDict) else ():
                if scope in queue:
                    queue.move_to_end(scope, last=False)
                    break
            super()._assign_work_unit(node)

    return LongModulesFirst(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (make slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Fails the run (an error at its last teardown) if a process it started outlives it.

    First of the session fixtures, so it checks after all the others have
    closed; the process's default signer is closed here (its gpg-agent with it).
    """
    yield
    default_signer().close()
    left = processes.left_behind(os.environ[processes.RUN_MARKER])
    assert not left, "processes this test run left behind (now killed): " + "; ".join(
        f"{pid}: {line}" for pid, line in sorted(left.items())
    )


@pytest.fixture(scope="session", autouse=True)
def trusted_test_key() -> Iterator[Path]:
    """The test mirrors' signing key, trusted by every run as an operator would (BTFHUB_KEYRINGS).

    The demokit writers sign Release files and RPMs with it; a test that
    needs an untrusted signature makes a Signer of its own.
    """
    key = default_signer().public_key
    before = os.environ.get(KEYRINGS_ENV)
    os.environ[KEYRINGS_ENV] = str(key)
    yield key
    if before is None:
        os.environ.pop(KEYRINGS_ENV, None)
    else:
        os.environ[KEYRINGS_ENV] = before


def run_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test run's own temp directory, which every xdist worker of the run shares."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def package_shelf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The run's packages, each built once (tests/kit/shelf.py); tests get copies."""
    directory = run_directory(tmp_path_factory) / "shelf"
    shelf.open_shelf(directory)
    yield directory
    shelf.close_shelf()


@pytest.fixture
def gpg_home(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """Makes a new short directory for a GnuPG home of the test's own, at each call.

    gpg-agent puts its sockets in the home, and a socket's path holds at most
    107 bytes: tmp_path, named after the test, leaves too little room below it.
    """
    return lambda: tmp_path_factory.mktemp("gpg")


@pytest.fixture(scope="session")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signer]:
    """A key no run trusts (made once; its gpg-agent stopped at the end of the run)."""
    signer = Signer(tmp_path_factory.mktemp("gpg") / "stranger", "stranger")
    yield signer
    signer.close()


@pytest.fixture(scope="session")
def rsa_signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signer]:
    """An RSA-2048 key, as EL7 and SHA-1 era archives used (gpg's default is ed25519)."""
    signer = Signer(tmp_path_factory.mktemp("gpg") / "rsa", "el7 style", algorithm="rsa2048")
    yield signer
    signer.close()


@pytest.fixture(autouse=True)
def hermetic_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user or system git config, commits authored by BOT, no BTFHUB_MIRRORS.

    A test that wants one of these sets it itself (monkeypatch.setenv).
    """
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    from tests.kit.hubrepo import BOT

    monkeypatch.setenv("BTFHUB_GIT_AUTHOR", BOT)
    monkeypatch.delenv("BTFHUB_MIRRORS", raising=False)
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def fixture_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gcc -g ELF with DWARF and no .BTF: stands in for a vmlinux (built once per run).

    One file for every worker: the packages holding it are then the same too
    (the shelf builds each once).
    """
    return shelf.once(run_directory(tmp_path_factory) / "elf", build_elf)


@pytest.fixture(scope="session")
def relocated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An executable whose relocation sections span many multi-block xz blocks (kit/elf.py)."""
    from tests.kit.elf import build_relocated_elf

    return shelf.once(run_directory(tmp_path_factory) / "relocated", build_relocated_elf)


@pytest.fixture(scope="session")
def fixture_elf_with_btf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same ELF with a .BTF section added by pahole -J: a kernel shipping its own BTF."""
    directory = run_directory(tmp_path_factory) / "elf-btf"
    return shelf.once(directory, lambda d: build_elf(d, with_btf=True))


@pytest.fixture(scope="session")
def consumer_template(tmp_path_factory: pytest.TempPathFactory, fixture_elf: Path) -> Path:
    """The consumer hub with fixture_elf's BTF (tests/kit/consumer.py), built once per run.

    Read-only: tests take copies (consumer.copy_consumer_hub). Some 0.3 s of
    xz and rendering each, for some 30 tests and modules.
    """
    from tests.kit.consumer import build_template

    directory = run_directory(tmp_path_factory) / "consumer-hub"
    return shelf.once(directory, lambda d: build_template(d, fixture_elf))


@pytest.fixture(scope="session")
def btfcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go program reading BTF with cilium/ebpf (tests/kit/cilium.py), built once a session."""
    reason = cilium.missing()
    if reason is not None:
        pytest.skip(reason)
    return cilium.build_btfcheck(tmp_path_factory.mktemp("cilium"))


@pytest.fixture
def mirror_server(tmp_path: Path) -> Iterator[FaultyMirror]:
    """A real HTTP upstream on 127.0.0.1 serving tmp_path/"mirror"; failures on demand.

    FaultyMirror (tests/kit/mirror.py): the demo's MirrorServer plus fault injection;
    it serves an empty Launchpad archive too (tests.kit.hub.HOSTS maps the API to it).
    """
    from tests.kit.mirror import FaultyMirror

    with FaultyMirror(tmp_path / "mirror") as server:
        yield server


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One real OCI registry (docker-registry) for the session; each test its own repository."""
    running = Registry(tmp_path_factory.mktemp("registry")).start()
    yield running
    running.stop()
