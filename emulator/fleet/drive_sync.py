"""The blocking driver of a sans-IO engine: one management session on plain sockets, no event loop.

Locust runs its users on gevent, not asyncio: a gevent-patched socket makes a blocking call
cooperative, so the same engines run there through this loop (the twin of
:func:`emulator.fleet.drive.drive`) and an ``httpx.Client``. Nothing here imports gevent or Locust;
under pytest it is plain blocking code.

The web UI answerer (:class:`emulator.fleet.headless.HeadlessUi`) is written as coroutines that only
ever await the transport; :class:`SyncContext` hands it a transport whose coroutines finish without
suspending, so :func:`run_sync` can step them to their end. A DM 2.0 SHOW (the session goes on while
the page is open) is answered on a thread, which gevent turns into a greenlet.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from emulator.events import EventBus, MessageLogged, SessionEnded, SessionStarted, UiFinished, UiRequested
from emulator.fleet.drive import Engine, UiHandler
from emulator.protocol.actions import (
    AskUser,
    HttpRequest,
    HttpResult,
    OpenBrowser,
    SendMessage,
    SessionDone,
    UserAnswer,
)
from emulator.transport.http import TlsConfig

T = TypeVar("T")
DEFAULT_TLS = TlsConfig()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (it awaits only other such coroutines)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the coroutine waited for an event loop; the blocking driver has none")


class SyncTransport:
    """Pooled blocking HTTP (``httpx.Client``); failures come back as ``HttpResult(0, error=...)``.

    ``request`` and ``post`` also exist as coroutines that never suspend (``arequest``/``apost``
    through :class:`AwaitableTransport`), for code written against the async transport.
    """

    def __init__(self, *, timeout: float = 60.0, connect_timeout: float = 10.0, max_connections: int = 10) -> None:
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._clients: dict[TlsConfig, httpx.Client] = {}
        self.requests = 0

    def _client(self, tls: TlsConfig) -> httpx.Client:
        client = self._clients.get(tls)
        if client is None:
            client = httpx.Client(verify=tls.ssl_context(), timeout=self._timeout, limits=self._limits,
                                  follow_redirects=False)
            self._clients[tls] = client
        return client

    def request(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None, *,
                tls: TlsConfig = DEFAULT_TLS, **_: object) -> HttpResult:  # fmt: skip
        self.requests += 1
        try:
            client = self._client(tls)
            response = client.request(method, url, content=body, headers=headers or {})
        except httpx.TimeoutException:
            return HttpResult(0, error=f"{method} {url}: no answer within {self._timeout.read:g} s")
        except httpx.ConnectError as exc:
            return HttpResult(0, error=f"{method} {url}: cannot connect ({exc or type(exc).__name__})")
        except Exception as exc:  # httpx, ssl and socket errors alike: a session must never raise
            return HttpResult(0, error=f"{method} {url}: {type(exc).__name__} ({exc})")
        return HttpResult(response.status_code, response.content, dict(response.headers))

    def post(self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None,
             **kw: Any) -> HttpResult:  # fmt: skip
        return self.request("POST", url, body, {"Content-Type": content_type, **(headers or {})}, **kw)

    def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()


class AwaitableTransport:
    """The async transport's interface over a :class:`SyncTransport` (for the UI answerer)."""

    def __init__(self, sync: SyncTransport) -> None:
        self.sync = sync

    async def request(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      **kw: Any) -> HttpResult:  # fmt: skip
        return self.sync.request(method, url, body, headers, **kw)

    async def post(self, url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None,
                   **kw: Any) -> HttpResult:  # fmt: skip
        return self.sync.post(url, body, content_type, headers, **kw)


Exchange = Callable[[SendMessage | HttpRequest, HttpResult, float], None]
"""Called after every round trip with what was sent, what came back and the round trip in ms."""


@dataclass
class SyncContext:
    device_id: str
    session_id: str
    protocol: str
    server: str
    transport: SyncTransport
    bus: EventBus = field(default_factory=EventBus)
    tls: TlsConfig = DEFAULT_TLS
    bearer: str = ""
    rng: random.Random = field(default_factory=random.Random)
    on_exchange: Exchange | None = None
    messages: int = 0
    background: list[threading.Thread] = field(default_factory=list)

    @property
    def ui_context(self) -> Any:
        """What a UiHandler gets as ``ctx``: this context with the awaitable transport."""
        return _UiContext(self)


class _UiContext:
    def __init__(self, ctx: SyncContext) -> None:
        self._ctx = ctx
        self.transport = AwaitableTransport(ctx.transport)
        self.tls = ctx.tls
        self.shaping = None
        self.rng = ctx.rng

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def drive_sync(engine: Engine, ctx: SyncContext, ui: UiHandler, *, reason: str = "") -> SessionDone:
    """Run the engine to its end, blocking; never raises for anything a server or network does."""
    bus = ctx.bus
    bus.publish(SessionStarted(ctx.device_id, ctx.session_id, ctx.protocol, ctx.server, ctx.bearer, reason))
    done: SessionDone | None = None
    try:
        while (action := engine.next_action()) is not None:
            if isinstance(action, SendMessage):
                engine.receive_message(_exchange(ctx, action))
            elif isinstance(action, HttpRequest):
                t0 = time.perf_counter()
                result = ctx.transport.request(action.method, action.url, action.body, action.headers, tls=ctx.tls)
                if ctx.on_exchange is not None:
                    ctx.on_exchange(action, result, (time.perf_counter() - t0) * 1000)
                engine.receive_http(action.request_id, result)
            elif isinstance(action, AskUser):
                bus.publish(UiRequested(ctx.device_id, ctx.session_id, "alert", server_id=ctx.server,
                                        alert=action, request_id=action.request_id))
                answer = run_sync(ui.ask(ctx.ui_context, action))
                bus.publish(UiFinished(ctx.device_id, ctx.session_id, action.request_id, answer.outcome))
                engine.answer_user(action.request_id, answer)
            elif isinstance(action, OpenBrowser):
                bus.publish(UiRequested(ctx.device_id, ctx.session_id, "web", url=action.url,
                                        server_id=ctx.server, request_id=action.request_id))
                if action.wait:
                    answer = _browse(ctx, ui, action)
                    engine.answer_user(action.request_id, answer)
                else:  # DM 2.0 SHOW: the session goes on while the page is open
                    thread = threading.Thread(target=_browse, args=(ctx, ui, action), daemon=True)
                    ctx.background.append(thread)
                    thread.start()
            elif isinstance(action, SessionDone):
                done = action
                break
    except Exception as exc:  # an engine bug must still end the session visibly
        done = SessionDone("failed", f"internal error: {type(exc).__name__}: {exc}")
    finally:
        done = done or SessionDone("failed", "engine stopped without ending the session")
        bus.publish(SessionEnded(ctx.device_id, ctx.session_id, done.outcome, done.detail, ctx.bearer,
                                 done.warnings))
    return done


def _exchange(ctx: SyncContext, action: SendMessage) -> HttpResult:
    bus = ctx.bus
    sent = time.time()
    bus.publish(MessageLogged(ctx.device_id, ctx.session_id, "out", sent, action.content_type, action.body,
                              action.summary, None, action.url))
    ctx.messages += 1
    t0 = time.perf_counter()
    result = ctx.transport.post(action.url, action.body, action.content_type, action.headers, tls=ctx.tls)
    rtt = (time.perf_counter() - t0) * 1000
    if ctx.on_exchange is not None:
        ctx.on_exchange(action, result, rtt)
    if result.status:
        ctype = result.headers.get("content-type", "")
        bus.publish(MessageLogged(ctx.device_id, ctx.session_id, "in", time.time(), ctype, result.body,
                                  f"HTTP {result.status}", rtt, action.url))
        ctx.messages += 1
    return result


def _browse(ctx: SyncContext, ui: UiHandler, action: OpenBrowser) -> UserAnswer:
    try:
        answer = run_sync(ui.browse(ctx.ui_context, action))
    except Exception as exc:
        answer = UserAnswer("failed", text=str(exc))
    ctx.bus.publish(UiFinished(ctx.device_id, ctx.session_id, action.request_id, answer.outcome))
    return answer
