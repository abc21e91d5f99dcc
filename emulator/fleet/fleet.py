"""Many devices on one asyncio loop: creating them, running their sessions, keeping their records.

The fleet is what the window, the headless runner and the benchmark all hold. It publishes on one
:class:`EventBus`, shares one pooled transport, and (when given a workspace) writes sessions, traffic
and trees to it as they happen. It never blocks the loop on a device: sessions are tasks.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from emulator.device.environments import Environment
from emulator.device.profile import Profile, find_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError, StoreError
from emulator.events import (
    AlertRaised,
    Event,
    EventBus,
    MessageLogged,
    RecordChanged,
    SessionEnded,
    SessionStarted,
    TreeChanged,
    UiFinished,
    UiRequested,
)
from emulator.fleet.drive import SessionContext, UiHandler, drive, now, run
from emulator.mo.behaviours import Job
from emulator.protocol.actions import HttpRequest, HttpResult, SessionDone
from emulator.protocol.flow import request_flow
from emulator.protocol.values import DmProtocol
from emulator.store import DeviceRecord, Workspace
from emulator.transport.http import HttpTransport, TlsConfig
from emulator.transport.listener import SESSIONLESS, Delivery, NotificationListener
from emulator.transport.push import PushPoller

if TYPE_CHECKING:
    from emulator.mo.accounts import Account
    from emulator.protocol.dm2.notification import NotificationGuard
    from emulator.protocol.syncml.sessionless import ReplayGuard

SERVER_AUTH_NONE_WARNING = ("server authentication is OFF for this account (server-auth none): any server, or "
                            "anyone in between, can pose as the DM server")
BEARER_RETRIES = 1
"""Sessions run again after a bearer switch cut one of their requests (DM-HLF-008)."""


def on_origin(uri: str, origin: str) -> str:
    """``uri`` moved onto ``origin`` (scheme, host and port), its path and query kept:
    ``on_origin("https://dm.example.com/dm2", "http://127.0.0.1:8700")`` -> ``http://127.0.0.1:8700/dm2``."""
    parts, base = urlsplit(uri), urlsplit(origin)
    if not parts.scheme or (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
        return uri
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))


@dataclass
class _UiResume:
    """A session whose account resumes after a SHOW by itself: its open pages and what they gave."""

    dev_id: str
    server_id: str
    url: str = ""
    result: str = ""
    open: int = 0
    ended: bool = False


DM13_REPLAY_WINDOW_S = 600.0
"""How long a DM 1.3 device remembers a notification it acted on, to drop a replay of it."""


@dataclass
class FleetStats:
    sessions_started: int = 0
    sessions_completed: int = 0
    sessions_failed: int = 0
    sessions_not_run: int = 0  # asked for but could not run (no such account, no engine): never started
    messages: int = 0

    @property
    def running(self) -> int:
        return self.sessions_started - self.sessions_completed - self.sessions_failed


class Fleet:
    resume_wait_s: float = 2.0
    """Seconds a device-side download waits before resuming after a cut (emulator.transport.download)."""
    alert_retry_s: float = 30.0
    """Seconds before a session carrying an operation's result is tried again (emulator.fleet.operations)."""

    def __init__(
        self,
        *,
        server: str,
        bus: EventBus | None = None,
        transport: HttpTransport | None = None,
        workspace: Workspace | None = None,
        ui: UiHandler | None = None,
        server_wins: bool = False,
    ) -> None:
        """``server_wins``: a session whose server the caller did not name goes to ``server``'s origin,
        also when its account's server URI names another host (``run --server``: see README, "Which
        server a device talks to"); one that names its server (a scenario group's ``server``) goes to
        that account's own URI."""
        self.server = server.rstrip("/")
        self.server_wins = server_wins
        self.bus = bus or EventBus()
        self.transport = transport or HttpTransport()
        self.workspace = workspace
        self.ui = ui
        self.devices: dict[str, VirtualDevice] = {}
        self.removals = 0  # devices removed so far: a list of the fleet knows it need only look for added ones
        self.stats = FleetStats()
        self._next_index: dict[str, int] = {}
        self._session_ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._device_tasks: dict[str, set[asyncio.Task]] = {}  # dev_id -> its start_session tasks (Stop session)
        self._recent: deque[float] = deque(maxlen=4096)
        self._store_sessions: dict[str, int] = {}
        self._session_locks: dict[tuple[str, str], asyncio.Lock] = {}  # (device, ServerID): one session at a time
        self._notification_guards: dict[str, NotificationGuard] = {}  # dev_id -> its DM 2.0 replay guard
        self._dm13_seen: dict[str, dict[bytes, float]] = {}  # dev_id -> DM 1.3 notification digests acted on
        self.sessionless_guards: dict[str, ReplayGuard] = {}  # dev_id -> DM 1.3 sessionless messages taken
        self._ui_resumes: dict[str, _UiResume] = {}  # session id -> its page flow (ui_resume "client")
        self._watchers: dict[str, asyncio.Task[None]] = {}  # dev_id -> the task sampling its armed traps
        self.bus.subscribe(self._count, SessionStarted, SessionEnded, MessageLogged)
        self._in_session: Counter[str] = Counter()  # dev_id -> sessions running (their end saves the device)
        self._dirty: set[str] = set()  # devices changed between sessions, written at the end of this loop turn
        self._flush_scheduled = False
        self._restoring = False
        if workspace is not None:
            self.bus.subscribe(self._changed_locally, TreeChanged, RecordChanged)
        self.bus.subscribe(self._on_ui, UiRequested, UiFinished)

    # ------------------------------------------------------------------ devices

    def add(self, profile: str | Profile, count: int = 1, *, start_index: int | None = None) -> list[VirtualDevice]:
        """Add ``count`` devices of a profile, numbered on from the last one of that profile."""
        prof = find_profile(profile) if isinstance(profile, str) else profile
        first = self._next_index.get(prof.name, 0) if start_index is None else start_index
        added = []
        for index in range(first, first + count):
            dev = VirtualDevice(prof, index, server=self.server, bus=self.bus)
            dev.fetch = partial(self.fetch, dev)  # local apps' DEFAULT fetches: the pool, the log
            if dev.id in self.devices:
                raise EmulatorError(f"device {dev.id} is already in the fleet")
            self.devices[dev.id] = dev
            added.append(dev)
            if self.workspace is not None:
                self._save_device(dev)
        self._next_index[prof.name] = max(self._next_index.get(prof.name, 0), first + count)
        return added

    def remove(self, dev_id: str) -> None:
        if self.devices.pop(dev_id, None) is not None:
            self.removals += 1
        if self.workspace is not None:
            self.workspace.delete_device(dev_id)

    def device(self, dev_id: str) -> VirtualDevice:
        try:
            return self.devices[dev_id]
        except KeyError:
            raise EmulatorError(f"no device {dev_id!r} in the fleet") from None

    def restore(self) -> list[VirtualDevice]:
        """Bring back the devices and trees a workspace holds (``gui --workspace DIR``)."""
        if self.workspace is None:
            return []
        return [self._revive(record) for record in self.workspace.list_devices()]

    def reload(self, dev_id: str, profile: Profile | None = None) -> VirtualDevice:
        """A device restarted after a crash: rebuilt from what it last stored (scenario ``crash``).

        ``profile``: the already loaded profile of the device, so its template tree is shared.
        """
        record = self.workspace.device(dev_id) if self.workspace is not None else None
        if record is None:
            raise EmulatorError(f"device {dev_id!r} has nothing stored to restart from")
        old = self.devices.get(dev_id)
        if old is not None:
            old._unsubscribe()
        return self._revive(record, profile)

    def _revive(self, record: DeviceRecord, profile: Profile | None = None) -> VirtualDevice:
        assert self.workspace is not None
        self._restoring = True  # rebuilding from the store is no change to write back
        try:
            return self._revive_now(record, profile)
        finally:
            self._restoring = False

    def _revive_now(self, record: DeviceRecord, profile: Profile | None) -> VirtualDevice:
        assert self.workspace is not None
        prof = profile if profile is not None and profile.name == record.profile else find_profile(record.profile)
        dev = VirtualDevice(prof, record.identity_index, server=self.server, bus=self.bus)
        dev.fetch = partial(self.fetch, dev)
        dev.id = record.id  # an imported tree may carry another identity than its index gives
        if self.workspace.has_tree(record.id):
            from emulator.device.build import template_tree

            dev.use_tree(self.workspace.load_tree(record.id, template=template_tree(prof)))
        dev.restore_data(record.data)
        dev.last_result = record.state
        self.devices[dev.id] = dev
        self._next_index[prof.name] = max(self._next_index.get(prof.name, 0), record.identity_index + 1)
        return dev

    def _save_device(self, dev: VirtualDevice) -> None:
        assert self.workspace is not None
        self.workspace.save_device(DeviceRecord(
            id=dev.id, profile=dev.profile.name, identity_index=dev.index,
            protocol=",".join(dev.profile.protocols), state=dev.last_result or dev.state, data=dev.record_data(),
        ))

    def use_workspace(self, workspace: Workspace) -> Workspace | None:
        """Keep the fleet in ``workspace`` from now on (the window's "Save workspace as…"): every device,
        its tree and its records are written now, in one transaction, and later changes as they
        happen. Sessions already running are not recorded there (they began elsewhere). Returns the
        workspace used until now, for the caller to close (None if there was none)."""
        old = self.workspace
        if workspace is old:
            return None
        self.workspace = workspace
        try:
            with workspace.transaction():
                for dev in self.devices.values():
                    self._save_device(dev)
                    workspace.save_tree(dev.id, dev.tree)
        except BaseException:
            self.workspace = old
            raise
        self._store_sessions.clear()
        if old is None:
            self.bus.subscribe(self._changed_locally, TreeChanged, RecordChanged)
        return old

    def save(self, dev: VirtualDevice) -> None:
        """Write one device's record and whole tree in one transaction."""
        if self.workspace is None:
            return
        with self.workspace.transaction():
            self._save_device(dev)
            self.workspace.save_tree(dev.id, dev.tree)

    # ------------------------------------------------------------------ changes between sessions

    def _changed_locally(self, event: Event) -> None:
        """A change outside any session (an app's write, a local set_node, a delegation, an app
        registration): written at the end of this loop turn, every device changed in the turn in one
        transaction, so a crash before the next session loses nothing and a burst costs one commit."""
        dev_id = event.device_id
        if self._restoring or dev_id not in self.devices or self._in_session[dev_id]:
            return  # a session's changes are saved when it ends, all together
        self._dirty.add(dev_id)
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script, a test): write at once
            self.flush_changes()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush_changes)

    def flush_changes(self) -> int:
        """Write the devices changed since the last flush; how many were written."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        devices = [self.devices[d] for d in sorted(dirty) if d in self.devices and not self._in_session[d]]
        if not devices or self.workspace is None:
            return 0
        try:
            with self.workspace.transaction():
                for dev in devices:
                    self._save_device(dev)
                    self.workspace.save_tree(dev.id, dev.tree)
        except StoreError as exc:  # the change stays in memory; say so rather than lose it silently
            for dev in devices:
                self.bus.publish(AlertRaised(dev.id, "store", f"a local change was not saved: {exc}"))
            return 0
        return len(devices)

    # ------------------------------------------------------------------ sessions

    def new_session_id(self) -> str:
        return f"s{next(self._session_ids)}"

    async def run_session(
        self,
        dev_id: str,
        protocol: DmProtocol | None = None,
        *,
        server_id: str | None = None,
        ui: UiHandler | None = None,
        reason: str = "client",
        environment: str | None = None,
        **engine_options: Any,  # EngineOptions: the engine's constructor checks them
    ) -> SessionDone:
        """One complete management session of one device; failures come back as SessionDone.

        ``environment``: run as that operating environment (its accounts; its identity when it has
        one). An account that belongs to an environment with its own identity runs as it anyway.
        A device runs one session at a time with one server, as a DM client does: a session asked
        for while another is open with that server (a notification, a DM 2.0 asynchronous result)
        starts when it ends. The session goes over the device's current bearer; when a bearer switch
        cut a request in flight, the session is run once more over the new bearer (reason "bearer
        change").
        An exception (no such device or account, no engine) counts in ``stats.sessions_not_run``; a
        session cancelled (Stop session, the window closing) leaves its device idle, "aborted".
        """
        try:
            return await self._run_session(dev_id, protocol, server_id=server_id, ui=ui, reason=reason,
                                           environment=environment, **engine_options)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats.sessions_not_run += 1
            raise

    async def _run_session(self, dev_id: str, protocol: DmProtocol | None, *, server_id: str | None,
                           ui: UiHandler | None, reason: str, environment: str | None,
                           **engine_options: Any) -> SessionDone:  # fmt: skip
        dev = self.device(dev_id)
        protocol = protocol or dev.profile.protocols[0]
        if protocol == "dm12" and not dev.accounts("dm12") and dev.profile.bootstrap is not None:
            problem = await self.bootstrap(dev.id)  # factory-fresh (DM 1.3): its first account first
            if problem:
                dev.last_result = f"failed: {problem}"
                dev.set_state("error", problem)
                return SessionDone("failed", problem)
        named = server_id is not None  # the caller chose the server: its account's own URI, wherever it is
        if server_id is None and not environment:  # DM-HLF-018: to the server the session is about
            from emulator.fleet.engines import route_session

            server_id = route_session(dev, protocol, engine_options)
        env = dev.environment(environment) if environment else None
        account = (env or dev).account(server_id, protocol)
        client = env or dev.session_target(account)
        if isinstance(client, Environment):  # not the device itself
            reason = f"{reason} [{client.name} as {client.id}]"
        handler = ui or self.ui
        if handler is None:
            from emulator.fleet.headless import HeadlessUi

            handler = HeadlessUi()
        if self.server_wins and not named and not engine_options.get("server_uri"):
            moved = on_origin(account.server_uri, self.server)
            if moved != account.server_uri:
                engine_options["server_uri"] = moved
        resume = protocol == "dm2" and (engine_options.pop("ui_resume", None) or account.ui_resume) == "client"
        lock = self._session_locks.get((dev.id, account.server_id))
        if lock is None:
            lock = self._session_locks[(dev.id, account.server_id)] = asyncio.Lock()
        async with lock:  # one session at a time with one server (see the docstring)
            try:
                done = await self._run_locked(dev, client, account, protocol, handler, reason, engine_options,
                                              resume)
            except asyncio.CancelledError:  # stopped: the device is not left "in session"
                dev.last_result = "aborted: session cancelled"
                dev.set_state("idle", "session cancelled")
                raise
        dev.last_result = f"{done.outcome}" + (f": {done.detail}" if done.detail else "")
        dev.set_state("idle" if done.outcome == "completed" else "error", done.detail)
        if self.workspace is not None:
            self.save(dev)
        return done

    async def _run_locked(self, dev: VirtualDevice, client: VirtualDevice | Environment, account: Account,
                          protocol: DmProtocol, handler: UiHandler, reason: str, engine_options: dict[str, Any],
                          resume: bool) -> SessionDone:  # fmt: skip
        from emulator.fleet.engines import finish_engine, make_engine  # engines pull in the protocol stacks
        from emulator.transport.link import BearerLink

        retries = BEARER_RETRIES  # (DiagMon readings: measured when a server reads them, VirtualDevice._before_read)
        while True:
            link = BearerLink(self.transport, dev)
            tls = TlsConfig.for_account(account)
            if tls.warning:
                self.bus.publish(AlertRaised(dev.id, "tls", tls.warning))
            if protocol == "dm12" and (engine_options.get("server_auth") or account.server_auth) == "none":
                self.bus.publish(AlertRaised(dev.id, "server-auth", SERVER_AUTH_NONE_WARNING))
            ctx = SessionContext(
                device_id=dev.id, session_id=self.new_session_id(), protocol=protocol, server=account.server_id,
                bus=self.bus, transport=link, tls=tls, shaping=dev.shaping, bearer=dev.bearer,
                limits=dev.profile.limits,
            )
            link.ctx = ctx
            if resume:
                self._ui_resumes[ctx.session_id] = _UiResume(dev.id, account.server_id)
            engine = make_engine(client, account, ctx.session_id, **engine_options)
            dev.set_state("in session", f"{protocol} with {account.server_id}")
            self._in_session[dev.id] += 1
            try:
                done = await drive(engine, ctx, handler, reason=reason)
            finally:
                self._in_session[dev.id] -= 1
                dev.conflicts.release(ctx.session_id)
            finish_engine(dev, account, engine, done, self.start_session)
            self._continue_behaviours(dev)
            self._quietly(dev, partial(self._after_session, done=done))
            if resume:
                self._session_over(ctx.session_id)
            if done.outcome == "completed" or not link.lost_in_flight or retries <= 0 or not dev.bearer:
                break
            retries -= 1
            reason = "bearer change"
        return done

    # ------------------------------------------------------------------ UI resumption (ui_resume "client")

    def _on_ui(self, event: object) -> None:
        """A SHOW's page opened or ended in a session whose account resumes by itself (seeds/004 B.3)."""
        if isinstance(event, UiRequested) and event.kind == "web":
            r = self._ui_resumes.get(event.session_id)
            if r is not None:
                r.open += 1
                r.url = event.url
        elif isinstance(event, UiFinished):
            r = self._ui_resumes.get(event.session_id)
            if r is not None and r.open:
                r.open -= 1
                r.result = event.outcome
                if not r.open and r.ended:
                    self._resume(self._ui_resumes.pop(event.session_id))

    def _session_over(self, session_id: str) -> None:
        r = self._ui_resumes.get(session_id)
        if r is None:
            return
        r.ended = True
        if not r.open:  # no page, or its flow already ended: resume now (or never, without a page)
            self._ui_resumes.pop(session_id)
            if r.url:
                self._resume(r)

    def _resume(self, r: _UiResume) -> None:
        """The device asks to resume management once the page flow ended: a new session with the server."""
        from emulator.protocol.dm2.client import ALERT_UI_RESUME
        from emulator.protocol.dm2.messages import Alert

        if r.dev_id in self.devices:
            alert = Alert(ALERT_UI_RESUME, data={"URL": r.url, "Result": r.result})
            self.start_session(r.dev_id, "dm2", server_id=r.server_id, reason="UI resumed", alerts=[alert])

    def _continue_behaviours(self, dev: VirtualDevice) -> None:
        """Runs of declared behaviours a session left (asynchronous Execs, alerts): on with the clock."""
        for job in dev.behaviours.take_jobs():
            task = asyncio.ensure_future(self._run_job(dev, job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_job(self, dev: VirtualDevice, job: Job) -> None:
        from emulator.fleet.engines import job_sessions
        from emulator.fleet.operations import drive_operation
        from emulator.mo.operations import OperationRun

        if isinstance(job.run, OperationRun):  # a managed object's state machine: its own driver
            await drive_operation(self, dev, job)
            return
        wait = job.wait
        while wait is not None:
            await asyncio.sleep(wait)
            if dev.id not in self.devices:
                return  # removed (or restarted) meanwhile: its runs went with it
            run = job.run
            assert not isinstance(run, OperationRun)
            wait = run.advance(dev.tree)
        for options in job_sessions(dev, job):
            await self.run_session(dev.id, **options)

    # ------------------------------------------------------------------ DiagMon and connectivity

    def _after_session(self, dev: VirtualDevice, *, done: SessionDone) -> None:
        """What a session leaves for the device to do once it ended: connectivity writes take effect
        (ConnMO), a failure goes to the error log, log uploads start; with a trap armed or changed, the
        readings are sampled again (a trap the session armed may fire at once) and the device keeps
        sampling. A device without DiagMon, or with no trap armed, does none of that."""
        changed = dev.apply_connectivity()
        if changed:
            self.bus.publish(AlertRaised(dev.id, "connectivity", ", ".join(changed), {"bearer": dev.bearer}))
        diag = dev.diagnostics
        if diag is None:
            return
        if done.outcome != "completed":
            diag.log(dev.tree, time.time(), f"session {done.outcome}: {done.detail}"[:200])
        when = time.time()
        if diag.due_after_session(dev.tree, when):
            self._sample(dev, when, force=True)

    def _quietly(self, dev: VirtualDevice, work: Callable[[VirtualDevice], object]) -> None:
        """Run ``work`` as part of a session: its tree changes are saved with the session's, at its end,
        not as a change between sessions (which would write the device twice)."""
        self._in_session[dev.id] += 1
        try:
            work(dev)
        finally:
            self._in_session[dev.id] -= 1

    def _spawn(self, coro: Any) -> None:
        self.track(asyncio.ensure_future(coro))

    def track(self, task: asyncio.Task) -> None:
        """Count ``task`` among the fleet's own (awaited or cancelled by :meth:`aclose`)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def sample_diagnostics(self, dev_id: str, now: float | None = None) -> int:
        """Sample one device's diagnostics now (a local event changed a reading, a test); a trap that
        fires starts its alert session. How many traps fired."""
        return self._sample(self.device(dev_id), now, force=True)

    def _sample(self, dev: VirtualDevice, now: float | None = None, *, force: bool = False) -> int:
        diag = dev.diagnostics
        if diag is None:
            return 0  # (no DiagMon declared: nothing to measure)
        when = time.time() if now is None else now
        if not force and not diag.due(when):
            return 0  # (sampled moments ago: readings are at most SAMPLE_GAP_S old)
        fired = dev.sample_diagnostics(when)  # (each trap that fired: told on the bus, its alert an operation)
        if fired:
            self._continue_behaviours(dev)
        if dev.id not in self._watchers and diag.armed(dev.tree):
            self._watchers[dev.id] = asyncio.ensure_future(self._watch(dev))
        return len(fired)

    async def _watch(self, dev: VirtualDevice) -> None:
        """Sample an armed device every SampIntrvl seconds until no trap is enabled (or it left)."""
        try:
            while self.devices.get(dev.id) is dev and (diag := dev.diagnostics) is not None and diag.armed(dev.tree):
                await asyncio.sleep(diag.interval(dev.tree))
                if self.devices.get(dev.id) is dev:
                    self._sample(dev, force=True)  # (its watcher is this task: no second one starts)
        finally:
            self._watchers.pop(dev.id, None)

    async def fetch(self, dev: VirtualDevice, request: HttpRequest, account: Account, label: str,
                    summary: str, *, protocol: DmProtocol = "dm2") -> HttpResult:
        """A request a device makes outside any session (a local app's DEFAULT fetch, a DM 1.3
        sessionless report): over its current bearer, with the account's TLS, in the traffic log
        under ``label``."""
        from emulator.transport.link import BearerLink

        link = BearerLink(self.transport, dev)
        ctx = SessionContext(dev.id, label, protocol, account.server_id, self.bus, link,
                             tls=TlsConfig.for_account(account), bearer=dev.bearer)
        link.ctx = ctx
        return await run(request_flow(request, ctx, self.bus.publish, start=now(), summary=summary), ctx)

    @property
    def jobs_running(self) -> int:
        """Sessions and device operations the fleet runs by itself (follow-ups, behaviours' runs)."""
        return sum(1 for t in self._tasks if not t.done())

    def start_session(self, dev_id: str, protocol: DmProtocol | None = None, **kw: Any) -> asyncio.Task[SessionDone]:
        """Fire and forget (the window's button); the task is kept until it ends."""
        task = asyncio.ensure_future(self.run_session(dev_id, protocol, **kw))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        mine = self._device_tasks.setdefault(dev_id, set())
        mine.add(task)
        task.add_done_callback(partial(self._forget_task, dev_id))
        return task

    def _forget_task(self, dev_id: str, task: asyncio.Task) -> None:
        mine = self._device_tasks.get(dev_id)
        if mine is not None:
            mine.discard(task)
            if not mine:
                del self._device_tasks[dev_id]

    def stop_sessions(self, dev_id: str) -> int:
        """Cancel the sessions :meth:`start_session` runs for ``dev_id`` (each ends "aborted", the device
        idle); how many were running or waiting to."""
        tasks = [t for t in self._device_tasks.get(dev_id, ()) if not t.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)

    def busy_with(self, dev_id: str, protocol: DmProtocol | None = None, server_id: str | None = None) -> str:
        """The ServerID of the account a new session (of ``protocol``, with ``server_id``: as
        :meth:`run_session` picks them) would use, when that account has a session running; "" when
        it is free (or there is no such account: the session itself then says why it cannot run)."""
        dev = self.devices.get(dev_id)
        if dev is None:
            return ""
        try:
            account = dev.account(server_id, protocol or dev.profile.protocols[0])
        except EmulatorError:
            return ""
        lock = self._session_locks.get((dev.id, account.server_id))
        return account.server_id if lock is not None and lock.locked() else ""

    def deliver_notification(self, dev_id: str, raw: bytes, protocol: str, *,
                             now: float | None = None) -> asyncio.Task | None:
        """The session task :meth:`receive_notification` started, or None when the device ignored it."""
        return self.receive_notification(dev_id, raw, protocol, now=now).session

    def receive_notification(self, dev_id: str, raw: bytes, protocol: str, *,
                             now: float | None = None) -> Delivery:
        """A server's notification (Package 0) reaches the device: checked, then the session it asks for.

        DM 2.0 (PROTOCOL 1.4): the digest is checked against the account the notification names
        (its Auth/Noti secret) and replays are dropped. DM 1.2: the digest must verify with the server
        credentials and nonce of a DM 1.x account (a digest valid only with the reset nonce starts a
        resync session). A DM 1.3 sessionless command message (protocol :data:`SESSIONLESS`) runs at
        once (:mod:`emulator.fleet.sessionless`). Anything else is ignored, as a device must, and an :class:`AlertRaised`
        ("notification rejected") tells whoever watches the bus why. This is the notification
        channels' way in (:data:`emulator.transport.listener.Deliver`): a device not in the fleet is
        ``Delivery(None, ..., known=False)``; EmulatorError (400) only for an unknown protocol.
        """
        dev = self.devices.get(dev_id)
        if dev is None:
            return Delivery(None, f"no device {dev_id!r} in the fleet", known=False)
        if protocol == SESSIONLESS:
            from emulator.fleet import sessionless

            return sessionless.receive(self, dev, raw, now)
        when = time.time() if now is None else now
        if protocol == "dm2":
            from emulator.protocol.dm2.client import check_notification
            from emulator.protocol.dm2.notification import NotificationGuard

            guard = self._notification_guards.get(dev_id)
            if guard is None:
                guard = self._notification_guards[dev_id] = NotificationGuard(window_s=600)
            decision = check_notification(raw, dev.accounts("dm2"), guard, when)
            if decision.accepted and decision.notification is not None:
                return Delivery(self.start_session(dev_id, "dm2", server_id=decision.notification.server_id,
                                                   reason="notification", **decision.engine_options()))
            reason = decision.reason
        elif protocol == "dm12":
            from emulator.protocol.syncml.client import check_notification as check_package0

            reason = "no DM 1.x account to check it with"
            for account in dev.accounts("dm12"):
                try:
                    verdict, n = check_package0(raw, account)
                except EmulatorError as exc:
                    reason = f"malformed notification: {exc}"
                    break
                if verdict != "bad":
                    options: dict[str, Any] = {}
                    label = "notification"
                    if dev.profile.dm_version == "1.3":
                        refused, label, options = self._dm13_notification(dev_id, n, when)
                        if refused:
                            reason = refused
                            break
                    return Delivery(self.start_session(dev_id, "dm12", server_id=account.server_id,
                                                       reason=label, server_initiated=True,
                                                       resync=verdict == "resync", **options))
                reason = f"notification from {n.server_id!r} does not verify with any DM 1.x account"
        else:
            raise EmulatorError(f"unknown protocol {protocol!r} (dm2 or dm12)", status=400)
        self.bus.publish(AlertRaised(dev_id, "notification rejected", reason, {"protocol": protocol}))
        return Delivery(None, reason)

    async def bootstrap(self, dev_id: str) -> str:
        """DM 1.3 client-initiated bootstrap of a factory-fresh device: GET its first account from the
        bootstrap server of its BootConfig and take it in (:mod:`emulator.mo.bootstrap`); '' when done,
        else why not (nothing of a refused bootstrap is kept). Plain http only to a loopback server.
        A BootConfig that names no server is filled by bootstrap server discovery first
        (:meth:`discover_bootstrap_server`)."""
        from urllib.parse import quote

        from emulator.mo import bootstrap as boot
        from emulator.mo.bootstrap import BASIC_USER
        from emulator.protocol.syncml.auth import basic_credential
        from emulator.tree.tnds import TNDS_XML

        dev = self.device(dev_id)
        entry = boot.pending(dev.tree)
        if entry is None:
            return "nothing to bootstrap: no pending BootConfig entry"
        url = entry.server_uri
        if not url:
            url, problem = await self.discover_bootstrap_server(dev_id)
            if problem:
                return problem
            entry = boot.pending(dev.tree) or entry
        if self.server_wins:
            url = on_origin(url, self.server)
        problem = boot.url_problem(url)
        if problem:
            return problem
        target = f"{url.rstrip('/')}/{quote(dev.id, safe=':@')}"
        headers = {"Authorization": f"Basic {basic_credential(BASIC_USER, entry.secret)}", "Accept": TNDS_XML}
        result = await self.transport.request("GET", target, headers=headers, max_body=boot.MAX_BOOTSTRAP)
        if result.status != 200:
            why = result.error or f"HTTP {result.status} {result.body[:200].decode('utf-8', 'replace').strip()}"
            return f"bootstrap from {target} failed: {why}"
        try:
            server_id = boot.apply_bootstrap(dev.tree, entry, result.body, dev.profile.bootstrap.acl_scope
                                             if dev.profile.bootstrap else ())
        except EmulatorError as exc:
            return f"bootstrap document from {target} refused: {exc}"
        self.bus.publish(AlertRaised(dev.id, "bootstrap", f"bootstrapped by {url}: new DM server {server_id!r}",
                                     {"server_id": server_id}))
        return ""

    async def discover_bootstrap_server(self, dev_id: str) -> tuple[str, str]:
        """Bootstrap server discovery (DM 1.3, README "DM 1.3" [P]): a factory-fresh device whose
        BootConfig names no server asks the network it is attached to, ``GET <network>/.well-known/
        dm-bootstrap`` (the fleet's server stands for the network's DM service, as DHCP or the bearer's
        attach would give it); the answer is a ``text/uri-list`` whose first URI, if the device would
        bootstrap from it, is written into ``BootConfig/<x>/ServerURI``. (URL, '') or ('', why not);
        nothing is written for a bad answer."""
        from emulator.mo import bootstrap as boot

        dev = self.device(dev_id)
        entry = boot.pending(dev.tree)
        if entry is None:
            return "", "nothing to bootstrap: no pending BootConfig entry"
        base = (self.server or "").rstrip("/")
        if not base:
            return "", "bootstrap server discovery needs the network's address (the fleet has no server)"
        where = base + boot.DISCOVERY_PATH
        result = await self.transport.request("GET", where, headers={"Accept": "text/uri-list"},
                                              max_body=boot.MAX_DISCOVERY)
        if result.status != 200:
            why = result.error or f"HTTP {result.status}"
            return "", f"bootstrap server discovery at {where} failed: {why}"
        try:
            url = boot.discovered_uri(result.body)
        except EmulatorError as exc:
            return "", f"bootstrap server discovery at {where}: {exc}"
        dev.tree.set_node(f"{entry.path}/ServerURI", url, access=frozenset({"Get"}))
        return url, ""

    def receive_bootstrap(self, dev_id: str, raw: bytes, content_type: str) -> Delivery:
        """A server-initiated bootstrap reaches the device (DM 1.3; :mod:`emulator.protocol.syncml.
        bootstrap`): taken only by a factory-fresh DM 1.3 device with a pending BootConfig entry, once
        its MAC verifies with the entry's secret (SEC=USERPIN); applied all or nothing as a
        client-initiated one, then the device opens its first session with the new server. Anything
        else is refused whole, nothing changes, and an :class:`AlertRaised` ("bootstrap refused")
        says why."""
        from emulator.protocol.syncml.bootstrap import take_pushed

        dev = self.devices.get(dev_id)
        if dev is None:
            return Delivery(None, f"no device {dev_id!r} in the fleet", known=False)
        try:
            server_id = take_pushed(dev.tree, raw, content_type, dm_version=dev.profile.dm_version,
                                    acl_scope=dev.profile.bootstrap.acl_scope if dev.profile.bootstrap else ())
        except EmulatorError as exc:
            reason = str(exc)
        else:
            self.bus.publish(AlertRaised(dev.id, "bootstrap", f"bootstrapped by a server push: new DM server "
                                         f"{server_id!r}", {"server_id": server_id}))
            return Delivery(self.start_session(dev_id, "dm12", server_id=server_id, reason="bootstrap"))
        self.bus.publish(AlertRaised(dev_id, "bootstrap refused", reason, {"protocol": "dm12"}))
        return Delivery(None, reason)

    def _dm13_notification(self, dev_id: str, n: Any, when: float) -> tuple[str, str, dict[str, Any]]:
        """A DM 1.3 device's reading of a verified Package 0: (why it is dropped or '', the session's
        reason, engine options). Dropped: malformed DM 1.3 fields, past its expiry, or a replay (the
        same notification, by its digest, within ``DM13_REPLAY_WINDOW_S``). Honoured: the reason
        labels the session, the requested MOs go in Package 1 (README "DM 1.3")."""
        from emulator.protocol.syncml.notification import parse_extension

        try:
            ext = parse_extension(n)
        except EmulatorError as exc:
            return f"malformed DM 1.3 notification: {exc}", "", {}
        if ext is not None and ext.expired(when):
            return f"notification expired at {ext.expiry} (POSIX seconds; now {when:.0f})", "", {}
        seen = self._dm13_seen.setdefault(dev_id, {})
        for digest, at in list(seen.items()):
            if at < when - DM13_REPLAY_WINDOW_S:
                del seen[digest]
        if n.digest in seen:
            return "replayed notification (the same one was acted on already)", "", {}
        seen[n.digest] = when
        if ext is None:
            return "", "notification", {}
        label = f"notification: {ext.reason}" if ext.reason else "notification"
        return "", label, {"requested_mos": ext.requested} if ext.requested else {}

    # ------------------------------------------------------------------ notification channels

    listener: NotificationListener | None = None
    push: PushPoller | None = None

    async def start_listener(self, host: str = "127.0.0.1", port: int = 0) -> NotificationListener:
        """The fleet's one notification listener (``POST <url>/notify/<DevID>``), for servers that can
        reach the devices; loopback unless another host is asked for. OSError when it cannot listen."""
        if self.listener is None:
            listener = NotificationListener(self.receive_notification, host, port)
            await listener.start()
            self.listener = listener
        return self.listener

    def start_push(self, dev_ids: list[str] | None = None, **options: Any) -> PushPoller:
        """Long-polls of the server's push channel for the devices behind NAT (all of the fleet's by
        default, following their bearers); options as :class:`PushPoller`'s, taken when it is first
        started (later calls add devices). Needs a running loop."""
        if self.push is None:
            options.setdefault("bootstrap", self.receive_bootstrap)
            self.push = PushPoller(self.devices, self.receive_notification, **options)
        self.push.start(dev_ids)
        return self.push

    async def aclose(self) -> None:
        listener, push = self.listener, self.push
        self.listener = self.push = None
        if push is not None:
            await push.stop()
        if listener is not None:
            await listener.stop()
        for task in [*self._tasks, *self._watchers.values()]:
            task.cancel()
        if self._watchers:
            await asyncio.gather(*self._watchers.values(), return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.transport.aclose()

    # ------------------------------------------------------------------ bookkeeping

    def _count(self, event: object) -> None:
        ws = self.workspace
        if isinstance(event, MessageLogged):
            self.stats.messages += 1
            self._recent.append(event.ts)
            if ws is not None and event.session_id in self._store_sessions:
                ws.add_traffic(self._store_sessions[event.session_id], event.device_id, event.direction,
                               event.ts, event.content_type, event.body, event.summary)
        elif isinstance(event, SessionStarted):
            self.stats.sessions_started += 1
            if ws is not None and event.device_id in self.devices:
                self._store_sessions[event.session_id] = ws.begin_session(event.device_id, event.protocol,
                                                                          event.server)
        elif isinstance(event, SessionEnded):
            if event.outcome == "completed":
                self.stats.sessions_completed += 1
            else:
                self.stats.sessions_failed += 1
            sid = self._store_sessions.pop(event.session_id, None)
            if ws is not None and sid is not None:
                ws.end_session(sid, event.outcome, event.detail)

    def messages_per_second(self, now: Callable[[], float] = time.time, window: float = 2.0) -> float:
        t = now()
        return sum(1 for ts in self._recent if t - ts <= window) / window
