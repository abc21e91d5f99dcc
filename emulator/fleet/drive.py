"""The asyncio driver of the session flow (:mod:`emulator.protocol.flow`): it only carries out steps.

Everything a session decides (events, round trips, the user's part, limits, how it ends) is in the
flow, shared with the blocking driver (:mod:`emulator.fleet.drive_sync`); this module turns steps
into awaits on the transport. A SHOW page the session does not wait for runs as a task of its own,
kept in ``ctx.background``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from emulator.events import EventBus
from emulator.protocol.actions import SessionDone
from emulator.protocol.flow import (
    DEFAULT_LIMITS,
    Background,
    Engine,
    Fetch,
    Now,
    Post,
    Reply,
    SessionCancelled,
    SessionLimits,
    Sleep,
    Step,
    UiAnswerer,
    Wait,
    session_flow,
)
from emulator.protocol.values import DmProtocol
from emulator.transport.base import AsyncTransport
from emulator.transport.http import TlsConfig
from emulator.transport.shaping import NO_SHAPING, Shaping

UiHandler = UiAnswerer  # the name the fleet and the window know it by
_SHARED_RNG = random.Random()
"""Bearer jitter and loss draws of sessions that bring no generator of their own: nothing needs one
stream per session (a scenario that wants repeatable draws passes its seeded one)."""


@dataclass
class SessionContext:
    """One session as its driver runs it: who, where, over what (both drivers use it)."""

    device_id: str
    session_id: str
    protocol: DmProtocol
    server: str
    bus: EventBus
    transport: Any  # AsyncTransport for drive(), Transport for drive_sync()
    tls: TlsConfig = TlsConfig()
    shaping: Shaping = NO_SHAPING
    bearer: str = ""
    rng: random.Random = field(default_factory=lambda: _SHARED_RNG)  # seeding one per session costs 20 µs
    limits: SessionLimits = DEFAULT_LIMITS
    background: set[asyncio.Task] = field(default_factory=set)
    messages: int = 0


def now() -> Now:
    return Now(time.time(), time.monotonic())


async def drive(engine: Engine, ctx: SessionContext, ui: UiAnswerer, *, reason: str = "") -> SessionDone:
    """Run the engine to its end; never raises for anything a server or network does."""
    flow = session_flow(engine, ctx, ctx.bus.publish, ui=ui, start=now(), reason=reason, limits=ctx.limits)
    return await run(flow, ctx)


async def run(flow: Generator[Step, Reply, Any], ctx: SessionContext) -> Any:
    """Carry out a flow's steps until it returns; cancellation is thrown into the flow, then re-raised."""
    try:
        step = next(flow)
        while True:
            try:
                reply = await _carry_out(step, ctx)
            except asyncio.CancelledError:
                with contextlib.suppress(StopIteration, SessionCancelled):
                    flow.throw(SessionCancelled())
                flow.close()
                raise
            except Exception as exc:  # a transport or answerer bug: the flow fails the session
                step = flow.throw(exc)
                continue
            step = flow.send(reply)
    except StopIteration as stop:
        return stop.value


async def _carry_out(step: Step, ctx: SessionContext) -> Reply:
    if isinstance(step, Post):  # a session message: ``post``, whose answer a server may hold
        m = step.message
        t0 = time.monotonic()
        transport: AsyncTransport = ctx.transport
        result = await transport.post(m.url, m.body, m.content_type, m.headers, tls=ctx.tls, shaping=ctx.shaping,
                                      rng=ctx.rng, max_body=m.max_body)
        return Reply(now(), result, (time.monotonic() - t0) * 1000)
    if isinstance(step, Fetch):  # anything else (web pages and forms, DM 2.0 HTTP requests): ``request``
        r = step.request
        t0 = time.monotonic()
        result = await ctx.transport.request(r.method, r.url, r.body, r.headers, tls=ctx.tls, shaping=ctx.shaping,
                                             rng=ctx.rng, max_body=r.max_body)
        return Reply(now(), result, (time.monotonic() - t0) * 1000)
    if isinstance(step, Sleep):
        await asyncio.sleep(step.seconds)
        return Reply(now())
    if isinstance(step, Wait):
        return Reply(now(), await step.start())
    if isinstance(step, Background):
        task = asyncio.ensure_future(run(step.flow, ctx))
        ctx.background.add(task)
        task.add_done_callback(ctx.background.discard)
        return Reply(now())
    raise TypeError(f"no such step: {step!r}")
