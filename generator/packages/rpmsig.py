"""An RPM's own signature: the signed main header and the file digests it carries.

An RPM is lead, signature header, main header, payload. The signature
header holds an OpenPGP signature of the main header alone (RSAHEADER, tag
268, or DSAHEADER, 267, as rpmsign has written since rpm 4.1), and the main
header lists every file's digest (FILEDIGESTS, algorithm FILEDIGESTALGO).
So once the header signature checks out against a trusted key, vmlinux's
digest is known from signed data without reading the rest of the package:
the trust anchor for packages whose index lists no checksum (Oracle's flat
directories) and for rpm-md repositories whose repomd.xml is not signed.

The signature covers the header's immutable region exactly as rpm hashes
it: the header magic, the region's entry count and data length, its
entries and its data. Tags outside the region are unsigned and never read.
Lead and headers are parsed by generator.packages.rpmheader (with its
bounds checks); this module adds what is specific to signatures: the
signed region's bytes, the signature tags and the file digest lookup.
read_headers() is the one parse of a package's lead and headers: the
payload reader (packages/rpm.py) takes its file list from the same
RpmHeaders. The signature itself is checked by generator.verify with gpgv
(generator.openpgp): `signed` is the data, header_signature() the detached
signature.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

from generator.errors import PackageError
from generator.packages.rpmheader import (
    HEADER_MAGIC,
    T_BIN,
    Entry,
    Header,
    file_paths,
    read_header,
    read_lead,
)
from generator.packages.stream import Readable

# What rpm feeds the digest before the region: magic, version 1, 4 reserved bytes.
HEADER_MAGIC8 = HEADER_MAGIC + b"\x00\x00\x00\x00"

# Tags (rpmtag.h).
TAG_HEADERSIGNATURES = 62
TAG_HEADERIMMUTABLE = 63
SIGTAG_DSAHEADER = 267
SIGTAG_RSAHEADER = 268
TAG_FILEDIGESTS = 1035
TAG_FILEDIGESTALGO = 5011

# PGPHASHALGO_* -> hashlib name; a header without FILEDIGESTALGO uses MD5.
DIGEST_ALGOS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}


@dataclass(frozen=True)
class SignedHeader:
    """A parsed header, the bytes its signature covers, and its signed tags alone."""

    header: Header  # every tag, as rpmheader parsed it
    signed: bytes  # what a header signature covers (magic + region), see the module doc
    region: Header  # only the immutable region's tags and data: all that is trusted

    @property
    def raw(self) -> bytes:
        """The header as in the file, without padding."""
        return self.header.raw

    @property
    def padding(self) -> bytes:
        return self.header.padding


def signed_region(header: Header) -> SignedHeader:
    """The immutable region of a header: its signed bytes and a view of its tags alone.

    A header without a region tag first is signed whole, as rpm treats it.
    """
    nindex, hsize, what = len(header.index), len(header.store), header.what
    ril, rdl = nindex, hsize
    region = header.index[0]
    if region.tag in (TAG_HEADERIMMUTABLE, TAG_HEADERSIGNATURES):
        if region.type != T_BIN or region.count != 16 or region.offset + 16 > hsize:
            raise PackageError(f"malformed rpm: bad {what} header region tag")
        trailer = struct.unpack(">IIiI", header.store[region.offset : region.offset + 16])
        ril, rdl = -trailer[2] // 16, region.offset + 16
        if trailer[0] != region.tag or trailer[2] > 0 or not 1 <= ril <= nindex:
            raise PackageError(f"malformed rpm: bad {what} header region trailer")
    signed = (
        HEADER_MAGIC8
        + struct.pack(">II", ril, rdl)
        + header.index_bytes[: ril * 16]
        + header.store[:rdl]
    )
    entries: dict[int, Entry] = {}
    for entry in header.index[:ril]:
        entries.setdefault(entry.tag, entry)
    view = dataclasses.replace(
        header, entries=entries, store=header.store[:rdl], index=header.index[:ril]
    )
    return SignedHeader(header=header, signed=signed, region=view)


@dataclass(frozen=True)
class RpmHeaders:
    """The lead and both headers of a package, and the bytes they came from."""

    lead: bytes
    signature: SignedHeader
    main: SignedHeader
    consumed: bytes  # every byte read off the stream so far (the payload follows)

    def header_signature(self) -> bytes | None:
        """The OpenPGP signature of the main header, or None for an unsigned package."""
        for tag in (SIGTAG_RSAHEADER, SIGTAG_DSAHEADER):
            blob = self.signature.region.binary(tag)
            if blob:
                return blob
        return None

    def file_digest(self, path: str) -> tuple[str, str]:
        """(hashlib algorithm, hex digest) the signed header gives for `path` (absolute)."""
        main = self.main.region
        algo_ids = main.ints(TAG_FILEDIGESTALGO) or [1]
        algorithm = DIGEST_ALGOS.get(algo_ids[0])
        if algorithm is None:
            raise PackageError(f"rpm header: unknown file digest algorithm {algo_ids[0]}")
        digests = main.strings(TAG_FILEDIGESTS)
        if digests is None:
            raise PackageError("rpm header: no FILEDIGESTS, so its files cannot be verified")
        names = file_paths(main)
        if len(names) != len(digests):
            raise PackageError("malformed rpm: FILEDIGESTS and the file names disagree in number")
        found = [d for n, d in zip(names, digests, strict=True) if n == path]
        if len(found) != 1 or not found[0]:
            raise PackageError(f"rpm header: lists no digest for {path}")
        return algorithm, found[0].lower()


def read_headers(stream: Readable) -> RpmHeaders:
    """Lead and headers from the start of a package stream (the payload is left unread)."""
    lead = read_lead(stream)
    signature = signed_region(read_header(stream, "signature", pad=True))
    main = signed_region(read_header(stream, "main", pad=False))
    consumed = lead + signature.raw + signature.padding + main.raw
    return RpmHeaders(lead=lead, signature=signature, main=main, consumed=consumed)
