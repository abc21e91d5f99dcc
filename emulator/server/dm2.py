"""Reference DM server, DM 2.0 side: sessions, data repository, push channel (PROTOCOL 1).

Routes (mounted by :func:`setup_dm2`):

- ``POST /dm20`` and ``POST /dm2`` (the profiles' default SrvURI): DM sessions keyed by the
  ``OMADM-DevID`` header. A Package#1 opens a session that runs the device's script
  (:func:`script_for`); each Package#3 is answered with the next step. ``/dm20/alerts`` (and
  ``/dm2/alerts``) is the ServerURI the demo gives to EXEC: sessions there only deliver alerts and
  are answered with END at once. ``/dm2/<ServerID>`` (and ``/dm20/<ServerID>``, each with its
  ``/alerts``) is the same for another authority (``state.dm2_authorities``, learnt from the shipped
  profiles when none are set; 404 for one not played), its sessions apart from the default
  authority's. Every session request authenticates as the device it names (HTTP Basic, Digest or a
  client certificate: :mod:`emulator.server.dm2_auth`); 401 with both challenges otherwise.
- ``GET /repo/<path>``: the data repository (MO serialization for HGET); ``PUT``/``POST`` store
  what devices send (HPUT/HPOST/SUB pushes) in the device's log and at that path.
- ``GET /push/<DevID>`` (also under ``/dm2`` and ``/dm20``): long-poll for a Package#0
  (200 + ``application/vnd.oma.dm.notification``, 204 after ``state.push_wait_s``), 1.19 item 6;
  the same channel is DM 1.3's HTTP push binding: a DM 1.x Package 0
  (``application/vnd.syncml.notification``) or a bootstrap message waits there too
  (:meth:`ServerState.push`), for a device that authenticates with a DM 1.x account or, factory-fresh,
  with its bootstrap secret (:func:`emulator.server.access.push_problem`).

Notifications, scripts and what the server saw are driven from outside through
:mod:`emulator.server.control` (``/admin/...``: :mod:`emulator.server.admin`).

Scripts: a list of steps, each one Package#2 as a list of commands (arrays of strings). Strings may
hold placeholders: ``${base}`` (server origin), ``${dev}``, ``${repo}`` (``<base>/repo/<DevID>``),
``${alerts}`` (the alert endpoint), ``${ui:<flow>}`` (opens a web UI session and gives its URL),
``${new:<MOID>}`` (ClientURI of the instance the device reported for that MOID, from an HGET status
or Package#1 MOS). A command whose placeholder cannot be filled is skipped and noted in the log.

SHOW (1.19 item 5): when a Package#2 carried a SHOW of a UI session, the answer to the following
Package#3 is held until the form is submitted (then the flow's result commands are sent) or
``state.show_hold_s`` passes (then ``{"CMD":[]}``; the device posts an empty Package#3 and the server
holds again). A SHOW answered with a status other than 200 is not waited for. With
``state.ui_resume == "client"`` (seeds/004 B.3) the server ENDs instead of holding, and the next
session the device opens (when its page flow has ended) starts with the flow's result commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web

from emulator.errors import DecodeError
from emulator.protocol.dm2 import media
from emulator.protocol.dm2.messages import (
    ALERT_SERVER_INITIATED,
    Alert,
    Command,
    Response,
    StatusEntry,
    decode_initiation,
    decode_response,
    encode_request,
    notification_id_of,
)
from emulator.protocol.dm2.moser import decode_mos
from emulator.server import campaign_sessions
from emulator.server.access import device_problem, note_address, push_problem, unauthorized
from emulator.server.authorities import learn_authorities
from emulator.server.routes import (
    ALERTS_SUFFIX,
    DM2_AUTHORITY_PREFIXES,
    DM2_SESSION_PATHS,
    PUSH_PREFIXES,
    REPO,
    repo_url,
)
from emulator.server.state import (
    STATE_KEY,
    ServerState,
    Step,
    UiSession,
    Upload,
    base_url,
    pushed_media,
)
from emulator.server.tls import peer_common_name
from emulator.server.ui_flows import FLOWS, flow_result, open_ui, ui_url
from emulator.tree.clienturi import format_client_uri

DEVINFO_MOID = "urn:oma:mo:oma-dm-devinfo:1.2"
SESSIONINFO_MOID = "urn:oma:mo:oma-sessioninfomo:1.0"
_VAR = re.compile(r"\$\{([^}]*)\}")


def demo_script(flow: str = "wifi") -> list[Step]:
    """The default session: read DevInfo, create an MO instance, bind a DEFAULT, subscribe to the
    bearers, show a web UI flow (its answers decide the next commands), execute a node of what the
    flow created with an asynchronous result, end."""
    f = FLOWS[flow]
    return [
        [
            ["GET", f"{DEVINFO_MOID}//FwV"],
            ["GET", f"{DEVINFO_MOID}//Mod"],
            ["HGET", "${base}/repo/demo/bookmark"],
            ["DEFAULT", SESSIONINFO_MOID, "${base}/repo/demo/sessioninfo"],
        ],
        [["SUB", f"{DEVINFO_MOID}//Bearer", "${repo}/sub/bearer"], ["SHOW", "${ui:" + flow + "}"]],
        [["EXEC", "${new:" + f.moid + "}" + f.exec_uri, "${alerts}"]],
        [["END"]],
    ]


def script_for(state: ServerState, dev_id: str, base: str = "") -> list[Step]:
    """The steps a new session of ``dev_id`` runs when no campaign is engaged with it
    (:func:`session_driver`): a one-off script set for its next session, the script set for it (or
    for every device), else the demo script with the state's ``default_flow``."""
    once = state.dm2_once.pop(dev_id, None)  # a one-off script: this session only
    if once is not None:
        return once
    steps = state.script_of(dev_id)
    return demo_script(state.default_flow) if steps is None else steps


def session_driver(state: ServerState, dev_id: str, base: str) -> Callable[[ServerSession], list[list[str]]] | None:
    """The campaign a new session of ``dev_id`` runs (:mod:`emulator.server.campaign_sessions`), asked
    before the session's alerts are noted: a device a campaign is engaged with runs its steps only."""
    return campaign_sessions.dm2_driver(state, dev_id, (base or state.base_url).rstrip("/"))


def note_alerts(state: ServerState, dev_id: str, alerts: list[Alert]) -> None:
    """Generic alerts for the campaigns' collection (a FUMO result ends a device's campaign run); the
    protocol's own alerts (session types, ExecResult: ``urn:oma:at:dm:2.0:...``) are not kept there."""
    for a in alerts:
        if a.alert_type.startswith("urn:oma:at:dm:2.0:"):
            continue
        value = (a.data or {}).get("Value", "") if isinstance(a.data, dict) else ""
        state.campaigns.alert("dm2", dev_id, a.alert_type, value if isinstance(value, str) else str(value),
                              source=a.source_uri or "")


async def _all_done(uis: list[UiSession]) -> None:
    for ui in uis:
        await ui.done.wait()


async def _all_done_or(uis: list[UiSession], closing: asyncio.Event | None) -> None:
    """Until every UI session is done, or ``closing`` is set."""
    if closing is None:
        await _all_done(uis)
        return
    done, stop = asyncio.ensure_future(_all_done(uis)), asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({done, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        done.cancel()
        stop.cancel()


@dataclass
class ServerSession:
    """The server side of one DM 2.0 session."""

    dev_id: str
    base: str
    steps: deque[Step]
    alerts_path: str = "/dm20" + ALERTS_SUFFIX  # where the EXEC results of this authority go
    sent: list[list[str]] = field(default_factory=list)
    waiting: list[UiSession] = field(default_factory=list)
    vars: dict[str, str] = field(default_factory=dict)
    packages: int = 0
    ended: bool = False
    more: Callable[[ServerSession], list[list[str]]] | None = None  # a campaign's next package, once steps are spent
    answered: list[tuple[list[str], StatusEntry]] = field(default_factory=list)  # the last Package#3's statuses

    def take(self, state: ServerState, response: Response) -> None:
        """Record a Package#3 against the commands it answers."""
        log = state.device(self.dev_id)
        if len(response.statuses) != len(self.sent):
            log.problems.append(f"Package#3 has {len(response.statuses)} statuses for {len(self.sent)} commands")
        for cmd, status in zip(self.sent, response.statuses, strict=False):
            log.statuses.append((cmd, status))
            name = cmd[0].upper() if cmd else ""
            if name == "GET" and status.sc == 200 and len(cmd) > 1:
                data: dict = {}
                for item in status.mos or []:
                    log.gets[item.client_uri] = item.mo_data
                    data.update(item.mo_data)
                if status.mo_data is not None:
                    data.update(status.mo_data)
                log.gets[cmd[1]] = data
            elif name == "HGET" and status.sc == 200:
                for uri in status.uri or []:
                    moid = uri.split("/", 1)[0]
                    known = log.instances.setdefault(moid, [])
                    if uri not in known:
                        known.append(uri)
                    self.vars[f"new:{moid}"] = uri
            elif name == "SHOW" and status.sc != 200 and len(cmd) > 1:
                for ui in [u for u in self.waiting if ui_url(u) == cmd[1]]:
                    ui.outcome = ui.outcome or "not shown"
                    ui.done.set()
                    self.waiting.remove(ui)
        log.alerts.extend(response.alerts)
        note_alerts(state, self.dev_id, response.alerts)
        self.answered = list(zip(self.sent, response.statuses, strict=False))
        self.sent = []

    async def next_package(self, state: ServerState, closing: asyncio.Event | None = None) -> list[list[str]]:
        """The next Package#2; waits for open UI sessions first (see module doc), not beyond
        ``closing`` (the server shutting down: a held answer must not hold up the shutdown)."""
        if self.waiting and state.ui_resume == "client" and any(not u.done.is_set() for u in self.waiting):
            state.device(self.dev_id).resume_ui.extend(self.waiting)  # the device comes back for them
            self.waiting = []
            self.steps.clear()
            return self._send([["END"]])
        if self.waiting:
            pending = [u for u in self.waiting if not u.done.is_set()]
            if pending:
                try:
                    await asyncio.wait_for(_all_done_or(pending, closing), state.show_hold_s)
                except TimeoutError:
                    return self._send([])
                if closing is not None and closing.is_set():
                    return self._send([])
            results: list[list[str]] = []
            for ui in self.waiting:
                results.extend(flow_result(state, ui))
            self.waiting = []
            if results:
                if any(c and c[0].upper() == "END" for c in results):
                    self.steps.clear()
                return self._send(results)
        while self.steps:
            step = self.steps.popleft()
            commands = [c for c in (self._fill(state, cmd) for cmd in step) if c is not None]
            if commands:
                return self._send(commands)
        if self.more is not None:
            commands = [c for c in (self._fill(state, cmd) for cmd in self.more(self)) if c is not None]
            if commands:
                return self._send(commands)
        return self._send([["END"]])

    def _send(self, commands: list[list[str]]) -> list[list[str]]:
        self.sent = commands
        self.packages += 1
        if any(c and c[0].upper() == "END" for c in commands):
            self.ended = True
        return commands

    def _fill(self, state: ServerState, cmd: list[str]) -> list[str] | None:
        missing: list[str] = []
        opened: list[UiSession] = []

        def value(match: re.Match[str]) -> str:
            key = match.group(1)
            if key == "base":
                return self.base
            if key == "dev":
                return self.dev_id
            if key == "repo":
                return repo_url(self.base, self.dev_id)
            if key == "alerts":
                return self.base + self.alerts_path
            if key.startswith("ui:"):
                try:
                    ui = open_ui(state, key[3:], self.dev_id, self.base)
                except KeyError:
                    missing.append(key)
                    return ""
                opened.append(ui)
                return ui_url(ui)
            if key.startswith("diag-upload:"):
                from emulator.server.diag import fill_upload

                return fill_upload(state, self.dev_id, self.base, key[len("diag-upload:"):])
            if key in self.vars:
                return self.vars[key]
            known = state.device(self.dev_id).instances.get(key[4:]) if key.startswith("new:") else None
            if known:
                return known[-1]
            missing.append(key)
            return ""

        filled = [_VAR.sub(value, part) for part in cmd]
        if missing:
            state.device(self.dev_id).problems.append(
                f"skipped {cmd[0] if cmd else '?'}: nothing known for {', '.join('${' + m + '}' for m in missing)}")
            return None
        if filled and filled[0].upper() == "SHOW":
            self.waiting.extend(opened)
        return filled


# --- HTTP handlers --------------------------------------------------------------------------------


def _problem(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=text, headers=headers)


def _request_body(commands: list[list[str]]) -> web.Response:
    body = encode_request([Command(c[0], c[1:]) for c in commands])
    return web.Response(body=body, content_type=media.REQUEST,
                        headers={media.HEADER_ACCEPT: ", ".join(media.MO_JSON_ACCEPTED)})


async def session(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    server_id = request.match_info.get("server_id")
    authority = state.dm2_authority(server_id)
    if authority is None:
        return _problem(404, f"this server plays no DM 2.0 authority {server_id!r}")
    dev_id = request.headers.get(media.HEADER_DEVID, "").strip()
    if not dev_id:
        return _problem(400, f"a DM 2.0 package needs the {media.HEADER_DEVID} header")
    verdict = state.authenticate(request.headers.get("Authorization"), server_id=server_id, dev_id=dev_id,
                                 method=request.method, uri=request.raw_path,
                                 peer_cn=peer_common_name(request.transport))
    if verdict.user is None:
        return unauthorized(state, authority.server_id, verdict)
    note_address(state, request)
    key = (authority.server_id, dev_id)
    accept = request.headers.get("Accept")
    if accept and media.negotiate(accept, (media.REQUEST, "application/json")) is None:
        return _problem(406, f"this server answers {media.REQUEST}")
    body = await request.read()
    ctype = media.media_type(request.headers.get("Content-Type"))
    log = state.device(dev_id)
    if ctype == media.INITIATION:
        try:
            init = decode_initiation(body)
        except DecodeError as exc:
            return _problem(exc.status, f"bad Package#1: {exc}")
        log.sessions += 1
        log.initiations.append(init)
        log.alerts.extend(init.alerts)
        alerts_only = request.path.rstrip("/").endswith(ALERTS_SUFFIX)
        driver = None if alerts_only else session_driver(state, dev_id, base_url(request))
        note_alerts(state, dev_id, init.alerts)
        for alert in init.alerts:
            if alert.alert_type == ALERT_SERVER_INITIATED:
                nid = notification_id_of(alert)
                if nid is not None:
                    log.notification_ids.append(nid)
        for mo in init.mos:
            known = log.instances.setdefault(mo.moid, [])
            known.extend(u for u in (format_client_uri(mo.moid, m) for m in mo.miid) if u not in known)
        steps = [] if alerts_only or driver is not None else script_for(state, dev_id, base_url(request))
        alerts_path = "/dm20" + ALERTS_SUFFIX if server_id is None else f"/dm2/{quote(server_id, safe='')}{ALERTS_SUFFIX}"
        current = ServerSession(dev_id, base_url(request), deque(steps), alerts_path, more=driver)
        if log.resume_ui and not alerts_only:  # ui_resume "client": the device is back after its page
            current.waiting, log.resume_ui = log.resume_ui, []
            current.steps.clear()
        if not alerts_only:  # an alerts-only session ends at once: it must not displace the open one
            state.dm2_sessions[key] = current
    elif ctype in (media.RESPONSE, "application/json"):
        found: ServerSession | None = state.dm2_sessions.get(key)
        if found is None:
            return _problem(400, f"no DM 2.0 session is open for {dev_id}: start with Package#1")
        current = found
        try:
            response = decode_response(body)
        except DecodeError as exc:
            return _problem(exc.status, f"bad Package#3: {exc}")
        current.take(state, response)
    else:
        return _problem(415, f"expected {media.INITIATION} or {media.RESPONSE}, got {ctype or 'no type'}",
                        Accept=f"{media.INITIATION}, {media.RESPONSE}")
    commands = await current.next_package(state, request.app[PUSH_CLOSING])
    if current.ended:
        if state.dm2_sessions.get(key) is current:
            del state.dm2_sessions[key]
        log.completed += 1
    return _request_body(commands)


async def repo_get(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    entry = state.repo.get(request.match_info["path"])
    if entry is None:
        return _problem(404, f"nothing in the repository at {request.path}")
    content_type, data = entry
    return web.Response(body=data, headers={"Content-Type": content_type})


async def repo_put(request: web.Request) -> web.Response:
    """A device stores what it sends (HPUT/HPOST/SUB) under its own ``<DevID>/``, as itself, within
    its quota (:mod:`emulator.server.access`)."""
    state = request.app[STATE_KEY]
    key = request.match_info["path"]
    dev_id = request.headers.get(media.HEADER_DEVID, "").strip() or key.split("/", 1)[0]
    refused = device_problem(request, dev_id)
    if refused is not None:
        return refused
    if not key.startswith(dev_id + "/"):
        return _problem(403, f"a device writes only under /repo/{dev_id}/, not at {request.path}")
    log = state.device(dev_id)
    length = request.content_length or 0
    if len(log.uploads) >= state.repo_quota_uploads:
        return _problem(507, f"{dev_id} has used its quota of {state.repo_quota_uploads} uploads")
    if sum(len(u.body) for u in log.uploads) + length > state.repo_quota_bytes:
        return _problem(507, f"{dev_id} has used its quota of {state.repo_quota_bytes} bytes of uploads")
    ctype = request.headers.get("Content-Type", "")
    if not media.is_mo_json(ctype):
        return _problem(415, f"the repository takes MO serialization, not {media.media_type(ctype) or 'no type'}",
                        **{media.HEADER_ACCEPT: ", ".join(media.MO_JSON_ACCEPTED)})
    body = await request.read()
    try:
        items = decode_mos(body)
    except DecodeError as exc:
        return _problem(exc.status, f"bad MO serialization: {exc}")
    if sum(len(u.body) for u in log.uploads) + len(body) > state.repo_quota_bytes:
        return _problem(507, f"{dev_id} has used its quota of {state.repo_quota_bytes} bytes of uploads")
    log.uploads.append(Upload(dev_id, request.method, key, media.media_type(ctype), body, items, time.time()))
    state.repo[key] = (media.media_type(ctype), body)
    return web.Response(status=204)


async def push(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    wait = state.push_wait_s
    with contextlib.suppress(ValueError):  # a bad ?wait= keeps the server's own limit
        wait = min(wait, max(0.0, float(request.query.get("wait", wait))))
    refused = push_problem(request, request.match_info["dev"])
    if refused is not None:
        return refused
    queue = state.push_queue(request.match_info["dev"])
    getter = asyncio.ensure_future(queue.get())
    closing = asyncio.ensure_future(request.app[PUSH_CLOSING].wait())
    try:
        await asyncio.wait((getter, closing), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closing.cancel()
        if not getter.done():
            getter.cancel()  # (nothing taken yet: cancelling loses no notification)
    if getter.cancelled() or not getter.done():
        return web.Response(status=204)  # the wait ran out, or the server is shutting down
    raw = getter.result()
    if request.transport is None or request.transport.is_closing():
        queue.put_nowait(raw)  # the device stopped waiting (left NAT, went away): keep it for the next poll
        return web.Response(status=204)
    return web.Response(body=bytes(raw), headers={"Content-Type": pushed_media(raw)})


PUSH_CLOSING = web.AppKey("push_closing", asyncio.Event)
"""Set when the app shuts down: held push requests answer 204 at once instead of holding the shutdown,
and a session held while its web page is open answers an empty package."""


async def _release_push(app: web.Application) -> None:
    app[PUSH_CLOSING].set()


def setup_dm2(app: web.Application) -> None:
    """Mount the DM 2.0 routes; the state is ``app[STATE_KEY]`` (its authorities learnt from the
    shipped profiles when it has none)."""
    state = app[STATE_KEY]
    if state.dm2_authorities is None:
        state.dm2_authorities = learn_authorities("dm2")
    for path in DM2_SESSION_PATHS:
        app.router.add_post(path, session)
        app.router.add_post(path + ALERTS_SUFFIX, session)
    for path in DM2_AUTHORITY_PREFIXES:  # after the literal /alerts routes, which win
        app.router.add_post(path + "/{server_id}", session)
        app.router.add_post(path + "/{server_id}" + ALERTS_SUFFIX, session)
    for prefix in PUSH_PREFIXES:
        app.router.add_get(prefix + "/push/{dev}", push)
    app[PUSH_CLOSING] = asyncio.Event()
    app.on_shutdown.append(_release_push)
    app.router.add_get(REPO + "/{path:.+}", repo_get)
    app.router.add_put(REPO + "/{path:.+}", repo_put)
    app.router.add_post(REPO + "/{path:.+}", repo_put)
