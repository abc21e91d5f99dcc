"""A lean HTTP/1.1 path for the reference server's DM session routes, on asyncio's Protocol API
with httptools (llhttp) parsing; aiohttp serves everything else.

Why: a fleet's session messages are small keep-alive POSTs, and aiohttp spent about a fifth of the
server's CPU per message building its request, stream, router match, middleware chain and response
objects (measured with ``dm-emulator bench --profile-devices``). On this path a session message is
parsed into a header dict and bytes, given to the same handler the router holds for that route,
and its ``web.Response`` is written as one block.

What takes this path: a ``POST`` over HTTP/1.1 to a literal DM session route (``/dm12``, ``/dm2``,
``/dm20``, ``/dmclient/dm20`` and their ``/alerts``; :func:`lean_routes`), with a head of at most
:data:`LEAN_HEAD_BYTES` and :data:`AIOHTTP_MAX_HEADERS` fields, a Host header, one
Content-Length within the body limit, no Transfer-Encoding, Content-Encoding (aiohttp unpacks a
gzip or deflate body, within its limits), Expect or Upgrade, while no session
fault is armed (the fault middleware then sees every message). Anything else, including a request
the parser refuses, is handed to aiohttp from its first byte, and the connection stays with aiohttp
from then on: so every other route, every limit aiohttp applies and every error it answers is as it
was. The limits this path applies itself are aiohttp's, with the same words (:mod:`limits`): the
idle and header timeout (from the connection's start or its last answer until a request's headers
are complete; bytes that trickle in do not reset it), the body deadline (``408``, then the
connection closes) and the cap (the connection counts as busy from its headers to its answer).
Requests sent before the previous answer (pipelining) wait in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Generator
from typing import Any, cast

import httptools
from aiohttp import hdrs, web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from emulator.server.routes import session_protocol
from emulator.server.state import STATE_KEY

LeanHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_HEAD_BYTES = 64 * 1024
"""Bytes of a request's head this path reads before it gives the connection to aiohttp (whose own
line and field limits then answer)."""

LEAN_HEAD_BYTES = 8190
"""A head longer than aiohttp's limit for one line or field goes to aiohttp, whose limits then answer
(a session message's head is a few hundred bytes), as does one with more fields than aiohttp takes:"""
AIOHTTP_MAX_HEADERS = 128

_LOG = logging.getLogger("aiohttp.server")
_SERVER = f"Server: {SERVER_SOFTWARE}\r\n".encode()
_INTERNAL = b"500 Internal Server Error\n\nServer got itself in trouble"


def lean_routes(app: web.Application, also: Collection[str] = ()) -> dict[bytes, LeanHandler]:
    """Raw path -> the handler the router holds for ``POST`` there, for the literal session routes
    and the paths ``also`` names (a route with a variable part, ``/dm12/<ServerID>``, stays with aiohttp)."""
    out: dict[bytes, LeanHandler] = {}
    for resource in app.router.resources():
        if not isinstance(resource, web.PlainResource) or (session_protocol(resource.canonical) is None
                                                           and resource.canonical not in also):
            continue
        for route in resource:
            if route.method == hdrs.METH_POST and resource.canonical.isascii() and "%" not in resource.canonical:
                out[resource.canonical.encode()] = route.handler
    return out


class Lane:
    """What the connections of one site share: the app, its lean routes, the limits, the live connections."""

    def __init__(self, app: web.Application, *, idle_s: float, body_s: float, max_body: int,
                 also: Collection[str] = ()) -> None:
        self.app = app
        self.routes = lean_routes(app, also)
        self.idle_s = idle_s
        self.body_s = body_s
        self.max_body = max_body
        self.state = app[STATE_KEY]
        self.live: set[LeanConnection] = set()
        self.closing = False
        self.answered = 0  # requests answered on this path
        self.handed_over = 0  # connections given to aiohttp

    def stop(self) -> None:
        """The site stops: idle connections close now, busy ones after their answer."""
        self.closing = True
        for conn in list(self.live):
            if not conn.busy and conn.task is None:
                conn.close()

    async def shutdown(self, app: web.Application) -> None:
        """The app shuts down (held DM 2.0 answers are let go by then): wait a little for the
        answers being made, then close what is left."""
        self.stop()
        for conn in list(self.live):
            if conn.task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(conn.task), 10.0)
            conn.close()


class _Stop(Exception):
    """Raised in a parser callback to stop parsing where it is."""


class LeanRequest:
    """What the DM session handlers read of an aiohttp request, made from what the parser gave."""

    def __init__(self, conn: LeanConnection, raw_path: str, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.app = conn.lane.app
        self.method = "POST"
        self.raw_path = raw_path
        self.path, _, self._query = raw_path.partition("?")
        self.headers = headers
        self.match_info: dict[str, str] = {}
        self.transport = conn.transport
        self._body = body
        self.body_exists = bool(body)
        self.content_length = len(body)
        self.keep_alive = True

    async def read(self) -> bytes:
        return self._body

    @property
    def scheme(self) -> str:
        return "https" if self.transport is not None and self.transport.get_extra_info("sslcontext") else "http"

    @property
    def host(self) -> str:
        return self.headers[hdrs.HOST]

    @property
    def remote(self) -> str | None:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        if peer is None:
            return None
        return str(peer[0]) if isinstance(peer, list | tuple) else str(peer)

    @property
    def url(self) -> URL:
        rel = URL.build(path=self.path, query_string=self._query, encoded=True)
        return URL.build(scheme=self.scheme, authority=self.host).join(rel)


class LeanConnection(asyncio.Protocol):
    """One connection: session messages served here until a request needs aiohttp (see the module doc)."""

    def __init__(self, lane: Lane, make_inner: Callable[[], asyncio.Protocol]) -> None:
        self.lane = lane
        self.make_inner = make_inner
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.pending = bytearray()  # bytes from the first byte of the request being read
        self.busy = False  # from a request's headers to its answer (aiohttp's "request in progress")
        self.task: asyncio.Task[None] | None = None  # an answer that had to wait
        self.queued: deque[tuple[LeanRequest, LeanHandler, bool]] = deque()
        self.eof = False
        self._hand_over = False
        # one timer per connection, moved by deadline (a timer made and cancelled per message costs more)
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0
        self.then: Callable[[], None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers = CIMultiDict[str]()
        self.body: list[bytes] = []
        self.handler: LeanHandler | None = None
        self.size = 0

    @property
    def _request_in_progress(self) -> bool:
        """The cap's test of a busy connection (:class:`emulator.server.limits._Counted`)."""
        if self.inner is not None:
            return bool(getattr(self.inner, "_request_in_progress", False))
        return self.busy

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.lane.live.add(self)
        self._arm(self.lane.idle_s, self._idle)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)
            return
        self.pending += data
        if self.task is not None:  # sent before the answer (pipelined): read after it
            if len(self.pending) > self.lane.max_body + MAX_HEAD_BYTES and self.transport is not None:
                self.transport.pause_reading()
            return
        self._feed(data)

    def eof_received(self) -> bool | None:
        if self.inner is not None:
            return self.inner.eof_received()
        if self.task is not None or self.busy:
            self.eof = True
            return True  # keep the transport open for the answer; closed after it
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lane.live.discard(self)
        self._disarm()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.inner is not None:
            self.inner.connection_lost(exc)
        self.transport = None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def close(self) -> None:
        if self.inner is None and self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------------ parsing

    def _feed(self, data: bytes) -> None:
        while True:
            refused = False
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserCallbackError as exc:
                refused = self._hand_over or not isinstance(exc.__context__, _Stop)
                if not refused:
                    # stopped after a message with more bytes behind it: a new parser reads them,
                    # now if the answer was made at once, else after it
                    self.parser = httptools.HttpRequestParser(self)
                    transport = self.transport
                    if self.task is None and self.pending and transport is not None and not transport.is_closing():
                        data = bytes(self.pending)
                        continue
                    return
            except httptools.HttpParserError:
                refused = True  # aiohttp's parser answers it as it always did
            if refused or (self.handler is None and self.task is None and len(self.pending) > MAX_HEAD_BYTES):
                self._give_to_aiohttp()
            return

    def _give_to_aiohttp(self) -> None:
        transport = self.transport
        if self.inner is not None or transport is None:
            return
        self._disarm()
        self.lane.live.discard(self)
        self.lane.handed_over += 1
        inner = self.make_inner()
        self.inner = inner
        inner.connection_made(transport)
        data, self.pending = bytes(self.pending), bytearray()
        if data and not transport.is_closing():
            inner.data_received(data)

    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.add(name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))

    def on_headers_complete(self) -> None:
        handler = self._lean_handler()
        if handler is None:
            self._hand_over = True
            raise _Stop
        self.handler = handler
        self.busy = True
        if len(self.pending) < self.size:  # the body is still coming: it has body_s to arrive
            self._arm(self.lane.body_s, self._body_late)
        else:
            self._disarm()

    def _lean_handler(self) -> LeanHandler | None:
        """The handler when this request takes the lean path (see the module doc), else None."""
        lane = self.lane
        handler = lane.routes.get(self.url.partition(b"?")[0])
        if (handler is None or self.parser.get_method() != b"POST" or self.parser.get_http_version() != "1.1"
                or lane.state.faults.session_faults or lane.closing):
            return None
        headers = self.headers
        lengths = headers.getall("Content-Length", ())
        if (len(lengths) != 1 or not lengths[0].isdigit() or int(lengths[0]) > lane.max_body
                or "Host" not in headers or "Transfer-Encoding" in headers or "Expect" in headers
                or "Upgrade" in headers or "Content-Encoding" in headers):
            return None
        pending = self.pending
        head = pending.find(b"\r\n\r\n") + 4
        # the head must be exactly what llhttp read: starting with the method, CRLF line ends only
        if head < 4 or not pending.startswith(b"POST ") or pending.count(b"\n", 0, head) != \
                pending.count(b"\r\n", 0, head):
            return None
        if head > LEAN_HEAD_BYTES or len(headers) > AIOHTTP_MAX_HEADERS:
            return None  # near aiohttp's line, field or count limits: aiohttp judges it, as before
        self.size = head + int(lengths[0])
        return handler

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self._disarm()
        handler = self.handler
        assert handler is not None
        raw_url = self.url.decode("latin-1")
        request = LeanRequest(self, raw_url, CIMultiDictProxy(self.headers), b"".join(self.body))
        self.queued.append((request, handler, self.parser.should_keep_alive()))
        del self.pending[:self.size]
        self._reset()
        if self.task is None:
            self._next()
        if self.pending:  # another request follows in the same bytes: read it after this answer
            raise _Stop

    # ------------------------------------------------------------------ answering

    def _next(self) -> None:
        """Answer the queued requests in order: at once while a handler needs no wait (a session
        message's usual case: no task, no loop turn), else in a task that goes on from its wait."""
        while self.queued:
            request, handler, keep_alive = self.queued.popleft()
            self.busy = True
            coro = _respond(handler, request)
            try:
                waiting = coro.send(None)
            except StopIteration as done:
                if not self._sent(done.value, keep_alive):
                    return
                continue
            self.task = self.loop.create_task(self._later(_Rest(coro, waiting), keep_alive))
            return
        self._arm(self.lane.idle_s, self._idle)

    async def _later(self, rest: _Rest, keep_alive: bool) -> None:
        response = await rest
        self.task = None
        if self._sent(response, keep_alive):
            self._next()
            if self.task is None and self.pending and self.transport is not None:
                self.transport.resume_reading()
                self._feed(bytes(self.pending))

    def _sent(self, response: web.StreamResponse, keep_alive: bool) -> bool:
        """Write one answer; False when the connection is gone or closes after it."""
        self.busy = False
        self.lane.answered += 1
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        if _write(transport, response, keep_alive and not self.lane.closing and not self.eof):
            transport.close()
            return False
        return True

    def _idle(self) -> None:
        if not self.busy and self.task is None and self.transport is not None and self.inner is None:
            self.transport.close()

    def _body_late(self) -> None:
        if self.transport is None or self.inner is not None:
            return
        text = f"the request body did not arrive within {self.lane.body_s:g} s"
        _write(self.transport, web.Response(status=408, text=text, headers={"Connection": "close"}), False)
        self.transport.close()

    def _arm(self, seconds: float, then: Callable[[], None]) -> None:
        self.deadline = self.loop.time() + seconds
        self.then = then
        timer = self.timer
        if timer is not None and timer.when() > self.deadline:
            timer.cancel()
            timer = None
        if timer is None:
            self.timer = self.loop.call_at(self.deadline, self._tick)

    def _disarm(self) -> None:
        self.then = None

    def _tick(self) -> None:
        self.timer = None
        then = self.then
        if then is None:
            return
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._tick)
            return
        self.then = None
        then()


class _Rest:
    """The rest of a coroutine that was started at once and then had to wait: awaited in a task,
    it hands the task what the coroutine waits for and passes back what the task sends or throws."""

    __slots__ = ("coro", "waiting")

    def __init__(self, coro: Any, waiting: Any) -> None:
        self.coro = coro
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, web.StreamResponse]:
        waiting = self.waiting
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                self.coro.close()
                raise
            except BaseException as exc:  # cancellation too: the coroutine decides
                try:
                    waiting = self.coro.throw(exc)
                except StopIteration as done:
                    return cast(web.StreamResponse, done.value)
                continue
            try:
                waiting = self.coro.send(sent)
            except StopIteration as done:
                return cast(web.StreamResponse, done.value)


async def _respond(handler: LeanHandler, request: LeanRequest) -> web.StreamResponse:
    try:
        return await handler(cast(web.Request, request))
    except web.HTTPException as exc:
        return web.Response(status=exc.status, reason=exc.reason, text=exc.text, headers=exc.headers)
    except Exception:
        _LOG.exception("Error handling request")
        return web.Response(status=500, body=_INTERNAL, content_type="text/plain")


def _write(transport: asyncio.Transport, response: Any, keep_alive: bool) -> bool:
    """Write ``response`` as one block; True when the connection closes after it."""
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes):  # nothing a session handler answers: say so rather than guess
        _LOG.error("a lean route answered %r, which this path cannot write", type(response).__name__)
        response, body = web.Response(status=500, body=_INTERNAL, content_type="text/plain"), _INTERNAL
    headers = response.headers
    close = not keep_alive or headers.get(hdrs.CONNECTION, "").lower() == "close"
    lines = [f"HTTP/1.1 {response.status} {response.reason}\r\n"]
    for name, value in headers.items():
        if name.lower() not in _SET_HERE:
            lines.append(f"{name}: {value}\r\n")
    lines.append(f"Content-Length: {len(body)}\r\nDate: {rfc822_formatted_time()}\r\n")
    if close:
        lines.append("Connection: close\r\n")
    head = "".join(lines)
    breaks = len(lines) + 1  # one per line made here; Content-Length and Date share an entry
    if head.count("\n") != breaks or head.count("\r") != breaks:
        # a status reason or header with a line break of its own would split the answer (aiohttp refuses those)
        _LOG.error("a lean route answered a header with a line break; answered 500 instead")
        head, body = ("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                      f"Content-Length: {len(_INTERNAL)}\r\nConnection: close\r\n"), _INTERNAL
        close = True
    transport.write(b"".join((head.encode("utf-8", "surrogateescape"), _SERVER, b"\r\n", body)))
    return close


_SET_HERE = frozenset({"content-length", "transfer-encoding", "connection", "date", "server"})
