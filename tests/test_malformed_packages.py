"""Malformed packages are refused as dpkg and rpm refuse them, naming the package and member.

Each package is real: .deb/.ddeb through dpkg-deb or the ar/tar writers of
tests/kit/debpkg.py (for what dpkg-deb will not build), .rpm through rpmbuild,
then edited byte for byte where rpmbuild cannot be made to misbehave.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from generator.demokit.mirror import AptPackage
from generator.errors import MalformedPackageError, PackageError
from generator.packages import ar, extract_vmlinux
from tests.kit.debpkg import tar_bytes, tar_file, tar_link, write_ar
from tests.kit.hub import (
    archive_files,
    btfhub,
    build_ddeb,
    focal_suites,
    kernels,
    make_hub,
    mirror_args,
    write_centos,
    write_ubuntu,
)
from tests.kit.mirror import FaultyMirror
from tests.kit.rpmpkg import build_odd_rpm
from tests.kit.shelf import build_rpm
from tests.kit.streams import DEB_UNAME, RPM_UNAME, as_io, stream_of

BOOT = f"./usr/lib/debug/boot/vmlinux-{DEB_UNAME}"
MODULES = f"./usr/lib/debug/lib/modules/{DEB_UNAME}/vmlinux"
K26 = "5.4.0-26-generic"
PACKAGE = "linux-image-5.4.0-42-generic-dbgsym_5.4.0-42.46_amd64.ddeb"


def deb(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    ar = [("debian-binary", b"2.0\n"), ("control.tar.gz", b""), ("data.tar", tar_bytes(members))]
    return write_ar(tmp_path / "p.deb", ar).read_bytes()


def refused(
    data: bytes, fmt: str, uname: str, dest: Path, match: str, size: int | None = None
) -> str:
    with pytest.raises(MalformedPackageError, match=match) as info:
        extract_vmlinux(as_io(stream_of(data)), fmt, uname, dest, package=PACKAGE, size=size)
    assert not dest.exists()
    message = str(info.value)
    assert message.startswith(f"{PACKAGE}: malformed package: "), message
    return message


def device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info, None


# -- .deb / .ddeb ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "match"),
    [
        (tar_file("../../../../x", b"owned"), r"member '\.\./\.\./\.\./\.\./x' climbs out"),
        (tar_file("./usr/../../x", b"owned"), r"member '\./usr/\.\./\.\./x' climbs out"),
        (tar_file("/etc/cron.d/x", b"owned"), r"member '/etc/cron\.d/x' is an absolute path"),
        (
            tar_link("./usr/share/doc/x", "../../../../etc/shadow", hard=True),
            r"hard link target '\.\./\.\./\.\./\.\./etc/shadow' climbs out",
        ),
        (
            tar_link("./usr/share/doc/x", "/etc/shadow", hard=True),
            r"hard link target '/etc/shadow' is an absolute path",
        ),
        (
            tar_link(BOOT, "./usr/share/doc/x", hard=True),
            r"member '.*/boot/vmlinux-.*' is a hard link",
        ),
        (device(BOOT), r"member '.*/boot/vmlinux-.*' is a device"),
        (device(MODULES), r"member '.*/modules/.*/vmlinux' is a device"),
    ],
    ids=[
        "dotdot",
        "inner-dotdot",
        "absolute",
        "hardlink-out",
        "hardlink-abs",
        "hardlink-vmlinux",
        "device-vmlinux",
        "device-second-path",
    ],
)
def test_deb_hostile_member_before_vmlinux(
    tmp_path: Path,
    fixture_elf: Path,
    member: tuple[tarfile.TarInfo, bytes | None],
    match: str,
) -> None:
    data = deb(tmp_path, [member, tar_file(BOOT, fixture_elf.read_bytes())])
    refused(data, "deb", DEB_UNAME, tmp_path / "vmlinux", match)
    assert not Path("/etc/cron.d/x").exists()


def test_deb_two_vmlinux_members(tmp_path: Path, fixture_elf: Path) -> None:
    # A symlink at the vmlinux path is fine alone (Ubuntu ships two), but the
    # same name twice is a package whose meaning depends on the reader.
    elf = fixture_elf.read_bytes()
    data = deb(tmp_path, [tar_link(BOOT, "vmlinux-other"), tar_file(BOOT, elf)])
    refused(
        data, "deb", DEB_UNAME, tmp_path / "vmlinux", r"data\.tar holds '.*/boot/vmlinux-.*' twice"
    )


def test_deb_symlinks_at_the_other_paths_are_still_fine(tmp_path: Path, fixture_elf: Path) -> None:
    elf = fixture_elf.read_bytes()
    data = deb(tmp_path, [tar_link(MODULES, "../../../boot/x"), tar_file(BOOT, elf)])
    dest = tmp_path / "vmlinux"
    extract_vmlinux(as_io(stream_of(data)), "deb", DEB_UNAME, dest, package=PACKAGE)
    assert dest.read_bytes() == elf


def test_deb_tar_size_larger_than_its_member(tmp_path: Path, fixture_elf: Path) -> None:
    """The tar header promises more bytes than the ar member holds."""
    elf = fixture_elf.read_bytes()
    tar = tar_bytes([tar_file(BOOT, elf)])
    short = tar[: 512 + len(elf) // 2]  # the header, half the data
    ar = [("debian-binary", b"2.0\n"), ("control.tar.gz", b""), ("data.tar", short)]
    data = write_ar(tmp_path / "p.deb", ar).read_bytes()
    with pytest.raises(PackageError, match=r"malformed data\.tar|truncated"):
        extract_vmlinux(as_io(stream_of(data)), "deb", DEB_UNAME, tmp_path / "vmlinux")
    assert not (tmp_path / "vmlinux").exists()


def test_deb_ar_size_larger_than_the_package(tmp_path: Path, fixture_elf: Path) -> None:
    """The ar header claims more than the package holds: refused at the header.

    Reading would stop at vmlinux before the missing end, so the package's
    length from its index is what shows the lie.
    """
    data = bytearray(deb(tmp_path, [tar_file(BOOT, fixture_elf.read_bytes())]))
    at = data.index(b"data.tar/")
    size = int(data[at + 48 : at + 58])
    data[at + 48 : at + 58] = f"{size * 2:<10}".encode()
    message = refused(
        bytes(data),
        "deb",
        DEB_UNAME,
        tmp_path / "vmlinux",
        r"ar member 'data\.tar/' claims",
        len(data),
    )
    assert f"claims {size * 2} bytes, the package has {size} left" in message


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ([("control.tar.gz", b""), ("data.tar", b"")], "first ar member is 'control.tar.gz'"),
        ([("debian-binary", b"3.0\n"), ("control.tar.gz", b"")], "debian-binary says b'3.0"),
        ([("debian-binary", b"2.0\n"), ("data.tar", b"")], "second ar member is 'data.tar'"),
        (
            [("debian-binary", b"2.0\n"), ("control.tar", b""), ("evil", b"")],
            "unexpected ar member 'evil'",
        ),
    ],
)
def test_deb_ar_member_order(tmp_path: Path, members: list[tuple[str, bytes]], match: str) -> None:
    data = write_ar(tmp_path / "p.deb", members).read_bytes()
    refused(data, "deb", DEB_UNAME, tmp_path / "vmlinux", match)


# -- .rpm ----------------------------------------------------------------------


def rpm(tmp_path: Path, elf: Path | None, **kwargs: object) -> bytes:
    path = build_odd_rpm(
        tmp_path,
        "kernel-debuginfo",
        "5.14.0",
        "70.el9",
        "x86_64",
        RPM_UNAME,
        elf,
        **kwargs,  # type: ignore[arg-type]
    )
    return path.read_bytes()


RPM_VMLINUX = f"/usr/lib/debug/lib/modules/{RPM_UNAME}/vmlinux"


def test_rpm_hard_link_named_vmlinux(tmp_path: Path, fixture_elf: Path) -> None:
    decoy = f"/usr/lib/debug/lib/modules/{RPM_UNAME}/kernel/fs/ext4/ext4.ko.debug"
    data = rpm(tmp_path, None, hardlinks={RPM_VMLINUX: decoy})
    refused(
        data, "rpm", RPM_UNAME, tmp_path / "vmlinux", f"{re.escape(RPM_VMLINUX)} is a hard link"
    )


def test_rpm_device_named_vmlinux(tmp_path: Path) -> None:
    data = rpm(tmp_path, None, devices=(RPM_VMLINUX,))
    refused(
        data,
        "rpm",
        RPM_UNAME,
        tmp_path / "vmlinux",
        f"{re.escape(RPM_VMLINUX)} is a character device in the rpm header",
    )


def _vmlinuw(tmp_path: Path, elf: Path) -> bytearray:
    """An uncompressed rpm with a second file whose name differs from vmlinux by one letter."""
    twin = RPM_VMLINUX[:-1] + "w"
    return bytearray(rpm(tmp_path, elf, payload="none", extra={twin: elf.read_bytes()}))


def test_rpm_header_lists_vmlinux_twice(tmp_path: Path, fixture_elf: Path) -> None:
    data = _vmlinuw(tmp_path, fixture_elf)
    payload_at = data.index(b"070701")
    header = data[:payload_at]
    assert header.count(b"vmlinuw\0") == 1
    data[:payload_at] = header.replace(b"vmlinuw\0", b"vmlinux\0")
    refused(bytes(data), "rpm", RPM_UNAME, tmp_path / "vmlinux", "the rpm header lists .* 2 times")


def test_rpm_payload_member_not_in_the_header(tmp_path: Path, fixture_elf: Path) -> None:
    data = _vmlinuw(tmp_path, fixture_elf)
    payload_at = data.index(b"070701")
    payload = data[payload_at:]
    data[payload_at:] = payload.replace(b"/vmlinuw\0", b"/vmlinuv\0", 1)
    refused(
        bytes(data), "rpm", RPM_UNAME, tmp_path / "vmlinux", "vmlinuv' is not in the rpm header"
    )


def test_rpm_payload_member_climbs_out(tmp_path: Path, fixture_elf: Path) -> None:
    data = bytearray(rpm(tmp_path, fixture_elf, payload="none"))
    payload_at = data.index(b"070701")
    payload = data[payload_at:]
    assert payload.count(b"kernel/drivers/") == 1
    data[payload_at:] = payload.replace(b"kernel/drivers/", b"../../../../../", 1)
    refused(
        bytes(data),
        "rpm",
        RPM_UNAME,
        tmp_path / "vmlinux",
        r"payload holds the member .*\.\./\.\./",
    )


def test_rpm_payload_size_disagrees_with_the_header(tmp_path: Path, fixture_elf: Path) -> None:
    data = bytearray(rpm(tmp_path, fixture_elf, payload="none"))
    name = f"./usr/lib/debug/lib/modules/{RPM_UNAME}/vmlinux\0".encode()
    header_at = data.index(name) - 110
    size = int(data[header_at + 54 : header_at + 62], 16)
    assert size == fixture_elf.stat().st_size
    data[header_at + 54 : header_at + 62] = f"{size - 16:08X}".encode()
    refused(
        bytes(data),
        "rpm",
        RPM_UNAME,
        tmp_path / "vmlinux",
        f"holds {size - 16} bytes with 1 links, the rpm header says {size} bytes",
    )


@pytest.mark.parametrize("delta", [-1, 7])
def test_rpm_length_disagrees_with_its_signature_header(
    tmp_path: Path, fixture_elf: Path, delta: int
) -> None:
    data = rpm(tmp_path, fixture_elf)
    refused(
        data,
        "rpm",
        RPM_UNAME,
        tmp_path / "vmlinux",
        "the rpm signature header says .* bytes of header and payload",
        len(data) + delta,
    )
    dest = tmp_path / "vmlinux"
    extract_vmlinux(as_io(stream_of(data)), "rpm", RPM_UNAME, dest, size=len(data))
    assert dest.read_bytes() == fixture_elf.read_bytes()


def test_rpm_source_package_is_not_a_kernel(tmp_path: Path, fixture_elf: Path) -> None:
    data = bytearray(rpm(tmp_path, fixture_elf))
    data[6:8] = b"\x00\x01"  # lead type 1: a source rpm
    with pytest.raises(PackageError, match="not a binary rpm package"):
        extract_vmlinux(as_io(stream_of(bytes(data))), "rpm", RPM_UNAME, tmp_path / "vmlinux")


def test_a_good_package_still_builds(tmp_path: Path, fixture_elf: Path) -> None:
    data = rpm(tmp_path, fixture_elf, payload="none")
    dest = tmp_path / "vmlinux"
    extract_vmlinux(as_io(stream_of(data)), "rpm", RPM_UNAME, dest, package=PACKAGE)
    assert dest.read_bytes() == fixture_elf.read_bytes()


# -- through reconcile: the kernel fails, naming package and member; nothing archived --


def test_reconcile_refuses_a_traversal_ddeb(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
) -> None:
    hub = make_hub(tmp_path / "hub")
    good = build_ddeb(
        tmp_path / "pkgs", f"linux-image-unsigned-{K26}-dbgsym", "5.4.0-26.30", K26, fixture_elf
    )
    name = f"linux-image-unsigned-{DEB_UNAME}-dbgsym"
    hostile_path = tmp_path / "pkgs" / f"{name}_5.4.0-42.46_amd64.ddeb"
    hostile_bytes = deb(
        tmp_path, [tar_file("./../../../../x", b"owned"), tar_file(BOOT, fixture_elf.read_bytes())]
    )
    hostile_path.write_bytes(hostile_bytes)
    hostile = AptPackage(hostile_path, name, "5.4.0-42.46", "amd64", "linux")
    write_ubuntu(mirror_server, focal_suites([good, hostile]))

    run = btfhub(
        capsys,
        hub,
        "reconcile",
        *mirror_args(mirror_server),
        "--distro",
        "ubuntu",
        "--release",
        "focal",
        "--arch",
        "x86_64",
    )

    assert run.code == 1
    assert (
        f"FAILED ubuntu/focal/x86_64 {DEB_UNAME}: {hostile_path.name}: malformed package: "
        "data.tar member './../../../../x' climbs out (..)"
    ) in run.err
    assert sorted(archive_files(hub)) == [f"archive/ubuntu/20.04/x86_64/{K26}.btf.tar.xz"]
    assert kernels(hub, "ubuntu", "focal")[DEB_UNAME]["state"] == "failed"
    assert not (tmp_path / "x").exists()


def test_reconcile_refuses_an_rpm_whose_vmlinux_is_a_hard_link(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mirror_server: FaultyMirror,
    fixture_elf: Path,
) -> None:
    hub = make_hub(tmp_path / "hub")
    good_uname, bad_uname = "3.10.0-1160.el7.x86_64", "3.10.0-1160.2.1.el7.x86_64"
    good = build_rpm(
        tmp_path / "good",
        "kernel-debuginfo",
        "3.10.0",
        "1160.el7",
        "x86_64",
        good_uname,
        fixture_elf,
    )
    modules = f"/usr/lib/debug/lib/modules/{bad_uname}"
    bad = build_odd_rpm(
        tmp_path / "bad",
        "kernel-debuginfo",
        "3.10.0",
        "1160.2.1.el7",
        "x86_64",
        bad_uname,
        None,
        extra={f"{modules}/vmlinux.real": fixture_elf.read_bytes()},
        hardlinks={f"{modules}/vmlinux": f"{modules}/vmlinux.real"},
    )
    write_centos(mirror_server, "7", [good, bad])

    run = btfhub(
        capsys,
        hub,
        "reconcile",
        *mirror_args(mirror_server),
        "--distro",
        "centos7",
        "--release",
        "7.9.2009",
        "--arch",
        "x86_64",
    )

    assert run.code == 1
    assert (
        f"FAILED centos7/7.9.2009/x86_64 {bad_uname}: {bad.name}: malformed package: "
        f"{modules}/vmlinux is a hard link (with {modules}/vmlinux.real)"
    ) in run.err
    assert sorted(archive_files(hub)) == [f"archive/centos/7/x86_64/{good_uname}.btf.tar.xz"]


@pytest.mark.parametrize(
    ("raw_name", "match"),
    [("//", "ar long-name table of 5242880 bytes"), ("#1/5242880", "has a 5242880-byte name")],
)
def test_ar_names_are_never_read_whole_into_memory(
    tmp_path: Path, raw_name: str, match: str
) -> None:
    """A name table or BSD name as big as the package is refused before it is read."""
    header = f"{raw_name:<16}{0:<12}{0:<6}{0:<6}{0o100644:<8o}{5 << 20:<10}`\n".encode()
    stream = stream_of(b"!<arch>\n" + header + b"\0" * (5 << 20))
    with pytest.raises(MalformedPackageError, match=match):
        list(ar.iter_members(stream))
    assert stream.bytes_read == 8 + 60  # nothing of the member was read


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_deb_huge_extended_tar_header_is_refused_unread(tmp_path: Path, fmt: int) -> None:
    """tarfile reads a long name or pax header whole: one of 5 MiB is refused first."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo("./" + "x" * (5 << 20))
        tar.addfile(info, io.BytesIO(b""))
    ar_members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", b""),
        ("data.tar", out.getvalue()),
    ]
    data = write_ar(tmp_path / "p.deb", ar_members).read_bytes()
    stream = stream_of(data)
    with pytest.raises(
        PackageError, match=r"malformed data\.tar in \.deb: a 52428\d+-byte extended"
    ):
        extract_vmlinux(as_io(stream), "deb", DEB_UNAME, tmp_path / "vmlinux")
    assert stream.bytes_read < 1 << 20
