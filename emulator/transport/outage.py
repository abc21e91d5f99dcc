"""A server outage as a scenario plays it: requests to one origin fail while it is 'down'."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.protocol.actions import HttpResult
from emulator.transport.http import HttpTransport


@dataclass
class Outage:
    """The server unreachable until ``until`` (loop time); shared by the session and push transports."""

    origin: str
    until: float = 0.0


class OutageTransport(HttpTransport):
    """The fleet's pooled transport, except that requests to the server fail while it is 'down'."""

    def __init__(self, outage: Outage, clock: Callable[[], float], **kw: Any) -> None:
        super().__init__(**kw)
        self.outage = outage
        self._clock = clock

    async def request(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      **kw: Any) -> HttpResult:  # fmt: skip
        if self.outage.until and self._clock() < self.outage.until and url.startswith(self.outage.origin):
            self.requests += 1
            return HttpResult(0, error=f"{method} {url}: cannot connect (server unreachable: scenario outage)")
        return await super().request(method, url, body, headers, **kw)
