"""rpm-md: repodata/repomd.xml -> primary.xml (CentOS, Fedora, Amazon, RHEL, SLES ...)."""

from __future__ import annotations

from generator.kinds.base import RPM_ARCHES, SHA1_KEY, TREE_KEYS, RepositoryKind

KIND = RepositoryKind(
    name="rpm-md",
    summary="repodata/repomd.xml",
    arches=RPM_ARCHES,
    source_key="paths",
    source_doc='repository roots relative to the repository URL ("" is the URL itself); '
    "{arch} allowed",
    packages_doc="exact package names",
    patterns=False,
    lister="generator.upstream.rpmmd:discover_rpmmd",
    keys={
        **TREE_KEYS,
        "mirrorlist": {
            "description": "each path holds a mirror.list (yum's mirrorlist) whose first URL is "
            "the real repository root, as Amazon Linux publishes them; $basearch in it becomes "
            "the upstream architecture.",
            "type": "boolean",
        },
        "kernel_release": {
            "description": "how uname -r follows from a package. rpm (default): "
            "<version>-<release>.<arch>, as the Red Hat family names kernels. suse: "
            "<version>-<release without its last number>-<flavour> of "
            "kernel-<flavour>-debuginfo, e.g. 5.3.18-59.5-default for kernel-default-debuginfo "
            "5.3.18-59.5.2. photon: <version>-<release> of linux-debuginfo, "
            "<version>-<release>-<flavour> of linux-<flavour>-debuginfo, e.g. 4.19.283-1.ph3-esx "
            "for linux-esx-debuginfo 4.19.283-1.ph3.",
            "title": "kernel release style",
            "enum": ["rpm", "suse", "photon"],
        },
        **SHA1_KEY,
    },
)
