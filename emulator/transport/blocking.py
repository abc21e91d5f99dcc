"""Pooled blocking HTTP (``httpx.Client``) for the blocking session driver (Locust users).

Under Locust, gevent patches sockets and ``time.sleep``, so the blocking calls here (the request and
the bearer's shaping delays) let the other users run. Same contract as the async transports
(:mod:`emulator.transport.base`): failures come back as ``HttpResult(0, error=...)``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import httpx

from emulator.protocol.actions import HttpResult
from emulator.transport.bodies import (
    ACCEPT_ENCODING,
    DEFAULT_MAX_BODY,
    BadEncoding,
    BodyReader,
    BodyTooLarge,
)
from emulator.transport.http import DEFAULT_DEADLINE, TlsConfig
from emulator.transport.shaping import NO_SHAPING, Shaping

DEFAULT_TLS = TlsConfig()


class _DeadlinePassed(Exception):
    """The request's deadline passed while its answer was still arriving."""


class BlockingTransport:
    """One ``httpx.Client`` per TLS configuration; ``sleep`` applies shaping (tests record it).

    Like the asyncio transport: ``deadline`` bounds one request (httpx's read timeout restarts with
    every byte), and the answer is read raw through :class:`BodyReader` under the request's
    ``max_body`` (else ``max_body`` here), so a flood or a gzip bomb stops at the limit. The
    deadline is checked between chunks and every socket wait is at most the deadline itself, so a
    request ends within twice the deadline at worst (no timer thread: gevent-friendly).
    """

    def __init__(self, *, timeout: float = 60.0, connect_timeout: float = 10.0, max_connections: int = 10,
                 deadline: float | None = None, max_body: int = DEFAULT_MAX_BODY,
                 sleep: Callable[[float], object] = time.sleep) -> None:  # fmt: skip
        self._deadline = deadline if deadline is not None else max(DEFAULT_DEADLINE, timeout)
        self._max_body = max_body
        self._timeout = httpx.Timeout(min(timeout, self._deadline), connect=connect_timeout)
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._clients: dict[TlsConfig, httpx.Client] = {}
        self._sleep = sleep
        self.requests = 0

    def _client(self, tls: TlsConfig) -> httpx.Client:
        client = self._clients.get(tls)
        if client is None:
            client = httpx.Client(verify=tls.ssl_context(), timeout=self._timeout, limits=self._limits,
                                  follow_redirects=False)
            self._clients[tls] = client
        return client

    def request(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None, *,
                tls: TlsConfig = DEFAULT_TLS, shaping: Shaping = NO_SHAPING, rng: random.Random | None = None,
                max_body: int | None = None) -> HttpResult:  # fmt: skip
        self.requests += 1
        delay, lost = shaping.before(method, url, len(body), rng)
        if lost:
            return HttpResult(0, error=lost)
        if delay > 0:
            self._sleep(delay / 1000)
        limit = max_body if max_body is not None else self._max_body
        ends = time.monotonic() + self._deadline
        try:
            client = self._client(tls)
            with client.stream(method, url, content=body,
                               headers={"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})}) as response:
                status = response.status_code
                answer_headers = {k.lower(): v for k, v in response.headers.items()}
                reader = BodyReader(limit, answer_headers.get("content-encoding", ""),
                                    answer_headers.get("content-length"))
                for chunk in response.iter_raw():  # as they arrive (a chunk size would buffer)
                    reader.feed(chunk)
                    if time.monotonic() > ends:
                        raise _DeadlinePassed
                content = reader.body()
        except BodyTooLarge as exc:
            return HttpResult(0, error=f"{method} {url}: {exc}", too_large=True)
        except BadEncoding as exc:
            return HttpResult(0, error=f"{method} {url}: {exc}")
        except _DeadlinePassed:
            return HttpResult(0, error=f"{method} {url}: the exchange did not finish within the deadline "
                                       f"of {self._deadline:g} s")
        except httpx.TimeoutException:
            return HttpResult(0, error=f"{method} {url}: no answer within {self._timeout.read:g} s")
        except httpx.ConnectError as exc:
            return HttpResult(0, error=f"{method} {url}: cannot connect ({exc or type(exc).__name__})")
        except Exception as exc:  # httpx, ssl and socket errors alike: a session must never raise
            return HttpResult(0, error=f"{method} {url}: {type(exc).__name__} ({exc})")
        download = shaping.transfer_ms(len(content))
        if download > 0:
            self._sleep(download / 1000)
        return HttpResult(status, content, answer_headers)

    def post(self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None, *,
             tls: TlsConfig = DEFAULT_TLS, shaping: Shaping = NO_SHAPING, rng: random.Random | None = None,
             max_body: int | None = None) -> HttpResult:  # fmt: skip
        return self.request("POST", url, body, {"Content-Type": content_type, **(headers or {})},
                            tls=tls, shaping=shaping, rng=rng, max_body=max_body)

    def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()
