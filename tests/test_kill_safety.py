"""Interrupted runs leave nothing behind: SIGKILL at several moments, and a full disk.

A real `btfhub reconcile` process builds a large package (an ELF of some
40 MB, a second of pahole, in a real .ddeb, served over HTTP) and is killed with
SIGKILL while it extracts the vmlinux, while pahole runs and right after
pahole is done (tarball and archive write). After each kill: no tool
(pahole, xz) survives its parent, archive/ holds no partial or temporary
file, index.json is untouched; the next run removes the dead runs' work
directories and finishes the job. A full disk (a size-limited tmpfs, or
RLIMIT_FSIZE where mounting is not allowed) ends the run with a clear
message, nothing partial, and a later run with space recovers.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from generator.btf.build import build_kernel_btf
from generator.demokit.mirror import AptPackage
from generator.errors import StorageError
from generator.workdir import OWNER, WORK_DIR
from tests.kit.elf import build_large_elf
from tests.kit.hub import build_ddeb, focal_suites, make_hub, mirror_args, write_ubuntu
from tests.kit.mirror import FaultyMirror
from tests.kit.processes import descendants, wait_gone

UNAME = "5.4.0-42-generic"
FOCAL = ("--distro", "ubuntu", "--release", "focal", "--arch", "x86_64")
ARCHIVED = f"archive/ubuntu/20.04/x86_64/{UNAME}.btf.tar.xz"
POLL = 0.005
MOMENT_TIMEOUT = 120.0
TOOLS = ("pahole", "xz", "setpriv", "sh", "llvm-objcopy")


@pytest.fixture(scope="module")
def large_vmlinux(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vmlinux pahole takes some 0.4 s of CPU on, padded past the 16 MiB and 24 MiB limits below.

    The padding, not more DWARF, makes it large: each run of pahole on it stays short.
    Its DWARF is 12 copies of one compile unit of 750 types: as much pahole work
    as 6 of 1,500, for half the compiling (gcc's time grows with the types).
    """
    return build_large_elf(tmp_path_factory.mktemp("large"), copies=12, types=750, padding=32 << 20)


@pytest.fixture(scope="module")
def large_package(tmp_path_factory: pytest.TempPathFactory, large_vmlinux: Path) -> AptPackage:
    """focal's unsigned dbgsym of UNAME, holding the large vmlinux (zstd, as fast as real xz)."""
    pkg: AptPackage = build_ddeb(
        tmp_path_factory.mktemp("pkgs"),
        f"linux-image-unsigned-{UNAME}-dbgsym",
        "5.4.0-42.46",
        UNAME,
        large_vmlinux,
        "zst",
    )
    return pkg


@pytest.fixture(scope="module")
def large_mirror(
    tmp_path_factory: pytest.TempPathFactory, large_package: AptPackage
) -> Iterator[FaultyMirror]:
    with FaultyMirror(tmp_path_factory.mktemp("mirror")) as server:
        write_ubuntu(server, focal_suites([large_package]))
        yield server


# -- processes -------------------------------------------------------------------------


# -- the hub ---------------------------------------------------------------------------


def start(hub: Path, server: FaultyMirror, **popen: object) -> subprocess.Popen[bytes]:
    # A killed btfhub cannot remove its temporary files (a keyring's directory):
    # they go below the test's own directory, not the machine's /tmp.
    tmp = hub.parent / "killed-tmp"
    tmp.mkdir(exist_ok=True)
    popen.setdefault("env", {**os.environ, "TMPDIR": str(tmp)})
    return subprocess.Popen(
        [
            sys.executable,
            *("-m", "generator", "reconcile", "--root", str(hub)),
            # One build at a time (the default is one per core): these tests
            # stop or starve a run between kernels.
            *("--jobs", "1"),
            *mirror_args(server),
            *FOCAL,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,  # type: ignore[arg-type]
    )


def work_dirs(hub: Path) -> list[Path]:
    base = hub / WORK_DIR
    return sorted(p for p in base.iterdir()) if base.is_dir() else []


def extracting(hub: Path, pid: int) -> bool:
    return any(p.stat().st_size > 0 for p in (hub / WORK_DIR).glob("*/kernel-*/vmlinux-*"))


def encoding(pid: int) -> bool:
    """Whether pahole is encoding under pid (not one of its --version/--help probes)."""
    for child, comm in descendants(pid).items():
        if comm != "pahole":
            continue
        try:
            # The encoding run names the kernel's file; the probes do not.
            if UNAME.encode() in Path(f"/proc/{child}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def in_pahole(hub: Path, pid: int) -> bool:
    return encoding(pid)


def after_pahole() -> Callable[[Path, int], bool]:
    seen = {"pahole": False}

    def moment(hub: Path, pid: int) -> bool:
        running = encoding(pid)
        if running:
            seen["pahole"] = True
        return seen["pahole"] and not running

    return moment


def assert_whole(hub: Path, index_before: bytes | None) -> None:
    """archive/ holds only complete BTF tarballs; index.json is as before the killed run."""
    archive = hub / "archive"
    files = sorted(p for p in archive.rglob("*") if p.is_file()) if archive.exists() else []
    for path in files:
        assert path.name.endswith(".btf.tar.xz") and not path.name.startswith("."), path
        with tarfile.open(path, "r:xz") as tar:
            (member,) = tar.getmembers()
            body = tar.extractfile(member)
            assert body is not None and body.read(2) in (b"\x9f\xeb", b"\xeb\x9f")
    index = hub / "index.json"
    assert (index.read_bytes() if index.exists() else None) == index_before
    stray = [p for p in hub.iterdir() if p.name.endswith(".tmp")]
    assert stray == []


def test_sigkill_at_several_moments_leaves_nothing_behind(
    tmp_path: Path, large_mirror: FaultyMirror
) -> None:
    hub = make_hub(tmp_path / "hub")
    moments: list[tuple[str, Callable[[Path, int], bool]]] = [
        ("extracting vmlinux", extracting),
        ("pahole running", in_pahole),
        ("right after pahole", after_pahole()),
    ]
    left_before: list[Path] = []
    for label, moment in moments:
        proc = start(hub, large_mirror)
        deadline = time.monotonic() + MOMENT_TIMEOUT
        while not moment(hub, proc.pid):
            assert proc.poll() is None, f"{label}: the run ended first: {proc.communicate()}"
            assert time.monotonic() < deadline, f"{label}: never reached"
            time.sleep(POLL)
        tools = {p: c for p, c in descendants(proc.pid).items() if c in TOOLS}
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        # pahole has seconds of work left here: only the death signal ends it this soon.
        assert wait_gone(tools) == {}, f"{label}: tools outlived btfhub"
        if label == "pahole running":
            assert "pahole" in tools.values()
        assert_whole(hub, None)
        assert not (hub / ARCHIVED).exists()
        # The killed run left its work directory; it swept the one before.
        left = work_dirs(hub)
        assert len(left) == 1 and (left[0] / OWNER).exists(), left
        assert left != left_before
        left_before = left

    proc = start(hub, large_mirror)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    assert "summary: 1 built" in out.decode()
    assert work_dirs(hub) == []  # the dead runs' directories were swept, ours removed
    assert (hub / ARCHIVED).is_file()
    assert_whole(hub, (hub / "index.json").read_bytes())
    index = json.loads((hub / "index.json").read_text())
    kernel = index["distributions"]["ubuntu"]["releases"]["focal"]["architectures"]["x86_64"]
    assert kernel["kernels"][UNAME]["state"] == "archived"


# -- a full disk -------------------------------------------------------------------------


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    return done.returncode == 0


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def assert_failed_cleanly(hub: Path, proc: subprocess.Popen[bytes]) -> None:
    """The run ended on the full disk with a clear message, leaving nothing behind."""
    out, err = proc.communicate(timeout=600)
    message = err.decode()
    assert proc.returncode == 1, (out, message)
    assert "Traceback" not in message
    assert "btfhub: error: cannot write" in message, message
    assert "free some space and run again" in message
    assert not (hub / "archive").exists() or not any((hub / "archive").rglob("*"))
    assert work_dirs(hub) == []  # the run cleaned up after itself
    assert not (hub / "index.json").exists()  # nothing recorded: not the kernel's failure


def test_full_disk_fails_cleanly_stops_before_the_next_download_and_the_next_run_recovers(
    tmp_path: Path, large_package: AptPackage, fixture_elf: Path
) -> None:
    """A file-size limit (RLIMIT_FSIZE), then a full tmpfs; a run with space then recovers.

    One hub for both ways to run out, so the recovery's full build runs once.
    The tmpfs needs root to mount; without it the file-size limit still covers
    the disk-full path. The upstream holds a second, small kernel after the
    large one: the run that hit the full disk does not even download it.
    """
    small_uname = "5.4.0-77-generic"
    small_package = build_ddeb(
        tmp_path / "pkgs",
        f"linux-image-unsigned-{small_uname}-dbgsym",
        "5.4.0-77.1",
        small_uname,
        fixture_elf,
    )
    small = tmp_path / "small"
    mounted = _tmpfs(small, "24m")
    try:
        with FaultyMirror(tmp_path / "mirror") as server:
            write_ubuntu(server, focal_suites([large_package, small_package]))
            hub = make_hub(small / "hub")
            limited = start(hub, server, preexec_fn=_limit_file_size(16 << 20))
            assert_failed_cleanly(hub, limited)
            downloads = [r.path for r in server.log if r.path.endswith(".ddeb")]
            assert [Path(d).name for d in downloads] == [large_package.path.name]
            if mounted:
                assert_failed_cleanly(hub, start(hub, server))  # ENOSPC, not EFBIG
                subprocess.run(["mount", "-o", "remount,size=600m", str(small)], check=True)
            proc = start(hub, server)
            _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
        assert (hub / ARCHIVED).is_file()
        assert (hub / ARCHIVED.replace(UNAME, small_uname)).is_file()
        assert_whole(hub, (hub / "index.json").read_bytes())
    finally:
        if mounted:
            subprocess.run(["umount", str(small)], check=False)


def test_pahole_on_a_full_disk_is_a_storage_error(tmp_path: Path, large_vmlinux: Path) -> None:
    """The vmlinux fits, its BTF does not: pahole's failure is the disk's, not the kernel's."""
    pages = -(-large_vmlinux.stat().st_size // 4096)
    small = tmp_path / "small"
    # Room for the vmlinux and 256 KiB: the BTF takes over 1 MB.
    if not _tmpfs(small, str((pages + 64) * 4096)):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        work = small / "work"
        work.mkdir()
        shutil.copyfile(large_vmlinux, work / "vmlinux")
        with pytest.raises(StorageError, match=f"cannot write the BTF of {UNAME}"):
            build_kernel_btf(work / "vmlinux", UNAME, work)
        assert list((small / "work").iterdir()) == []  # the vmlinux went too
    finally:
        subprocess.run(["umount", str(small)], check=False)
