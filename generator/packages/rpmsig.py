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
The packages/rpm.py reader skips headers without parsing them; this module
reads them once more from memory (read_headers hands the bytes back). The
signature itself is checked by generator.verify with gpgv (generator.openpgp):
`signed` is the data, header_signature() the detached signature.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from generator.errors import PackageError
from generator.packages.stream import Readable, read_exact, read_upto

LEAD_LEN = 96
LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
# What rpm feeds the digest before the region: magic, version 1, 4 reserved bytes.
HEADER_MAGIC8 = HEADER_MAGIC + b"\x00\x00\x00\x00"
MAX_INDEX = 0xFFFF  # rpm's hdrchkTags
MAX_DATA = 256 << 20  # rpm's hdrchkData

# Tags (rpmtag.h).
TAG_HEADERSIGNATURES = 62
TAG_HEADERIMMUTABLE = 63
SIGTAG_DSAHEADER = 267
SIGTAG_RSAHEADER = 268
TAG_OLDFILENAMES = 1027
TAG_FILEDIGESTS = 1035
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118
TAG_FILEDIGESTALGO = 5011

# Tag types.
T_INT32 = 4
T_STRING = 6
T_BIN = 7
T_STRING_ARRAY = 8
T_I18NSTRING = 9

# PGPHASHALGO_* -> hashlib name; a header without FILEDIGESTALGO uses MD5.
DIGEST_ALGOS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}


@dataclass(frozen=True)
class _Entry:
    tag: int
    type: int
    offset: int
    count: int


@dataclass(frozen=True)
class Header:
    """One parsed header: its raw bytes and the tags of its signed (immutable) region."""

    raw: bytes  # as in the file, without the signature header's padding
    signed: bytes  # what a header signature covers (magic + region), see the module doc
    entries: dict[int, _Entry]
    data: bytes  # the data store of the region
    padding: bytes = b""  # read after the header (the signature header's alignment)

    def _entry(self, tag: int, types: tuple[int, ...], what: str) -> _Entry | None:
        entry = self.entries.get(tag)
        if entry is not None and entry.type not in types:
            raise PackageError(f"malformed rpm: {what} (tag {tag}) has type {entry.type}")
        return entry

    def binary(self, tag: int, what: str) -> bytes | None:
        entry = self._entry(tag, (T_BIN,), what)
        if entry is None:
            return None
        end = entry.offset + entry.count
        if end > len(self.data):
            raise PackageError(f"malformed rpm: {what} runs past the header data")
        return self.data[entry.offset : end]

    def int32s(self, tag: int, what: str) -> list[int] | None:
        entry = self._entry(tag, (T_INT32,), what)
        if entry is None:
            return None
        end = entry.offset + 4 * entry.count
        if end > len(self.data):
            raise PackageError(f"malformed rpm: {what} runs past the header data")
        return list(struct.unpack(f">{entry.count}I", self.data[entry.offset : end]))

    def strings(self, tag: int, what: str) -> list[str] | None:
        entry = self._entry(tag, (T_STRING, T_STRING_ARRAY, T_I18NSTRING), what)
        if entry is None:
            return None
        out: list[str] = []
        pos = entry.offset
        for _ in range(entry.count):
            end = self.data.find(b"\0", pos)
            if end < 0:
                raise PackageError(f"malformed rpm: {what} runs past the header data")
            out.append(self.data[pos:end].decode("utf-8", "surrogateescape"))
            pos = end + 1
        return out


def _read_header(stream: Readable, what: str, pad: bool) -> Header:
    intro = read_exact(stream, 16, f"the rpm {what} header")
    if intro[:4] != HEADER_MAGIC:
        raise PackageError(f"malformed rpm: bad {what} header magic {intro[:4].hex()}")
    nindex, hsize = struct.unpack(">II", intro[8:16])
    if nindex > MAX_INDEX or hsize > MAX_DATA or nindex == 0:
        raise PackageError(f"malformed rpm: implausible {what} header ({nindex} tags, {hsize} B)")
    index = read_exact(stream, nindex * 16, f"the rpm {what} header")
    data = read_exact(stream, hsize, f"the rpm {what} header")
    raw = intro + index + data
    padding = b""
    if pad and hsize % 8:  # the signature header is padded so the main header starts 8-aligned
        padding = read_exact(stream, 8 - hsize % 8, f"the rpm {what} header padding")
    entries = [_Entry(*struct.unpack(">IIII", index[i : i + 16])) for i in range(0, len(index), 16)]
    for e in entries:
        if e.offset >= hsize and not (e.offset == hsize and e.count == 0):
            raise PackageError(f"malformed rpm: {what} header tag {e.tag} points past its data")
    ril, rdl = nindex, hsize
    region = entries[0]
    if region.tag in (TAG_HEADERIMMUTABLE, TAG_HEADERSIGNATURES):
        if region.type != T_BIN or region.count != 16 or region.offset + 16 > hsize:
            raise PackageError(f"malformed rpm: bad {what} header region tag")
        trailer = struct.unpack(">IIiI", data[region.offset : region.offset + 16])
        ril, rdl = -trailer[2] // 16, region.offset + 16
        if trailer[0] != region.tag or trailer[2] > 0 or not 1 <= ril <= nindex:
            raise PackageError(f"malformed rpm: bad {what} header region trailer")
    signed = HEADER_MAGIC8 + struct.pack(">II", ril, rdl) + index[: ril * 16] + data[:rdl]
    return Header(
        raw=raw,
        signed=signed,
        entries={e.tag: e for e in entries[:ril]},
        data=data[:rdl],
        padding=padding,
    )


@dataclass(frozen=True)
class RpmHeaders:
    """The lead and both headers of a package, and the bytes they came from."""

    lead: bytes
    signature: Header
    main: Header
    consumed: bytes  # every byte read so far, to hand back to the payload reader

    def header_signature(self) -> bytes | None:
        """The OpenPGP signature of the main header, or None for an unsigned package."""
        for tag, what in ((SIGTAG_RSAHEADER, "RSAHEADER"), (SIGTAG_DSAHEADER, "DSAHEADER")):
            blob = self.signature.binary(tag, what)
            if blob:
                return blob
        return None

    def file_digest(self, path: str) -> tuple[str, str]:
        """(hashlib algorithm, hex digest) the signed header gives for `path` (absolute)."""
        main = self.main
        algo_ids = main.int32s(TAG_FILEDIGESTALGO, "FILEDIGESTALGO") or [1]
        algorithm = DIGEST_ALGOS.get(algo_ids[0])
        if algorithm is None:
            raise PackageError(f"rpm header: unknown file digest algorithm {algo_ids[0]}")
        digests = main.strings(TAG_FILEDIGESTS, "FILEDIGESTS")
        if digests is None:
            raise PackageError("rpm header: no FILEDIGESTS, so its files cannot be verified")
        basenames = main.strings(TAG_BASENAMES, "BASENAMES")
        if basenames is not None:
            dirnames = main.strings(TAG_DIRNAMES, "DIRNAMES") or []
            dirindexes = main.int32s(TAG_DIRINDEXES, "DIRINDEXES") or []
            if len(dirindexes) != len(basenames) or any(i >= len(dirnames) for i in dirindexes):
                raise PackageError("malformed rpm: BASENAMES and DIRINDEXES disagree")
            names = [dirnames[d] + b for d, b in zip(dirindexes, basenames, strict=True)]
        else:
            names = main.strings(TAG_OLDFILENAMES, "OLDFILENAMES") or []
        if len(names) != len(digests):
            raise PackageError("malformed rpm: FILEDIGESTS and the file names disagree in number")
        found = [d for n, d in zip(names, digests, strict=True) if n == path]
        if len(found) != 1 or not found[0]:
            raise PackageError(f"rpm header: lists no digest for {path}")
        return algorithm, found[0].lower()


def read_headers(stream: Readable) -> RpmHeaders:
    """Lead and headers from the start of a package stream (the payload is left unread)."""
    lead = read_upto(stream, LEAD_LEN)
    if lead[:4] != LEAD_MAGIC:
        raise PackageError(f"not an rpm package: no lead magic (starts with {lead[:8]!r})")
    if len(lead) < LEAD_LEN:
        raise PackageError("truncated package: stream ended inside the rpm lead")
    signature = _read_header(stream, "signature", pad=True)
    main = _read_header(stream, "main", pad=False)
    consumed = lead + signature.raw + signature.padding + main.raw
    return RpmHeaders(lead=lead, signature=signature, main=main, consumed=consumed)
