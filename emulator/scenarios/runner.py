"""Plays a :class:`Scenario` on a :class:`Fleet`: pacing, timeline events, notifications, expectations.

One asyncio loop does it all. A starter task walks the devices in ramp-up order and starts each
one's own loop at its slot (so an idle fleet of 10,000 costs no task per device until it is due);
a device's loop runs its planned sessions one after another with the think time between them; a
timeline task applies the events; devices that wait for notifications long-poll the server's push
channel. Sessions are counted from the fleet's event bus, so sessions the fleet starts by itself
(a DM 2.0 asynchronous EXEC result) are in the figures too.

Nothing here raises for what a server or the network does: that ends up as failed sessions in the
report, and the expectations decide whether the run passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from emulator.errors import EmulatorError
from emulator.events import AlertRaised, OperationChanged, SessionEnded, SessionStarted, TransferProgress
from emulator.fleet.capacity import check_fleet_fits
from emulator.fleet.fleet import Fleet, on_origin
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.actions import AskUser, OpenBrowser
from emulator.protocol.flow import Sleep, UiFlow
from emulator.protocol.values import DmProtocol, SessionOutcome
from emulator.scenarios.model import (
    LOCAL_ACTIONS,
    DeviceGroup,
    Expectation,
    GenericAlertSpec,
    Scenario,
    Selector,
    TimelineEvent,
    UiAnswers,
    node_text,
)
from emulator.scenarios.pacing import PlannedSession, jittered, plan_sessions, ramp_offset
from emulator.store.traffic_files import TrafficRecorder
from emulator.transport.outage import Outage, OutageTransport
from emulator.transport.push import PUSH_WAIT_S, PushPoller
from emulator.tree.errors import TreeError
from emulator.util.admin_token import ADMIN_TOKEN_ENV, admin_headers


def split_server(url: str) -> tuple[str, str | None]:
    """``http://h:1`` -> (base, None): the profile's own paths; ``http://h:1/omadm`` -> that exact endpoint."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EmulatorError(f"--server {url!r} is not an http:// or https:// URL", status=400)
    base = f"{parts.scheme}://{parts.netloc}"
    endpoint = url if parts.path not in ("", "/") else None
    return base, endpoint


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def latency_fields(latencies_ms: list[float], digits: int) -> dict[str, float]:
    """``latency_p50_ms``/``p95``/``p99`` of completed sessions, or nothing at all when none completed:
    a failed run must not read as one answered in 0.0 ms."""
    if not latencies_ms:
        return {}
    ordered = sorted(latencies_ms)
    return {f"latency_p{q}_ms": round(percentile(ordered, q), digits) for q in (50, 95, 99)}


# ---------------------------------------------------------------------------------------------
# what the scenario does to the world outside the devices


class ScenarioUi:
    """The simulated user of ``[ui]``: alerts answered one way, web pages another, after ``delay``."""

    _POLICY = {"yes": "accept", "no": "decline", "cancel": "cancel", "timeout": "timeout"}

    def __init__(self, answers: UiAnswers) -> None:
        fields: dict[str, str] = {}
        if answers.text:
            fields["text"] = answers.text
        if answers.choices:
            fields["choice"] = ",".join(str(c) for c in answers.choices)
        self.delay = answers.delay
        self._alerts = HeadlessUi(fields, self._POLICY[answers.confirm])
        self._web = HeadlessUi(answers.form, "accept" if answers.web == "submit" else "decline")

    def ask(self, session: object, action: AskUser) -> UiFlow:
        if self.delay:
            yield Sleep(self.delay)
        return (yield from self._alerts.ask(session, action))

    def browse(self, session: object, action: OpenBrowser) -> UiFlow:
        if self.delay:
            yield Sleep(self.delay)
        self._web.visited.clear()  # one user for thousands of devices: keep no history
        return (yield from self._web.browse(session, action))


# ---------------------------------------------------------------------------------------------
# records


REPORTED_ALERTS = ("large object suspended", "large object resumed", "diagnostics trap", "connectivity")
"""What devices do on their own that the report lists (``device_alerts``): a DM 1.2 large object kept
for the next session or continued there (DM-HLF-021), a DiagMon trap that fired, a connectivity change
a server asked for (DM-HLF-007). (A log upload is an operation: the report's operations say how it ended.)"""
MAX_DEVICE_ALERTS = 10000
"""Entries ``device_alerts`` keeps (a fleet of traps must not grow the report without end)."""

@dataclass(slots=True)
class SessionRecord:
    device: str
    protocol: DmProtocol
    reason: str
    start: float  # seconds from the start of the run
    end: float = -1.0
    outcome: SessionOutcome | Literal[""] = ""  # "" while it runs
    detail: str = ""
    retried: bool = False  # this attempt failed and was run again (bearer switch, [pacing] retry): the retry counts
    attempt: int = 1  # 2 and more: a retry of the session before it
    follow_up: bool = False  # opened by the device itself to finish an earlier session (DM 2.0 async result)
    warnings: tuple[str, ...] = ()  # the server's protocol deviations the device tolerated

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def final(self) -> bool:
        """The last attempt of a session: what the session's outcome is judged by."""
        return not self.retried

    @property
    def recovered(self) -> bool:
        """Completed on a retry, after earlier attempts failed."""
        return self.outcome == "completed" and self.attempt > 1

    @property
    def status(self) -> str:
        """How the report names it: completed, recovered, failed, aborted, retried (an attempt run
        again), not run (planned, never started), unfinished."""
        if self.retried:
            return "retried"
        if self.recovered:
            return "recovered"
        return self.outcome or "unfinished"


FOLLOW_UP_REASONS = ("async result",)
"""Sessions a device opens by itself to finish one before (the fleet's reasons, emulator.fleet.engines)."""
RETRY_REASONS = ("bearer change", "retry")


@dataclass(slots=True)
class ExpectationResult:
    expectation: Expectation
    passed: bool
    detail: str = ""  # the first few that broke it, for a summary line
    broken: list[str] = field(default_factory=list)  # every device or session that broke it


@dataclass
class RunResult:
    scenario: Scenario
    server: str
    elapsed: float
    sessions: list[SessionRecord]
    expectations: list[ExpectationResult]
    problems: list[str] = field(default_factory=list)
    messages: int = 0
    stopped_at_limit: bool = False
    warnings: list[str] = field(default_factory=list)  # worth knowing, not a failure (an event that hit nobody)
    servers: dict[str, str] = field(default_factory=dict)  # group -> the URL its sessions went to
    interrupted: str = ""  # the signal that stopped the run ("SIGTERM"), "" when it ran to its end
    not_run_by_device: dict[str, int] = field(default_factory=dict)  # planned sessions that never started
    members: dict[str, list[str]] = field(default_factory=dict)  # group -> its device IDs
    started_at: float = 0.0  # wall clock (time.time()) of the start
    events: list[dict[str, Any]] = field(default_factory=list)  # each timeline event and how many devices it hit
    operations: dict[str, Any] = field(default_factory=dict)  # managed objects' results and state times
    device_alerts: list[dict[str, str]] = field(default_factory=list)  # what devices did on their own (REPORTED)

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.expectations) and not self.problems and not self.interrupted

    def report(self) -> dict[str, Any]:
        """The ``--report`` JSON: totals first, then expectations, then one entry per session."""
        final = [s for s in self.sessions if s.final]
        done = [s for s in final if s.outcome]
        completed = [s for s in done if s.outcome == "completed"]
        lat = sorted(s.duration * 1000 for s in self.sessions if s.outcome == "completed")
        groups = self.scenario.groups
        figures = bool(lat)  # latency and rates of a run where nothing completed would mean nothing
        return {
            "scenario": self.scenario.name,
            "source": self.scenario.source,
            "server": self.server,
            "profile": ", ".join(dict.fromkeys(g.profile.name for g in groups)),
            "protocol": ", ".join(dict.fromkeys(g.protocol for g in groups)),
            "devices": self.scenario.device_count,
            "groups": [{"name": g.name, "profile": g.profile.name, "count": g.count, "first_index": g.first_index,
                        "protocol": g.protocol, "server": self.servers.get(g.name, self.server)} for g in groups],
            "passed": self.passed,
            "interrupted": self.interrupted or None,
            "started_at": self.started_at,
            "sessions_started": len(final),
            "attempts": len(self.sessions),
            "sessions_completed": len(completed),
            "sessions_recovered": sum(1 for s in completed if s.recovered),
            "sessions_failed": len(done) - len(completed),
            "sessions_unfinished": len(final) - len(done),
            "sessions_not_run": sum(self.not_run_by_device.values()),
            "duration_s": round(self.elapsed, 3),
            "sessions_per_s": round(len(done) / self.elapsed, 1) if self.elapsed and figures else None,
            "messages": self.messages,
            **(latency_fields(lat, 1) if figures else {}),
            "stopped_at_time_limit": self.stopped_at_limit,
            "sessions_with_warnings": sum(1 for s in self.sessions if s.warnings),
            "expectations": [
                {"line": r.expectation.line, "expect": r.expectation.describe(), "passed": r.passed, "detail": r.detail}
                for r in self.expectations
            ],
            "problems": self.problems,
            "warnings": self.warnings,
            "events": self.events,
            "operations": self.operations,
            "device_alerts": self.device_alerts,
            "results": [
                {"device": s.device, "protocol": s.protocol, "reason": s.reason, "start_s": round(s.start, 3),
                 **({"duration_s": round(s.duration, 4)} if s.outcome else {}),
                 "outcome": s.status, "detail": s.detail,
                 "retried": s.retried, "attempt": s.attempt, "warnings": list(s.warnings)}
                for s in self.sessions
            ],
        }


# ---------------------------------------------------------------------------------------------
# the run


class ScenarioRunner:
    """``await ScenarioRunner(scenario, "http://127.0.0.1:8700").run()`` -> :class:`RunResult`.

    ``progress(runner, elapsed)`` is called about once a second while the run lasts. ``workspace``:
    a folder that keeps the devices, their trees, sessions and traffic after the run (default: none,
    or a temporary one when a crash needs it). ``traffic_dir``: JSON lines of every device whose
    session did not complete (``traffic_all``: of every device). :meth:`interrupt` stops the run
    and still gives the result of what ran.
    """

    def __init__(self, scenario: Scenario, server: str, *,
                 progress: Callable[[ScenarioRunner, float], None] | None = None,
                 admin_token: str | None = None,
                 session_options: dict[str, Any] | None = None,
                 request_deadline: float | None = None,
                 workspace: str | None = None, traffic_dir: str | None = None,
                 traffic_all: bool = False) -> None:  # fmt: skip
        self.scenario = scenario
        self.request_deadline = request_deadline  # one request's deadline (None: the transport's, 60 s)
        self.session_options = dict(session_options or {})  # the command line's, over the groups' own
        self.server = server
        # notify events use the reference server's admin API, which asks for its token
        self.admin_token = admin_token if admin_token is not None else os.environ.get(ADMIN_TOKEN_ENV, "")
        self.base, self.endpoint = split_server(server)
        self.progress = progress
        self.workspace_path = workspace
        self.traffic_dir = traffic_dir
        self.traffic_all = traffic_all
        self.traffic: TrafficRecorder | None = None
        self.warnings: list[str] = []
        self.event_hits: list[dict[str, Any]] = []
        self.interrupted = ""
        self._main_task: asyncio.Task | None = None
        self._planned_left: dict[str, int] = {}  # device -> its planned sessions not started yet
        self.rng = random.Random(scenario.seed)
        self.sessions: list[SessionRecord] = []
        self.problems: list[str] = []
        self.device_alerts: list[dict[str, str]] = []
        self.devices_up: set[str] = set()
        self.members: dict[str, list[str]] = {}
        self.group_of: dict[str, DeviceGroup] = {}
        self._open: dict[str, SessionRecord] = {}
        self._by_device: dict[str, list[SessionRecord]] = {}  # each device's sessions, oldest first
        self._recent_ends: deque[float] = deque(maxlen=100_000)
        self._running: dict[str, asyncio.Task] = {}  # device -> its session in flight
        self._busy: dict[str, int] = {}  # device -> sessions open now (from the bus)
        self._cut: dict[str, str] = {}  # device -> why its session was cut off
        self._down: dict[str, float] = {}  # crashed device -> when it restarts
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self.fleet: Fleet | None = None
        self.operations = OperationLog()

    # -- set-up ------------------------------------------------------------------------------

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self._t0

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def selected(self, sel: Selector) -> list[str]:
        """The devices ``sel`` names now (see :class:`Selector`)."""
        names = sel.groups or tuple(self.members)
        out: list[str] = []
        for name in names:
            ids = self.members[name]
            if sel.state is not None:
                busy = sel.state == "in_session"
                ids = [d for d in ids if self.in_session(d) == busy]
            n = len(ids)
            if sel.limit is not None:
                n = min(n, sel.limit)
            elif sel.percent is not None:
                n = min(n, math.ceil(len(ids) * sel.percent / 100 - 1e-9))
            if n < len(ids):
                if sel.pick == "random":
                    rng = random.Random(f"{self.scenario.seed}/{sel.line}/{name}")
                    keep = set(rng.sample(range(len(ids)), n))
                    ids = [d for i, d in enumerate(ids) if i in keep]
                else:
                    ids = ids[:n]
            out.extend(ids)
        return out

    def in_session(self, dev_id: str) -> bool:
        """Whether the device has a session open now (the scenario's, a notified one or a follow-up)."""
        return dev_id in self._busy

    def _attempt_before(self, dev_id: str, reason: str) -> SessionRecord | None:
        """The failed attempt a retry runs again: the device's latest failed session not retried yet
        (cut by a bearer switch, for the fleet's own retry). A device may have several sessions at
        once (a notified one beside a DM 2.0 async result), so "its last session" would not do."""
        bearer = reason.startswith("bearer change")
        for rec in reversed(self._by_device.get(dev_id, ())):
            if rec.outcome == "failed" and not rec.retried and (not bearer or "bearer changed" in rec.detail):
                return rec
        return None

    def _on_bus(self, event: object) -> None:
        if isinstance(event, AlertRaised):
            if event.alert_type == "notification rejected":
                self.problems.append(f"{event.device_id}: notification ignored: {event.detail}")
            elif event.alert_type in REPORTED_ALERTS and len(self.device_alerts) < MAX_DEVICE_ALERTS:
                self.device_alerts.append({"device": event.device_id, "kind": event.alert_type,
                                           "detail": event.detail})
        elif isinstance(event, SessionStarted):
            rec = SessionRecord(event.device_id, event.protocol, event.reason, self.now(),
                                follow_up=event.reason.startswith(FOLLOW_UP_REASONS))
            cut = self._attempt_before(event.device_id, event.reason) if event.reason.startswith(RETRY_REASONS) \
                else None
            if cut is not None:
                cut.retried = True
                rec.attempt = cut.attempt + 1
                rec.follow_up = cut.follow_up
            self._by_device.setdefault(event.device_id, []).append(rec)
            self._busy[event.device_id] = self._busy.get(event.device_id, 0) + 1
            self._open[event.session_id] = rec
            self.sessions.append(rec)
            self.devices_up.add(event.device_id)
        elif isinstance(event, SessionEnded):
            ended = self._open.pop(event.session_id, None)
            left = self._busy.get(event.device_id, 0) - 1
            if left > 0:
                self._busy[event.device_id] = left
            else:
                self._busy.pop(event.device_id, None)
            if ended is not None:
                ended.end = self.now()
                ended.outcome = event.outcome
                ended.detail = (self._cut.pop(event.device_id, event.detail) if event.outcome == "aborted"
                              else event.detail)
                ended.warnings = event.warnings
                self._recent_ends.append(ended.end)

    def interrupt(self, why: str) -> None:
        """Stop the run now (a signal): sessions in flight end as aborted, the rest as not run."""
        if not self.interrupted:
            self.interrupted = why
            if self._main_task is not None:
                self._main_task.cancel()

    async def run(self) -> RunResult:
        check_fleet_fits(self.scenario.device_count)  # before a single device is built
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        started_at = time.time()
        sc = self.scenario
        outage = Outage(self.base)
        clock = loop.time
        workspace_dir = None
        if self.workspace_path is None and sc.needs_store:
            workspace_dir = tempfile.TemporaryDirectory(prefix="dm-emulator-scenario-")
        workspace = None
        if workspace_dir is not None or self.workspace_path is not None:
            from emulator.store import Workspace

            workspace = Workspace.open(self.workspace_path or workspace_dir.name)  # type: ignore[union-attr]
        # a connection for every session the gate lets through (the fetch lane has as many for the
        # web pages that release held answers: see emulator.transport.http)
        transport = OutageTransport(outage, clock, max_connections=sc.pacing.max_in_flight,
                                    deadline=self.request_deadline)
        self.fleet = fleet = Fleet(server=self.base, transport=transport, workspace=workspace, ui=ScenarioUi(sc.ui),
                                   server_wins=True)
        self.push_transport = OutageTransport(outage, clock, timeout=PUSH_WAIT_S + 10,
                                              max_connections=max(1, min(sc.device_count, 1000)))
        self.outage = outage
        # the runner notifies through the server's queue (/admin/notify): devices that wait for
        # notifications poll whatever their bearer; a server that refuses is asked again each second
        self.poller = PushPoller(fleet.devices, fleet.receive_notification, self.push_transport, wait_s=self._push_wait, server_uri=self.endpoint,
                                 nat_only=False, backoff=(1.0, 1.0), jitter=0.0, ready=self._up,
                                 on_problem=lambda dev_id, text: self.problems.append(f"{dev_id}: {text}"),
                                 bootstrap=fleet.receive_bootstrap)
        fleet.bus.subscribe(self._on_bus, SessionStarted, SessionEnded, AlertRaised)
        fleet.bus.subscribe(lambda e: self.operations.note(e, self.now()), OperationChanged)
        fleet.bus.subscribe(self.operations.transfer, TransferProgress)
        if self.traffic_dir is not None:
            self.traffic = TrafficRecorder(fleet.bus, self.traffic_dir, everything=self.traffic_all)
        self._gate = asyncio.Semaphore(sc.pacing.max_in_flight)
        with workspace.transaction() if workspace is not None else contextlib.nullcontext():
            for g in sc.groups:
                devs = fleet.add(g.profile, g.count, start_index=g.first_index)
                self.members[g.name] = [d.id for d in devs]
                for d in devs:
                    self.group_of[d.id] = g
                    _tune(d, g, sc)
        self.servers = {g.name: self._server_of(g) for g in sc.groups}
        stopped = False
        ticker = asyncio.ensure_future(self._tick()) if self.progress else None
        try:
            if sc.campaign is not None:
                await self._start_campaign(sc)
            self._main_task = main = asyncio.ensure_future(self._main())
            if self.interrupted:
                main.cancel()
            try:
                if sc.time_limit is not None:
                    try:
                        await asyncio.wait_for(main, sc.time_limit)
                    except TimeoutError:
                        stopped = True
                else:
                    await main
            except asyncio.CancelledError:
                if not self.interrupted:
                    raise
        finally:
            self._stopping = True
            why = (f"run interrupted ({self.interrupted})" if self.interrupted
                   else "stopped at the scenario's time limit" if stopped else "run stopped")
            for dev_id in self._running:
                self._cut.setdefault(dev_id, why)
            await self.poller.stop()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if ticker is not None:
                ticker.cancel()
            await fleet.aclose()
            await self.push_transport.aclose()
            if self.traffic is not None:
                self.traffic.flush()
                self.warnings.extend(f"traffic not written: {e}" for e in self.traffic.errors)
            if workspace is not None:
                workspace.close()
            if workspace_dir is not None:
                workspace_dir.cleanup()
        elapsed = self.now()
        if self.progress:
            self.progress(self, elapsed)
        if stopped or self.interrupted:
            for rec in self.sessions:
                if not rec.outcome:
                    rec.outcome, rec.detail, rec.end = "aborted", why, elapsed
        results = [self.check(e, elapsed, stopped) for e in sc.expectations]
        if not sc.expectations:
            results.append(self.check(Expectation(status="completed"), elapsed, stopped))
        return RunResult(sc, self.server, elapsed, self.sessions, results, self.problems, fleet.stats.messages,
                         stopped, warnings=self.warnings, servers=self.servers, interrupted=self.interrupted,
                         not_run_by_device={d: n for d, n in self._planned_left.items() if n > 0},
                         members=self.members, started_at=started_at, events=self.event_hits,
                         operations=self.operations.report(), device_alerts=self.device_alerts)

    def _server_of(self, group: DeviceGroup) -> str:
        """The URL the group's sessions go to: ``--server`` with a path is that exact endpoint for every
        account; else the profile's server URI of the group's protocol, on ``--server``'s origin (a
        profile's ``{server}``; one that names another host is moved onto ``--server``: the command
        line wins, see README "Which server a device talks to")."""
        if self.endpoint:
            return self.endpoint
        assert self.fleet is not None
        dev = self.fleet.device(self.members[group.name][0]) if self.members[group.name] else None
        if dev is None:
            return self.base
        try:
            named = dev.account(group.server, protocol=group.protocol).server_uri
        except EmulatorError:
            return self.base
        if group.server is not None:  # the scenario names the server: its account's own URI
            return named
        used = on_origin(named, self.base)
        if used != named:
            self.warnings.append(f"group {group.name!r}: profile {group.profile.name} names the server {named}; "
                                 f"--server wins, its sessions go to {used}")
        return used

    async def _main(self) -> None:
        sc = self.scenario
        starts: list[tuple[float, str, list[PlannedSession]]] = []
        pollers: list[str] = []
        total = sc.device_count
        position = 0
        for g in sc.groups:
            for i, dev_id in enumerate(self.members[g.name]):
                rules = [r for r in sc.sessions if _applies(r.devices, g.name, i)]
                offset = ramp_offset(position, total, sc.pacing.ramp_up)
                position += 1
                plan = plan_sessions(rules, offset, sc.duration, sc.pacing.jitter, self.rng)
                self._planned_left[dev_id] = len(plan)
                if plan:
                    starts.append((plan[0].at, dev_id, plan))
                if any(r.on_notification for r in rules):
                    pollers.append(dev_id)
        starts.sort(key=lambda s: s[0])
        if pollers:
            self.poller.start(pollers)
        timeline = self._spawn(self._timeline())
        loops: list[asyncio.Task] = []
        for at, dev_id, plan in starts:
            await self._sleep_until(at)
            await self._gate.acquire()  # the first session's slot: no task exists for a device before it is due
            loops.append(self._spawn(self._device_loop(dev_id, plan, held=True)))
        await asyncio.gather(*loops, timeline, return_exceptions=True)
        if pollers and sc.duration is not None:
            await self._sleep_until(sc.duration)
        self._stopping = True
        await self.poller.stop()
        # sessions started by events, notifications or the fleet itself (async results) end by themselves
        assert self.fleet is not None
        while (self._open or self.fleet.stats.running > 0 or any(not t.done() for t in self._tasks)
               or self.fleet.jobs_running):  # managed objects' operations (a firmware update) and their reports
            await asyncio.sleep(0.05)

    async def _sleep_until(self, at: float) -> None:
        """Always yields, even when ``at`` has passed: loops that wait for another task (a crashed
        device's restart) must let it run, or they spin and block the whole loop."""
        await asyncio.sleep(max(0.0, at - self.now()))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            assert self.progress is not None
            self.progress(self, self.now())

    def sessions_per_second(self, window: float = 2.0) -> float:
        now = self.now()
        return sum(1 for t in self._recent_ends if now - t <= window) / window

    # -- sessions ----------------------------------------------------------------------------

    async def _device_loop(self, dev_id: str, plan: list[PlannedSession], *, held: bool) -> None:
        think, jitter = self.scenario.pacing.think_time, self.scenario.pacing.jitter
        last_end = None
        for k, planned in enumerate(plan):
            at = planned.at if last_end is None else max(planned.at, last_end + jittered(think, jitter, self.rng))
            if k and at > self.now():
                await self._sleep_until(at)
            self._planned_left[dev_id] -= 1
            await self.session(dev_id, planned.protocol, "scheduled", held=held and k == 0)
            last_end = self.now()

    async def session(self, dev_id: str, protocol: DmProtocol | None, reason: str, *, held: bool = False,
                      **options: Any) -> None:  # fmt: skip
        """One session of one device, after any session it has open; the device's group protocol by default."""
        assert self.fleet is not None
        gate_held = held
        try:
            if not gate_held:  # the gate before the device's lock, for every session: no lock-order deadlock
                await self._gate.acquire()
                gate_held = True
            lock = self._locks.get(dev_id)
            if lock is None:
                lock = self._locks[dev_id] = asyncio.Lock()
            async with lock:
                while dev_id in self._down:  # crashed: the session waits for the restart
                    await self._sleep_until(self._down[dev_id])
                group = self.group_of[dev_id]
                proto = protocol or group.protocol
                if self.endpoint and "server_uri" not in options:
                    options["server_uri"] = self.endpoint
                for key, value in {**group.session_options(proto), **self.session_options}.items():
                    if key not in ("server_auth", "strict") or proto == "dm12":
                        options.setdefault(key, value)
                pacing = self.scenario.pacing
                attempt = 1
                while True:
                    inner = asyncio.ensure_future(self.fleet.run_session(dev_id, proto, reason=reason, **options))
                    self._running[dev_id] = inner
                    try:
                        done = await inner
                    except asyncio.CancelledError:
                        current = asyncio.current_task()
                        if not inner.cancelled() or current is None or current.cancelling():
                            raise  # the run itself is stopping
                        return  # cut off (a crash): not a failure to retry
                    finally:
                        self._running.pop(dev_id, None)
                    if done.outcome != "failed" or attempt > pacing.retry or self._stopping:
                        return
                    attempt += 1
                    await asyncio.sleep(jittered(pacing.backoff(attempt), pacing.jitter, self.rng))
                    while dev_id in self._down:
                        await self._sleep_until(self._down[dev_id])
                    reason = f"retry {attempt - 1} of {pacing.retry}"
        finally:
            if gate_held:
                self._gate.release()

    def _cut_off(self, dev_id: str, why: str) -> None:
        task = self._running.get(dev_id)
        if task is not None and not task.done():
            self._cut[dev_id] = why
            task.cancel()

    # -- notifications -------------------------------------------------------------------------

    def _push_wait(self) -> float:
        """One long-poll holds at most until the scenario's end."""
        if self.scenario.duration is None:
            return PUSH_WAIT_S
        return max(0.5, min(PUSH_WAIT_S, self.scenario.duration - self.now()))

    async def _up(self, dev_id: str) -> None:
        """A crashed device polls again once it has restarted."""
        while dev_id in self._down:
            await self._sleep_until(self._down[dev_id])

    # -- the timeline ----------------------------------------------------------------------------

    async def _timeline(self) -> None:
        for event in self.scenario.events:
            if event.at > self.now():  # events of one moment apply together, with no session in between
                await self._sleep_until(event.at)
            try:
                self.apply(event)
            except EmulatorError as exc:
                self.problems.append(f"line {event.line}: {event.action}: {exc}")

    def apply(self, event: TimelineEvent) -> None:
        assert self.fleet is not None
        action = event.action
        if action == "server_down":
            self.outage.until = asyncio.get_running_loop().time() + event.duration
            return
        targets = self.selected(event.devices)
        self.event_hits.append({"line": event.line, "do": action, "at_s": round(self.now(), 3),
                                "devices": event.devices.describe(), "hit": len(targets)})
        if not targets:
            self.warnings.append(f"line {event.line}: {action} at {event.at:g} s hit no device "
                                 f"({event.devices.describe()})")
            return
        if action == "crash":
            back = self.now() + event.duration
            for dev_id in targets:
                self._down[dev_id] = back
                self._cut_off(dev_id, "device crashed")
            self._spawn(self._restart(targets, back))
            return
        if action == "notify":
            self._spawn(self._notify(targets, event))
            return
        for dev_id in targets:
            dev = self.fleet.device(dev_id)
            if action == "switch_bearer":
                dev.set_bearer(event.bearer, up=True, make_current=True)
            elif action == "bearer_up":
                dev.set_bearer(event.bearer, up=True, make_current=not dev.bearer)
            elif action == "bearer_down":  # a session in flight follows the switch (or fails: no bearer)
                dev.set_bearer(event.bearer, up=False, make_current=False)
            elif action == "nat":
                dev.set_bearer(event.bearer, nat=event.nat, make_current=False)
            elif action == "set_node":
                self._set_node(dev_id, event)
            elif action in LOCAL_ACTIONS:
                self._local(dev_id, event)
            elif action == "alert" and event.alert is not None:
                protocol = self.group_of[dev_id].protocol
                self._spawn(self.session(dev_id, protocol, "alert", **alert_options(protocol, event.alert)))

    def _set_node(self, dev_id: str, event: TimelineEvent) -> None:
        assert self.fleet is not None
        tree = self.fleet.device(dev_id).tree
        try:
            tree.replace(event.path, node_value(event.value, tree.info(event.path).format))
        except (EmulatorError, ValueError) as exc:
            self.problems.append(f"line {event.line}: set_node {event.path} on {dev_id}: {exc}")

    def _local(self, dev_id: str, event: TimelineEvent) -> None:
        """A delegation, a revocation or an app's doing, on the device itself; a problem when the device
        allows what the event expects refused, or the other way round."""
        where = f"line {event.line}: {event.action} on {dev_id}"
        try:
            what = self._do_local(dev_id, event)
        except _NoSuchApp as exc:
            self.problems.append(f"{where}: {exc}")
            return
        except EmulatorError as exc:
            if event.expect != "refused":
                self.problems.append(f"{where}: refused ({exc.status}): {exc}")
            return
        if event.expect == "refused":
            self.problems.append(f"{where}: expected a refusal, but the device allowed it ({what})")

    def _do_local(self, dev_id: str, event: TimelineEvent) -> str:
        assert self.fleet is not None
        dev = self.fleet.device(dev_id)
        action = event.action
        if action == "delegate":
            from emulator.mo.delegation import DelegationRequest

            req = DelegationRequest(event.delegate, event.scope, event.kind, event.depth, event.prohibited)
            return dev.delegations.delegate(event.delegator, req).describe()
        if action == "revoke":
            dl = dev.delegations
            record = dl.find(event.delegator or None, event.delegate, event.scope)
            return "revoked " + ", ".join(r.describe() for r in dl.revoke(event.by, record.id))
        if action == "app":
            from emulator.device.apps import Grant

            grants = [Grant(g) for g in event.grants] + [Grant(g, write=True) for g in event.write_grants]
            dev.apps.register(event.app, grants)
            return f"registered {event.app}"
        app = dev.apps.apps.get(event.app)
        if app is None:
            raise _NoSuchApp(f"no app {event.app!r} on the device (its registration failed)")
        if action == "app_read":
            return f"read {event.uri} = {app.read(event.uri)!r}"
        app.write(event.uri, None if event.value is None else node_text(event.value))
        return f"wrote {event.uri}"

    async def _restart(self, targets: list[str], back: float) -> None:
        await self._sleep_until(back)
        assert self.fleet is not None
        for dev_id in targets:
            try:
                self.fleet.reload(dev_id, self.group_of[dev_id].profile)
            except EmulatorError as exc:
                self.problems.append(f"{dev_id}: restart after crash: {exc}")
            self._down.pop(dev_id, None)

    async def _start_campaign(self, sc: Scenario) -> None:
        """``[campaign]``: ask the reference server for it (its admin API, with the admin token)."""
        import json

        assert self.fleet is not None and sc.campaign is not None
        body = json.dumps(sc.campaign.admin_json(sc.name)).encode()
        result = await self.fleet.transport.request("POST", f"{self.base}/admin/campaigns", body, {
            **admin_headers(self.admin_token), "Content-Type": "application/json"})
        if result.status != 200:
            why = result.error or f"HTTP {result.status}: {result.body[:200].decode('utf-8', 'replace')}"
            if result.status in (401, 403):
                why += f" (give the server's admin token in {ADMIN_TOKEN_ENV})"
            self.problems.append(f"line {sc.campaign.line}: the server did not start the campaign ({why}); "
                                 "only the reference server has POST /admin/campaigns")

    async def _notify(self, targets: list[str], event: TimelineEvent) -> None:
        assert self.fleet is not None
        for dev_id in targets:
            url = f"{self.base}/admin/notify/{quote(dev_id, safe=':@')}"
            result = await self.fleet.transport.request("POST", url, headers=admin_headers(self.admin_token))
            if result.status != 200:
                why = result.error or f"HTTP {result.status}"
                if result.status in (401, 403):
                    why += f" (give the server's admin token in {ADMIN_TOKEN_ENV})"
                self.problems.append(f"line {event.line}: notify {dev_id}: the server did not take it ({why}); "
                                     "only the reference server has POST /admin/notify/<DevID>")
                return

    # -- expectations ----------------------------------------------------------------------------

    def check(self, e: Expectation, elapsed: float, stopped: bool) -> ExpectationResult:
        """Whether one expectation held; ``detail`` names every device or session that broke it.

        A session run again (cut off by a bearer switch, DM-HLF-008, or failed under ``[pacing]
        retry``) is judged by its last attempt; the report still lists every attempt. Session counts
        leave out the sessions a device opened by itself to finish an earlier one (a DM 2.0
        asynchronous EXEC result): they belong to the session that ran the EXEC.
        """
        assert self.fleet is not None
        ids = self.selected(e.devices)
        wanted = set(ids)
        mine = [s for s in self.sessions if s.device in wanted and s.final]
        bad: list[str] = []
        population = len(ids)
        if e.can_get is not None or e.cannot_get is not None:
            bad = [why for dev_id in ids if (why := self._access(dev_id, e))]
        elif e.node is not None:
            for dev_id in ids:
                got = self.fleet.device(dev_id).tree.value(e.node)
                if got is None or node_text(got) != e.equals:
                    bad.append(f"{dev_id} has {'no node' if got is None else repr(node_text(got))}")
        elif e.status is not None:
            if not mine:
                return ExpectationResult(e, False, "no sessions ran")
            population = len(mine)
            bad = [f"{s.device} {s.outcome or 'unfinished'}: {s.detail}" for s in mine if s.outcome != e.status]
        elif e.eventually is not None:
            last: dict[str, SessionRecord] = {}
            for s in mine:
                last[s.device] = s
            for dev_id in ids:
                final = last.get(dev_id)
                if final is None:
                    bad.append(f"{dev_id} ran no session")
                elif final.outcome != e.eventually:
                    bad.append(f"{dev_id} last session {final.outcome or 'unfinished'}: {final.detail}")
        elif e.within is not None:
            if not e.devices.groups:
                ok = not stopped and elapsed <= e.within
                why = f"the run took {elapsed:.1f} s" + (" and was stopped there" if stopped else "")
                return ExpectationResult(e, ok, "" if ok else why)
            population = len(mine)
            bad = [f"{s.device} ended at {s.end:.1f} s" if s.outcome else f"{s.device} unfinished"
                   for s in mine if not s.outcome or s.end > e.within]
        else:
            counts = dict.fromkeys(ids, 0)
            for s in mine:
                if not s.follow_up:
                    counts[s.device] += 1
            for dev_id, n in counts.items():
                if (e.sessions is not None and n != e.sessions) or (e.min_sessions is not None and n < e.min_sessions) \
                        or (e.max_sessions is not None and n > e.max_sessions):
                    bad.append(f"{dev_id} ran {n}")
        if not bad:
            return ExpectationResult(e, True)
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        return ExpectationResult(e, False, f"{len(bad)} of {population}: {shown}", bad)


    def _access(self, dev_id: str, e: Expectation) -> str:
        """Why ``e.server`` can (or cannot) Get the URI on one device, when that breaks ``e``; "" if it holds."""
        assert self.fleet is not None and e.server is not None
        uri = e.can_get if e.can_get is not None else e.cannot_get
        assert uri is not None
        try:
            self.fleet.device(dev_id).tree.get(uri, by=e.server)
        except TreeError as exc:
            if exc.status not in (403, 425):
                return f"{dev_id}: {exc} ({exc.status})"
            return f"{dev_id}: refused ({exc.status})" if e.can_get is not None else ""
        return f"{dev_id}: allowed" if e.cannot_get is not None else ""


class _NoSuchApp(EmulatorError):
    """An app event names an app the device does not have: a broken scenario run, not a refusal."""


def node_value(value: str | int | float | bool | None, fmt: str) -> str | None:
    """A scenario's TOML value as the text a node of Format ``fmt`` holds (the tree keeps DM text:
    ``"5"``, ``"true"``, never a Python int or bool). ValueError when it is not a number of that Format."""
    if value is None:
        return None
    if fmt == "int":
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return str(int(value))
    if fmt == "float":
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        return repr(float(value))
    if fmt == "bool":
        return node_text(value if isinstance(value, bool) else str(value).lower() == "true")
    return node_text(value)


def alert_options(protocol: DmProtocol, spec: GenericAlertSpec) -> dict[str, Any]:
    """Engine options for a session that carries a device-raised generic alert."""
    from emulator.fleet.engines import alert_options as engine_alert_options

    return engine_alert_options(protocol, spec.type, spec.data, source=spec.source, mark=spec.mark)


def _applies(sel: Selector, group: str, position: int) -> bool:
    return (not sel.groups or group in sel.groups) and (sel.limit is None or position < sel.limit)


def _tune(dev: Any, group: DeviceGroup, sc: Scenario) -> None:
    """A scenario's device settings over its profile's: managed objects' knobs, the bearers' bandwidth."""
    from dataclasses import replace

    for kind, settings in sc.mo:
        dev.behaviours.configure(kind, dict(settings))
    if group.bearer_kbps is not None:
        for name, bearer in list(dev.bearers.items()):
            dev.bearers[name] = replace(bearer, spec=replace(bearer.spec, bandwidth_kbps=group.bearer_kbps))


class OperationLog:
    """What the devices' managed objects did (``OperationChanged`` events): per kind, the histogram of
    result codes and how long each state lasted (from entering it to entering the next); and their
    downloads (``TransferProgress`` at their end): how many, the bytes, how many resumed after a cut."""

    def __init__(self) -> None:
        self.current: dict[tuple[str, str], tuple[str, float, str]] = {}  # (device, node) -> (state, since, kind)
        self.durations: dict[str, dict[str, list[float]]] = {}  # kind -> state -> seconds
        self.results: dict[str, dict[int, int]] = {}
        self.started: dict[str, int] = {}
        self.downloads: dict[str, int] = {"count": 0, "bytes": 0, "resumed": 0, "resumptions": 0, "failed": 0}

    def transfer(self, e: TransferProgress) -> None:
        if not e.outcome:
            return
        d = self.downloads
        d["count"] += 1
        d["bytes"] += e.done
        d["resumed"] += 1 if e.resumed else 0
        d["resumptions"] += e.resumed
        d["failed"] += 0 if e.outcome == "completed" else 1

    def note(self, e: OperationChanged, now: float) -> None:
        key = (e.device_id, e.node)
        before = self.current.pop(key, None)
        if before is None:
            self.started[e.operation] = self.started.get(e.operation, 0) + 1
        else:
            self.durations.setdefault(e.operation, {}).setdefault(before[0], []).append(now - before[1])
        if e.state == "ended":
            counts = self.results.setdefault(e.operation, {})
            counts[e.result] = counts.get(e.result, 0) + 1
        else:
            self.current[key] = (e.state, now, e.operation)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"downloads": dict(self.downloads)} if self.downloads["count"] else {}
        for kind in sorted(set(self.started) | set(self.results)):
            states = {}
            for state, values in self.durations.get(kind, {}).items():
                v = sorted(values)
                states[state] = {"count": len(v), "mean_s": round(sum(v) / len(v), 3),
                                 "p50_s": round(v[len(v) // 2], 3), "p90_s": round(v[min(len(v) - 1, int(0.9 * len(v)))], 3),
                                 "max_s": round(v[-1], 3)}
            out[kind] = {"started": self.started.get(kind, 0),
                         "unfinished": sum(1 for v in self.current.values() if v[2] == kind),
                         "results": {str(k): n for k, n in sorted(self.results.get(kind, {}).items())},
                         "states": states}
        return out
