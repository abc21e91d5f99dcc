"""A session's view of the transport: every request goes over the device's bearer *of that moment*.

DM-HLF-007/008: a device has several bearers and may switch while a session runs. The session keeps
going over the new bearer (its latency, jitter, loss and bandwidth apply from the next request on).
A request in flight when the bearer changes has lost its connection (the device's address changed):
it fails cleanly (status 0, saying so), the engine ends the session as failed and the fleet starts
it again over the new bearer. The session reports the bearers it ran on (``ctx.bearer`` becomes
``"dsl0→eth0"`` when it changed), and a device with no bearer up sends nothing (one whose profile
lists no bearers at all has a plain, unshaped connection).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from emulator.protocol.actions import HttpResult
from emulator.transport.base import AsyncTransport
from emulator.transport.http import TlsConfig
from emulator.transport.shaping import NO_SHAPING, Shaping

_PLAIN = TlsConfig()


class _Device(Protocol):
    bearer: str
    bearer_generation: int
    bearers: dict[str, Any]

    @property
    def shaping(self) -> Shaping: ...


class BearerLink:
    """Wraps the fleet's pooled transport for one session of one device (see the module doc)."""

    def __init__(self, transport: AsyncTransport, device: _Device, ctx: Any = None) -> None:
        self.transport = transport
        self.device = device
        self.ctx = ctx  # the session (a SessionContext) whose ``bearer`` follows the bearers used
        self.used: list[str] = []
        self.lost_in_flight = 0

    @property
    def switched(self) -> bool:
        return len(self.used) > 1

    def _note(self, name: str) -> None:
        if not self.used or self.used[-1] != name:
            self.used.append(name)
            if self.ctx is not None:
                self.ctx.bearer = "→".join(self.used)

    async def request(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None, *,
                      tls: TlsConfig = _PLAIN, shaping: Shaping = NO_SHAPING,
                      rng: random.Random | None = None, max_body: int | None = None) -> HttpResult:
        """As :meth:`HttpTransport.request`; ``shaping`` is ignored: the current bearer's applies."""
        return await self._over_bearer(method, url, lambda: self.transport.request(
            method, url, body, headers, tls=tls, shaping=self.device.shaping, rng=rng, max_body=max_body))

    async def post(self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None, *,
                   tls: TlsConfig = _PLAIN, shaping: Shaping = NO_SHAPING,
                   rng: random.Random | None = None, max_body: int | None = None) -> HttpResult:
        """A session message: the transport's ``post``, which the pooled client sends over its lane of
        messages (a held answer never takes the connection a web form needs: :mod:`emulator.transport.http`)."""
        return await self._over_bearer("POST", url, lambda: self.transport.post(
            url, body, content_type, headers, tls=tls, shaping=self.device.shaping, rng=rng, max_body=max_body))

    async def _over_bearer(self, method: str, url: str,
                           send: Callable[[], Awaitable[HttpResult]]) -> HttpResult:  # fmt: skip
        dev = self.device
        name = dev.bearer
        if not name and dev.bearers:  # (a profile without bearers: one plain, unshaped connection)
            return HttpResult(0, error=f"{method} {url}: no bearer is up")
        generation = dev.bearer_generation
        if name:
            self._note(name)
        result = await send()
        if dev.bearer_generation != generation:
            self.lost_in_flight += 1
            now = dev.bearer or "none"
            name = name or "none"
            return HttpResult(0, error=f"{method} {url}: the bearer changed from {name} to {now} while the "
                                       "request was in flight; its connection is gone")
        return result

    async def aclose(self) -> None:
        """The pooled transport belongs to the fleet: nothing to close here."""
