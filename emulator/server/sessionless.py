"""The reference server's side of DM 1.3 sessionless command and sessionless reporting DM.

Why: a DM 1.3 server sends a device a few commands in one signed message, without a session, and
takes the device's results on its reporting URI, again without a session (ERELD 4.3; the envelope is
:mod:`emulator.protocol.syncml.sessionless`). Here:

- :func:`build_command`: the signed command message for a device, from a JSON list of commands
  (``[{"cmd": "Get", "target": "./DevInfo/Mod"}, {"cmd": "Replace", "target": ..., "data": ...,
  "format": "chr"}]``: Get, Add, Replace, Delete, Exec; at most :data:`MAX_COMMANDS`), signed with the
  server credentials of the DM 1.x authority (the pair the device proved it holds), as a Package 0 is;
- ``POST /dm13/report/<ServerID>`` (:func:`setup_sessionless`): the reporting URI. A report is taken
  only when it is at most :data:`~emulator.protocol.syncml.sessionless.MAX_MESSAGE` bytes (413
  beyond, before it is read whole), of the sessionless type (415), within the rate limits (429 with
  Retry-After: per sending address, then per device), well formed (400), signed with the client
  credentials of a device of that authority (401), fresh and not a replay (403); anything refused
  changes nothing. Taken reports are kept (the newest :data:`REPORTS_KEPT`) and shown on
  ``GET /admin/sessionless/reports``.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.errors import EmulatorError
from emulator.protocol.dm2.media import media_type
from emulator.protocol.syncml import sessionless as sl
from emulator.protocol.syncml.commands import (
    Add,
    Command,
    Delete,
    Exec,
    Get,
    Item,
    Message,
    Meta,
    Replace,
    SyncHdr,
)
from emulator.protocol.syncml.message import build_message
from emulator.server.state import STATE_KEY

if TYPE_CHECKING:
    from emulator.server.state import ServerState

MAX_COMMANDS = 32
"""Most commands one sessionless command message carries."""
MAX_TARGET = 1024
"""Longest target URI of a command, in characters."""
REPORTS_KEPT = 1000
COMMANDS: dict[str, type[Get | Add | Replace | Delete | Exec]] = {
    "Get": Get, "Add": Add, "Replace": Replace, "Delete": Delete, "Exec": Exec}


@dataclass(frozen=True, slots=True)
class ReportLimits:
    """How many reports the reporting URI takes per ``window_s`` from one address and from one
    device (the 429 limits); each is checked before anything is stored."""

    per_address: int = 600
    per_device: int = 20
    window_s: float = 60.0


class _Window:
    """Counts per key over a sliding window; the clock is the caller's."""

    def __init__(self) -> None:
        self.hits: dict[str, deque[float]] = {}

    def take(self, key: str, limit: int, window_s: float, now: float) -> bool:
        """Count one for ``key``; False (nothing counted) when it already has ``limit`` in the window."""
        seen = self.hits.setdefault(key, deque())
        while seen and seen[0] <= now - window_s:
            seen.popleft()
        if len(seen) >= limit:
            return False
        seen.append(now)
        if len(self.hits) > 65536:  # forget idle keys rather than grow without end
            for k in [k for k, q in self.hits.items() if not q]:
                del self.hits[k]
        return True


@dataclass
class SessionlessDesk:
    """What the server sent and received without sessions."""

    limits: ReportLimits = field(default_factory=ReportLimits)
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # SessionID (hex msg id) -> what was sent
    reports: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=REPORTS_KEPT))
    refused: int = 0
    guards: dict[str, sl.ReplayGuard] = field(default_factory=dict)  # DevID -> its reports taken
    _addresses: _Window = field(default_factory=_Window)
    _devices: _Window = field(default_factory=_Window)


def desk(state: ServerState) -> SessionlessDesk:
    if state.sessionless is None:
        state.sessionless = SessionlessDesk()
    return state.sessionless


def _text(spec: dict[str, Any], key: str, limit: int, *, required: bool = False) -> str | None:
    value = spec.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise EmulatorError(f"command {key!r} must be text of 1..{limit} characters", status=400)
    return value


def commands_from_json(spec: object) -> list[Get | Add | Replace | Delete | Exec]:
    """The commands of an admin request; EmulatorError (400) naming the first thing wrong."""
    if not isinstance(spec, list) or not spec:
        raise EmulatorError('expected "commands": a list of {"cmd": ..., "target": ...}', status=400)
    if len(spec) > MAX_COMMANDS:
        raise EmulatorError(f"a sessionless message carries at most {MAX_COMMANDS} commands, not {len(spec)}",
                            status=400)
    out: list[Get | Add | Replace | Delete | Exec] = []
    for n, one in enumerate(spec, 1):
        if not isinstance(one, dict) or set(one) - {"cmd", "target", "data", "format", "type"}:
            raise EmulatorError(f"command {n}: expected keys cmd, target, data, format, type", status=400)
        cls = COMMANDS.get(str(one.get("cmd")))
        if cls is None:
            raise EmulatorError(f"command {n}: cmd must be one of {', '.join(COMMANDS)}", status=400)
        target = _text(one, "target", MAX_TARGET, required=True)
        data = one.get("data")
        if data is not None and not isinstance(data, str):
            raise EmulatorError(f"command {n}: data must be text", status=400)
        fmt, mime = _text(one, "format", 16), _text(one, "type", 128)
        meta = Meta(format=fmt, type=mime) if fmt or mime else None
        out.append(cls(cmd_id=str(n), meta=meta, items=[Item(target=target, data=data)]))
    return out


def build_command(state: ServerState, dev_id: str, commands: list[Get | Add | Replace | Delete | Exec], *, server_id: str | None = None,
                  lifetime: int = 600, now: float | None = None) -> tuple[bytes, str]:
    """The signed sessionless command message for ``dev_id`` and its SessionID (the message id in hex);
    EmulatorError: 404 for an authority the server does not play, 400 for a bad lifetime, 413 when
    the message would be over the limit. Remembered as sent, for the report that answers it."""
    dm12 = state.dm12
    if dm12 is None:
        raise EmulatorError("the DM 1.x side of this server is not set up", status=404)
    if not isinstance(lifetime, int) or not 0 < lifetime <= sl.MAX_LIFETIME_S:
        raise EmulatorError(f"lifetime must be 1..{sl.MAX_LIFETIME_S} seconds", status=400)
    authority = dm12.authority(server_id)
    name, pair = dm12.signing(authority, dev_id)
    msg_id = secrets.randbits(32)
    header = SyncHdr(session_id=f"{msg_id:X}", msg_id="1", target=dev_id, source=authority.server_id,
                     ver_proto="DM/1.3")
    body = build_message(Message(header=header, commands=list[Command](commands), final=True))
    expiry = int(time.time() if now is None else now) + lifetime
    raw = sl.seal(sl.KIND_COMMAND, name, name, pair.server, body, msg_id=msg_id, expiry=expiry)
    if len(raw) > sl.MAX_MESSAGE:
        raise EmulatorError(f"the message would be {len(raw)} bytes, over the {sl.MAX_MESSAGE}-byte limit", status=413)
    desk(state).sent[header.session_id] = {
        "device": dev_id, "server_id": authority.server_id, "session_id": header.session_id, "expiry": expiry,
        "commands": [f"{c.name} {c.items[0].target}" for c in commands]}
    while len(desk(state).sent) > REPORTS_KEPT:
        desk(state).sent.pop(next(iter(desk(state).sent)))
    return raw, header.session_id


def take_report(state: ServerState, server_id: str, raw: bytes, *, address: str,
                now: float | None = None) -> dict[str, Any]:
    """Check one report and keep it; EmulatorError with the status to answer (see the module doc).
    The SyncML inside is parsed only once the sender proved who it is."""
    book = desk(state)
    when = time.time() if now is None else now
    if not book._addresses.take(address, book.limits.per_address, book.limits.window_s, when):
        raise EmulatorError(f"too many reports from {address}: at most {book.limits.per_address} per "
                            f"{book.limits.window_s:g} s", status=429)
    env = sl.open_envelope(raw)
    if env.kind != sl.KIND_REPORT:
        raise EmulatorError("the reporting URI takes reports (kind 2), not command messages", status=400)
    dm12 = state.dm12
    if dm12 is None:
        raise EmulatorError("the DM 1.x side of this server is not set up", status=404)
    authority = dm12.authority(server_id)
    from emulator.server.dm12 import client_combos

    dev_id = env.sender
    if not any(sl.verify(env, user, pair.client) for user, pair in client_combos(authority, dev_id, [dev_id])):
        raise EmulatorError(f"report of {dev_id!r} does not verify with the credentials of any device of "
                            f"{authority.server_id!r}", status=401)
    if not book._devices.take(dev_id, book.limits.per_device, book.limits.window_s, when):
        raise EmulatorError(f"too many reports from {dev_id}: at most {book.limits.per_device} per "
                            f"{book.limits.window_s:g} s", status=429)
    guard = book.guards.setdefault(dev_id, sl.ReplayGuard())
    stale = guard.refusal(env, when)
    if stale:
        raise EmulatorError(f"report {stale}", status=403)
    hdr, statuses, results = sl.report_contents(env.body)
    if hdr.source != dev_id:
        raise EmulatorError(f"the report's SyncHdr names {hdr.source!r}, its envelope {dev_id!r}", status=400)
    sent = book.sent.get(hdr.session_id, {})
    report = {
        "device": dev_id, "server_id": authority.server_id, "session_id": hdr.session_id, "received": when,
        "answers": sent.get("commands", []) if sent.get("device") == dev_id else [],
        "statuses": [{"cmd": s.cmd, "cmd_ref": s.cmd_ref, "target": (s.target_refs or [""])[0], "code": s.code}
                     for s in statuses],
        "results": [{"target": i.source, "data": i.data if isinstance(i.data, str) else None}
                    for r in results for i in r.items],
    }
    book.reports.append(report)
    return report


def setup_sessionless(app: web.Application) -> None:
    """Add the reporting route ``POST /dm13/report/<ServerID>`` (module doc)."""

    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        if request.content_length is not None and request.content_length > sl.MAX_MESSAGE:
            desk(state).refused += 1
            return web.Response(status=413, text=f"a report is at most {sl.MAX_MESSAGE} bytes")
        if media_type(request.headers.get("Content-Type")) != sl.MEDIA_SESSIONLESS:
            desk(state).refused += 1
            return web.Response(status=415, text=f"a sessionless report is {sl.MEDIA_SESSIONLESS}")
        raw = await request.read()  # (the body deadline read it already, within the app's body limit)
        try:
            report = take_report(state, request.match_info["server_id"], raw, address=request.remote or "")
        except EmulatorError as exc:
            desk(state).refused += 1
            headers = {"Retry-After": str(int(desk(state).limits.window_s))} if exc.status == 429 else None
            return web.Response(status=exc.status, text=str(exc), headers=headers)
        return web.json_response({"taken": True, "device": report["device"], "session_id": report["session_id"]})

    app.router.add_post(sl.REPORT_PATH + "/{server_id}", handle)
