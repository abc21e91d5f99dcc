"""Reading an answer body under a size limit, decompressing it under the same limit.

Both transports (aiohttp for the fleet, httpx for Locust) read raw bytes through a
:class:`BodyReader` instead of letting the HTTP library unpack and buffer everything: a hostile
server can send 150 MB, or a 200 KB gzip that inflates to 200 MB, and a device must stop as soon as
the answer is known to be over what it said it takes (MaxMsgSize for a message, MaxObjSize for an
HGET or repository object). The decompressor is asked for at most the room that is left, so memory
stays at the limit whatever the ratio of the bomb.

Limits (docs/security.md, "Device"):
- decoded body: at most ``limit`` bytes (the limit itself is accepted, one more byte is refused);
- raw (compressed) bytes read: at most ``limit + raw_margin(limit)``: gzip of incompressible data
  is a little larger than the data, and a server is not refused for that overhead.
"""

from __future__ import annotations

import zlib

ACCEPT_ENCODING = "gzip, deflate"  # what BodyReader decodes; sent so a server never picks br or zstd
DEFAULT_MAX_BODY = 16 * 1024 * 1024  # a request that names no limit of its own
READ_CHUNK = 64 * 1024


def raw_margin(limit: int) -> int:
    """Bytes a compressed body may exceed the decoded limit by (gzip framing of stored blocks)."""
    return 1024 + limit // 64


class BodyTooLarge(Exception):
    """The answer is over the limit; ``read`` says how many raw bytes were read before stopping."""

    def __init__(self, limit: int, read: int, what: str) -> None:
        self.limit = limit
        self.read = read
        super().__init__(f"the answer is over the limit of {limit} bytes ({what}); "
                         f"stopped reading after {read} bytes")


class BadEncoding(Exception):
    """A Content-Encoding the device did not offer, or a compressed body that does not decode."""


class BodyReader:
    """Feed raw chunks, get the decoded body; raises BodyTooLarge the moment the limit is passed."""

    def __init__(self, limit: int, content_encoding: str = "", content_length: str | None = None) -> None:
        self.limit = limit
        self.raw_limit = limit + raw_margin(limit)
        self.raw = 0
        self._parts: list[bytes] = []
        self._size = 0
        encoding = content_encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflate = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflate = None  # chosen at the first chunk: zlib-wrapped or raw
        else:
            raise BadEncoding(f"the server used Content-Encoding {content_encoding!r}, which the device "
                              f"did not offer (Accept-Encoding: {ACCEPT_ENCODING})")
        self._deflate = encoding == "deflate"
        if content_length is not None and self._inflate is None and not self._deflate:
            try:
                declared = int(content_length)
            except ValueError:
                declared = -1
            if declared > limit:  # refused before a byte of the body is read
                raise BodyTooLarge(limit, 0, f"Content-Length {declared}")

    def feed(self, chunk: bytes) -> None:
        self.raw += len(chunk)
        if self._deflate:  # "deflate" is zlib-wrapped by the RFC, raw deflate by some servers
            self._deflate = False
            raw = bool(chunk) and (chunk[0] & 0x0F) != 8
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        if self._inflate is None:
            self._add(chunk)
        else:
            data = chunk
            try:
                while data:
                    out = self._inflate.decompress(data, self.limit - self._size + 1)
                    self._add(out)
                    data = self._inflate.unconsumed_tail
                    if not out and data:  # no progress: the stream is stuck
                        break
            except zlib.error as exc:
                raise BadEncoding(f"the compressed answer does not decode: {exc}") from None
        if self.raw > self.raw_limit:
            raise BodyTooLarge(self.limit, self.raw, f"{self.raw} raw bytes")

    def _add(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        if self._size > self.limit:
            raise BodyTooLarge(self.limit, self.raw, "decoded size")
        self._parts.append(data)

    def body(self) -> bytes:
        if self._inflate is not None:
            try:
                self._add(self._inflate.flush())
            except zlib.error as exc:
                raise BadEncoding(f"the compressed answer does not decode: {exc}") from None
        return b"".join(self._parts)
