"""URL prefix rewriting, so a run can read upstream through a local mirror.

Manifests name the public repositories; `--mirror FROM=TO` (repeatable) and
the BTFHUB_MIRRORS environment variable (space-separated FROM=TO pairs) point
them elsewhere: a CI cache, a corporate proxy, or a test server on
127.0.0.1. Every request the upstream client makes goes through
``Mirrors.rewrite``, so no code path can reach the public URL by accident.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from generator.errors import BtfhubError

ENV_VAR = "BTFHUB_MIRRORS"
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class Mirrors:
    # (FROM, TO), longest FROM first so the most specific prefix wins.
    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, pairs: Sequence[str] = (), env: str | None = None) -> Mirrors:
        """Rules from --mirror pairs and the environment; the command line wins a tie."""
        merged: dict[str, str] = {}
        for origin, items in ((ENV_VAR, (env or "").split()), ("--mirror", list(pairs))):
            seen: set[str] = set()
            for item in items:
                src, dst = _split_pair(item, origin)
                if src in seen:
                    raise BtfhubError(f"{origin}: {src!r} is given twice; keep one FROM=TO pair")
                seen.add(src)
                merged[src] = dst
        rules = sorted(merged.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        return cls(tuple(rules))

    def rewrite(self, url: str) -> str:
        for src, dst in self.rules:
            if url.startswith(src):
                return dst + url[len(src) :]
        return url


def _split_pair(item: str, origin: str) -> tuple[str, str]:
    # Split on the first "=": a TO URL may carry a query string, a FROM prefix never does.
    src, sep, dst = item.partition("=")
    if not sep or not src or not dst:
        raise BtfhubError(
            f"{origin}: bad mirror {item!r}: expected FROM=TO, e.g. "
            "http://ddebs.ubuntu.com/=http://127.0.0.1:8080/ddebs/"
        )
    for side in (src, dst):
        if "://" not in side:
            raise BtfhubError(
                f"{origin}: bad mirror {item!r}: {side!r} is not a URL (scheme://host/...)"
            )
    # Manifests may only name http(s) repositories; a mirror must not open
    # another door (file://, a proxy scheme) or smuggle control characters.
    if not dst.startswith(("http://", "https://")) or _CONTROL_RE.search(dst):
        raise BtfhubError(f"{origin}: bad mirror {item!r}: TO must be an http:// or https:// URL")
    # A FROM that ends with "/" but a TO that does not (or vice versa) would glue or
    # double path segments after rewriting; refuse rather than fetch the wrong path.
    if src.endswith("/") != dst.endswith("/"):
        raise BtfhubError(
            f"{origin}: bad mirror {item!r}: FROM and TO must both end with '/' or both not"
        )
    return src, dst
