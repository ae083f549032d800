"""How a cache file on disk is found damaged: what every cache must ignore, not trust."""

from __future__ import annotations

from collections.abc import Callable


def torn(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]  # a write cut short


def emptied(raw: bytes) -> bytes:
    return b""


def not_json(raw: bytes) -> bytes:
    return b"\xff\xfe not json"


def other_json(raw: bytes) -> bytes:
    return b"[]"  # JSON, but not the document


DAMAGED_BYTES: list[Callable[[bytes], bytes]] = [torn, emptied, not_json, other_json]
