"""DM 1.3 sessionless command and sessionless reporting messages (ERELD 4.3; README "DM 1.3").

Why: a DM 1.3 server may hand a device a few commands without the round trips of a session, and the
device answers with one report POSTed to the server's reporting URI, again without a session. The
message must therefore carry everything a session gives: who sent it, proof of that, freshness and
the commands. The DM_Sessionless-V1_3 and DM_Sessionless_Reporting-V1_3 texts were not reachable
(only their titles, in the ERELD's document table), so the envelope is the project's [P]:

``"DMSL" | version:8 (13) | kind:8 (1 command, 2 report; 3-5 server to server) | msg-id:32 | expiry:32 (POSIX s) |
id-length:8 | id | mac[32] | body``

- ``id``: the sender: the ServerID of a command message, the DevID of a report;
- ``mac`` = HMAC-SHA256(SHA256(user ":" secret), every byte but the mac): a command message is signed
  with the server credentials the device holds for that ServerID (AAuthLevel SRVCRED), a report
  with the device's client credentials (CLCRED), the same secrets a session authenticates with;
- ``body``: one SyncML DM message (XML, or WBXML when it does not start with ``<``), VerProto
  ``DM/1.3``; a command message's Target is the device, a report's SyncHdr names the command
  message it answers by the same SessionID and carries its Status and Results;
- freshness: the receiver refuses a message past its expiry or more than :data:`MAX_LIFETIME_S`
  ahead, and one whose (sender, msg-id) it has taken before the expiry (:class:`ReplayGuard`).

Nothing here does I/O: the fleet and the reference server carry the bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from emulator.errors import DecodeError, EmulatorError, TooLargeError
from emulator.protocol.actions import UserAnswer
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Command, Message, Results, Status, SyncHdr
from emulator.protocol.syncml.executor import Executor
from emulator.protocol.syncml.message import build_message, parse_message
from emulator.tree import Tree

MEDIA_SESSIONLESS = "application/vnd.syncml.dm.sessionless"
"""Content-Type of both kinds [P]."""
REPORT_PATH = "/dm13/report"
"""``<origin>/dm13/report/<ServerID>``: where a device reports when its account names no reporting
URI [P]; the reference server's reporting route."""
MAGIC = b"DMSL"
VERSION = 13
KIND_COMMAND = 1
KIND_REPORT = 2
KIND_DELEGATION_REQUEST = 3  # server to server (emulator.server.delegation)
KIND_DELEGATION_ANSWER = 4
KIND_DELEGATION_DONE = 5
KINDS = {KIND_COMMAND: "command", KIND_REPORT: "report", KIND_DELEGATION_REQUEST: "delegation request",
         KIND_DELEGATION_ANSWER: "delegation answer", KIND_DELEGATION_DONE: "delegation done"}
MAC_LEN = 32
_FIXED = len(MAGIC) + 1 + 1 + 4 + 4 + 1
MAX_MESSAGE = 16384
"""Largest whole message (envelope and body), in bytes, either kind; one more byte is refused (413)."""
MAX_LIFETIME_S = 3600
"""Farthest expiry a receiver takes, seconds from now (so what it must remember is bounded in time)."""
MAX_REMEMBERED = 4096
"""Messages one guard remembers at once (a device's, the server's per device); beyond: refused."""


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: int
    msg_id: int
    expiry: int
    sender: str
    mac: bytes
    body: bytes
    signed: bytes  # the bytes the mac covers

    @property
    def session_id(self) -> str:
        """The SyncML SessionID of the body: the message id in upper-case hex."""
        return f"{self.msg_id:X}"


def _key(user: str, secret: str) -> bytes:
    return hashlib.sha256(f"{user}:{secret}".encode()).digest()


def seal(kind: int, sender: str, user: str, secret: str, body: bytes, *, msg_id: int, expiry: int) -> bytes:
    """The signed message; ValueError for a field out of range (a caller's bug, not input)."""
    sid = sender.encode("utf-8")
    if kind not in KINDS or not 0 <= msg_id < 1 << 32 or not 0 <= expiry < 1 << 32 or not 0 < len(sid) < 256:
        raise ValueError(f"sessionless envelope field out of range (kind {kind}, id {msg_id}, expiry {expiry}, "
                         f"sender of {len(sid)} bytes)")
    head = MAGIC + bytes((VERSION, kind)) + msg_id.to_bytes(4, "big") + expiry.to_bytes(4, "big") + bytes((len(sid),)) + sid
    mac = hmac.new(_key(user, secret), head + body, hashlib.sha256).digest()
    return head + mac + body


def open_envelope(raw: bytes) -> Envelope:
    """Parse without trusting: DecodeError (413 when over :data:`MAX_MESSAGE`, 400 otherwise)."""
    raw = bytes(raw)
    if len(raw) > MAX_MESSAGE:
        raise TooLargeError(f"sessionless message of {len(raw)} bytes is over the {MAX_MESSAGE}-byte limit",
                            status=413)
    if len(raw) < _FIXED or not raw.startswith(MAGIC):
        raise DecodeError("not a DM 1.3 sessionless message (no DMSL header)")
    version, kind = raw[4], raw[5]
    if version != VERSION:
        raise DecodeError(f"sessionless message version {version} is not {VERSION}")
    if kind not in KINDS:
        raise DecodeError(f"sessionless message kind {kind} is not one of 1-5 (command, report, delegation)")
    id_len = raw[_FIXED - 1]
    end = _FIXED + id_len
    if id_len == 0 or end + MAC_LEN > len(raw):
        raise DecodeError("sessionless message sender or mac runs past the end")
    try:
        sender = raw[_FIXED:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("sessionless message sender is not UTF-8 text") from exc
    body = raw[end + MAC_LEN:]
    if not body:
        raise DecodeError("sessionless message has no body")
    return Envelope(kind, int.from_bytes(raw[6:10], "big"), int.from_bytes(raw[10:14], "big"), sender,
                    raw[end:end + MAC_LEN], body, raw[:end] + body)


def verify(env: Envelope, user: str, secret: str) -> bool:
    """Constant-time check of the mac with one credential."""
    expected = hmac.new(_key(user, secret), env.signed, hashlib.sha256).digest()
    return hmac.compare_digest(env.mac, expected)


class ReplayGuard:
    """Which messages a receiver took, until they expire: refuses the expired, the too distant and
    the replayed. The clock is the caller's (``now``), so the rules are tested without waiting."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self.max_remembered = max_remembered
        self._seen: dict[tuple[str, int], int] = {}

    def refusal(self, env: Envelope, now: float) -> str:
        """Why ``env`` must be refused ('' when it is fresh); a fresh one is remembered."""
        if env.expiry <= now:
            return f"expired at {env.expiry} (POSIX seconds; now {now:.0f})"
        if env.expiry > now + MAX_LIFETIME_S:
            return f"expiry {env.expiry} is more than {MAX_LIFETIME_S} s ahead"
        for key, expiry in list(self._seen.items()):
            if expiry <= now:
                del self._seen[key]
        key = (env.sender, env.msg_id)
        if key in self._seen:
            return f"replayed (message {env.msg_id} of {env.sender!r} was taken already)"
        if len(self._seen) >= self.max_remembered:
            return f"{self.max_remembered} sessionless messages are still in force; try later"
        self._seen[key] = env.expiry
        return ""


def body_media(body: bytes) -> str:
    return codes.MEDIA_DM_XML if body.lstrip()[:1] == b"<" else codes.MEDIA_DM_WBXML


@dataclass(frozen=True, slots=True)
class Executed:
    """What a device did with a command message: the report body to send, one line per status."""

    report: bytes
    statuses: tuple[tuple[str, str, int], ...]  # (command, target, code)


def execute(tree: Tree, env: Envelope, server_id: str, *, dev_id: str, server_uri: str = "") -> Executed:
    """Run a verified command message's commands on ``tree`` as ``server_id``: the session engine's
    executor, so the same ACL checks and status codes; no user is asked (a UI alert is 406). The
    report is a DM/1.3 message with the SyncHdr status, then each Status and Results.
    EmulatorError (400, 513, 404) when the body is not a DM/1.3 message to this device: nothing runs."""
    msg = parse_message(env.body, body_media(env.body), max_size=MAX_MESSAGE)
    hdr = msg.header
    refusal = codes.version_refusal(hdr.ver_dtd, hdr.ver_proto, "1.3")
    if refusal is not None or hdr.ver_proto.strip() != "DM/1.3":
        raise EmulatorError(f"a sessionless command message is DM/1.3, not {hdr.ver_proto!r}",
                            status=codes.PROTOCOL_VERSION_NOT_SUPPORTED)
    if hdr.target != dev_id:
        raise EmulatorError(f"the message is addressed to {hdr.target!r}, not this device", status=404)
    executor = Executor(tree, server_id, ui=False, browser=False, wbxml=body_media(env.body) != codes.MEDIA_DM_XML,
                        request_prefix=f"sessionless-{env.msg_id}")
    run = executor.run(list(msg.commands), hdr.msg_id, final=True)
    try:
        next(run)
        while True:  # no user: anything asked is cancelled
            run.send(UserAnswer("cancelled"))
    except StopIteration as done:
        replies: list[Command] = done.value
    lead = Status(cmd_id="1", msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr", code=codes.OK,
                  target_refs=[dev_id], source_refs=[hdr.source] if hdr.source else [])
    out: list[Command] = [lead, *replies]
    for n, cmd in enumerate(out, 1):
        cmd.cmd_id = str(n)
    report = Message(header=SyncHdr(session_id=hdr.session_id, msg_id="1", target=server_uri or hdr.source,
                                    source=dev_id, ver_proto="DM/1.3"), commands=out, final=True)
    statuses = tuple((s.cmd, (s.target_refs or [""])[0], s.code) for s in replies if isinstance(s, Status))
    return Executed(build_message(report, wbxml=executor.wbxml), statuses)


def report_contents(body: bytes) -> tuple[SyncHdr, list[Status], list[Results]]:
    """The header, statuses and results of a report body; DecodeError when it does not parse."""
    msg = parse_message(body, body_media(body), max_size=MAX_MESSAGE)
    return (msg.header, [c for c in msg.commands if isinstance(c, Status)],
            [c for c in msg.commands if isinstance(c, Results)])
