"""Getting archive files to a consumer: verified against index.json, then extracted.

A file comes from the hub's checkout when the index was read from one (and
no --base-url says otherwise), else from the hub's URL through the sha256
cache. Either way its size and sha256 must match index.json before the raw
BTF is taken out of it; nothing unverified reaches the output.

With modules asked for, the kernel's modules file is verified the same way,
each module's split BTF against index.json and the modules' base against
the kernel's own BTF, and the output is one raw BTF holding vmlinux's types
and the modules' (generator/btf/merge.py): what libbpf's btf_custom_path
and cilium/ebpf's LoadSpec read, on a kernel with no /sys/kernel/btf.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.btf.merge import merge_split
from generator.btf.modules import digest_of, read_modules_file
from generator.consumer.btffile import BtfFileError, extract_btf, read_btf_member
from generator.consumer.download import DownloadError, FileCache, HubClient, file_sha256
from generator.consumer.hubindex import (
    HubFile,
    HubIndex,
    ModulesAnswer,
    find_modules,
    modules_failure,
)
from generator.consumer.osrelease import HostInputError
from generator.errors import EncodeError
from generator.fsutil import write_if_changed
from generator.model import MODULE_NAME_RE, ModuleSelection
from generator.store.setting import Blob


def parse_modules(text: str | None) -> ModuleSelection | None:
    """--modules: "all", or module names separated by commas (dm-mod is dm_mod); None: none."""
    if text is None:
        return None
    if text.strip() == "all":
        return ModuleSelection(all=True)
    names = sorted({n.strip().replace("-", "_") for n in text.split(",") if n.strip()})
    bad = [n for n in names if not MODULE_NAME_RE.fullmatch(n)]
    if not names or bad:
        raise HostInputError(f"--modules {text!r}: give module names separated by commas, or all")
    return ModuleSelection(tuple(names))


@dataclass(frozen=True)
class Fetched:
    file: HubFile
    output: Path  # the raw BTF written
    source: str  # "local" | "cache" | "download" | "registry"
    written: bool  # False: the output already held these bytes


class FileSource:
    """Where a HubIndex's files are read from: its checkout, the cache, or HTTP."""

    def __init__(self, index: HubIndex, client: HubClient, cache: FileCache) -> None:
        self.index = index
        self.client = client
        self.cache = cache

    def archive_file(self, file: HubFile) -> tuple[Path, str]:
        """A verified copy of file's .btf.tar.xz and how it was obtained."""
        store = self.index.store
        if store is not None:  # an OCI store: the blob whose digest is the file's sha256
            cached = self.cache.get(file.size, file.sha256)
            if cached is not None:
                return cached, "cache"
            dest = self.cache.path_for(file.sha256)
            self.client.pull_to(store, Blob(file.path, file.size, file.sha256), dest)
            return dest, "registry"
        local = self.index.local_path(file)
        if local is not None:
            try:
                found = file_sha256(local)
            except FileNotFoundError:
                raise DownloadError(f"{local}: in index.json but not in the archive") from None
            if found != (file.size, file.sha256):
                raise DownloadError(
                    f"{local}: {found[0]} bytes, sha256 {found[1]}; index.json says "
                    f"{file.size} bytes, sha256 {file.sha256} (run `btfhub render`?)"
                )
            return local, "local"
        cached = self.cache.get(file.size, file.sha256)
        if cached is not None:
            return cached, "cache"
        url = self.index.url_for(file)
        assert url is not None  # an index without local_root has a base URL
        dest = self.cache.path_for(file.sha256)
        self.client.download_to(url, dest, file.size, file.sha256)
        return dest, "download"

    def raw_btf(
        self, file: HubFile, output: Path, modules: ModuleSelection | None = None
    ) -> Fetched:
        archive, how = self.archive_file(file)
        if modules is None:
            return Fetched(file, output, how, extract_btf(archive, file.uname, output))
        base = read_btf_member(archive, file.uname)
        merged = merge_split(base, self.module_btfs(file, modules, base))
        return Fetched(file, output, how, write_if_changed(output, merged))

    def module_btfs(self, file: HubFile, wanted: ModuleSelection, base: bytes) -> list[bytes]:
        """The wanted modules' split BTF of file's kernel (raw BTF: base), each verified,
        in name order for all, else in the order asked."""
        return list(self.module_map(file, wanted, base).values())

    def module_map(self, file: HubFile, wanted: ModuleSelection, base: bytes) -> dict[str, bytes]:
        """The wanted modules' split BTF of file's kernel (raw BTF: base) by name, each verified.

        BtfFileError when the hub has no modules file for the kernel or lacks
        a module asked for by name (saying whether its package had none).
        """
        answer = find_modules(self.index.document, file)
        failure = modules_failure(self.index.document, file)
        if answer is None:
            raise BtfFileError(
                f"{file.path}: the hub built no module BTF for {file.uname} "
                + (
                    f"(its modules build failed: {failure})"
                    if failure is not None
                    else "(its release lists no modules in the catalog)"
                )
            )
        missing = [n for n in wanted.names if n not in answer.modules]
        if missing:
            not_built = "not built" if failure is None else f"its last build failed: {failure}"
            why = [
                f"{n} (not in the kernel's package)" if n in answer.absent else f"{n} ({not_built})"
                for n in missing
            ]
            raise BtfFileError(f"{answer.file.path}: no BTF for {', '.join(why)}")
        path, _ = self.archive_file(answer.file)
        names = None if wanted.all else list(wanted.names)
        return verified_modules(answer, path.read_bytes(), base, file.path, names)


def verified_modules(
    answer: ModulesAnswer,
    data: bytes,
    base: bytes,
    kernel_path: str,
    names: Sequence[str] | None = None,
) -> dict[str, bytes]:
    """A modules file's split BTF by name (names, in order; None: every one, by name), checked.

    Its members against its modules.json, the BTF they were split on against
    `base` (the kernel's), and each module taken against index.json's
    modules map (for every one, the map must list exactly the file's).
    BtfFileError at the first thing that does not match. Shared by fetch and
    `btfhub verify` (generator.provenance.audit).
    """
    where = answer.file.path
    try:
        manifest, found = read_modules_file(data, where)
    except EncodeError as exc:
        raise BtfFileError(str(exc)) from None
    if manifest.base != digest_of(base):
        raise BtfFileError(f"{where}: its modules were built on another {kernel_path}")
    if names is None and set(found) != set(answer.modules):
        raise BtfFileError(f"{where}: its modules differ from index.json's modules map")
    chosen = sorted(found) if names is None else list(names)
    for name in chosen:
        digest = digest_of(found[name])
        if answer.modules.get(name) != (digest.size, digest.sha256):
            raise BtfFileError(f"{where}: {name}.btf does not match index.json")
    return {name: found[name] for name in chosen}
