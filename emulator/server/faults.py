"""Faults the reference server commits on purpose, per device and per session (issue "Trust").

A tester tells the server to misbehave (``state.add_fault(...)``, ``POST /admin/faults``,
``dm-emulator server --fault KIND[:device]``) and watches what the device does with it. The protocol
handlers stay clean: one aiohttp middleware (:mod:`emulator.server.fault_middleware`) sits in front of the session
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

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from emulator.errors import EmulatorError
from emulator.protocol.dm2.notification import parse_notification
from emulator.protocol.syncml.commands import SyncHdr
from emulator.protocol.values import DmProtocol

BOTH: tuple[DmProtocol, ...] = ("dm12", "dm2")
KINDS: dict[str, tuple[DmProtocol, ...]] = {
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
FaultProtocol = Literal["dm12", "dm2", "both"]
PROTOCOLS: tuple[FaultProtocol, ...] = get_args(FaultProtocol)
INJECTED = "injected fault"
"""Words every fault's own text carries, so a log reader knows the server did it on purpose."""

@dataclass
class Fault:
    """One misbehaviour: ``kind`` (see module doc) for ``device`` ("*" = any) on ``protocol``
    (dm12, dm2 or both), at the ``message``-th answer of a session, for ``sessions`` sessions.
    ``seconds``: how long ``slow`` holds its answer; ``size``: ``oversize``'s body size (None: just over
    the device's limit). ``fired`` counts the sessions (notifications) it has spoilt."""

    kind: str
    device: str = "*"
    protocol: FaultProtocol = "both"
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
    def protocols(self) -> tuple[DmProtocol, ...]:
        return KINDS[self.kind] if self.protocol == "both" else (self.protocol,)

    @property
    def spent(self) -> bool:
        return self.fired >= self.sessions

    def covers(self, dev_id: str, protocol: DmProtocol) -> bool:
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
    protocol: DmProtocol
    device: str
    session: str
    answer: int
    detail: str = ""


@dataclass(slots=True)
class Where:
    """The request a fault may hit: its device, its session and which answer of it this is."""

    protocol: DmProtocol
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
    _package0: dict[tuple[DmProtocol, str], bytes] = field(default_factory=dict)  # (protocol, dev) -> last sent

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

    def note_hit(self, fault: Fault, where: Where | None, dev_id: str, protocol: DmProtocol, detail: str) -> None:
        session, answer = (where.session, where.answer) if where is not None else ("", 0)
        self.hits.append(FaultHit(fault.kind, protocol, dev_id, session, answer, detail))
        del self.hits[:-1000]

    # ------------------------------------------------------------------ sessions

    def session_fault(self, where: Where) -> Fault | None:
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

    def count_dm2(self, path: str, dev_id: str, opens: bool) -> tuple[int, int] | None:
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

    def package0(self, dev_id: str, protocol: DmProtocol, raw: bytes) -> bytes:
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
                self.note_hit(fault, None, dev_id, protocol, f"replayed a Package 0 of {len(previous)} bytes")
                return previous
            fault.fired += 1
            self._package0[key] = raw
            self.note_hit(fault, None, dev_id, protocol, "digest damaged")
            return damage_digest(raw, protocol)
        self._package0[key] = raw
        return raw


def damage_digest(raw: bytes, protocol: DmProtocol) -> bytes:
    """``raw`` with one byte of its digest flipped (DM 1.2: the leading MD5; DM 2.0: SHA256-DIGEST)."""
    data = bytearray(raw)
    at = 0
    if protocol == "dm2":
        digest = parse_notification(raw).digest
        at = raw.find(digest) if digest else -1
        if at < 0:
            raise EmulatorError("this DM 2.0 Package#0 has no SHA256-DIGEST to damage")
    data[at] ^= 0xFF
    return bytes(data)
