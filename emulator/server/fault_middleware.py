"""The middleware that commits the reference server's faults (what each kind does: :mod:`emulator.server.faults`).

It sits in front of the session routes (:func:`emulator.server.routes.session_protocol`) and either
answers in the handler's place or rewrites what the handler answered, so the protocol handlers stay
free of misbehaviour. Kept apart from the fault book so the server state can hold the book without
knowing about aiohttp middlewares.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from emulator.errors import EmulatorError
from emulator.protocol.dm2 import jsonsafe
from emulator.protocol.dm2 import media as dm2_media
from emulator.protocol.syncml import auth, codes
from emulator.protocol.syncml.commands import Chal, Item, Message, Results, Status, SyncHdr
from emulator.protocol.syncml.message import build_message, content_type, media_kind, parse_message
from emulator.protocol.values import DmProtocol
from emulator.server.faults import INJECTED, Fault, Faults, Where
from emulator.server.routes import session_protocol
from emulator.server.state import ServerState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup_faults(app: web.Application, state: ServerState) -> None:
    """Put the fault middleware in front of the session routes (the faults themselves: ``state.faults``)."""

    @web.middleware
    async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        book = state.faults
        if request.method != "POST" or not book.session_faults:
            return await handler(request)
        protocol = session_protocol(request.path)
        if protocol is None:
            return await handler(request)
        where = await _locate(book, protocol, request)
        fault = book.session_fault(where) if where is not None else None
        if fault is None or where is None:
            return await handler(request)
        response, detail = await _commit(state, fault, where, request, handler)
        book.note_hit(fault, where, where.dev_id, protocol, detail)
        return response

    app.middlewares.append(faults_middleware)


async def _locate(book: Faults, protocol: DmProtocol, request: web.Request) -> Where | None:
    body = await request.read()  # aiohttp keeps it: the handler reads the same bytes
    media_type = request.headers.get("Content-Type", "")
    if protocol == "dm2":
        dev_id = request.headers.get(dm2_media.HEADER_DEVID, "").strip()
        if not dev_id:
            return None
        opens = dm2_media.media_type(media_type) == dm2_media.INITIATION
        counted = book.count_dm2(request.path, dev_id, opens)
        if counted is None:
            return None
        nth, answer = counted
        return Where("dm2", dev_id, f"dm2 {request.path} {dev_id} #{nth}", answer, media_type=media_type)
    try:
        hdr = parse_message(body, media_type).header
    except EmulatorError:
        return None  # the handler says what is wrong with it
    if not hdr.source or not hdr.msg_id.isdigit():
        return None
    session = f"dm12 {request.path} {hdr.source} {hdr.session_id}"
    return Where("dm12", hdr.source, session, int(hdr.msg_id), hdr, media_type)


async def _commit(state: ServerState, fault: Fault, where: Where, request: web.Request,
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


def _oversize(fault: Fault, where: Where, body: bytes, ctype: str) -> bytes:
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
    padding = Results(cmd_id=str(len(msg.commands) + 1), msg_ref=None, cmd_ref="999",
                      items=[Item(source="./injected-fault-padding", data="")])
    msg.commands.append(padding)
    size = len(build_message(msg, wbxml=wbxml))
    padding.items[0].data = "." * max(1, target - size)
    return build_message(msg, wbxml=wbxml)


def _other_session_id(session_id: str) -> str:
    try:
        value = int(session_id, 16)
    except ValueError:
        value = 0
    return format(value % 0xFFFF + 1, "X")


def _challenge(state: ServerState, where: Where, request: web.Request) -> web.Response:
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
