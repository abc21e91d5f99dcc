"""The blocking driver of the session flow: one management session on plain sockets, no event loop.

Locust runs its users on gevent, not asyncio: a gevent-patched socket (and ``time.sleep``) makes a
blocking call cooperative, so the same flow (:mod:`emulator.protocol.flow`) runs here over a
blocking transport (:class:`emulator.transport.blocking.BlockingTransport`), bearer shaping
included. Nothing here imports gevent or Locust; under pytest it is plain blocking code.

A DM 2.0 SHOW page the session does not wait for (:class:`~emulator.protocol.flow.Background`) is
answered right away, to its end, before the session's next message: this driver has one thread of
control, and the server holds its answer to that next message until the form is sent (PROTOCOL
1.19 item 5), so answering the page after it would stall the session for the server's whole hold.
A user who fills the page in before the device's next message gets through is what the server sees,
which it must accept anyway. No threads: the page's requests go through the same transport.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator
from typing import Any

from emulator.fleet.drive import SessionContext, now
from emulator.protocol.actions import SessionDone
from emulator.protocol.flow import (
    Background,
    Engine,
    Fetch,
    Post,
    Reply,
    SessionCancelled,
    Sleep,
    Step,
    UiAnswerer,
    Wait,
    session_flow,
)
from emulator.transport.base import Transport


def drive_sync(engine: Engine, ctx: SessionContext, ui: UiAnswerer, *, reason: str = "") -> SessionDone:
    """Run the engine to its end, blocking; never raises for anything a server or network does."""
    flow = session_flow(engine, ctx, ctx.bus.publish, ui=ui, start=now(), reason=reason, limits=ctx.limits)
    return run_sync(flow, ctx)


def run_sync(flow: Generator[Step, Reply, Any], ctx: SessionContext) -> Any:
    """Carry out a flow's steps until it returns; a killed greenlet (or ^C) ends the session aborted."""
    try:
        step = next(flow)
        while True:
            try:
                reply = _carry_out(step, ctx)
            except Exception as exc:  # a transport or answerer bug: the flow fails the session
                step = flow.throw(exc)
                continue
            except BaseException:  # GreenletExit, KeyboardInterrupt: the session is cancelled
                with contextlib.suppress(StopIteration, SessionCancelled):
                    flow.throw(SessionCancelled())
                flow.close()
                raise
            step = flow.send(reply)
    except StopIteration as stop:
        return stop.value


def _carry_out(step: Step, ctx: SessionContext) -> Reply:
    if isinstance(step, Post | Fetch):
        r = step.request
        t0 = time.monotonic()
        transport: Transport = ctx.transport
        result = transport.request(r.method, r.url, r.body, r.headers, tls=ctx.tls, shaping=ctx.shaping,
                                        rng=ctx.rng, max_body=r.max_body)
        return Reply(now(), result, (time.monotonic() - t0) * 1000)
    if isinstance(step, Sleep):
        time.sleep(step.seconds)
        return Reply(now())
    if isinstance(step, Background):
        run_sync(step.flow, ctx)  # see the module doc: answered before the session's next message
        return Reply(now())
    if isinstance(step, Wait):
        raise TypeError("this answerer needs an event loop (the window); the blocking driver has none")
    raise TypeError(f"no such step: {step!r}")
