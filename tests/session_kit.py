"""Helpers to run sessions against a loopback server, shared by the integration and hostile tests.

- One session through either driver (tests/integration/test_session_flow.py,
  tests/hostile/test_session_limits.py): the server runs in a thread with its own loop (aiohttp on
  127.0.0.1:0), so that the blocking driver reaches it as well as the asyncio one. ``Forever`` is
  a server that never ends a session.
- The reference server and a fleet in one loop (:func:`server_and_fleet`, the campaign, flow and
  diagnostics tests): phones without bearer shaping, operations fast, and a bounded wait
  (:meth:`Bench.settle`) for the sessions a device opens on its own to end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aiohttp import web

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import EventBus, SessionEnded
from emulator.fleet.drive import SessionContext, drive
from emulator.fleet.drive_sync import drive_sync
from emulator.fleet.engines import make_engine
from emulator.fleet.fleet import Fleet
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.dm2 import media
from emulator.protocol.flow import DEFAULT_LIMITS
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Get, Item, Message, Status, SyncHdr
from emulator.protocol.syncml.message import build_message, content_type, parse_message
from emulator.server.app import RunningServer, start_server
from emulator.server.state import ServerState
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


def phone(base: str, index: int = 0) -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone"), index, server=base)


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


def hostile_account(dev: VirtualDevice, protocol: str, base: str):
    account = dev.account(None, protocol)
    # DM 1.2: a server that does not authenticate itself (auth none), so only the limit can end it
    return dataclasses.replace(account, server_uri=f"{base}/{protocol}",
                               **({"auth": "none"} if protocol == "dm12" else {}))




FAST_FUMO: dict[str, object] = {"install_s": 0.05, "reboot_s": 0.05}
"""FUMO knobs that keep an update's install and reboot short."""


@dataclasses.dataclass
class Bench:
    """A reference server and a fleet on it, in the running loop; ``ended``: every session that ended."""

    server: RunningServer
    fleet: Fleet
    ended: list[SessionEnded]

    @property
    def admin(self) -> dict[str, str]:
        """The headers of an admin API request."""
        return {"Authorization": f"Bearer {self.server.state.admin_token}"}

    def phones(self, n: int = 1, profile: str = "smartphone") -> list[VirtualDevice]:
        """``n`` phones with no bearer shaping (the operations' own timing only) and quick FUMO."""
        devs = self.fleet.add(profile, n)
        for dev in devs:
            dev.bearers, dev.bearer = {}, ""
            dev.behaviours.configure("fumo", FAST_FUMO)
        return devs

    async def settle(self, n: int = 0, until: Callable[[], bool] | None = None) -> None:
        await settle(self.fleet, self.ended, n, until)


async def settle(fleet: Fleet, ended: list[SessionEnded], n: int = 0, until: Callable[[], bool] | None = None) -> None:
    """Wait (bounded, never timed) until ``n`` sessions ended, ``until()`` holds and the fleet has
    no task left (the sessions a device opens on its own to report)."""
    for _ in range(1200):
        if len(ended) >= n and (until is None or until()) and not fleet._tasks:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"only {len(ended)} of {n} sessions ended: {[(e.outcome, e.detail) for e in ended]}")


@asynccontextmanager
async def server_and_fleet(state: ServerState | None = None, **fleet_options: Any) -> AsyncIterator[Bench]:
    """The reference server (``state``: a new one, its push wait short) and a fleet pointed at it;
    both stopped at the end."""
    server = await start_server(state or ServerState(push_wait_s=0.2))
    fleet = Fleet(server=server.url, **fleet_options)
    fleet.resume_wait_s = fleet.alert_retry_s = 0.01  # a report or upload with no answer is tried again soon
    ended: list[SessionEnded] = []
    fleet.bus.subscribe(ended.append, SessionEnded)
    try:
        yield Bench(server, fleet, ended)
    finally:
        await fleet.aclose()
        await server.stop()
