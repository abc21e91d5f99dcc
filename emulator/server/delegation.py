"""The DM 1.3 server-to-server delegation protocol, as the reference server plays it (README "DM 1.3").

Why: a DM server that manages a device may hand part of it (a subtree) to another DM server; the two
servers agree first, then the first tells the device, which changes its accounts and ACLs, and the
second says when it has taken over. OMA-TS-DM_Server_Delegation_Protocol-V1_3 and its schema were
not reachable (only their names, in the ERELD's document table); the steps follow the public
description of the protocol in US 9,712,377 (claims 1-6: mutual authentication of the two servers,
a notification to the delegate, ACL information sent by the delegator to the DM client, a completion
notification from the delegate; full or partial, temporary or permanent). The messages are the
project's [P]:

- each server-to-server message is a :mod:`~emulator.protocol.syncml.sessionless` envelope (kinds 3
  request, 4 answer, 5 done), sender its ServerID, MAC-signed with the secret the two servers share
  (:class:`Peer`), so both ends prove who they are and a replay or an expired message is refused;
  the body is JSON;
- 1. the delegator POSTs ``{"request_id", "device", "delegator", "scope", "kind", "depth"}`` (kind 3)
  to the delegate's ``/dm13/delegation``; 2. the delegate answers (kind 4) ``{"request_id",
  "accepted", "account"}``: a TNDS of the DMAcc account the device is to hold for it (base64url),
  with secrets made for this device, and its DM 1.x side takes that account at once (as a bootstrap
  does); 3. the delegator sends the device one sessionless command: ``Exec ./DMAcc/<ServerID>/Ext/Delegate``
  with ``delegate=...&scope=...&kind=...&depth=...&account=<that TNDS>``: the device takes the
  account in and applies the delegation in one step (:mod:`emulator.mo.delegation`), and its report
  tells the delegator the status; 4. when the device's first session with the delegate completes,
  the delegate POSTs ``{"request_id", "device"}`` (kind 5) to the delegator's ``/dm13/delegation``.

Every refusal is an HTTP status with a sentence (401 unknown or forged sender, 403 stale or replayed,
413 over :data:`~emulator.protocol.syncml.sessionless.MAX_MESSAGE`, 400 malformed, 409 a request
id seen already) and changes nothing. ``GET /admin/delegations`` shows both sides' records.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from emulator.errors import DecodeError, EmulatorError
from emulator.protocol.dm2 import jsonsafe
from emulator.protocol.dm2.media import media_type
from emulator.protocol.syncml import sessionless as sl
from emulator.server.authorities import Authority, SecretPair, UserRule
from emulator.server.notify_out import check_target
from emulator.server.state import STATE_KEY, base_url

if TYPE_CHECKING:
    from emulator.server.state import ServerState

ROUTE = "/dm13/delegation"
KINDS = ("shared", "full")
MAX_PEERS = 64
RECORDS_KEPT = 1000
SEND_TIMEOUT_S = 10.0
LIFETIME_S = 300


@dataclass(frozen=True, slots=True)
class Peer:
    """Another DM server this one delegates to or takes delegations from: its ServerID, where its
    ``/dm13/delegation`` is (its origin), and the secret the two share."""

    server_id: str
    url: str
    secret: str = field(repr=False)


@dataclass
class DelegationDesk:
    """One server's side of the protocol: who it is, its peers, and the delegations it took part in."""

    server_id: str = ""
    peers: dict[str, Peer] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # request id -> record
    guard: sl.ReplayGuard = field(default_factory=sl.ReplayGuard)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def keep(self, record: dict[str, Any]) -> dict[str, Any]:
        self.records[record["request_id"]] = record
        while len(self.records) > RECORDS_KEPT:
            self.records.pop(next(iter(self.records)))
        return record


def desk(state: ServerState) -> DelegationDesk:
    found = state.extra.get("delegation")
    if found is None:
        found = state.extra["delegation"] = DelegationDesk()
    return found


def own_id(state: ServerState) -> str:
    """This server's ServerID in the protocol: the one set on the desk, else its DM 1.x authority's."""
    book = desk(state)
    if book.server_id:
        return book.server_id
    return state.dm12.config.server_id if state.dm12 is not None else ""


def _text(spec: dict[str, Any], key: str, limit: int = 256) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value or len(value) > limit or any(c in value for c in "&=\r\n"):
        raise EmulatorError(f"{key!r} must be text of 1..{limit} characters without & = or line breaks",
                            status=400)
    return value


def set_peers(state: ServerState, spec: object) -> dict[str, Any]:
    """``{"server_id": <this server's>, "peers": [{"server_id", "url", "secret"}]}`` (all or nothing)."""
    if not isinstance(spec, dict) or set(spec) - {"server_id", "peers"} or not isinstance(spec.get("peers", []), list):
        raise EmulatorError('expected {"server_id": ..., "peers": [{"server_id", "url", "secret"}]}', status=400)
    peers: dict[str, Peer] = {}
    for n, one in enumerate(spec.get("peers", []), 1):
        if not isinstance(one, dict) or set(one) != {"server_id", "url", "secret"}:
            raise EmulatorError(f"peer {n}: expected exactly server_id, url and secret", status=400)
        peer = Peer(_text(one, "server_id"), check_target(_text(one, "url", 2048)).rstrip("/"), _text(one, "secret"))
        peers[peer.server_id] = peer
    if len(peers) > MAX_PEERS:
        raise EmulatorError(f"at most {MAX_PEERS} peers", status=400)
    book = desk(state)
    if "server_id" in spec:
        book.server_id = _text(spec, "server_id")
    book.peers.update(peers)
    return {"server_id": own_id(state), "peers": sorted(book.peers)}


def _open(state: ServerState, raw: bytes, kinds: tuple[int, ...], now: float) -> tuple[Peer, sl.Envelope, dict[str, Any]]:
    """A peer's message, checked: its sender a peer whose secret signed it, fresh, new, JSON."""
    env = sl.open_envelope(raw)
    if env.kind not in kinds:
        raise EmulatorError(f"a message of kind {env.kind} does not belong here", status=400)
    peer = desk(state).peers.get(env.sender)
    if peer is None or not sl.verify(env, peer.server_id, peer.secret):
        raise EmulatorError(f"{env.sender!r} is not a peer of this server, or did not sign this message", status=401)
    stale = desk(state).guard.refusal(env, now)
    if stale:
        raise EmulatorError(f"delegation message {stale}", status=403)
    try:
        body = jsonsafe.loads(env.body, max_size=sl.MAX_MESSAGE, what="delegation message")
    except DecodeError as exc:
        raise EmulatorError(str(exc), status=400) from None
    if not isinstance(body, dict) or not isinstance(body.get("request_id"), str):
        raise EmulatorError("a delegation message is a JSON object with a request_id", status=400)
    return peer, env, body


def _seal(state: ServerState, kind: int, peer: Peer, body: dict[str, Any], now: float | None = None) -> bytes:
    when = int(time.time() if now is None else now)
    me = own_id(state)  # the MAC key is the sender's id with the shared secret, as the receiver checks it
    return sl.seal(kind, me, me, peer.secret, _json_body(body),
                   msg_id=secrets.randbits(32), expiry=when + LIFETIME_S)


def _json_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# ------------------------------------------------------------------------------ the delegate's side


def accept_request(state: ServerState, raw: bytes, *, base: str, now: float | None = None) -> bytes:
    """Step 2: the delegate checks a request, gives the device an account with its DM 1.x side and
    answers with that account; EmulatorError with the status otherwise (nothing provisioned)."""
    when = time.time() if now is None else now
    peer, _, body = _open(state, raw, (sl.KIND_DELEGATION_REQUEST,), when)
    request_id = body["request_id"]
    dev_id, scope = _text(body, "device"), _text(body, "scope", 1024)
    kind = body.get("kind", "shared")
    depth = body.get("depth", 0)
    if kind not in KINDS or not isinstance(depth, int) or not 0 <= depth <= 16 or body.get("delegator") != peer.server_id:
        raise EmulatorError("kind must be shared or full, depth 0..16, delegator the sender", status=400)
    book = desk(state)
    if request_id in book.records:
        raise EmulatorError(f"request {request_id!r} was answered already", status=409)
    dm12 = state.dm12
    if dm12 is None:
        raise EmulatorError("this server plays no DM 1.x authority to take a delegation with", status=404)
    sid = own_id(state)
    authority = dm12.config.authorities.get(sid) or Authority(sid, "dm12", ("sha256",), ())
    pair = SecretPair(secrets.token_urlsafe(18), secrets.token_urlsafe(18))
    rule = UserRule(dev_id, pair, dev_id=dev_id, client_auth="sha256", server_auth="sha256")
    dm12.config.authorities[sid] = replace(authority, users=tuple(r for r in authority.users if r.dev_id != dev_id)
                                           + (rule,))
    dm12.nonces.pop((sid, dev_id), None)
    from emulator.server.bootstrap import bootstrap_document

    document = bootstrap_document(sid, f"{sid} (delegated by {peer.server_id})", f"{base}/dm12/{sid}", dev_id, pair)
    book.keep({"request_id": request_id, "role": "delegate", "device": dev_id, "delegator": peer.server_id,
               "delegate": sid, "scope": scope, "kind": kind, "depth": depth, "state": "accepted"})
    answer = {"request_id": request_id, "accepted": True, "delegate": sid,
              "account": base64.urlsafe_b64encode(document).decode("ascii")}
    return _seal(state, sl.KIND_DELEGATION_ANSWER, peer, answer, when)


def session_done(state: ServerState, session: Any) -> None:
    """Step 4 (the DM 1.x side calls this when a session ends): the device's first completed session
    with this server as the delegate of a delegation makes it tell the delegator."""
    book = desk(state)
    for record in book.records.values():
        if (record["role"], record["device"], record["state"]) == ("delegate", session.dev_id, "accepted") \
                and session.authority.server_id == record["delegate"] and session.outcome == "completed":
            record["state"] = "taken over"
            peer = book.peers.get(record["delegator"])
            if peer is not None:
                task = asyncio.ensure_future(_post(peer, _seal(state, sl.KIND_DELEGATION_DONE, peer, {
                    "request_id": record["request_id"], "device": record["device"]})))
                book.tasks.add(task)
                task.add_done_callback(book.tasks.discard)


# ------------------------------------------------------------------------------ the delegator's side


async def _post(peer: Peer, raw: bytes) -> tuple[int, bytes]:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S)) as client, \
                client.post(f"{peer.url}{ROUTE}", data=raw, headers={"Content-Type": sl.MEDIA_SESSIONLESS},
                            allow_redirects=False) as response:
            return response.status, await response.content.read(sl.MAX_MESSAGE + 1)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return 0, f"cannot reach {peer.url}: {exc}".encode()


async def delegate(state: ServerState, dev_id: str, spec: object, *, listener: str) -> dict[str, Any]:
    """Steps 1 and 3: ask the delegate, then tell the device (a sessionless command to its
    ``listener``). The record; EmulatorError (400/404/502) when a step fails, before the device is told."""
    from emulator.server.control import ServerControl

    if not isinstance(spec, dict) or set(spec) - {"delegate", "scope", "kind", "depth"}:
        raise EmulatorError('expected {"delegate": ..., "scope": ..., "kind": "shared"|"full", "depth": n}', status=400)
    delegate_id, scope = _text(spec, "delegate"), _text(spec, "scope", 1024)
    kind, depth = spec.get("kind", "shared"), spec.get("depth", 0)
    if kind not in KINDS or not isinstance(depth, int) or not 0 <= depth <= 16:
        raise EmulatorError("kind must be shared or full, depth 0..16", status=400)
    peer = desk(state).peers.get(delegate_id)
    if peer is None:
        raise EmulatorError(f"{delegate_id!r} is not a peer of this server (POST /admin/delegation/peers)", status=404)
    check_target(listener)
    me = own_id(state)
    request_id = secrets.token_hex(8)
    record = desk(state).keep({"request_id": request_id, "role": "delegator", "device": dev_id, "delegator": me,
                               "delegate": delegate_id, "scope": scope, "kind": kind, "depth": depth,
                               "state": "requested"})
    status, answer = await _post(peer, _seal(state, sl.KIND_DELEGATION_REQUEST, peer, {
        "request_id": request_id, "device": dev_id, "delegator": me, "scope": scope, "kind": kind, "depth": depth}))
    try:
        if status != 200:
            raise EmulatorError(f"the delegate answered {status}: {answer[:300].decode('utf-8', 'replace')}")
        got_peer, _, body = _open(state, answer, (sl.KIND_DELEGATION_ANSWER,), time.time())
        if got_peer is not peer or body["request_id"] != request_id or body.get("accepted") is not True \
                or not isinstance(body.get("account"), str):
            raise EmulatorError("the delegate's answer does not accept this request")
    except EmulatorError as exc:
        record["state"] = f"refused: {exc}"
        raise EmulatorError(f"delegation to {delegate_id} refused: {exc}", status=502) from None
    data = f"delegate={delegate_id}&scope={scope}&kind={kind}&depth={depth}&account={body['account']}"
    sent = await ServerControl(state).sessionless(dev_id, [{"cmd": "Exec", "target": f"./DMAcc/{me}/Ext/Delegate",
                                                            "data": data}], listener=listener, server_id=me)
    record.update(state="sent to the device" if sent["delivered"] else f"the device refused: {sent['detail']}",
                  session_id=sent["session_id"])
    return record


def note_done(state: ServerState, raw: bytes, now: float | None = None) -> dict[str, Any]:
    """Step 4, the delegator's end: the delegate says it has taken over."""
    peer, _, body = _open(state, raw, (sl.KIND_DELEGATION_DONE,), time.time() if now is None else now)
    record = desk(state).records.get(body["request_id"])
    if record is None or record["role"] != "delegator" or record["delegate"] != peer.server_id \
            or record["device"] != body.get("device"):
        raise EmulatorError("no delegation of this server matches that request", status=404)
    record["state"] = "completed"
    return record


def records(state: ServerState) -> list[dict[str, Any]]:
    """Both sides' records, with the device's status for the Delegate Exec once its report came."""
    from emulator.server.sessionless import desk as reports_desk

    out = []
    for record in desk(state).records.values():
        shown = dict(record)
        session_id = record.get("session_id")
        if session_id:
            for report in reports_desk(state).reports:
                if report["session_id"] == session_id and report["device"] == record["device"]:
                    shown["device_status"] = next((s["code"] for s in report["statuses"] if s["cmd"] == "Exec"), None)
        out.append(shown)
    return out


def setup_delegation(app: web.Application) -> None:
    """``POST /dm13/delegation``: requests (kind 3) and completion notices (kind 5) from peers; the
    DM 1.x side tells :func:`session_done` of every session that ends (set it up after ``setup_dm12``)."""

    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        if request.content_length is not None and request.content_length > sl.MAX_MESSAGE:
            return web.Response(status=413, text=f"a delegation message is at most {sl.MAX_MESSAGE} bytes")
        if media_type(request.headers.get("Content-Type")) != sl.MEDIA_SESSIONLESS:
            return web.Response(status=415, text=f"a delegation message is {sl.MEDIA_SESSIONLESS}")
        raw = await request.read()
        try:
            env = sl.open_envelope(raw)
            if env.kind == sl.KIND_DELEGATION_DONE:
                return web.json_response({"noted": note_done(state, raw)["request_id"]})
            return web.Response(status=200, body=accept_request(state, raw, base=base_url(request)),
                                content_type=sl.MEDIA_SESSIONLESS)
        except EmulatorError as exc:
            return web.Response(status=exc.status, text=str(exc))

    app.router.add_post(ROUTE, handle)
    state = app[STATE_KEY]
    if state.dm12 is not None:
        state.dm12.on_done.append(lambda session: session_done(state, session))
