"""Connection limits of the reference server: idle and header timeouts, a body deadline, a cap.

Why: without them 2,000 sockets that never send a byte, or send headers one byte at a time, stay
open for ever and the server runs out of descriptors while honest devices wait.

- Idle and header timeout (:attr:`ServerLimits.idle_s`): a connection that has not completed a
  request's headers ``idle_s`` after it opened, or after its last answer, is closed (aiohttp's
  keep-alive timer, which a trickle of bytes does not reset). A request being handled (a held
  push long-poll, a held SHOW answer) is not idle.
- Body deadline (:attr:`ServerLimits.body_s`): the whole body of a request must arrive within it
  (408 otherwise), so a body sent one byte at a time cannot hold a handler.
- TLS handshake (:attr:`ServerLimits.handshake_s`).
- Connection cap (:attr:`ServerLimits.max_connections`): at the cap, a new connection closes the
  connection that has been idle the longest (a device waiting for nothing loses nothing); when every
  connection is busy with a request, the new one gets ``503`` and is closed. So sockets held open
  by a flood are what gives way, and honest devices are still served.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.errors import EmulatorError
from emulator.server.lean_http import Lane, LeanConnection


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The limits one listening server applies (defaults: see docs/security.md)."""

    idle_s: float = 30.0
    body_s: float = 30.0
    handshake_s: float = 10.0
    max_connections: int = 512

    def __post_init__(self) -> None:
        for name in ("idle_s", "body_s", "handshake_s"):
            if not 0 < getattr(self, name) <= 3600:
                raise EmulatorError(f"server limit {name}={getattr(self, name)} is not in (0, 3600] seconds")
        if not 1 <= self.max_connections <= 65536:
            raise EmulatorError(f"server limit max_connections={self.max_connections} is not in 1..65536")


LIMITS_KEY = web.AppKey("limits", ServerLimits)

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
         b"Retry-After: 1\r\nContent-Length: 39\r\n\r\ntoo many connections, try again later\r\n")


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body within ``body_s`` before the handler runs (it then reads the cached copy)."""
    if request.body_exists and not request.content.is_eof():  # else the whole body is here already
        limits = request.app.get(LIMITS_KEY) or ServerLimits()
        try:
            await asyncio.wait_for(request.read(), limits.body_s)
        except TimeoutError:
            return web.Response(status=408, text=f"the request body did not arrive within {limits.body_s:g} s",
                                headers={"Connection": "close"})
    return await handler(request)


class _Gate:
    """The open connections of one site, oldest first."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.open: dict[_Counted, float] = {}
        self.refused = 0
        self.evicted = 0

    def admit(self, conn: _Counted) -> bool:
        if len(self.open) >= self.limits.max_connections:
            idle = [c for c in self.open if c.idle]
            if not idle:
                self.refused += 1
                return False
            oldest = min(idle, key=lambda c: c.last_active)
            self.evicted += 1
            oldest.evict()
        self.open[conn] = time.monotonic()
        return True


class _Counted(asyncio.Protocol):
    """aiohttp's request handler, counted against the cap (every call is passed on)."""

    def __init__(self, inner: Any, gate: _Gate) -> None:
        self.inner = inner
        self.gate = gate
        self.transport: asyncio.Transport | None = None
        self.admitted = False
        self.last_active = time.monotonic()

    @property
    def idle(self) -> bool:
        """Not handling a request (waiting for one, or for the rest of its headers)."""
        return not getattr(self.inner, "_request_in_progress", False)

    def evict(self) -> None:
        self.gate.open.pop(self, None)
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):  # a stream server's connections always are
            transport.close()
            return
        self.transport = transport
        if not self.gate.admit(self):
            transport.write(_BUSY)
            transport.close()
            return
        self.admitted = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.last_active = time.monotonic()
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.gate.open.pop(self, None)
        if self.admitted:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()


class LimitedSite(web.SockSite):
    """A SockSite whose connections go through the cap and whose TLS handshakes are bounded."""

    def __init__(self, runner: web.BaseRunner, sock: Any, *, limits: ServerLimits, lane: Lane | None = None,
                 **kw: Any) -> None:
        super().__init__(runner, sock, **kw)
        self.gate = _Gate(limits)
        self.lane = lane  # the lean path of the DM session routes (emulator.server.lean_http); None: aiohttp only

    async def stop(self) -> None:
        await super().stop()
        if self.lane is not None:
            self.lane.stop()

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        gate, lane = self.gate, self.lane
        options: dict[str, Any] = {}
        if self._ssl_context is not None:
            options["ssl_handshake_timeout"] = gate.limits.handshake_s

        def connection() -> _Counted:
            return _Counted(LeanConnection(lane, server) if lane is not None else server(), gate)

        self._server = await loop.create_server(connection, sock=self._sock,
                                                ssl=self._ssl_context, backlog=self._backlog, **options)
