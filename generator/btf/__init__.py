"""BTF: encoding with pahole, validation, the reproducible archive tarball, the per-kernel build."""

from __future__ import annotations

from generator.btf.build import BuiltBtf, build_kernel_btf
from generator.btf.check import BtfSummary, check_btf
from generator.btf.encode import encode_btf, extract_btf_section, has_btf_section
from generator.btf.tarball import read_tar_xz_member, reproducible_tar_xz

__all__ = [
    "BtfSummary",
    "BuiltBtf",
    "build_kernel_btf",
    "check_btf",
    "encode_btf",
    "extract_btf_section",
    "has_btf_section",
    "read_tar_xz_member",
    "reproducible_tar_xz",
]
