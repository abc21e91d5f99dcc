"""The asyncio driver of a sans-IO engine: one management session, start to end.

It owns nothing of the protocol: it carries the engine's actions to the transport and the user
interface, logs every message to the event bus with its round-trip time, and turns the end into a
:class:`SessionEnded` event. The same loop drives DM 1.2 and DM 2.0 engines.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from emulator.events import EventBus, MessageLogged, SessionEnded, SessionStarted, UiFinished, UiRequested
from emulator.protocol.actions import (
    AskUser,
    HttpRequest,
    HttpResult,
    OpenBrowser,
    SendMessage,
    SessionDone,
    UserAnswer,
)
from emulator.transport.http import NO_SHAPING, HttpTransport, Shaping, TlsConfig


class Engine(Protocol):
    def next_action(self) -> object | None: ...
    def receive_message(self, result: HttpResult) -> None: ...
    def receive_http(self, request_id: str, result: HttpResult) -> None: ...
    def answer_user(self, request_id: str, answer: UserAnswer) -> None: ...
    def fail(self, reason: str) -> None: ...


class UiHandler(Protocol):
    """Who answers user interaction: the window, or a headless policy/scenario."""

    async def ask(self, ctx: SessionContext, action: AskUser) -> UserAnswer: ...

    async def browse(self, ctx: SessionContext, action: OpenBrowser) -> UserAnswer: ...


@dataclass
class SessionContext:
    device_id: str
    session_id: str
    protocol: str
    server: str
    bus: EventBus
    transport: HttpTransport
    tls: TlsConfig = TlsConfig()
    shaping: Shaping = NO_SHAPING
    bearer: str = ""
    rng: random.Random = field(default_factory=random.Random)
    background: set[asyncio.Task] = field(default_factory=set)
    messages: int = 0


async def drive(engine: Engine, ctx: SessionContext, ui: UiHandler, *, reason: str = "") -> SessionDone:
    """Run the engine to its end; never raises for anything a server or network does."""
    bus = ctx.bus
    bus.publish(SessionStarted(ctx.device_id, ctx.session_id, ctx.protocol, ctx.server, ctx.bearer, reason))
    done: SessionDone | None = None
    try:
        while (action := engine.next_action()) is not None:
            if isinstance(action, SendMessage):
                engine.receive_message(await _exchange(ctx, action))
            elif isinstance(action, HttpRequest):
                result = await ctx.transport.request(
                    action.method, action.url, action.body, action.headers,
                    tls=ctx.tls, shaping=ctx.shaping, rng=ctx.rng, max_body=action.max_body,
                )
                engine.receive_http(action.request_id, result)
            elif isinstance(action, AskUser):
                bus.publish(UiRequested(ctx.device_id, ctx.session_id, "alert", server_id=ctx.server,
                                        alert=action, request_id=action.request_id))
                answer = await ui.ask(ctx, action)
                bus.publish(UiFinished(ctx.device_id, ctx.session_id, action.request_id, answer.outcome))
                engine.answer_user(action.request_id, answer)
            elif isinstance(action, OpenBrowser):
                bus.publish(UiRequested(ctx.device_id, ctx.session_id, "web", url=action.url,
                                        server_id=ctx.server, request_id=action.request_id))
                if action.wait:
                    answer = await ui.browse(ctx, action)
                    _finish_ui(ctx, action, answer)
                    engine.answer_user(action.request_id, answer)
                else:  # DM 2.0 SHOW: the session goes on while the page is open
                    _spawn(ctx, _browse_in_background(ctx, ui, action))
            elif isinstance(action, SessionDone):
                done = action
                break
    except asyncio.CancelledError:
        done = SessionDone("aborted", "session cancelled")
        raise
    except Exception as exc:  # an engine bug must still end the session visibly
        done = SessionDone("failed", f"internal error: {type(exc).__name__}: {exc}")
    finally:
        done = done or SessionDone("failed", "engine stopped without ending the session")
        bus.publish(SessionEnded(ctx.device_id, ctx.session_id, done.outcome, done.detail, ctx.bearer,
                                 done.warnings))
    return done


async def _exchange(ctx: SessionContext, action: SendMessage) -> HttpResult:
    bus = ctx.bus
    sent = time.time()
    bus.publish(MessageLogged(ctx.device_id, ctx.session_id, "out", sent, action.content_type, action.body,
                              action.summary, None, action.url))
    ctx.messages += 1
    result = await ctx.transport.post(
        action.url, action.body, action.content_type, action.headers,
        tls=ctx.tls, shaping=ctx.shaping, rng=ctx.rng, max_body=action.max_body,
    )
    now = time.time()
    if result.status:
        ctype = result.headers.get("content-type", "")
        summary = f"HTTP {result.status}"
        bus.publish(MessageLogged(ctx.device_id, ctx.session_id, "in", now, ctype, result.body, summary,
                                  (now - sent) * 1000, action.url))
        ctx.messages += 1
    return result


def _finish_ui(ctx: SessionContext, action: OpenBrowser | AskUser, answer: UserAnswer) -> None:
    ctx.bus.publish(UiFinished(ctx.device_id, ctx.session_id, action.request_id, answer.outcome))


async def _browse_in_background(ctx: SessionContext, ui: UiHandler, action: OpenBrowser) -> None:
    try:
        answer = await ui.browse(ctx, action)
    except Exception as exc:
        answer = UserAnswer("failed", text=str(exc))
    _finish_ui(ctx, action, answer)


def _spawn(ctx: SessionContext, coro: Awaitable[None]) -> None:
    task = asyncio.ensure_future(coro)
    ctx.background.add(task)
    task.add_done_callback(ctx.background.discard)

