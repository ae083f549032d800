"""Package bytes as the readers meet them: a forward-only stream with short reads."""

from __future__ import annotations

import io
from typing import BinaryIO, cast

DEB_UNAME = "5.4.0-42-generic"
RPM_UNAME = "5.14.0-70.el9.x86_64"


class OneWayStream(io.RawIOBase):
    """An HTTP-body stand-in: forward-only, short reads, counts what was consumed."""

    def __init__(self, data: bytes, max_read: int = 7001) -> None:
        super().__init__()
        self._data = data
        self._pos = 0
        self._max_read = max_read

    @property
    def bytes_read(self) -> int:
        return self._pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        raise io.UnsupportedOperation("a network stream cannot seek")

    def tell(self) -> int:
        raise io.UnsupportedOperation("a network stream cannot tell")

    def read(self, n: int = -1, /) -> bytes:
        if n is None or n < 0:
            n = len(self._data)
        n = min(n, self._max_read)
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out


def stream_of(data: bytes) -> OneWayStream:
    return OneWayStream(data)


def as_io(stream: OneWayStream) -> BinaryIO:
    return cast(BinaryIO, stream)
