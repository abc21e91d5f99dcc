"""A lean HTTP/1.1 keep-alive client for session messages over plain HTTP: asyncio's Protocol API
with httptools (llhttp, the parser Node.js uses) doing the parsing.

Why: a fleet's session messages are small POSTs over a few hundred keep-alive connections, and
aiohttp's client spent about a quarter of the emulator's CPU per session on each one (request and
response objects, URL objects, multidicts, a task per read; measured with py-spy on ``dm-emulator
bench``). This client writes one request, parses one answer into bytes and a header dict, and
keeps the connection; nothing else. :class:`emulator.transport.http.HttpTransport` uses it for
the lane of session messages over ``http://`` and keeps aiohttp for TLS and every other request.

What it keeps of the transport's contract (the caller, ``HttpTransport.request``, does the rest:
shaping, the deadline, words for errors): the body goes through a :class:`BodyReader` under the
request's limit (Content-Length over the limit refused before a byte is read, compressed bodies
decoded under it, the connection dropped the moment the limit is passed); the read timeout counts
from the last byte received; a connection is reused only after a complete answer that allows it.
Limits: header section at most :data:`MAX_HEADER_BYTES` bytes (an answer with more is refused);
connections per origin at most the pool's ``limit``, further requests queue for one.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools

from emulator.transport.bodies import BodyReader

MAX_HEADER_BYTES = 64 * 1024
"""Header section bytes an answer may have (aiohttp's default limits allow about as much)."""


class ConnectFailed(Exception):
    """No connection could be made; ``str()`` is the reason in the user's words ("connection
    refused: 127.0.0.1:9")."""


class ReadTimeout(Exception):
    """No byte of the answer arrived within the read timeout."""


class Disconnected(Exception):
    """The server closed the connection before the answer was complete."""


class BadAnswer(Exception):
    """What came back is not an HTTP/1.1 answer the client can read."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, pool: LeanPool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.name = b""
        self.reader: BodyReader | None = None
        self.make_reader: Callable[[dict[str, str]], BodyReader] | None = None
        self.complete = False
        self.keep_alive = False
        self.headers_done = False
        self.last_read = 0.0

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, but is one

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():  # unasked-for bytes: this connection is not to be trusted
            self._drop()
            return
        self.last_read = self.pool.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:  # our callback raised (BodyTooLarge, BadEncoding)
            self._fail(exc.__context__ or exc)
        except httptools.HttpParserError as exc:
            self._fail(BadAnswer(f"not a readable HTTP answer ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and not self.complete and "content-length" not in self.headers \
                and "chunked" not in self.headers.get("transfer-encoding", "").lower():
            self.on_message_complete()  # a body delimited by the end of the connection (RFC 9112 6.3)
            return
        waiter.set_exception(Disconnected("Server disconnected"))

    # ------------------------------------------------------------------ httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > MAX_HEADER_BYTES:
            raise BadAnswer(f"the answer's header section is over {MAX_HEADER_BYTES} bytes")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = self.headers.get(key)
        self.headers[key] = f"{old}, {text}" if old is not None else text  # as HttpTransport joins them

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.make_reader is not None:
            self.reader = self.make_reader(self.headers)  # may raise BodyTooLarge or BadEncoding

    def on_body(self, body: bytes) -> None:
        if self.reader is not None:
            self.reader.feed(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            self.headers, self.header_bytes, self.headers_done = {}, 0, False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # only meaningful inside the callback
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            body = self.reader.body() if self.reader is not None else b""
            waiter.set_result((status, self.headers, body))

    # ------------------------------------------------------------------ use

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self._drop()

    def _drop(self) -> None:
        self.closed = True
        self.pool._forget(self)
        if self.transport is not None:
            self.transport.abort()

    async def exchange(self, request: bytes, make_reader: Callable[[dict[str, str]], BodyReader],
                       read_timeout: float, deadline: float) -> tuple[int, dict[str, str], bytes]:
        """Write ``request``, read its answer. One timer watches both limits: the read timeout
        (from the last byte received) and ``deadline`` (the loop's clock; :class:`TimeoutError`)."""
        assert self.transport is not None
        self._reset()
        self.make_reader = make_reader
        loop = self.pool.loop
        waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] = loop.create_future()
        self.waiter = waiter
        self.last_read = loop.time()
        self.timer = loop.call_at(min(self.last_read + read_timeout, deadline), self._check_time, read_timeout,
                                  deadline)
        try:
            self.transport.write(request)
            return await waiter
        finally:
            if self.timer is not None:
                self.timer.cancel()
            self.waiter = None
            if not self.complete or not self.keep_alive:
                self._drop()

    def _check_time(self, read_timeout: float, deadline: float) -> None:
        """Called when a limit may have run out; the read timeout counts from the last byte received."""
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        now = self.pool.loop.time()
        due = self.last_read + read_timeout
        if now >= deadline:
            self._fail(TimeoutError())
        elif now >= due:
            self._fail(ReadTimeout())
        else:
            self.timer = self.pool.loop.call_at(min(due, deadline), self._check_time, read_timeout, deadline)


class LeanPool:
    """Keep-alive connections to plain-HTTP origins, at most ``limit`` per origin."""

    def __init__(self, *, limit: int, connect_timeout: float, read_timeout: float) -> None:
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._open: dict[tuple[str, int], int] = {}
        self._waiting: dict[tuple[str, int], deque[asyncio.Future[None]]] = {}
        self._all: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def request(self, host: str, port: int, target: str, method: str, headers: dict[str, str], body: bytes,
                      make_reader: Callable[[dict[str, str]], BodyReader],
                      deadline: float) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        """One exchange, over by ``deadline`` (the loop's clock); (status, headers by lower-case name,
        decoded body). Raises ConnectFailed, ReadTimeout, TimeoutError (the deadline), Disconnected,
        BadAnswer, or what ``make_reader``'s reader raises."""
        key = (host, port)
        conn = self._idle_one(key)
        if conn is None:  # waiting for a turn or connecting: the deadline counts there too
            async with asyncio.timeout_at(deadline):
                conn = await self._take(key)
        try:
            head = [f"{method} {target} HTTP/1.1\r\nHost: {_host_header(host, port)}\r\n"]
            for name, value in headers.items():
                if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                    raise ValueError(f"header {name!r} holds a line break")
                head.append(f"{name}: {value}\r\n")
            if body or method in ("POST", "PUT", "PATCH"):
                head.append(f"Content-Length: {len(body)}\r\n")
            head.append("\r\n")
            data = "".join(head).encode("latin-1") + body
            return await conn.exchange(data, make_reader, self.read_timeout, deadline)
        finally:
            self._give_back(key, conn)

    def _idle_one(self, key: tuple[str, int]) -> _Connection | None:
        """A kept connection to ``key`` that is still open, if there is one (no waiting)."""
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _take(self, key: tuple[str, int]) -> _Connection:
        while True:
            conn = self._idle_one(key)
            if conn is not None:
                return conn
            if self._open.get(key, 0) < self.limit:
                break
            waiter = self.loop.create_future()
            self._waiting.setdefault(key, deque()).append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._wake(key)  # pass the turn on to the next one
                raise
        self._open[key] = self._open.get(key, 0) + 1
        try:
            return await self._connect(key)
        except BaseException:
            self._open[key] -= 1
            self._wake(key)
            raise

    async def _connect(self, key: tuple[str, int]) -> _Connection:
        host, port = key
        conn = _Connection(self, key)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self.loop.create_connection(lambda: conn, host, port)
        except TimeoutError:
            raise ConnectFailed(f"timed out: {host}:{port}") from None
        except OSError as exc:
            why = os.strerror(exc.errno) if isinstance(exc.errno, int) and exc.errno > 0 else (
                exc.strerror or str(exc) or type(exc).__name__)
            raise ConnectFailed(f"{why[:1].lower()}{why[1:]}: {host}:{port}") from None
        self._all.add(conn)
        return conn

    def _give_back(self, key: tuple[str, int], conn: _Connection) -> None:
        if conn.closed:
            return  # _forget counted it out
        self._idle.setdefault(key, []).append(conn)
        self._wake(key)

    def _wake(self, key: tuple[str, int]) -> None:
        waiting = self._waiting.get(key)
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _forget(self, conn: _Connection) -> None:
        if conn in self._all:
            self._all.discard(conn)
            key = conn.key
            self._open[key] -= 1
            idle = self._idle.get(key)
            if idle and conn in idle:
                idle.remove(conn)
            self._wake(key)

    async def aclose(self) -> None:
        for conn in list(self._all):
            conn._drop()
        self._idle.clear()


def _host_header(host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port == 80 else f"{name}:{port}"
