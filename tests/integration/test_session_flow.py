"""Both session drivers over real loopback HTTP: the same events, the same limits, the same shaping.

The asyncio driver (``drive``) and the blocking one (``drive_sync``, Locust's) run one flow; these
tests would catch them drifting apart again. Hostile servers (aiohttp on 127.0.0.1:0, in a thread so
that the blocking driver can reach them too) answer Package 2/4 for ever: the session limit ends it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from aiohttp import web

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import (
    EventBus,
    MessageLogged,
    RoundTrip,
    SessionEnded,
    SessionStarted,
    UiFinished,
    UiRequested,
)
from emulator.fleet.drive import SessionContext, drive
from emulator.fleet.drive_sync import drive_sync
from emulator.fleet.engines import make_engine
from emulator.fleet.fleet import Fleet
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.dm2 import media
from emulator.protocol.flow import DEFAULT_LIMITS, SessionLimits
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Get, Item, Message, Status, SyncHdr
from emulator.protocol.syncml.message import build_message, content_type, parse_message
from emulator.transport.blocking import BlockingTransport
from emulator.transport.http import HttpTransport
from emulator.transport.shaping import NO_SHAPING, Shaping

DRIVERS = ("asyncio", "blocking")


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """``app`` on 127.0.0.1:0 in a thread of its own (its own loop); yields the base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()
    port: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10), "the loopback server did not start"
    try:
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def run_session(driver: str, dev: VirtualDevice, protocol: str, *, account=None, limits=DEFAULT_LIMITS,
                shaping: Shaping = NO_SHAPING, sleep: Callable[[float], object] | None = None,
                **engine_options):  # fmt: skip
    """One session of ``dev`` through ``driver``; (SessionDone, events)."""
    bus = EventBus()
    events: list[object] = []
    bus.subscribe(events.append)
    account = account or dev.account(None, protocol)
    engine = make_engine(dev, account, "s1", **engine_options)
    if driver == "asyncio":
        async def main():
            transport = HttpTransport(**({"sleep": _async(sleep)} if sleep else {}))
            ctx = SessionContext(dev.id, "s1", protocol, account.server_id, bus, transport, limits=limits,
                                 shaping=shaping)
            try:
                done = await drive(engine, ctx, HeadlessUi())
                if ctx.background:
                    await asyncio.gather(*ctx.background)
                return done
            finally:
                await transport.aclose()

        return asyncio.run(main()), events
    transport = BlockingTransport(**({"sleep": sleep} if sleep else {}))
    ctx = SessionContext(dev.id, "s1", protocol, account.server_id, bus, transport, limits=limits, shaping=shaping)
    try:
        return drive_sync(engine, ctx, HeadlessUi()), events
    finally:
        transport.close()


def _async(sleep):
    async def wrapped(seconds: float) -> None:
        sleep(seconds)

    return wrapped


def _phone(base: str, index: int = 0) -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone"), index, server=base)


# ------------------------------------------------------------------------------------ no drift


@pytest.fixture(scope="module")
def demo_server():
    """`dm-emulator server` as shipped: DM 2.0 demo with a SHOW web flow, DM 1.2 demo with auth."""
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "server", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("reference DM server on http://"), first + proc.stderr.read()
        yield first.split()[-1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def _shape(events: list[object]) -> list[tuple]:
    """The events as a driver-independent sequence: no times, ids, nonces; UI ends apart (below)."""
    out: list[tuple] = []
    for e in events:
        if isinstance(e, SessionStarted):
            out.append(("started", e.protocol, e.server))
        elif isinstance(e, MessageLogged):
            out.append(("message", e.direction, e.summary, e.content_type.split(";")[0], e.url.split("?")[0]))
        elif isinstance(e, RoundTrip):
            out.append(("round trip", e.kind, e.method, e.status))
        elif isinstance(e, UiRequested):
            out.append(("ui", e.kind))
        elif isinstance(e, SessionEnded):
            out.append(("ended", e.outcome))
    return out


@pytest.mark.parametrize("protocol", ["dm2", "dm12"])
def test_both_drivers_publish_the_same_session(demo_server, protocol):
    runs = {driver: run_session(driver, _phone(demo_server, 20 + i), protocol) for i, driver in enumerate(DRIVERS)}
    (done_a, events_a), (done_b, events_b) = runs["asyncio"], runs["blocking"]
    assert done_a.outcome == done_b.outcome == "completed", (done_a, done_b)
    assert _shape(events_a) == _shape(events_b)
    assert len(_shape(events_a)) >= 8  # a real exchange, not two empty lists
    # a SHOW page ends while the session goes on: when exactly differs by design (drive_sync doc)
    ui_a = [e.outcome for e in events_a if isinstance(e, UiFinished)]
    assert ui_a == [e.outcome for e in events_b if isinstance(e, UiFinished)]
    if protocol == "dm2":
        assert ui_a == ["ok"]
    # every message both ways is logged, with the driver's round-trip time on the answers
    for events in (events_a, events_b):
        answers = [e for e in events if isinstance(e, MessageLogged) and e.direction == "in"]
        assert answers and all(e.rtt_ms is not None and e.rtt_ms >= 0 for e in answers)


# ------------------------------------------------------------------------------------ hostile servers


class Forever:
    """A server that answers every package with one more command; ``end_at``: the message it ends at."""

    def __init__(self, end_at: int | None = None) -> None:
        self.end_at = end_at
        self.posts: list[bytes] = []
        self.lock = threading.Lock()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/dm2", self.dm2)
        app.router.add_post("/dm12", self.dm12)
        return app

    def _count(self, body: bytes) -> int:
        with self.lock:
            self.posts.append(body)
            return len(self.posts)

    async def dm2(self, request: web.Request) -> web.Response:
        n = self._count(await request.read())
        cmd = [["END"]] if n == self.end_at else [["GET", "urn:oma:mo:oma-dm-devinfo:1.2//Man"]]
        return web.Response(body=json.dumps({"CMD": cmd}).encode(), content_type=media.REQUEST)

    async def dm12(self, request: web.Request) -> web.Response:
        body = await request.read()
        n = self._count(body)
        got = parse_message(body, request.headers["Content-Type"])
        hdr = got.header
        commands: list = [Status(cmd_id="1", msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr", code=codes.OK)]
        if n != self.end_at:
            commands.append(Get(cmd_id="2", items=[Item(target="./DevInfo/Man")]))
        reply = Message(header=SyncHdr(session_id=hdr.session_id, msg_id=str(n), target=hdr.source,
                                       source=hdr.target), commands=commands, final=True)
        return web.Response(body=build_message(reply), content_type=content_type().split(";")[0])


def _hostile_account(dev: VirtualDevice, protocol: str, base: str):
    account = dev.account(None, protocol)
    # DM 1.2: a server that does not authenticate itself (auth none), so only the limit can end it
    return dataclasses.replace(account, server_uri=f"{base}/{protocol}",
                               **({"auth": "none"} if protocol == "dm12" else {}))


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("protocol", ["dm2", "dm12"])
def test_a_server_that_never_ends_the_session_gets_200_messages(driver, protocol):
    server = Forever()
    with serve(server.app()) as base:
        dev = _phone(base)
        done, events = run_session(driver, dev, protocol, account=_hostile_account(dev, protocol, base))
    assert done.outcome == "failed"
    assert done.detail == "server never ended the session after 200 messages (limit 200)"
    ended = [e for e in events if isinstance(e, SessionEnded)]
    assert [(e.outcome, e.detail) for e in ended] == [(done.outcome, done.detail)]
    if protocol == "dm2":
        assert len(server.posts) == 200  # DM 2.0 has no client END: the device just stops
        return
    # DM 1.2: 200 messages, then Alert 1223 with Final in place of the 201st, with its MsgID
    assert len(server.posts) == 201
    last = parse_message(server.posts[-1], content_type())
    assert last.header.msg_id == "201" and last.final
    assert [(c.name, getattr(c, "code", None)) for c in last.commands] == [("Alert", codes.ALERT_SESSION_ABORT)]
    assert not any(b"<Data>1223</Data>" in p for p in server.posts[:-1])


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("protocol", ["dm2", "dm12"])
def test_a_session_ended_by_the_server_at_the_200th_message_completes(driver, protocol):
    server = Forever(end_at=200)
    with serve(server.app()) as base:
        dev = _phone(base)
        done, _ = run_session(driver, dev, protocol, account=_hostile_account(dev, protocol, base))
    assert done.outcome == "completed", done
    assert len(server.posts) == 200


def test_the_profiles_limits_reach_the_fleets_sessions():
    server = Forever()
    profile = dataclasses.replace(find_profile("smartphone"), limits=SessionLimits(max_messages=5))
    with serve(server.app()) as base:
        async def main():
            fleet = Fleet(server=base)
            try:
                (dev,) = fleet.add(profile)
                return await fleet.run_session(dev.id, "dm2", server_uri=f"{base}/dm2")
            finally:
                await fleet.aclose()

        done = asyncio.run(main())
    assert done.outcome == "failed" and "after 5 messages" in done.detail
    assert len(server.posts) == 5


# ------------------------------------------------------------------------------------ shaping


@pytest.mark.parametrize("driver", DRIVERS)
def test_bearer_shaping_applies_under_both_drivers(driver):
    server = Forever(end_at=2)
    delays: list[float] = []
    with serve(server.app()) as base:
        dev = _phone(base)
        done, _ = run_session(driver, dev, "dm2", account=_hostile_account(dev, "dm2", base),
                              shaping=Shaping(latency_ms=40), sleep=delays.append)
    assert done.outcome == "completed"
    assert delays == [0.04, 0.04]  # the bearer's latency before each of the two messages


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_bearer_that_loses_everything_fails_the_session_under_both_drivers(driver):
    server = Forever()
    with serve(server.app()) as base:
        dev = _phone(base)
        done, _ = run_session(driver, dev, "dm2", account=_hostile_account(dev, "dm2", base),
                              shaping=Shaping(loss=1.0), sleep=lambda s: None)
    assert done.outcome == "failed" and "retransmissions (simulated loss 100.0%)" in done.detail
    assert server.posts == []
