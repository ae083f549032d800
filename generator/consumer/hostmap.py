"""The host rules (catalog/hosts/os-release.yaml): a machine -> its archive directory.

The rules are data, so a new distribution or codename is a line in that
file, not a code branch. ``locate`` is pure: it turns os-release fields,
`uname -r` and `uname -m` into an ArchiveLocation, or says why it cannot.
"""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.consumer.osrelease import HostInputError, OsRelease
from generator.errors import BtfhubError
from generator.manifest import Diagnostic, ManifestDocument
from generator.model import archive_path
from generator.resources import find_resource, read_package_text
from generator.yamlpos import YamlSyntaxError, load_yaml

HOST_RULES_FILE = "catalog/hosts/os-release.yaml"
HOST_RULES_SCHEMA = "schemas/host-rules.schema.json"
HOST_RULES_HEADER = "# yaml-language-server: $schema=../../schemas/host-rules.schema.json"


class VersionRule(enum.StrEnum):
    FULL = "full"  # VERSION_ID as it is (ubuntu 20.04)
    MAJOR = "major"  # before the first dot (rhel 8.4 -> 8)
    NUMERIC = "numeric"  # a whole number (debian 10, fedora 31)
    LISTED = "listed"  # only the listed versions (amzn 2018.03 -> 1)


class MatchKind(enum.StrEnum):
    """How the machine's ID found its rule: as it is, or through an alias/variant."""

    EXACT = "exact"
    ALIAS = "alias"


@dataclass(frozen=True)
class Variant:
    name_prefix: str  # os-release NAME starts with this
    archive_dir: str


@dataclass(frozen=True)
class DistributionRule:
    id: str  # os-release ID
    archive_dir: str
    version: VersionRule
    versions: tuple[tuple[str, str], ...] = ()  # listed: VERSION_ID -> release dir
    codenames: tuple[tuple[str, str], ...] = ()  # codename -> VERSION_ID
    aliases: tuple[str, ...] = ()
    variants: tuple[Variant, ...] = ()


@dataclass(frozen=True)
class HostRules:
    architectures: tuple[tuple[str, str], ...]  # uname -m -> archive arch
    distributions: tuple[DistributionRule, ...]

    def rule_for(self, ident: str) -> tuple[DistributionRule, MatchKind] | None:
        for rule in self.distributions:
            if rule.id == ident:
                return rule, MatchKind.EXACT
        for rule in self.distributions:
            if ident in rule.aliases:
                return rule, MatchKind.ALIAS
        return None

    def arch_for(self, machine: str) -> str | None:
        return dict(self.architectures).get(machine)


@dataclass(frozen=True)
class ArchiveLocation:
    """Where a machine's BTF file lives in the archive (whether or not it is there)."""

    distro: str  # the rule's os-release ID, e.g. "rhel"
    distro_dir: str  # under archive/, e.g. "rhel" (a manifest's archive_dir)
    release_dir: str  # e.g. "8"
    arch: str  # e.g. "x86_64"
    uname: str  # uname -r
    match: MatchKind

    @property
    def path(self) -> str:
        return archive_path(self.distro_dir, self.release_dir, self.arch, self.uname)


class NotMapped(Exception):
    """The rules know no archive directory for this machine (not bad input: exit 1).

    `distribution_known` tells "distribution not in the hub" from "its
    release (or architecture) is not covered".
    """

    def __init__(self, reason: str, *, distribution_known: bool = True) -> None:
        super().__init__(reason)
        self.distribution_known = distribution_known


class HostRulesInvalid(BtfhubError):
    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        lines = "\n".join(d.format() for d in diagnostics)
        super().__init__(f"the host rules are invalid (run `btfhub validate`):\n{lines}")
        self.diagnostics = diagnostics


# --- reading and checking the file -------------------------------------------------


def rules_path(root: Path) -> Path:
    """The hub's own rules when its checkout has them, else the ones shipped with btfhub."""
    local = root / HOST_RULES_FILE
    return local if local.is_file() else find_resource(HOST_RULES_FILE)


@functools.cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(read_package_text(HOST_RULES_SCHEMA))
    return schema


def _document(path: Path, shown: str) -> ManifestDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return ManifestDocument(shown, path.stem, None, Diagnostic(shown, 1, 1, "", str(exc)))
    try:
        return ManifestDocument(shown, path.stem, load_yaml(text))
    except YamlSyntaxError as exc:
        return ManifestDocument(
            shown, path.stem, None, Diagnostic(shown, exc.line, exc.col, "", exc.message)
        )


def check_host_rules(path: Path, shown: str = HOST_RULES_FILE) -> list[Diagnostic]:
    """Every problem of the rules file: its header line, then the schema."""
    from generator.validation import schema_diagnostics

    doc = _document(path, shown)
    found: list[Diagnostic] = []
    if doc.loaded is not None:
        first = path.read_text(encoding="utf-8").split("\n", 1)[0].rstrip("\r")
        if first != HOST_RULES_HEADER:
            found.append(Diagnostic(shown, 1, 1, "", f"first line must be '{HOST_RULES_HEADER}'"))
    return found + schema_diagnostics(_schema(), doc)


def load_host_rules(path: Path) -> HostRules:
    """The rules of a file that passes the schema; HostRulesInvalid otherwise."""
    problems = check_host_rules(path, str(path))
    if problems:
        raise HostRulesInvalid(problems)
    doc = _document(path, str(path))
    assert doc.loaded is not None
    raw: dict[str, Any] = doc.loaded.data
    return HostRules(
        architectures=tuple(sorted(raw["architectures"].items())),
        distributions=tuple(
            DistributionRule(
                id=ident,
                archive_dir=d["archive_dir"],
                version=VersionRule(d["version"]),
                versions=tuple(sorted(d.get("versions", {}).items())),
                codenames=tuple(sorted(d.get("codenames", {}).items())),
                aliases=tuple(d.get("aliases", ())),
                variants=tuple(
                    Variant(v["name_prefix"], v["archive_dir"]) for v in d.get("variants", ())
                ),
            )
            for ident, d in sorted(raw["distributions"].items())
        ),
    )


# --- the mapping -----------------------------------------------------------------------


def clean(value: str) -> str:
    """An os-release value as the rules spell it: no stray quotes or blanks, lower case.

    Values read from a file are unquoted already; this is for values given
    by hand (--id '"ubuntu"'), the form other tools' parsers keep.
    """
    return value.strip().strip("\"'").strip().lower()


def release_dir(rule: DistributionRule, os_release: OsRelease) -> str:
    """The release directory for the machine's version (NotMapped / HostInputError)."""
    version = clean(os_release.version_id) if os_release.version_id else ""
    codenames = dict(rule.codenames)
    if not version or not version[0].isdigit():
        # No VERSION_ID (Debian testing), or a codename given as the version.
        codename = version or clean(os_release.version_codename or "")
        if not codename:
            raise NotMapped(f"{rule.id}: os-release gives no VERSION_ID or VERSION_CODENAME")
        if codename not in codenames:
            known = ", ".join(sorted(codenames)) or "none"
            raise NotMapped(f"{rule.id}: unknown codename {codename!r} (known: {known})")
        version = codenames[codename]
    match rule.version:
        case VersionRule.FULL:
            return version
        case VersionRule.MAJOR:
            return version.split(".", 1)[0]
        case VersionRule.NUMERIC:
            if not version.isdigit():
                raise HostInputError(
                    f"{rule.id}: VERSION_ID {version!r} is not a whole number "
                    "(its releases are numbered 9, 10, 31 ...)"
                )
            return version
        case VersionRule.LISTED:
            versions = dict(rule.versions)
            if version not in versions:
                known = ", ".join(sorted(versions))
                raise NotMapped(f"{rule.id} {version} is not covered (the hub has: {known})")
            return versions[version]


def locate(rules: HostRules, os_release: OsRelease, kernel: str, machine: str) -> ArchiveLocation:
    """Where the machine's BTF file lives; never guesses another kernel release."""
    kernel = kernel.strip()
    if not kernel or "/" in kernel or kernel in (".", "..") or any(c.isspace() for c in kernel):
        raise HostInputError(f"{kernel!r} is not a kernel release (uname -r)")
    arch = rules.arch_for(clean(machine))
    if arch is None:
        known = ", ".join(k for k, _ in rules.architectures)
        raise NotMapped(f"architecture {machine!r} is not in the hub (it has: {known})")
    ident = clean(os_release.id)
    found = rules.rule_for(ident)
    if found is None:
        raise NotMapped(
            f"distribution {ident!r} is not in the hub's catalog", distribution_known=False
        )
    rule, match = found
    archive_dir = rule.archive_dir
    name = (os_release.name or "").strip()
    for variant in rule.variants:
        if name.startswith(variant.name_prefix):
            archive_dir, match = variant.archive_dir, MatchKind.ALIAS
            break
    return ArchiveLocation(
        distro=rule.id,
        distro_dir=archive_dir,
        release_dir=release_dir(rule, os_release),
        arch=arch,
        uname=kernel,
        match=match,
    )
