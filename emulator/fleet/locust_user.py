"""Locust users that are virtual devices: the locustfile of ``dm-emulator locust``.

Each Locust user is one device built from a profile; its task runs one complete management session
per protocol against ``--host`` (the DM server's base URL, the profile's paths ``/dm12`` and ``/dm2``
follow it), then any session the last one asked for (a DM 2.0 asynchronous EXEC result). The engines
are the same sans-IO state machines the asyncio fleet drives; here :mod:`emulator.fleet.drive_sync` drives
them over ``httpx.Client``, which gevent makes cooperative.

Locust's statistics get one entry per session (type ``DM session``, name ``dm12``/``dm2``; a session
that does not complete is a failure with its reason) and one per HTTP round trip (type
``DM message``, named by protocol and method), so ``--csv``, the web UI and ``--master``/``--worker``
runs report them like any Locust request. Device identities never collide across workers: worker N
numbers its devices from ``--dm-first-index + N * 1,000,000``.

Run it as ``dm-emulator locust --host http://127.0.0.1:8700 --headless -u 100 -r 10 -t 1m`` or,
with Locust itself, ``locust -f emulator/fleet/locust_user.py ...``. Importing this module imports Locust,
which monkey-patches the process for gevent: never import it from the asyncio side or from tests.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

from locust import User, between, events, task

from emulator.device.profile import Profile, find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import RoundTrip
from emulator.fleet.drive import SessionContext
from emulator.fleet.drive_sync import drive_sync
from emulator.fleet.engines import finish_engine, make_engine
from emulator.fleet.headless import HeadlessUi
from emulator.transport.blocking import BlockingTransport

WORKER_STRIDE = 1_000_000
"""Identity indexes reserved per Locust worker."""

_indexes = itertools.count()
_sessions = itertools.count(1)
_profiles: dict[str, Profile] = {}  # one template tree per profile and worker, shared by its users


class SessionFailed(Exception):
    """A DM session that did not complete (its outcome and reason), as Locust records failures."""


class MessageFailed(Exception):
    """A round trip without an HTTP answer, or with an HTTP error status."""


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("dm-emulator devices")
    group.add_argument("--dm-profile", default="smartphone", help="device profile of the users (default: smartphone)")
    group.add_argument("--dm-protocols", default="dm12,dm2",
                       help="protocols each device runs a session of, in order (default: dm12,dm2)")
    group.add_argument("--dm-first-index", type=int, default=0,
                       help="first identity index (worker N adds N * 1,000,000)")


@events.init.add_listener
def _quiet_http_log(**_: Any) -> None:
    """httpx logs every request at INFO, which Locust's log level shows: thousands of lines a second."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _profile(name: str) -> Profile:
    prof = _profiles.get(name)
    if prof is None:
        prof = _profiles[name] = find_profile(name)
    return prof


class DmDevice(User):
    """One emulated device; rests 1-3 s between its rounds of sessions."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        profile = _profile(getattr(opts, "dm_profile", "smartphone"))
        wanted = [p.strip() for p in getattr(opts, "dm_protocols", "dm12,dm2").split(",") if p.strip()]
        worker = max(0, getattr(self.environment.runner, "worker_index", 0) or 0)
        index = getattr(opts, "dm_first_index", 0) + worker * WORKER_STRIDE + next(_indexes)
        self.device = VirtualDevice(profile, index, server=(self.host or "").rstrip("/"))
        self.protocols = [p for p in wanted if p in profile.protocols]
        self.transport = BlockingTransport(max_connections=2)
        self.device.bus.subscribe(self._round_trip, RoundTrip)
        self.ui = HeadlessUi()
        self._protocol = ""
        self.followups: list[tuple[str, dict[str, Any]]] = []

    def on_stop(self) -> None:
        self.transport.close()

    @task
    def manage(self) -> None:
        for protocol in self.protocols:
            self.session(protocol)
        while self.followups:
            protocol, options = self.followups.pop(0)
            self.session(protocol, **options)

    def session(self, protocol: str, *, server_id: str | None = None, reason: str = "client",
                **options: Any) -> None:  # fmt: skip
        dev = self.device
        fire = self.environment.events.request.fire
        account = dev.account(server_id, protocol)
        session_id = f"s{next(_sessions)}"
        ctx = SessionContext(dev.id, session_id, protocol, account.server_id, dev.bus, self.transport,
                             bearer=dev.bearer, shaping=dev.shaping, limits=dev.profile.limits)
        self.ui.visited.clear()
        self._protocol = protocol  # a user runs one session at a time: its round trips are this one's
        t0 = time.perf_counter()
        engine = make_engine(dev, account, session_id, **options)
        done = drive_sync(engine, ctx, self.ui, reason=reason)
        finish_engine(dev, account, engine, done, self.start_session)
        failed = None if done.outcome == "completed" else SessionFailed(f"{done.outcome}: {done.detail}")
        fire(request_type="DM session", name=protocol, response_time=(time.perf_counter() - t0) * 1000,
             response_length=ctx.messages, exception=failed, context={"device": dev.id, "reason": reason})

    def start_session(self, dev_id: str, protocol: str, **options: Any) -> None:
        """What :func:`finish_engine` asks of a fleet: a session of its own, run after this one."""
        self.followups.append((protocol, options))

    def _round_trip(self, event: RoundTrip) -> None:
        """Every round trip of a session (its messages, its commands' requests) as a Locust request."""
        failed = None
        if not event.status or event.status >= 400:
            failed = MessageFailed(event.error or f"HTTP {event.status}")
        self.environment.events.request.fire(request_type="DM message", name=f"{self._protocol} {event.method}",
                                             response_time=event.rtt_ms, response_length=event.size,
                                             exception=failed, context={"device": self.device.id})
