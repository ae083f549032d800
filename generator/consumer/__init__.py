"""What the eBPF tools that consume the hub need: find, fetch and shrink BTF files.

The public entry point is ``generator.api``; these modules are its parts:
``osrelease`` (reading a machine), ``hostmap`` (the rules of
catalog/hosts/os-release.yaml), ``hubindex`` (finding a kernel in index.json),
``download`` (the hub's files over HTTP, cached by sha256), ``btffile``
(the raw BTF out of an archive file), ``fetch``, ``mincore`` (bpftool's
min_core_btf) and ``bundle`` (the embeddable tarball).
"""
