"""`btfhub verify`: the archive checked against index.json, and rebuilt from its provenance.

A check (every selected file) needs nothing but the checkout: the file's
size and sha256 as index.json lists them, a .tar.xz whose single member is
`<uname -r>.btf`, BTF that btfhub's own checker and bpftool both read, and
a provenance entry that describes these very bytes. A rebuild (a sample, or
every selected file) downloads the recorded package again, verifies it as a
build does (generator/provenance/build.py: size, sha256, an RPM's signed
header by the catalog's keys), encodes it with the recorded pahole
arguments and compares bytes: it proves that the recorded inputs give the
file, not that the builder was honest about anything else.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.btf.check import BtfSummary, check_btf
from generator.btf.encode import pahole
from generator.consumer.btffile import BtfFileError, read_btf_member
from generator.consumer.download import file_sha256
from generator.consumer.fetch import verified_modules
from generator.consumer.hubindex import HubFile, HubIndexError, find_modules
from generator.consumer.mincore import bpftool_parses
from generator.errors import BtfhubError, EncodeError, MissingToolError, StorageError
from generator.model import Catalog, KernelId, Provenance
from generator.provenance.build import build_verified
from generator.provenance.record import provenance_from_json
from generator.upstream.context import UpstreamContext
from generator.workdir import WorkArea


@dataclass(frozen=True)
class Finding:
    """One problem with one archive file (or a file the rebuild had to skip)."""

    path: str
    message: str

    @property
    def line(self) -> str:
        return f"{self.path}: {self.message}"


def provenance_entry(document: Mapping[str, Any], kernel: KernelId) -> Mapping[str, Any] | None:
    """index.json's provenance entry for kernel, or None when it has none."""
    try:
        arch = document["distributions"][kernel.distro]["releases"][kernel.release][
            "architectures"
        ][kernel.arch]
    except KeyError:
        return None
    entry = arch.get("provenance", {}).get(kernel.uname)
    return entry if isinstance(entry, dict) else None


# Where an archive file's bytes are read: root/archive/... (git), or a copy
# pulled from an OCI store (BtfhubError when it cannot be had or does not match).
Locate = Callable[[HubFile], Path]


def in_checkout(root: Path) -> Locate:
    return lambda file: root / file.path


def check_file(
    root: Path, file: HubFile, document: Mapping[str, Any], locate: Locate | None = None
) -> list[str]:
    """What is wrong with one archive file against index.json ([] when nothing)."""
    try:
        path = (locate or in_checkout(root))(file)
    except BtfhubError as exc:
        return [f"cannot be read from the hub's store: {exc}"]
    try:
        found = file_sha256(path)
    except FileNotFoundError:
        return ["listed in index.json, missing from the archive"]
    problems = []
    if found != (file.size, file.sha256):
        problems.append(
            f"{found[0]} bytes, sha256 {found[1]}; index.json lists {file.size} bytes, "
            f"sha256 {file.sha256}"
        )
    try:
        data = read_btf_member(path, file.uname)  # the single member, named for the kernel
    except BtfFileError as exc:
        problems.append(str(exc).removeprefix(f"{path.name}: "))
    else:
        with tempfile.TemporaryDirectory(prefix="btfhub-verify-") as tmp:
            raw = Path(tmp) / f"{file.uname}.btf"
            raw.write_bytes(data)
            try:
                bpftool_parses(raw)
            except EncodeError as exc:
                problems.append(f"bpftool cannot read its BTF: {exc}")
        problems += check_modules_file(root, file, document, data, locate)
    if file.id is not None:  # a file of no catalog release has no place for provenance
        entry = provenance_entry(document, file.id)
        if entry is None:
            problems.append("index.json gives no provenance for it")
        elif entry.get("file_sha256") != file.sha256:
            problems.append(
                f"its provenance describes sha256 {entry.get('file_sha256')}, "
                f"not the {file.sha256} index.json lists"
            )
    return problems


def check_modules_file(
    root: Path,
    file: HubFile,
    document: Mapping[str, Any],
    base: bytes,
    locate: Locate | None = None,
) -> list[str]:
    """What is wrong with the kernel's modules file (issue 16), if index.json lists one.

    The file against its size and sha256, each module's BTF against the
    modules map, and the BTF the modules were split on against this
    kernel's: the module files carry the kernel's provenance.
    """
    try:
        answer = find_modules(document, file)
    except HubIndexError as exc:
        return [str(exc)]
    if answer is None:
        return []
    try:
        path = (locate or in_checkout(root))(answer.file)
        found = file_sha256(path)
    except FileNotFoundError:
        return [f"its modules file {answer.file.path} is missing from the archive"]
    except BtfhubError as exc:
        return [f"its modules file cannot be read from the hub's store: {exc}"]
    if found != (answer.file.size, answer.file.sha256):
        return [
            f"its modules file is {found[0]} bytes, sha256 {found[1]}; index.json lists "
            f"{answer.file.size} bytes, sha256 {answer.file.sha256}"
        ]
    try:
        verified_modules(answer, path.read_bytes(), base, file.path)
    except BtfFileError as exc:
        return [str(exc)]
    return []


def check_files(
    root: Path, files: Sequence[HubFile], document: Mapping[str, Any], locate: Locate | None = None
) -> Iterator[Finding]:
    for file in files:
        for message in check_file(root, file, document, locate):
            yield Finding(file.path, message)


def sample(files: Sequence[HubFile], count: int | None, seed: int) -> list[HubFile]:
    """count files picked at random (the same ones for the same seed), in path order."""
    if count is None or count >= len(files):
        return list(files)
    return sorted(random.Random(seed).sample(list(files), count), key=lambda f: f.path)


def _differences(old: BtfSummary, new: BtfSummary, old_size: int, new_size: int) -> str:
    parts = [f"archive file {old_size} bytes, rebuilt {new_size}"]
    parts.append(
        f"BTF {old.size} bytes with {old.types} types, rebuilt {new.size} with {new.types}"
    )
    return "; ".join(parts)


def rebuild_file(
    root: Path,
    file: HubFile,
    prov: Provenance,
    upstream: UpstreamContext,
    catalog: Catalog,
    work: WorkArea,
    locate: Locate | None = None,
) -> str | None:
    """Build file again from its provenance; what differs, or None when the bytes match."""
    running = pahole().version
    if prov.pahole_version != running:
        return f"recorded pahole {prov.pahole_version}, this btfhub runs {running}: cannot rebuild"
    assert file.id is not None
    try:
        repo = catalog.distribution(file.id.distro).repository(prov.package.repository)
    except KeyError:
        return f"the catalog has no repository {prov.package.repository!r} to verify it against"
    with work.kernel_dir() as tmp:
        done = build_verified(
            upstream.client,
            prov.package,
            upstream.trust.keyring(repo),
            tmp,
            force=True,  # it was encoded, whatever the vmlinux ships
            pahole_arguments=prov.pahole_arguments,
        )
    rebuilt = done.built.tar_xz
    assert rebuilt is not None and done.built.summary is not None
    path = (locate or in_checkout(root))(file)
    archived = path.read_bytes()
    if archived == rebuilt:
        return None
    try:
        old = check_btf(read_btf_member(path, file.uname))
    except (BtfFileError, EncodeError) as exc:
        return (
            f"rebuilt {len(rebuilt)} bytes differ from the archive file, which is unreadable: {exc}"
        )
    return "rebuilt bytes differ: " + _differences(
        old, done.built.summary, len(archived), len(rebuilt)
    )


def rebuild_files(
    root: Path,
    files: Sequence[HubFile],
    document: Mapping[str, Any],
    upstream: UpstreamContext,
    catalog: Catalog,
    locate: Locate | None = None,
) -> Iterator[tuple[Finding | None, str | None]]:
    """(problem, skipped) per file: a rebuild that differs, or why it could not be tried."""
    with WorkArea(root) as work:
        for file in files:
            entry = provenance_entry(document, file.id) if file.id is not None else None
            if entry is None or entry.get("legacy") or file.id is None:
                yield (
                    None,
                    f"{file.path}: no recorded provenance (legacy or unassigned): not rebuilt",
                )
                continue
            prov = provenance_from_json(file.id, entry)
            assert prov is not None
            try:
                message = rebuild_file(root, file, prov, upstream, catalog, work, locate)
            except (StorageError, MissingToolError):
                raise
            except BtfhubError as exc:
                message = f"cannot rebuild: {exc}"
            yield (Finding(file.path, message) if message else None), None
