"""yum's mirrorlist indirection (Amazon Linux): a text file naming the real repo roots.

Amazon Linux 1 and 2 publish no fixed base URL: yum reads
``.../debuginfo/<arch>/mirror.list``, whose lines are repository roots
(the first one being the preferred mirror), and reads repodata from there.
AL1's lists name ``$basearch`` for yum to fill in. The list itself carries
no checksum: the rpm-md chain below it (repomd.xml -> primary -> package
SHA-256) is what the build step checks.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from generator.upstream.http import UpstreamClient, UpstreamIndexError

MIRROR_LIST = "mirror.list"


def parse_mirror_list(body: bytes, uarch: str, where: str, url: str) -> str:
    """The first repository root a mirror.list names, '/'-terminated."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UpstreamIndexError(f"{where}: not a mirror list (not UTF-8 text)", url) from exc
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        base = line.replace("$basearch", uarch)
        parts = urlsplit(base)
        # A list naming another scheme (file:, ftp:) or no host would send the
        # client where no manifest said it may go.
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or any(c.isspace() for c in base)
        ):
            raise UpstreamIndexError(f"{where}: not an http(s) repository URL: {line[:100]!r}", url)
        return base if base.endswith("/") else base + "/"
    raise UpstreamIndexError(f"{where}: the mirror list names no repository", url)


def resolve_mirror_list(client: UpstreamClient, url: str, uarch: str) -> str:
    """Fetch a mirror.list and return the repository root it names first."""
    return parse_mirror_list(client.get_index(url), uarch, client.where(url), url)
