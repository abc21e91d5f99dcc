"""Locust users that are virtual devices: the locustfile of ``dm-emulator locust``.

Each Locust user is one device built from a profile; its task runs one complete management session
per protocol against ``--host`` (the DM server's base URL, the profile's paths ``/dm12`` and ``/dm2``
follow it), then any session the last one asked for (a DM 2.0 asynchronous EXEC result). The engines
are the same sans-IO state machines the asyncio fleet drives; here :mod:`emulator.fleet.drive_sync` drives
them over ``httpx.Client``, which gevent makes cooperative.

Locust's statistics get one entry per session (type ``DM session``, name ``dm12``/``dm2``; a session
that does not complete is a failure with its reason) and one per HTTP round trip (type
``DM message``, named by protocol and method), so ``--csv``, the web UI and ``--master``/``--worker``
runs report them like any Locust request. A user that cannot start (no identity left, a profile that
does not load) is a failure too (type ``DM device``, name ``start``), never a silent absence.

Device identities never collide across workers: the profile's identity space from
``--dm-first-index`` is cut into ``--expect-workers`` equal shares
(:func:`emulator.device.identity.share`), and worker N numbers its users inside share N. A master
asked for more workers than there are identities stops at once with exit code 2 and says why.

Run it as ``dm-emulator locust --host http://127.0.0.1:8700 --headless -u 100 -r 10 -t 1m`` or,
with Locust itself, ``locust -f emulator/fleet/locust_user.py ...``. Importing this module imports Locust,
which monkey-patches the process for gevent: never import it from the asyncio side or from tests.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from typing import Any

import gevent
from locust import User, between, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from emulator.device.identity import IdentityError, share
from emulator.device.profile import Profile, find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import RoundTrip
from emulator.fleet.drive import SessionContext
from emulator.fleet.drive_sync import drive_sync
from emulator.fleet.engines import finish_engine, make_engine
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.values import DmProtocol
from emulator.transport.blocking import BlockingTransport

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
                       help="first identity index; the space from there is shared equally by --expect-workers")


@events.init.add_listener
def _fresh_loop_clock(**_: Any) -> None:
    """Locust times ``-t`` with a gevent timer, which counts from the loop's cached clock: that clock
    last moved before the imports of Locust and of this locustfile (a second or more; on a busy
    machine ten), so ``-t 4s`` could end before any user ran. Refreshed here, just before Locust
    starts its users and the run-time timer."""
    gevent.get_hub().loop.update_now()


@events.init.add_listener
def _quiet_http_log(**_: Any) -> None:
    """httpx logs every request at INFO, which Locust's log level shows: thousands of lines a second."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


@events.init.add_listener
def _check_shares(environment: Any, **_: Any) -> None:
    """On the master: can ``--expect-workers`` workers each get identities? If not, stop now (exit 2)."""
    if not isinstance(environment.runner, MasterRunner):
        return
    opts = environment.parsed_options
    workers = max(1, getattr(opts, "expect_workers", 1) or 1)
    try:
        share(_profile(getattr(opts, "dm_profile", "smartphone")).identity, getattr(opts, "dm_first_index", 0),
              0, workers)
    except Exception as exc:  # IdentityError, or a profile that does not load: the workers would fail alike
        print(f"dm-emulator locust: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def identity_share(environment: Any, profile: Profile) -> range:
    """The device indexes this process may use: its worker's share, or the whole space when local."""
    opts = environment.parsed_options
    runner = environment.runner
    first = getattr(opts, "dm_first_index", 0)
    if isinstance(runner, WorkerRunner):
        workers = max(1, getattr(opts, "expect_workers", 1) or 1)
        index = max(0, runner.worker_index)
        if index >= workers:
            raise IdentityError(f"worker {index} joined a master that expected {workers} workers "
                                f"(--expect-workers): the identities are shared {workers} ways")
        return share(profile.identity, first, index, workers)
    return share(profile.identity, first, 0, 1)


def _profile(name: str) -> Profile:
    prof = _profiles.get(name)
    if prof is None:
        prof = _profiles[name] = find_profile(name)
    return prof


class DmDevice(User):
    """One emulated device; rests 1-3 s between its rounds of sessions."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        t0 = time.perf_counter()
        try:
            self._start()
        except Exception as exc:  # a user that cannot start is a failure in the statistics, then stops
            self.environment.events.request.fire(
                request_type="DM device", name="start", response_time=(time.perf_counter() - t0) * 1000,
                response_length=0, exception=exc, context={})
            raise StopUser() from exc

    def on_stop(self) -> None:
        transport = getattr(self, "transport", None)
        if transport is not None:
            transport.close()

    def _start(self) -> None:
        opts = self.environment.parsed_options
        profile = _profile(getattr(opts, "dm_profile", "smartphone"))
        wanted = [p.strip() for p in getattr(opts, "dm_protocols", "dm12,dm2").split(",") if p.strip()]
        mine = identity_share(self.environment, profile)
        index = mine.start + next(_indexes)
        if index >= mine.stop:
            raise IdentityError(f"this process's share of the identities ({len(mine)}, indexes {mine.start} to "
                                f"{mine.stop - 1}) is used up: run fewer users, more workers, or another profile")
        self.device = VirtualDevice(profile, index, server=(self.host or "").rstrip("/"))
        self.protocols = [p for p in wanted if p in profile.protocols]
        self.transport = BlockingTransport(max_connections=2)
        self.device.bus.subscribe(self._round_trip, RoundTrip)
        self.ui = HeadlessUi()
        self._protocol = ""
        self.followups: list[tuple[DmProtocol, dict[str, Any]]] = []

    @task
    def manage(self) -> None:
        for protocol in self.protocols:
            self.session(protocol)
        while self.followups:
            protocol, options = self.followups.pop(0)
            self.session(protocol, **options)

    def session(self, protocol: DmProtocol, *, server_id: str | None = None, reason: str = "client",
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

    def start_session(self, dev_id: str, protocol: DmProtocol, **options: Any) -> None:
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
