"""The catalog's vocabulary: what the manifests say, as frozen dataclasses.

Distributions, their releases (the support tables' rows), the repositories
their sources read and the kernel modules they want; generator.catalog
builds them from validated manifests. Re-exported by generator.model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModuleSelection:
    """Which kernel modules a release wants BTF for: every one (all) or those named."""

    names: tuple[str, ...] = ()  # module names as the kernel spells them (dm_mod), sorted
    all: bool = False

    def wants(self, name: str) -> bool:
        return self.all or name in self.names

    def rebuild_reason(self, listing: tuple[frozenset[str], frozenset[str]] | None) -> str | None:
        """Why a kernel's modules file, listing (built, absent from its package), must be
        built again for this selection; None when it need not.

        A file built for `all` counts as complete (which modules a package holds
        is known only by reading it); a module its package lacked is not asked again.
        """
        if listing is None:
            return "modules asked for: none built yet"
        new = [n for n in self.names if n not in listing[0] and n not in listing[1]]
        return f"modules not built yet: {', '.join(new)}" if new else None


@dataclass(frozen=True)
class Repository:
    """A debug-symbol repository a manifest names, of a kind generator/kinds/ registers."""

    id: str
    kind: str  # "apt" | "rpm-md" | "launchpad" | "html-listing" (kinds.registry.KINDS)
    url: str  # base URL; may hold {arch} (upstream spelling, kinds.registry.upstream_arch)
    components: tuple[str, ...] = ("main",)  # apt only
    # Package-name patterns holding {uname}, most preferred first. For a
    # kernel matched by several patterns the first one wins (Ubuntu:
    # linux-image-unsigned-{uname}-dbgsym before linux-image-{uname}-dbgsym).
    packages: tuple[str, ...] = ()
    # apt only: flavours to keep (suffix of uname), {arch} = upstream arch.
    flavours: tuple[str, ...] = ()
    # OpenPGP public keys (absolute path once loaded) that must sign what the
    # repository publishes: apt InRelease/Release.gpg, rpm-md repomd.xml.asc
    # and each RPM's header. The run's --keyring files are trusted too.
    keyring: str | None = None
    # True only for a repository that truly publishes no signature: its
    # indexes are still checked down the chain, but nothing anchors them.
    unsigned: bool = False
    # rpm-md only: each path holds a mirror.list naming the real repo root (Amazon Linux).
    mirrorlist: bool = False
    # Where upstream moves the tree when the release ends (archive.debian.org,
    # vault-like archives): read when url answers 404/410 for a source's index.
    moved_to: str | None = None
    # The publisher's key ID when its key is not shipped (no keyring): the run
    # must be given it (--keyring), else the repository's releases are skipped.
    signing_key_id: str | None = None
    # Operator credentials the repository needs (a key of upstream.credentials.KINDS,
    # e.g. "rhel-cdn"); None: public.
    credentials: str | None = None
    # rpm-md only: how uname -r follows from a package: "rpm" ({ver}-{rel}.{arch},
    # Red Hat family), "suse" ({ver}-{rel minus its last number}-{flavour} of
    # kernel-<flavour>-debuginfo, e.g. 5.3.18-59.5-default) or "photon"
    # ({ver}-{rel}[-{flavour}] of linux[-<flavour>]-debuginfo, e.g. 4.19.283-1.ph3-esx).
    kernel_release: str = "rpm"
    # The publisher signs RPM headers over SHA-1 only (Photon 3.0, openEuler
    # 20.03): such signatures count for this repository, refused elsewhere.
    sha1_signatures: bool = False
    # Kernel modules built for the releases reading it, unless they say otherwise.
    modules: ModuleSelection | None = None
    # The keys of its kind that have no field above, as (key, value) sorted by
    # key, lists made tuples: a kind added as one module reads its own keys here.
    options: tuple[tuple[str, object], ...] = ()

    def option(self, key: str, default: object = None) -> object:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class Source:
    """One release's use of a repository: apt suites or rpm-md paths."""

    repository: str
    suites: tuple[str, ...] = ()  # apt: dists/<suite>; launchpad: distro series (focal)
    paths: tuple[str, ...] = ()  # rpm-md, html-listing: relative to the repo URL
    # A fallback completes the sources before it (Ubuntu: Launchpad after
    # ddebs). When it fails the release is still listed from the others and
    # the failure is a warning (UpstreamListing.incomplete), not a lost release.
    fallback: bool = False


@dataclass(frozen=True)
class Release:
    """One row of a distribution's support table."""

    distro: str  # manifest id (file stem)
    id: str  # unique within the manifest (slug of name unless given)
    name: str  # first column, e.g. "7.0.1406", "Focal HWE"
    directory: str  # archive release dir, e.g. "20.04", "7"
    kernel: str  # e.g. "3.10.0-123", "5.4.0"
    series: tuple[str, ...]  # kernel series covered; default (kernel,)
    bpf: bool | None
    btf: bool | None
    hub: bool | None  # True: the hub builds BTF for it
    architectures: tuple[str, ...]
    sources: tuple[Source, ...]
    # Table cells beyond the flags, by field name (rhel, version, codename,
    # release_date, rhel_date ...); None renders as "-".
    fields: tuple[tuple[str, str | None], ...] = ()
    # Kernel modules whose BTF the hub builds beside vmlinux's; None: the
    # repository's choice (Repository.modules), which may be none either.
    modules: ModuleSelection | None = None

    def field(self, name: str) -> str | None:
        return dict(self.fields).get(name)


@dataclass(frozen=True)
class Column:
    header: str
    field: str


@dataclass(frozen=True)
class FutureRow:
    """The trailing "..." row: what releases not yet listed will have."""

    bpf: bool | None
    btf: bool | None
    hub: bool | None
    placeholder: str = "..."  # text of non-flag cells after the first


@dataclass(frozen=True)
class Distribution:
    """One manifest: a support table, its repositories and releases."""

    id: str  # file stem, e.g. "centos7"
    title: str  # table heading, e.g. "CentOS 7"
    archive_dir: str  # archive/<archive_dir>/..., e.g. "centos"
    columns: tuple[Column, ...]
    releases: tuple[Release, ...]
    repositories: tuple[Repository, ...]
    note: str | None = None
    future: FutureRow | None = None
    url: str | None = None  # link for the heading (e.g. Wikipedia)

    def repository(self, repo_id: str) -> Repository:
        for repo in self.repositories:
            if repo.id == repo_id:
                return repo
        raise KeyError(repo_id)

    def modules(self, release: Release, repository: str) -> ModuleSelection | None:
        """The modules to build for a release's kernel: its choice, else its repository's."""
        if release.modules is not None:
            return release.modules
        repo = next((r for r in self.repositories if r.id == repository), None)
        return repo.modules if repo is not None else None


@dataclass(frozen=True)
class Catalog:
    distributions: tuple[Distribution, ...]

    def distribution(self, distro_id: str) -> Distribution:
        for d in self.distributions:
            if d.id == distro_id:
                return d
        raise KeyError(distro_id)
