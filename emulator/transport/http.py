"""HTTP(S) for sessions: the only place that talks to servers.

One pooled ``httpx.AsyncClient`` per TLS configuration serves the whole fleet (thousands of devices,
a handful of connections each way, no port exhaustion). Failures never escape as httpx exceptions:
they come back as an :class:`HttpResult` with ``status == 0`` and an error in the user's words, and
the engine ends the session cleanly.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from dataclasses import dataclass

import httpx

from emulator.protocol.actions import HttpResult


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """verify: True (system store), False (explicitly off: shown as a warning), or a CA file path."""

    verify: bool | str = True
    client_cert: str | None = None  # PEM file with the certificate (and key, or see client_key)
    client_key: str | None = None

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.verify is False:
            return False
        ctx = ssl.create_default_context(cafile=self.verify if isinstance(self.verify, str) else None)
        if self.client_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx


@dataclass(frozen=True, slots=True)
class Shaping:
    """What a bearer does to traffic: latency and jitter before each request, loss as a dropped request."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.jitter_ms or self.loss)


NO_SHAPING = Shaping()


class HttpTransport:
    """Pooled async HTTP for all devices. ``timeout`` covers a server holding a long-poll answer."""

    def __init__(self, *, timeout: float = 60.0, connect_timeout: float = 10.0, max_connections: int = 200) -> None:
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._clients: dict[TlsConfig, httpx.AsyncClient] = {}
        self.requests = 0

    def _client(self, tls: TlsConfig) -> httpx.AsyncClient:
        client = self._clients.get(tls)
        if client is None:
            client = httpx.AsyncClient(
                verify=tls.ssl_context(), timeout=self._timeout, limits=self._limits, follow_redirects=False
            )
            self._clients[tls] = client
        return client

    async def request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        tls: TlsConfig = TlsConfig(),
        shaping: Shaping = NO_SHAPING,
        rng: random.Random | None = None,
    ) -> HttpResult:
        self.requests += 1
        if shaping.active:
            rng = rng or random.Random()
            delay = shaping.latency_ms + (rng.uniform(-shaping.jitter_ms, shaping.jitter_ms) if shaping.jitter_ms else 0)
            if delay > 0:
                await asyncio.sleep(delay / 1000)
            if shaping.loss and rng.random() < shaping.loss:
                return HttpResult(0, error=f"{method} {url}: lost on the bearer (simulated loss {shaping.loss:.0%})")
        try:
            client = self._client(tls)
        except (OSError, ssl.SSLError) as exc:
            return HttpResult(0, error=f"TLS set-up failed: {exc}")
        try:
            response = await client.request(method, url, content=body, headers=headers or {})
        except httpx.TimeoutException:
            return HttpResult(0, error=f"{method} {url}: no answer within {self._timeout.read:g} s")
        except httpx.ConnectError as exc:
            return HttpResult(0, error=f"{method} {url}: cannot connect ({_reason(exc)})")
        except httpx.HTTPError as exc:
            return HttpResult(0, error=f"{method} {url}: {type(exc).__name__} ({_reason(exc)})")
        return HttpResult(response.status_code, response.content, dict(response.headers))

    async def post(self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None, **kw) -> HttpResult:
        all_headers = {"Content-Type": content_type, **(headers or {})}
        return await self.request("POST", url, body, all_headers, **kw)

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "server certificate not trusted: " + text.split("certificate verify failed:")[-1].strip(" )]")
    return text
