"""What discovery learnt upstream, persisted in index.json between runs.

`btfhub render` never touches the network: the kernels each release has
upstream, their packages and the outcome of earlier builds (a failure and its
reason, or a kernel that ships its own BTF) are kept in the committed
index.json. Discovery updates a Discovery object and render writes it back,
so a render after a discovery run shows exactly what that run found.

On disk (index.json; generator/index.py describes the whole document):

    distributions.<distro>.releases.<release>.architectures.<arch> =
        {"discovered": bool,
         "kernels": {uname: {"state": ..., "package": {...}, "reason": ...}}}

An architecture marked discovered holds the list discovery found; only
kernels carrying a "package" come from discovery (the others are archive
files discovery no longer sees upstream).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from generator.errors import BtfhubError
from generator.model import KernelPackage, KernelState, Outcome

INDEX_FILE = "index.json"
SCHEMA_VERSION = 1

ListKey = tuple[str, str, str]  # (distro id, release id, arch)


@dataclass(frozen=True)
class KnownKernel:
    """One kernel discovery found upstream for a (distro, release, arch)."""

    uname: str
    package: str
    version: str
    repository: str  # repository id in the manifest
    # Relative to the repository root as the index says; never a mirror URL,
    # so that index.json does not change when a mirror does.
    filename: str
    package_size: int
    package_sha256: str | None  # None: the index lists none (the signed RPM header verifies)
    # What an earlier build learnt (FAILED with reason, or SHIPS_BTF); None
    # when nothing was learnt yet or the kernel got built.
    outcome: Outcome | None = None

    @classmethod
    def from_package(cls, pkg: KernelPackage, outcome: Outcome | None = None) -> KnownKernel:
        return cls(
            uname=pkg.uname,
            package=pkg.name,
            version=pkg.version,
            repository=pkg.repository,
            filename=pkg.filename,
            package_size=pkg.size,
            package_sha256=pkg.sha256,
            outcome=outcome,
        )


@dataclass
class Discovery:
    """Every list discovery has made, keyed by (distro, release, arch).

    A key being present means discovery ran for it (an empty dict is "upstream
    has no kernel"), which is what tells HUB `pending` from `0/0`.
    """

    lists: dict[ListKey, dict[str, KnownKernel]] = field(default_factory=dict)

    def record_listing(
        self, distro: str, release: str, arch: str, packages: Sequence[KernelPackage]
    ) -> None:
        """Replace the list for (distro, release, arch), keeping known outcomes.

        The caller lists preferred packages first: when two packages carry
        the same uname the first one is kept (see Repository.packages).
        """
        old = self.lists.get((distro, release, arch), {})
        new: dict[str, KnownKernel] = {}
        for pkg in packages:
            if pkg.arch != arch:
                raise ValueError(f"package {pkg.name} is {pkg.arch}, listed for {arch}")
            if pkg.uname in new:
                continue
            previous = old.get(pkg.uname)
            new[pkg.uname] = KnownKernel.from_package(
                pkg, previous.outcome if previous is not None else None
            )
        self.lists[(distro, release, arch)] = new

    def record_outcome(
        self, distro: str, release: str, arch: str, uname: str, outcome: Outcome | None
    ) -> None:
        """Remember what building uname taught us (None clears it, e.g. after a build)."""
        if outcome is not None and outcome.state not in (
            KernelState.FAILED,
            KernelState.SHIPS_BTF,
        ):
            raise ValueError(f"an outcome is failed or ships-btf, not {outcome.state}")
        kernels = self.lists.get((distro, release, arch))
        if kernels is None or uname not in kernels:
            # Outcomes belong to listed kernels: an outcome for a kernel that
            # was never listed would be lost at the next render anyway.
            raise KeyError(f"{distro}/{release}/{arch}: {uname} was not discovered")
        kernels[uname] = replace(kernels[uname], outcome=outcome)

    def outcomes(self) -> dict[tuple[str, str, str, str], Outcome]:
        return {
            (distro, release, arch, uname): known.outcome
            for (distro, release, arch), kernels in self.lists.items()
            for uname, known in kernels.items()
            if known.outcome is not None
        }

    def known(self, distro: str, release: str, arch: str) -> dict[str, KnownKernel] | None:
        """The list for (distro, release, arch), or None when never discovered."""
        return self.lists.get((distro, release, arch))


# --- reading index.json --------------------------------------------------------


class _Malformed(Exception):
    """A structural problem at a JSON path; turned into a BtfhubError naming the file."""


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"{where}: expected an object")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"{where}: expected a string")
    return value


def _int(value: Any, where: str) -> int:
    # bool is an int in Python; a size of `true` is still malformed.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Malformed(f"{where}: expected an integer")
    return value


def _known_kernel(uname: str, raw: Mapping[str, Any], where: str) -> KnownKernel | None:
    """The KnownKernel an index entry stands for, or None for archive-only kernels."""
    if "package" not in raw:
        return None
    pkg = _obj(raw["package"], f"{where}.package")
    state = _str(raw.get("state"), f"{where}.state")
    try:
        kernel_state = KernelState(state)
    except ValueError:
        raise _Malformed(f"{where}.state: unknown state {state!r}") from None
    outcome: Outcome | None = None
    if kernel_state is KernelState.FAILED:
        reason = raw.get("reason")
        outcome = Outcome(
            KernelState.FAILED, None if reason is None else _str(reason, f"{where}.reason")
        )
    elif kernel_state is KernelState.SHIPS_BTF:
        outcome = Outcome(KernelState.SHIPS_BTF)
    return KnownKernel(
        uname=uname,
        package=_str(pkg.get("name"), f"{where}.package.name"),
        version=_str(pkg.get("version"), f"{where}.package.version"),
        repository=_str(pkg.get("repository"), f"{where}.package.repository"),
        filename=_str(pkg.get("filename"), f"{where}.package.filename"),
        package_size=_int(pkg.get("size"), f"{where}.package.size"),
        package_sha256=(
            None if pkg.get("sha256") is None else _str(pkg["sha256"], f"{where}.package.sha256")
        ),
        outcome=outcome,
    )


def discovery_from_index(index: Mapping[str, Any]) -> Discovery:
    """Rebuild the Discovery an index.json document holds (raises _Malformed)."""
    version = index.get("schema_version")
    if version != SCHEMA_VERSION:
        raise _Malformed(
            f"schema_version: {version!r} is not supported (this btfhub reads {SCHEMA_VERSION})"
        )
    discovery = Discovery()
    distributions = _obj(index.get("distributions", {}), "distributions")
    for distro, raw_distro in distributions.items():
        where_d = f"distributions.{distro}"
        releases = _obj(_obj(raw_distro, where_d).get("releases", {}), f"{where_d}.releases")
        for release, raw_release in releases.items():
            where_r = f"{where_d}.releases.{release}"
            arches = _obj(
                _obj(raw_release, where_r).get("architectures", {}), f"{where_r}.architectures"
            )
            for arch, raw_arch in arches.items():
                where_a = f"{where_r}.architectures.{arch}"
                raw_arch = _obj(raw_arch, where_a)
                discovered = raw_arch.get("discovered", False)
                if not isinstance(discovered, bool):
                    raise _Malformed(f"{where_a}.discovered: expected true or false")
                if not discovered:
                    continue
                kernels: dict[str, KnownKernel] = {}
                raw_kernels = _obj(raw_arch.get("kernels", {}), f"{where_a}.kernels")
                for uname, raw_kernel in raw_kernels.items():
                    where_k = f"{where_a}.kernels.{uname}"
                    known = _known_kernel(uname, _obj(raw_kernel, where_k), where_k)
                    if known is not None:
                        kernels[uname] = known
                discovery.lists[(distro, release, arch)] = kernels
    return discovery


def load_discovery(root: Path) -> Discovery:
    """The discovery state kept in root/index.json; empty when there is no file yet."""
    path = root / INDEX_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Discovery()
    except (OSError, UnicodeDecodeError) as exc:
        raise BtfhubError(f"{path}: cannot read the hub state: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BtfhubError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
            "restore it from git or delete it to start discovery afresh"
        ) from exc
    try:
        return discovery_from_index(_obj(data, "(document)"))
    except _Malformed as exc:
        raise BtfhubError(f"{path}: malformed hub state: {exc}") from exc
