"""Faults the reference server commits on purpose, per device and per session (issue "Trust").

A tester tells the server to misbehave (``state.add_fault(...)``, ``POST /admin/faults``,
``dm-emulator server --fault KIND[:device]``) and watches what the device does with it. The protocol
handlers stay clean: one aiohttp middleware (:func:`setup_faults`) sits in front of the session
routes and either answers in their place or rewrites what they answered; Package 0s are rewritten
where the server builds them (:meth:`Faults.package0`, called by ``ServerState.dm2_package0`` and
``Dm12Server.build_package0``).

What each kind does (``message`` = the n-th answer of a session it hits, default the 2nd):

- ``drop``: the real answer is computed, its headers and half its body are sent, then the connection
  is closed (the server believes it answered).
- ``slow``: the handler runs at once, its answer is held ``seconds`` (a device with a shorter read
  timeout gives up first; the server's session has moved on, as a real slow server's would).
- ``http_500`` / ``http_503``: that status with a short text instead of an answer (503: Retry-After).
- ``malformed``: a complete body of the right media type that is not a valid message (SyncML without
  SessionID/MsgID; DM 2.0 JSON whose CMD is not an array).
- ``truncated``: the real answer cut in half, with a Content-Length that matches the cut (HTTP is
  complete, the document is not).
- ``oversize``: the real answer padded past the device's limit: DM 1.2 the MaxMsgSize in the device's
  SyncHdr (padding is a Results the device would ignore); DM 2.0 declares none, so the DM 2.0
  client's default limit (``jsonsafe.DEFAULT_MAX_SIZE``); ``size`` sets the body size instead.
- ``repeat_msgid`` (DM 1.2): the answer carries the MsgID of the server's previous message.
- ``switch_sessionid`` (DM 1.2): the answer carries another SessionID.
- ``challenge_forever``: from that answer on, every answer of the session is an authentication
  challenge: DM 1.2 a SyncHdr Status 401 with a Chal (nonce: the one the server expects next, so a
  later session is not thrown off), DM 2.0 an HTTP 401 with WWW-Authenticate.
- ``bad_digest_notification``: the next Package 0 for the device has its digest damaged.
- ``replayed_notification``: the next Package 0 is the previous one sent to that device, byte for
  byte (DM 2.0: same NOTIFICATION-ID and TIMESTAMP; DM 1.2: a digest made with the nonce of its
  time). The server holds off until it has sent one to replay.

``sessions`` is how many sessions (notifications) a fault spoils before it is spent, so the session
after it shows the device recovers. A rewritten DM 1.2 answer keeps the server's ``x-syncml-hmac``
header, which no longer matches: with HMAC accounts the device sees a bad signature first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.errors import EmulatorError
from emulator.protocol.dm2 import jsonsafe
from emulator.protocol.dm2 import media as dm2_media
from emulator.protocol.syncml import auth, codes
from emulator.protocol.syncml.commands import Chal, Item, Message, Results, Status, SyncHdr
from emulator.protocol.syncml.message import build_message, content_type, media_kind, parse_message

if TYPE_CHECKING:
    from emulator.server.state import ServerState

BOTH = ("dm12", "dm2")
KINDS: dict[str, tuple[str, ...]] = {
    "drop": BOTH,
    "slow": BOTH,
    "http_500": BOTH,
    "http_503": BOTH,
    "malformed": BOTH,
    "truncated": BOTH,
    "oversize": BOTH,
    "repeat_msgid": ("dm12",),
    "switch_sessionid": ("dm12",),
    "challenge_forever": BOTH,
    "bad_digest_notification": BOTH,
    "replayed_notification": BOTH,
}
"""Every fault kind and the protocols it exists in."""
NOTIFICATION_KINDS = frozenset({"bad_digest_notification", "replayed_notification"})
PROTOCOLS = ("dm12", "dm2", "both")
INJECTED = "injected fault"
"""Words every fault's own text carries, so a log reader knows the server did it on purpose."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Fault:
    """One misbehaviour: ``kind`` (see module doc) for ``device`` ("*" = any) on ``protocol``
    (dm12, dm2 or both), at the ``message``-th answer of a session, for ``sessions`` sessions.
    ``seconds``: how long ``slow`` holds its answer; ``size``: ``oversize``'s body size (None: just over
    the device's limit). ``fired`` counts the sessions (notifications) it has spoilt."""

    kind: str
    device: str = "*"
    protocol: str = "both"
    message: int = 2
    sessions: int = 1
    seconds: float = 5.0
    size: int | None = None
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EmulatorError(f"unknown fault {self.kind!r}; known: {', '.join(KINDS)}", status=400)
        if self.protocol not in PROTOCOLS:
            raise EmulatorError(f"fault protocol is dm12, dm2 or both, not {self.protocol!r}", status=400)
        if self.protocol != "both" and self.protocol not in KINDS[self.kind]:
            raise EmulatorError(f"fault {self.kind} exists in {' and '.join(KINDS[self.kind])} only", status=400)
        for name, low in (("message", 1), ("sessions", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise EmulatorError(f"fault {name} must be an integer >= {low}, not {value!r}", status=400)
        if self.kind == "repeat_msgid" and self.message < 2:
            raise EmulatorError("repeat_msgid needs message >= 2: the first answer has no MsgID to repeat",
                                status=400)
        if not isinstance(self.seconds, int | float) or isinstance(self.seconds, bool) or self.seconds < 0:
            raise EmulatorError(f"fault seconds must be a number >= 0, not {self.seconds!r}", status=400)
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            raise EmulatorError(f"fault size must be a positive integer, not {self.size!r}", status=400)

    @property
    def protocols(self) -> tuple[str, ...]:
        return KINDS[self.kind] if self.protocol == "both" else (self.protocol,)

    @property
    def spent(self) -> bool:
        return self.fired >= self.sessions

    def covers(self, dev_id: str, protocol: str) -> bool:
        return protocol in self.protocols and self.device in ("*", dev_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: object) -> Fault:
        """A fault from its JSON form (``fired`` is not taken); EmulatorError (400) for anything else."""
        if not isinstance(obj, dict):
            raise EmulatorError(f"a fault is a JSON object with at least 'kind', not {obj!r}", status=400)
        allowed = {"kind", "device", "protocol", "message", "sessions", "seconds", "size"}
        unknown = sorted(set(obj) - allowed)
        if unknown:
            raise EmulatorError(f"unknown fault fields {unknown}; known: {sorted(allowed)}", status=400)
        if "kind" not in obj:
            raise EmulatorError("a fault needs a 'kind'", status=400)
        return cls(**obj)

    @classmethod
    def parse(cls, text: str) -> Fault:
        """The command line's ``KIND[=VALUE][:DEVICE]``: VALUE is ``slow``'s seconds or ``oversize``'s
        size; the device is everything after the first ``:`` (DevIDs such as ``IMEI:35...`` hold one)."""
        head, _, device = text.partition(":")
        kind, has_value, value = head.partition("=")
        options: dict[str, Any] = {"device": device or "*"}
        if has_value:
            try:
                if kind == "slow":
                    options["seconds"] = float(value)
                elif kind == "oversize":
                    options["size"] = int(value)
                else:
                    raise EmulatorError(f"fault {kind} takes no value (only slow=SECONDS, oversize=BYTES)",
                                        status=400)
            except ValueError:
                raise EmulatorError(f"bad value {value!r} in --fault {text!r}", status=400) from None
        return cls(kind, **options)


@dataclass(frozen=True, slots=True)
class FaultHit:
    """One time a fault was committed (what ``GET /admin/faults`` and tests read)."""

    kind: str
    protocol: str
    device: str
    session: str
    answer: int
    detail: str = ""


@dataclass(slots=True)
class _Where:
    """The request a fault may hit: its device, its session and which answer of it this is."""

    protocol: str
    dev_id: str
    session: str
    answer: int
    request_header: SyncHdr | None = None  # DM 1.2
    media_type: str = ""


@dataclass
class Faults:
    """The faults a server holds (``ServerState.faults``) and the bookkeeping that times them."""

    items: list[Fault] = field(default_factory=list)
    hits: list[FaultHit] = field(default_factory=list)
    _active: dict[str, Fault] = field(default_factory=dict)  # session -> challenge_forever running in it
    _dm2_sessions: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # (path, dev) -> (nth, answer)
    _package0: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (protocol, dev) -> last sent

    def add(self, fault: Fault) -> Fault:
        self.items.append(fault)
        return fault

    def clear(self) -> int:
        """Remove every fault; returns how many there were."""
        count = len(self.items)
        self.items.clear()
        self._active.clear()
        return count

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def session_faults(self) -> bool:
        """Any fault left that acts on sessions (the middleware does nothing otherwise)."""
        return bool(self._active) or any(f.kind not in NOTIFICATION_KINDS and not f.spent for f in self.items)

    def _note(self, fault: Fault, where: _Where | None, dev_id: str, protocol: str, detail: str) -> None:
        session, answer = (where.session, where.answer) if where is not None else ("", 0)
        self.hits.append(FaultHit(fault.kind, protocol, dev_id, session, answer, detail))
        del self.hits[:-1000]

    # ------------------------------------------------------------------ sessions

    def _session_fault(self, where: _Where) -> Fault | None:
        """The fault this answer commits, counting it as fired once per session."""
        running = self._active.get(where.session)
        if running is not None:
            if any(f is running for f in self.items):
                return running
            del self._active[where.session]  # cleared meanwhile
        for fault in self.items:
            if fault.kind in NOTIFICATION_KINDS or fault.spent or not fault.covers(where.dev_id, where.protocol):
                continue
            if where.answer == fault.message:
                fault.fired += 1
                if fault.kind == "challenge_forever":
                    self._active[where.session] = fault
                    if len(self._active) > 10_000:
                        self._active.pop(next(iter(self._active)))
                return fault
        return None

    def _count_dm2(self, path: str, dev_id: str, opens: bool) -> tuple[int, int] | None:
        """(n-th session on this route, answer number) of a DM 2.0 request; None before a Package#1."""
        key = (path, dev_id)
        known = self._dm2_sessions.get(key)
        if opens:
            known = ((known[0] if known else 0) + 1, 1)
        elif known is None:
            return None
        else:
            known = (known[0], known[1] + 1)
        self._dm2_sessions[key] = known
        return known

    # ------------------------------------------------------------------ notifications

    def package0(self, dev_id: str, protocol: str, raw: bytes) -> bytes:
        """The Package 0 actually sent for ``raw`` (built for ``dev_id``): itself, or spoilt by a fault."""
        key = (protocol, dev_id)
        previous = self._package0.get(key)
        for fault in self.items:
            if fault.kind not in NOTIFICATION_KINDS or fault.spent or not fault.covers(dev_id, protocol):
                continue
            if fault.kind == "replayed_notification":
                if previous is None:
                    continue  # nothing sent yet to replay: this one goes out and is the next replay
                fault.fired += 1
                self._note(fault, None, dev_id, protocol, f"replayed a Package 0 of {len(previous)} bytes")
                return previous
            fault.fired += 1
            self._package0[key] = raw
            self._note(fault, None, dev_id, protocol, "digest damaged")
            return damage_digest(raw, protocol)
        self._package0[key] = raw
        return raw


def damage_digest(raw: bytes, protocol: str) -> bytes:
    """``raw`` with one byte of its digest flipped (DM 1.2: the leading MD5; DM 2.0: SHA256-DIGEST)."""
    data = bytearray(raw)
    at = 0
    if protocol == "dm2":
        from emulator.protocol.dm2.notification import parse_notification

        digest = parse_notification(raw).digest
        at = raw.find(digest) if digest else -1
        if at < 0:
            raise EmulatorError("this DM 2.0 Package#0 has no SHA256-DIGEST to damage")
    data[at] ^= 0xFF
    return bytes(data)


# ---------------------------------------------------------------------------------------- the middleware


def setup_faults(app: web.Application, state: ServerState) -> None:
    """The fault middleware in front of the session routes, and ``/admin/faults`` (GET, POST, DELETE)."""
    from emulator.server.dm2 import SESSION_PATHS

    def protocol_of(path: str) -> str | None:
        if path == "/dm12" or path.startswith("/dm12/"):
            return "dm12"
        if any(path == p or path.startswith(p + "/") for p in SESSION_PATHS):
            return "dm2"
        return None

    @web.middleware
    async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        book = state.faults
        if request.method != "POST" or not book.session_faults:
            return await handler(request)
        protocol = protocol_of(request.path)
        if protocol is None:
            return await handler(request)
        where = await _locate(book, protocol, request)
        fault = book._session_fault(where) if where is not None else None
        if fault is None or where is None:
            return await handler(request)
        response, detail = await _commit(state, fault, where, request, handler)
        book._note(fault, where, where.dev_id, protocol, detail)
        return response

    app.middlewares.append(faults_middleware)
    app.router.add_get("/admin/faults", _admin_list)
    app.router.add_post("/admin/faults", _admin_add)
    app.router.add_delete("/admin/faults", _admin_clear)


async def _locate(book: Faults, protocol: str, request: web.Request) -> _Where | None:
    body = await request.read()  # aiohttp keeps it: the handler reads the same bytes
    media_type = request.headers.get("Content-Type", "")
    if protocol == "dm2":
        dev_id = request.headers.get(dm2_media.HEADER_DEVID, "").strip()
        if not dev_id:
            return None
        opens = dm2_media.media_type(media_type) == dm2_media.INITIATION
        counted = book._count_dm2(request.path, dev_id, opens)
        if counted is None:
            return None
        nth, answer = counted
        return _Where("dm2", dev_id, f"dm2 {request.path} {dev_id} #{nth}", answer, media_type=media_type)
    try:
        hdr = parse_message(body, media_type).header
    except EmulatorError:
        return None  # the handler says what is wrong with it
    if not hdr.source or not hdr.msg_id.isdigit():
        return None
    session = f"dm12 {request.path} {hdr.source} {hdr.session_id}"
    return _Where("dm12", hdr.source, session, int(hdr.msg_id), hdr, media_type)


async def _commit(state: ServerState, fault: Fault, where: _Where, request: web.Request,
                  handler: Handler) -> tuple[web.StreamResponse, str]:
    """Answer ``request`` as ``fault`` says; the response and a few words on what was done."""
    kind = fault.kind
    if kind in ("http_500", "http_503"):
        status = int(kind[-3:])
        headers = {"Retry-After": "30"} if status == 503 else {}
        return web.Response(status=status, text=f"{INJECTED}: the reference server answers HTTP {status}",
                            headers=headers), f"HTTP {status}"
    if kind == "challenge_forever":
        return _challenge(state, where, request), "authentication challenge"
    if kind == "slow":  # the server does its work at once and sits on the answer
        answer = await handler(request)
        await asyncio.sleep(fault.seconds)
        return answer, f"answered after {fault.seconds:g} s more"
    answer = await handler(request)
    if not isinstance(answer, web.Response) or not isinstance(answer.body, bytes) or answer.status != 200:
        return answer, f"left alone: the handler answered HTTP {answer.status}"
    body = answer.body
    ctype = answer.headers.get("Content-Type", "")
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "content-type")}
    if kind == "drop":
        return await _drop(request, answer, body), f"connection closed after {len(body) // 2} of {len(body)} bytes"
    if kind == "truncated":
        cut = body[: len(body) // 2]
        return web.Response(body=cut, headers={**headers, "Content-Type": ctype}), \
            f"{len(cut)} of {len(body)} bytes"
    if kind == "malformed":
        bad = _malformed(where.protocol)
        return web.Response(body=bad, headers={**headers, "Content-Type": ctype}), "a body that is no message"
    if kind == "oversize":
        big = _oversize(fault, where, body, ctype)
        return web.Response(body=big, headers={**headers, "Content-Type": ctype}), f"{len(big)} bytes"
    # repeat_msgid, switch_sessionid: a DM 1.2 answer with another header
    msg = parse_message(body, ctype)
    if kind == "repeat_msgid":
        msg.header.msg_id = str(max(1, int(msg.header.msg_id) - 1)) if msg.header.msg_id.isdigit() else "1"
        detail = f"MsgID {msg.header.msg_id} again"
    else:
        msg.header.session_id = _other_session_id(msg.header.session_id)
        detail = f"SessionID {msg.header.session_id}"
    out = build_message(msg, wbxml=media_kind(ctype) == "wbxml")
    return web.Response(body=out, headers={**headers, "Content-Type": ctype}), detail


async def _drop(request: web.Request, answer: web.Response, body: bytes) -> web.StreamResponse:
    stream = web.StreamResponse(status=answer.status, headers={"Content-Type": answer.headers.get("Content-Type", "")})
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    transport = request.transport
    if transport is not None:
        transport.abort()
    return stream


def _malformed(protocol: str) -> bytes:
    if protocol == "dm2":
        return jsonsafe.dumps({"CMD": f"{INJECTED}: not an array of commands"})
    return (b"<SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>"
            b"</SyncHdr><SyncBody><Final/></SyncBody></SyncML>")


def _oversize(fault: Fault, where: _Where, body: bytes, ctype: str) -> bytes:
    if where.protocol == "dm2":
        target = fault.size or jsonsafe.DEFAULT_MAX_SIZE + 1024
        obj = json.loads(body)
        obj["PAD"] = ""
        pad = max(0, target - len(jsonsafe.dumps(obj)))
        obj["PAD"] = "." * pad
        return jsonsafe.dumps(obj)
    limit = (where.request_header.max_msg_size if where.request_header else None) or 16384
    target = fault.size or limit + 1024
    msg = parse_message(body, ctype)
    wbxml = media_kind(ctype) == "wbxml"
    pad = Results(cmd_id=str(len(msg.commands) + 1), msg_ref=None, cmd_ref="999",
                  items=[Item(source="./injected-fault-padding", data="")])
    msg.commands.append(pad)
    size = len(build_message(msg, wbxml=wbxml))
    pad.items[0].data = "." * max(1, target - size)
    return build_message(msg, wbxml=wbxml)


def _other_session_id(session_id: str) -> str:
    try:
        value = int(session_id, 16)
    except ValueError:
        value = 0
    return format(value % 0xFFFF + 1, "X")


def _challenge(state: ServerState, where: _Where, request: web.Request) -> web.Response:
    if where.protocol == "dm2":
        return web.Response(status=401, text=f"{INJECTED}: credentials refused, again and again",
                            headers={"WWW-Authenticate": 'Basic realm="dm2"'})
    hdr = where.request_header
    assert hdr is not None
    scheme, nonce = "md5", secrets.token_bytes(16)
    server = state.dm12
    if server is not None:
        with contextlib.suppress(EmulatorError):
            authority = server.authority(request.match_info.get("server_id"))
            known = server.nonces.get((authority.server_id, hdr.source))
            if known is not None:
                nonce = known.client or nonce  # the one it expects next: a later session goes on from it
                scheme = known.scheme if known.scheme in ("md5", "basic", "hmac") else scheme
    kind = {"md5": codes.AUTH_MD5, "basic": codes.AUTH_BASIC, "hmac": codes.AUTH_MAC}[scheme]
    chal = Chal(type=kind, format="b64", next_nonce=None if scheme == "basic" else auth.encode_nonce(nonce))
    reply = Message(
        header=SyncHdr(session_id=hdr.session_id, msg_id=hdr.msg_id, target=hdr.source, source=hdr.target),
        commands=[Status(cmd_id="1", msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr", code=codes.INVALID_CREDENTIALS,
                         target_refs=[hdr.target] if hdr.target else [],
                         source_refs=[hdr.source] if hdr.source else [], chal=chal)],
        final=True,
    )
    wbxml = media_kind(where.media_type) == "wbxml"
    return web.Response(body=build_message(reply, wbxml=wbxml), headers={"Content-Type": content_type(wbxml=wbxml)})


# ---------------------------------------------------------------------------------------- admin API


def _state(request: web.Request) -> ServerState:
    from emulator.server.state import STATE_KEY

    return request.app[STATE_KEY]


def _listing(book: Faults) -> dict[str, Any]:
    return {"faults": [f.to_json() for f in book], "hits": [asdict(h) for h in book.hits[-100:]]}


async def _admin_list(request: web.Request) -> web.Response:
    return web.json_response(_listing(_state(request).faults))


async def _admin_add(request: web.Request) -> web.Response:
    """A JSON list of faults (or one); all or none are installed."""
    book = _state(request).faults
    try:
        spec = json.loads(await request.read() or b"[]")
    except ValueError as exc:
        return web.Response(status=400, text=f"expected a JSON list of faults: {exc}")
    try:
        faults = [Fault.from_json(f) for f in (spec if isinstance(spec, list) else [spec])]
    except (EmulatorError, TypeError) as exc:
        return web.Response(status=400, text=str(exc))
    for fault in faults:
        book.add(fault)
    return web.json_response(_listing(book))


async def _admin_clear(request: web.Request) -> web.Response:
    return web.json_response({"removed": _state(request).faults.clear()})
