"""bench/fleet_packages.py: a package under another uname, its compressed blocks kept.

The fleet bench trusts it to give packages the real layout; here a small
multi-block data.tar.xz written by the xz command stands in for Debian's.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from generator.packages.decompress import xz_command
from generator.packages.xzblocks import PEEK, multi_block
from tests.kit.benchmod import load_bench

OLD, NEW = "6.1.0-57-cloud-amd64", "6.1.0-99-cloud-amd64"


fleet = load_bench("fleet_packages")


def _tar(links: dict[str, str], files: dict[str, bytes]) -> bytes:
    """The links, then the files, in order (Debian's packages have the symlinks first)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


@pytest.mark.parametrize("check", ["crc64", "crc32"])
def test_first_block_renamed_and_the_other_blocks_kept(check: str) -> None:
    vmlinux = bytes(range(256)) * 2048  # 512 KiB: the member runs on into later blocks
    tar = _tar(
        {f"./usr/lib/debug/vmlinux-{OLD}": f"boot/vmlinux-{OLD}"},
        {
            "./usr/share/doc/" + "x" * 120 + OLD: b"a long name (GNU longname entry)",
            f"./usr/lib/debug/boot/vmlinux-{OLD}": vmlinux,
            f"./usr/lib/debug/lib/modules/{OLD}/kernel/a.ko": b"module" * 50_000,
        },
    )
    cmd = [xz_command(), "-T2", "--block-size=131072", f"--check={check}", "-6", "-c"]
    original = subprocess.run(cmd, input=tar, capture_output=True, check=True).stdout
    records = fleet.xz_records(original)
    assert len(records) > 3

    renamed = fleet.rename_first_block(original, OLD, NEW)

    new_records = fleet.xz_records(renamed)
    assert new_records[1:] == records[1:]  # later blocks untouched ...
    assert multi_block(renamed[:PEEK])  # ... and btfhub still spools it as Debian's
    tail = original[12 + records[0][0] + -records[0][0] % 4 :]
    assert tail[: len(tail) // 2] in renamed  # ... byte for byte
    decoded = subprocess.run(
        [xz_command(), "-dc"], input=renamed, capture_output=True, check=True
    ).stdout
    assert len(decoded) == len(tar)
    with tarfile.open(fileobj=io.BytesIO(decoded)) as result:
        names = result.getnames()
        body = result.extractfile(f"./usr/lib/debug/boot/vmlinux-{NEW}")
        assert body is not None and body.read() == vmlinux
        link = result.getmember(f"./usr/lib/debug/vmlinux-{NEW}")
        assert link.linkname == f"boot/vmlinux-{NEW}"
    assert "./usr/share/doc/" + "x" * 120 + NEW in names
    # Past the first block names keep the real uname: nothing in the fleet reads them.
    assert f"./usr/lib/debug/lib/modules/{OLD}/kernel/a.ko" in names


def test_unames_keep_the_real_length_and_never_the_real_one() -> None:
    unames = fleet.fleet_unames("6.1.0-98-cloud-amd64", 3)
    assert unames == ["6.1.0-99-cloud-amd64", "6.1.0-97-cloud-amd64", "6.1.0-96-cloud-amd64"]
    assert {len(u) for u in unames} == {len("6.1.0-98-cloud-amd64")}


def test_a_package_renamed_whole(tmp_path: Path) -> None:
    """ar members in dpkg's order, the control file renamed, dpkg-deb reads the result."""
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: linux-image-{OLD}-dbg\nVersion: 1\nArchitecture: amd64\n"
        "Maintainer: bench <b@example.invalid>\nDescription: test\n"
    )
    boot = root / "usr" / "lib" / "debug" / "boot"
    boot.mkdir(parents=True)
    (boot / f"vmlinux-{OLD}").write_bytes(b"\x7fELF" + bytes(300_000))
    deb = tmp_path / "real.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "renamed.deb"
    fleet.renamed_package(deb, OLD, NEW, out)
    field = subprocess.run(
        ["dpkg-deb", "-f", str(out), "Package"], capture_output=True, text=True, check=True
    )
    assert field.stdout.strip() == f"linux-image-{NEW}-dbg"
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert f"./usr/lib/debug/boot/vmlinux-{NEW}" in listing
    assert not (tmp_path / "renamed.deb.partial").exists()
