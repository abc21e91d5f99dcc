"""The one transport interface sessions are given (as httpx's ``BaseTransport``), async and blocking.

Implemented by the pooled client (:class:`emulator.transport.http.HttpTransport`), the bearer link
(:class:`emulator.transport.link.BearerLink`), the scenario outage
(:class:`emulator.transport.outage.OutageTransport`) and, blocking, the Locust client
(:class:`emulator.transport.blocking.BlockingTransport`). The contract both share:

- failures never escape as exceptions: no answer is ``HttpResult(0, error=<what, in words>)``;
- ``shaping`` is the bearer's (:mod:`emulator.transport.shaping`), applied with the transport's own
  sleep; ``rng`` makes its jitter and loss repeatable;
- ``max_body``: the most the answer may hold (the request's MaxMsgSize/MaxObjSize), None for the
  transport's own cap; a larger answer is ``HttpResult(0, too_large=True)``;
- ``post`` is ``request("POST", ...)`` with the Content-Type header set;
- answer header names come back lower-case.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Protocol

from emulator.protocol.actions import HttpResult
from emulator.transport.shaping import Shaping

if TYPE_CHECKING:
    from emulator.transport.http import TlsConfig


class AsyncTransport(Protocol):
    async def request(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None, *,
                      tls: TlsConfig = ..., shaping: Shaping = ...,
                      rng: random.Random | None = None, max_body: int | None = None) -> HttpResult: ...  # fmt: skip

    async def post(self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None, *,
                   tls: TlsConfig = ..., shaping: Shaping = ...,
                   rng: random.Random | None = None, max_body: int | None = None) -> HttpResult: ...  # fmt: skip

    async def aclose(self) -> None: ...


class Transport(Protocol):
    def request(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None, *,
                tls: TlsConfig = ..., shaping: Shaping = ...,
                rng: random.Random | None = None, max_body: int | None = None) -> HttpResult: ...  # fmt: skip

    def post(self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None, *,
             tls: TlsConfig = ..., shaping: Shaping = ...,
             rng: random.Random | None = None, max_body: int | None = None) -> HttpResult: ...  # fmt: skip

    def close(self) -> None: ...

