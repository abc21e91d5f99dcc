"""The reference DM 1.2 server: `POST /dm12[/<ServerID>]`, a scripted management session per device
(PROTOCOL.md 2, 5.4).

`setup_dm12(app, state)` adds the routes; the protocol work is done by :class:`Dm12Server` and one
:class:`Dm12Session` per (ServerID, SessionID, DevId), which take bytes and give bytes so tests can
drive them without HTTP too. What the server does:

- Plays one management authority per route: `POST /dm12` is the config's `server_id` ("demo-dm12"),
  `POST /dm12/<ServerID>` that authority (404 for one it does not know). With no explicit config the
  authorities are learnt from the shipped profiles (:mod:`emulator.server.authorities`), so every
  shipped device finds its server; an explicit :class:`Dm12Config` says exactly which it plays.
- Authenticates the client with the scheme it presents when the authority allows it (md5, basic,
  hmac or none; else the authority's usual one) and per-device credentials: user = the DevId (or the
  LocName it sends), secret = one of the authority's candidate client secrets, tried in turn; the
  pair that matched is remembered for that device. A device whose nonce the server does not know yet
  (its first session) gets one 401/407 challenge with a fresh NextNonce; accepted clients get 212 +
  the nonce for their next session (md5) or 200 + a new nonce on every message (hmac). At most
  `max_challenges` challenges, then 401 and the end.
- Authenticates itself to the client with Cred (SRVCRED: user = the ServerID, secret = the server
  secret of the device's pair, nonce = the one the device last gave it, first the profiles' factory
  nonce 0x00000000) until the device answers 212; with hmac it signs every message. A device's
  401/407 makes it resend the package with the device's new nonce.
- Runs a script: a list of steps, one package each, the next one sent when the client's package with
  the statuses of the previous one is complete; every status that comes back is logged with its step.
  The default demo script is :func:`demo_script`. Then a Final-only package ends the session.
- Multi-message packages both ways (Alert 1222), its own large objects in chunks (packer.py) within
  the device's MaxMsgSize, chunked Results from the device reassembled.
- `build_package0(dev_id, ...)` makes the Package 0 that starts a server-initiated session.

Malformed client messages get HTTP 400 with a short text; nothing about them is kept.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from emulator.errors import DecodeError, EmulatorError
from emulator.protocol.actions import header
from emulator.protocol.syncml import auth, codes
from emulator.protocol.syncml.commands import (
    Add,
    Alert,
    Atomic,
    Chal,
    Command,
    Cred,
    Exec,
    Get,
    Item,
    Message,
    Meta,
    Replace,
    Results,
    Sequence,
    Status,
    SyncHdr,
)
from emulator.protocol.syncml.executor import ALERT_LARGE_OBJECT_RESUME
from emulator.protocol.syncml.message import (
    build_message,
    chr_text,
    content_type,
    media_kind,
    parse_message,
    walk,
)
from emulator.protocol.syncml.notification import VERSION_13, Extension, build_notification, encode_extension
from emulator.protocol.syncml.packer import pack
from emulator.server import campaign_sessions
from emulator.server.access import note_address
from emulator.server.authorities import Authority, SecretPair, UnknownAuthorityError, learn_authorities
from emulator.server.state import ServerState, request_base_url

ROUTE = "/dm12"
SCHEME_TYPES = {"basic": codes.AUTH_BASIC, "md5": codes.AUTH_MD5, "hmac": codes.AUTH_MAC,
                "sha256": codes.AUTH_SHA256}
NONCE_SCHEMES = frozenset({"md5", "sha256"})  # Cred with a nonce; sha256 only with a DM/1.3 client
FACTORY_NONCE = b"\x00\x00\x00\x00"  # the demo profiles' AAuthData "AAAAAA=="
AUTH_FAILED = "failed: client did not authenticate"
FAILED_SESSIONS_KEPT = 65536
"""Sessions (ServerID, SessionID, DevId) remembered as failed authentication, so none restarts."""

Step = Callable[["Dm12Session"], list[Command]]


@dataclass
class Dm12Config:
    """What the DM 1.2 side plays. `server_id` is the authority of the bare route; `client_secret`,
    `server_secret` and `auth` are its credentials unless `authorities` names it too. `authorities`
    (ServerID -> Authority) are the others, each at `/dm12/<ServerID>`: :meth:`shipped` fills them
    from the profiles, which is what the server does when given no config."""

    server_id: str = "demo-dm12"
    client_secret: str = "demo-client-secret"
    server_secret: str = "demo-server-secret"
    auth: str = "md5"  # md5, basic, hmac, sha256 (DM 1.3 clients), none
    max_challenges: int = 2
    max_msg_size: int = 65536
    max_obj_size: int = 4 * 1048576
    factory_nonce: bytes = FACTORY_NONCE
    exec_uri: str | None = None  # the demo script Execs this node when set
    script: Callable[[Dm12Config], list[tuple[str, Step]]] | None = None  # default demo_script
    wbxml: bool | None = None  # None: answer in the client's encoding
    authorities: dict[str, Authority] = field(default_factory=dict)

    @classmethod
    def shipped(cls, **options: Any) -> Dm12Config:
        """The factory provisioning: every DM 1.2 authority of the shipped profiles (see module doc).

        What ``options`` set explicitly wins: given `authorities` replace learnt ones of the same
        ServerID, and given credentials of the default authority (`client_secret`, `server_secret`,
        `auth`) replace what was learnt for it.
        """
        config = cls(**options)
        learnt = learn_authorities("dm12")
        if options.keys() & {"client_secret", "server_secret", "auth"}:
            learnt.pop(config.server_id, None)
        config.authorities = {**learnt, **config.authorities}
        return config

    def client_user(self, dev_id: str) -> str:
        return dev_id

    def authority(self, server_id: str | None = None) -> Authority | None:
        """The authority a route plays (None: the bare route); None when the server does not play it."""
        sid = server_id or self.server_id
        known = self.authorities.get(sid)
        if known is not None:
            return known
        if sid != self.server_id:
            return None
        return Authority(sid, "dm12", (self.auth,), (SecretPair(self.client_secret, self.server_secret),))


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One status the device returned for a script command: `chunk` marks 213 for a chunk in transit."""

    step: str
    cmd: str
    target: str
    code: int
    chunk: bool = False


@dataclass(slots=True)
class _Sent:
    step: str
    cmd: str
    target: str


@dataclass
class DeviceNonces:
    """What the server remembers of one device with one authority, from one session to the next."""

    client: bytes | None = None  # what the device must use in its next Cred/HMAC; None: unknown yet
    server: bytes = FACTORY_NONCE  # what the device expects in our Cred/HMAC
    secrets: SecretPair | None = None  # the candidate pair that matched (or best guess); None: not known
    scheme: str | None = None  # the scheme of its last session


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    authenticated: bool = False  # the client proved who it is in this session


# ------------------------------------------------------------------------------------ the demo script


def _large_text(size: int) -> str:
    line = "dm-emulator large object test line 0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (line * (size // len(line) + 1))[:size]


def demo_script(config: Dm12Config) -> list[tuple[str, Step]]:
    """Get, Add/Replace in a Sequence, Atomic, optional Exec, Get ?list=Struct, a confirm, a large object."""

    def reads(s: Dm12Session) -> list[Command]:
        return [Get(cmd_id="0", items=[Item(target="./DevInfo/Mod")]),
                Get(cmd_id="0", items=[Item(target="./DevDetail/FwV")])]

    def writes(s: Dm12Session) -> list[Command]:
        chr_meta = Meta(format="chr", type="text/plain")
        return [Sequence(cmd_id="0", commands=[
            Add(cmd_id="0", meta=chr_meta, items=[Item(target="./DemoApp/Greeting", data="hello")]),
            Replace(cmd_id="0", meta=chr_meta, items=[Item(target="./DemoApp/Greeting", data="hello, device")]),
            Add(cmd_id="0", meta=chr_meta, items=[Item(target="./DemoApp/Blob", data="")]),
        ])]

    def atomic(s: Dm12Session) -> list[Command]:
        meta = Meta(format="int", type="text/plain")
        return [Atomic(cmd_id="0", commands=[
            Add(cmd_id="0", meta=meta, items=[Item(target="./DemoApp/Settings/Volume", data="7")]),
            Add(cmd_id="0", meta=meta, items=[Item(target="./DemoApp/Settings/Brightness", data="80")]),
        ])]

    def execute(s: Dm12Session) -> list[Command]:
        return [Exec(cmd_id="0", items=[Item(target=config.exec_uri, data="demo")])] if config.exec_uri else []

    def structure(s: Dm12Session) -> list[Command]:
        return [Get(cmd_id="0", items=[Item(target="./DevInfo?list=Struct")])]

    def confirm(s: Dm12Session) -> list[Command]:
        return [Alert(cmd_id="0", code=codes.ALERT_CONFIRM_OR_REJECT,
                      items=[Item(data="MAXDT=30&DR=1"), Item(data="Apply the demo settings?")])]

    def large(s: Dm12Session) -> list[Command]:
        size = min(2 * s.client_max_msg + 100, s.client_max_obj or 1 << 30)
        return [Replace(cmd_id="0", meta=Meta(format="chr", type="text/plain"),
                        items=[Item(target="./DemoApp/Blob", data=_large_text(size))])]

    return [("reads", reads), ("writes", writes), ("atomic", atomic), ("exec", execute),
            ("structure", structure), ("confirm", confirm), ("large object", large)]


# ------------------------------------------------------------------------------------ one session


class Dm12Session:
    """The server's side of one management session with one device."""

    def __init__(self, server: Dm12Server, session_id: str, dev_id: str, authority: Authority | None = None, *,
                 scheme: str | None = None, source: str = ROUTE, ver_proto: str = "DM/1.2") -> None:
        self.server = server
        # we answer in the client's DM version (1.1/1.2/1.3); DM 1.3 features only with a DM/1.3 client
        self.ver_proto = ver_proto if ver_proto in codes.VER_PROTOS else "DM/1.2"
        self.config = server.config
        self.session_id = session_id
        self.dev_id = dev_id
        self.authority = authority or server.authority()
        self.server_id = self.authority.server_id
        self.source = source  # our SyncHdr Source: the URL the device addressed
        # an account added for this very DevId (--accounts) says both schemes and the server's name
        self.account = self.authority.account_for(dev_id)
        self.nonces = server.device_auth(self.server_id, dev_id)
        if self.account is not None and self.account.client_auth:
            self.scheme = self.account.client_auth
        else:
            self.scheme = self.authority.scheme_for(scheme or self.nonces.scheme)
        if self.scheme == "sha256" and self.ver_proto != "DM/1.3":
            self.scheme = "md5"  # a DM 1.2 client cannot answer auth-SHA256: the DM 1.2 scheme instead
        self.nonces.scheme = self.scheme
        self.server_scheme = (self.account.server_auth if self.account is not None and self.account.server_auth
                              else self.scheme)  # how we prove who we are: may differ from the client's
        self.server_name = (self.account.server_name if self.account is not None and self.account.server_name
                            else self.server_id)
        # nonces of this session only: a failed attempt must not change what the device needs next
        # time (anyone can post bad credentials for a DevId), so challenges live here and the
        # device's own nonces (self.nonces) move only when it authenticated
        self.challenge: bytes | None = None
        self.server_nonce: bytes | None = None  # the latest NextNonce the device gave us (2.9)
        # a device a campaign is engaged with runs the campaign's steps (emulator.server.campaigns);
        # a script set for this device runs once, in its next session
        flow = campaign_sessions.dm12_steps(server.state, dev_id)
        if flow is None:
            once = server.state.dm12_scripts.pop(dev_id, None)
            flow = list((once or self.config.script or demo_script)(self.config))
        self.steps = flow
        self.step_index = -1
        self.step_name = "setup"
        self.client_ok = self.scheme == "none"
        self.challenges = 0
        self.server_accepted = self.server_scheme in ("none", "hmac")  # hmac signs every message instead of Cred
        self.server_retries = 0
        self.msg_id = 0
        self.client_msg_id = 0
        self.sent: dict[tuple[str, str | None], _Sent] = {}
        self.last_package: list[Command] = []
        self.outbox: deque[Command] = deque()
        self.client_max_msg = 16384
        self.client_max_obj: int | None = None
        self.wbxml = False
        self.resp_uri: str | None = None
        self.devinfo: dict[str, str] = {}
        self.generic_alerts: list[Alert] = []
        self.resume_offsets: dict[str, tuple[int, int]] = {}  # target -> (bytes the device kept, whole size)
        self.statuses: list[StatusRecord] = []
        self.results: dict[str, str | bytes | None] = {}
        self.events: list[str] = []
        self.outcome = "running"
        self._result_parts: dict[tuple[str, str], list[str | bytes]] = {}
        self._result_formats: dict[tuple[str, str], str | None] = {}
        self._msg_ref = "1"

    # -------------------------------------------------------------------------- views for tests/logs

    def script_statuses(self) -> list[StatusRecord]:
        """The final status of every script command (213s for chunks left out)."""
        return [s for s in self.statuses if not s.chunk and s.step != "setup"]

    @property
    def done(self) -> bool:
        return self.outcome != "running"

    # -------------------------------------------------------------------------- one client message

    def handle(self, msg: Message, raw: bytes, headers: dict[str, str]) -> Message:
        """Our answer to one client message (`raw` as received, for HMAC)."""
        hdr = msg.header
        if hdr.msg_id != str(self.client_msg_id + 1):  # 2.3: start at 1, +1 per message
            raise DecodeError(f"MsgID {hdr.msg_id} does not follow {self.client_msg_id} in session {self.session_id}"
                              + (" (a session starts at MsgID 1)" if self.client_msg_id == 0 else ""))
        self.client_msg_id += 1
        self._msg_ref = hdr.msg_id
        refusal = codes.version_refusal(hdr.ver_dtd, hdr.ver_proto)
        if refusal is not None:  # nothing of it is read or run: 505/513 on the SyncHdr, 215 for the rest
            self.outcome = f"failed: {refusal[1]}"
            self.events.append(self.outcome)
            lead: list[Command] = [Status(cmd_id="0", msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr",
                                          code=refusal[0], target_refs=[hdr.target] if hdr.target else [],
                                          source_refs=[hdr.source] if hdr.source else [])]
            lead.extend(self._status(c, codes.NOT_EXECUTED) for c in msg.commands
                        if not isinstance(c, Status | Results))
            return self._message(lead, final=True)
        if hdr.max_msg_size:
            self.client_max_msg = hdr.max_msg_size
        if hdr.max_obj_size:
            self.client_max_obj = hdr.max_obj_size
        ops = [c for c in msg.commands if not isinstance(c, Status | Results)]
        header_status: Status | None = None
        for cmd in msg.commands:
            if isinstance(cmd, Status):
                if cmd.cmd_ref == "0":
                    header_status = cmd
                else:
                    self._record(cmd)
            elif isinstance(cmd, Results):
                self._take_results(cmd)
        if header_status is not None and header_status.chal is not None and header_status.chal.next_nonce:
            self.server_nonce = auth.decode_nonce(header_status.chal.next_nonce)  # used even before we trust it
        code, chal = self._check_client(msg, raw, headers)
        if not codes.is_success(code):
            self.challenges += 1
            self.events.append(f"client challenged: {code}")
            if self.challenges > self.config.max_challenges:
                self.outcome = AUTH_FAILED
                self.events.append(self.outcome)
                chal = None  # the end: no further challenge
        lead = [Status(cmd_id="0", msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr", code=code,
                       target_refs=[hdr.target] if hdr.target else [],
                       source_refs=[hdr.source] if hdr.source else [], chal=chal)]
        if not codes.is_success(code):
            lead.extend(self._status(c, code) for c in ops)
            return self._message(lead, final=True)
        if any(isinstance(c, Alert) and c.code == codes.ALERT_SESSION_ABORT for c in ops):
            self.outcome = "aborted by the device"
            self.events.append(self.outcome)
            lead.extend(self._status(c, codes.OK) for c in ops)
            return self._message(lead, final=True)
        resend = self._our_auth(header_status)
        for cmd in ops:
            lead.append(self._status(cmd, self._client_command(cmd)))
        if resend:  # the device refused our credentials: the same package again, with a new digest
            self.outbox = deque(self._fresh(self.last_package))
            return self._next_message(lead, client_final=msg.final)
        if not msg.final and not self.outbox:  # the device's package goes on: ask for the rest
            return self._message([*lead, Alert(cmd_id="0", code=codes.ALERT_NEXT_MESSAGE)], final=False)
        if not self.outbox:
            self._next_step()
        return self._next_message(lead, client_final=msg.final)

    def _next_step(self) -> None:
        while self.step_index + 1 < len(self.steps):
            self.step_index += 1
            self.step_name, step = self.steps[self.step_index]
            commands = [self._resumed(c) for c in step(self)]
            if commands:
                self.last_package = commands
                self.outbox.extend(commands)
                self.events.append(f"step {self.step_name}")
                return
        self.step_name = "end"
        self.last_package = []

    def _next_message(self, lead: list[Command], *, client_final: bool) -> Message:
        header = self._header()
        commands = pack(header, self.outbox, max_size=self.client_max_msg, wbxml=self.wbxml, lead=lead)
        final = not self.outbox
        for cmd in commands:
            for inner in walk([cmd]):
                if isinstance(inner, Status | Results):
                    continue
                target = next((i.target or "" for i in getattr(inner, "items", []) if i.target), "")
                self.sent[(header.msg_id, inner.cmd_id)] = _Sent(self.step_name, inner.name, target)
        if final and self.step_name == "end" and all(isinstance(c, Status) for c in commands):
            self.outcome = "completed"
            self.events.append("completed")
        return Message(header=header, commands=commands, final=final)

    def _message(self, commands: list[Command], *, final: bool) -> Message:
        header = self._header()
        for n, cmd in enumerate(commands, 1):
            cmd.cmd_id = str(n)
        return Message(header=header, commands=commands, final=final)

    def _header(self) -> SyncHdr:
        self.msg_id += 1
        cred = None
        cfg = self.config
        secret = self.secrets.server
        if not self.server_accepted and self.server_scheme in NONCE_SCHEMES:
            cred = Cred(type=SCHEME_TYPES[self.server_scheme], format="b64",
                        data=auth.digest_credential(self.server_scheme, self.server_name, secret, self.our_nonce))
        elif not self.server_accepted and self.server_scheme == "basic":
            cred = Cred(type=codes.AUTH_BASIC, format="b64", data=auth.basic_credential(self.server_name, secret))
        return SyncHdr(session_id=self.session_id, msg_id=str(self.msg_id), target=self.dev_id,
                       ver_proto=self.ver_proto, source=self.source, source_name=self.server_name, resp_uri=self.resp_uri, cred=cred,
                       max_msg_size=cfg.max_msg_size, max_obj_size=cfg.max_obj_size)

    @property
    def our_nonce(self) -> bytes:
        """The nonce our Cred/HMAC uses: the latest the device sent in this session, else the stored one."""
        return self.server_nonce if self.server_nonce is not None else self.nonces.server

    @property
    def secrets(self) -> SecretPair:
        """The device's pair: the one that matched (or was recognised), else the first candidate."""
        if self.nonces.secrets is not None:
            return self.nonces.secrets
        return next(iter(self.authority.candidates(dev_id=self.dev_id)), SecretPair("", ""))

    # -------------------------------------------------------------------------- authentication

    def _new_nonce(self, *, authenticated: bool = False) -> Chal:
        """A Chal with a fresh nonce: the device's next one once it authenticated, else this session's
        challenge only (see ``self.challenge``)."""
        nonce = secrets.token_bytes(16)
        if authenticated:
            self.nonces.client = nonce
        else:
            self.challenge = nonce
        return Chal(type=SCHEME_TYPES[self.scheme], format="b64", next_nonce=auth.encode_nonce(nonce))

    def _check_client(self, msg: Message, raw: bytes, headers: dict[str, str]) -> tuple[int, Chal | None]:
        scheme = self.scheme
        if scheme == "none":
            return codes.OK, None
        hdr = msg.header
        users = [u for u in dict.fromkeys((self.config.client_user(self.dev_id), hdr.source_name)) if u]
        if scheme == "hmac":
            value = hmac_value(headers)
            ok = bool(value) and self._verify(
                users, lambda user, secret, nonces: auth.verify_hmac(value or "", user, secret, nonces, raw))
            self.client_ok = self.client_ok or ok
            code = codes.OK if ok else (codes.INVALID_CREDENTIALS if value else codes.MISSING_CREDENTIALS)
            return code, self._new_nonce(authenticated=ok)
        if self.client_ok and hdr.cred is None:
            return codes.OK, None
        cred = hdr.cred
        if cred is None:
            return codes.MISSING_CREDENTIALS, self._new_nonce()
        ok = False
        kind = cred.type or codes.AUTH_BASIC
        if scheme in NONCE_SCHEMES and kind == SCHEME_TYPES[scheme]:
            ok = self._verify(users, lambda user, secret, nonces: auth.verify_digest(scheme, cred.data, user, secret,
                                                                                     nonces))
        elif scheme == "basic" and kind == codes.AUTH_BASIC:
            ok = self._verify(users, lambda user, secret, nonces: auth.verify_basic(cred.data, user, secret),
                              nonce_free=True)
        if not ok:
            return codes.INVALID_CREDENTIALS, self._new_nonce()
        self.client_ok = True
        return codes.AUTH_ACCEPTED, (self._new_nonce(authenticated=True) if scheme in NONCE_SCHEMES else None)

    def _verify(self, users: list[str], check: Callable[[str, str, list[bytes]], bool], *,
                nonce_free: bool = False) -> bool:
        """Try every candidate pair (the device's own first); remember the one that matched.

        While the server does not know the device's nonce it accepts nothing (the device is challenged
        for a fresh one), but a digest made with a nonce the device may hold from the factory still
        tells which pair it has, so our first Cred already carries the right server secret.
        """
        known = [n for n in (self.challenge, self.nonces.client) if n is not None]
        combos = client_combos(self.authority, self.dev_id, users, self.nonces.secrets)
        if known or nonce_free:
            nonces = [c for n in known for c in auth.nonce_candidates(auth.encode_nonce(n))]
            pair = _first_match(combos, check, nonces)
            if pair is not None:
                self.nonces.secrets = pair
                return True
            return False
        if self.nonces.secrets is None:
            factory = [*auth.nonce_candidates(auth.encode_nonce(self.config.factory_nonce)), b""]
            self.nonces.secrets = _first_match(combos, check, factory)
        return False

    def _our_auth(self, status: Status | None) -> bool:
        """Follow the device's answer to our SyncHdr; True when the last package must be sent again."""
        if status is None:
            return False
        if status.chal is not None and status.chal.next_nonce:
            self.nonces.server = auth.decode_nonce(status.chal.next_nonce)
        if status.code == codes.AUTH_ACCEPTED:
            self.server_accepted = True
        elif status.code in (codes.INVALID_CREDENTIALS, codes.MISSING_CREDENTIALS):
            self.server_retries += 1
            self.events.append(f"device challenged us: {status.code}")
            if self.server_retries > self.config.max_challenges:
                self.outcome = "failed: the device refused our credentials"
                self.steps = []
                return False
            self.statuses[:] = [s for s in self.statuses if s.code != status.code or s.step != self.step_name]
            return bool(self.last_package)
        return False

    # -------------------------------------------------------------------------- client commands

    def _client_command(self, cmd: Command) -> int:
        if isinstance(cmd, Alert):
            if cmd.code in (codes.ALERT_CLIENT_INITIATED_MGMT, codes.ALERT_SERVER_INITIATED_MGMT):
                self.events.append(f"package 1 (Alert {cmd.code})")
                return codes.OK
            if cmd.code == codes.ALERT_GENERIC:
                self.generic_alerts.append(cmd)
                for item in cmd.items:
                    data = item.data
                    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
                    self.server.state.campaigns.alert(
                        "dm12", self.dev_id, (item.meta.type or "") if item.meta else "", text,
                        source=item.source or "", correlator=cmd.correlator or "")
                self._note_resume(cmd)
                return codes.OK
            if cmd.code in (codes.ALERT_NEXT_MESSAGE, codes.ALERT_CLIENT_EVENT, codes.ALERT_NO_END_OF_DATA):
                return codes.OK
            return codes.OPTIONAL_FEATURE_NOT_SUPPORTED
        if isinstance(cmd, Replace):  # DevInfo in Package 1
            for item in cmd.items:
                if item.source:
                    data = item.data
                    self.devinfo[item.source] = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
            return codes.OK
        return codes.COMMAND_NOT_ALLOWED  # a client may send only Replace (DevInfo), Alert, Results, Status

    def _note_resume(self, alert: Alert) -> None:
        """The device kept part of a large object a cut session left (DM-HLF-021): note how much."""
        for item in alert.items:
            if item.meta is None or item.meta.type != ALERT_LARGE_OBJECT_RESUME or not item.source:
                continue
            data = item.data.decode("utf-8", "replace") if isinstance(item.data, bytes) else (item.data or "")
            fields = dict(part.partition("=")[::2] for part in data.split("&"))
            try:
                received, size = int(fields.get("received", "")), int(fields.get("size", ""))
            except ValueError:
                continue
            if 0 < received < size:
                self.resume_offsets[item.source] = (received, size)

    def _resumed(self, cmd: Command) -> Command:
        """An Add/Replace of an object the device holds part of: only the rest, Meta/Size = what is left
        (the device's rule, emulator.protocol.syncml.executor). An object that changed size, or an
        offset inside a UTF-8 character, is sent whole: the device then starts it over."""
        if not isinstance(cmd, Add | Replace) or len(cmd.items) != 1:
            return cmd
        item = cmd.items[0]
        offset = self.resume_offsets.get(item.target or "")
        if offset is None or item.data is None:
            return cmd
        received, size = offset
        raw = item.data.encode("utf-8") if isinstance(item.data, str) else item.data
        if len(raw) != size:
            return cmd
        rest: str | bytes = raw[received:]
        if isinstance(item.data, str):
            try:
                raw[:received].decode("utf-8")
                rest = raw[received:].decode("utf-8")
            except UnicodeDecodeError:
                return cmd
        del self.resume_offsets[item.target or ""]
        meta = copy.copy(item.meta or cmd.meta or Meta())
        meta.size = size - received
        self.events.append(f"large object {item.target} resumed at {received} of {size} bytes")
        return dataclasses.replace(cmd, items=[dataclasses.replace(item, data=rest, meta=meta)])

    def _status(self, cmd: Command, code: int) -> Status:
        return Status(cmd_id="0", msg_ref=self._msg_ref, cmd_ref=cmd.cmd_id or "", cmd=cmd.name, code=code)

    def _record(self, status: Status) -> None:
        sent = self.sent.get((status.msg_ref or "", status.cmd_ref))
        if sent is None:
            return
        targets = status.target_refs or [sent.target]
        for target in targets:
            self.statuses.append(StatusRecord(sent.step, status.cmd, target, status.code,
                                              chunk=status.code == codes.CHUNK_ACCEPTED))

    def _take_results(self, results: Results) -> None:
        for item in results.items:
            if item.data is None and not item.more_data:  # ?list=Struct: the node exists, no value
                self.results.setdefault(item.source or "", None)
                continue
            key = (results.cmd_ref, item.source or "")
            parts = self._result_parts.setdefault(key, [])
            if not parts:  # the first chunk carries the Format
                self._result_formats[key] = (item.meta or results.meta or Meta()).format
            parts.append(item.data if item.data is not None else "")
            if item.more_data:
                continue
            del self._result_parts[key]
            fmt = self._result_formats.pop(key, None)
            texts = [p for p in parts if isinstance(p, str)]
            if len(texts) == len(parts):
                self.results[item.source or ""] = "".join(texts)
            else:  # opaque chunks: chr is text once whole (a chunk may end inside a character)
                self.results[item.source or ""] = chr_text(
                    b"".join(p if isinstance(p, bytes) else p.encode() for p in parts), fmt)

    @staticmethod
    def _fresh(commands: list[Command]) -> list[Command]:
        return [copy.deepcopy(c) for c in commands]


def hmac_value(headers: dict[str, str]) -> str | None:
    """The `x-syncml-hmac` header of a request (header names are case-insensitive)."""
    return header(headers, auth.HMAC_HEADER)


def client_combos(authority: Authority, dev_id: str, users: list[str],
                  first: SecretPair | None = None) -> list[tuple[str, SecretPair]]:
    """The (user, pair) a device may prove itself with: what the authority's accounts say for this
    DevId, else every candidate pair (``first`` first) with each of ``users``."""
    expected = authority.expected(dev_id)
    if expected is not None:  # the account says which user goes with which pair for this DevId
        return list(expected)
    return [(user, pair) for pair in authority.candidates(first, dev_id=dev_id) for user in users]


def _first_match(combos: list[tuple[str, SecretPair]], check: Callable[[str, str, list[bytes]], bool],
                 nonces: list[bytes]) -> SecretPair | None:
    for user, pair in combos:
        try:
            if check(user, pair.client, nonces):
                return pair
        except EmulatorError:  # a malformed x-syncml-hmac header matches nothing
            return None
    return None


# ------------------------------------------------------------------------------------ the server


class Dm12Server:
    """All DM 1.2 sessions of one reference server, and what it remembers per device and authority."""

    def __init__(self, config: Dm12Config | None = None, state: ServerState | None = None) -> None:
        self.config = config if config is not None else Dm12Config.shipped()
        self.state = state or ServerState()
        self.active: dict[tuple[str, str, str], Dm12Session] = {}  # (ServerID, SessionID, DevId)
        self.nonces: dict[tuple[str, str], DeviceNonces] = {}  # (ServerID, DevId)
        self.failed: OrderedDict[tuple[str, str, str], None] = OrderedDict()  # sessions refused for good
        self.on_done: list[Callable[[Dm12Session], None]] = []  # told of each session that ended

    @property
    def sessions(self) -> dict[str, list[Dm12Session]]:
        return self.state.dm12_sessions

    def authority(self, server_id: str | None = None) -> Authority:
        """The authority of a route; UnknownAuthorityError (404) for one the server does not play."""
        found = self.config.authority(server_id)
        if found is None:
            known = ", ".join(sorted({self.config.server_id, *self.config.authorities})) or "none"
            raise UnknownAuthorityError(f"this server plays no DM 1.2 authority {server_id!r} (it plays: {known})")
        return found

    def device_auth(self, server_id: str, dev_id: str) -> DeviceNonces:
        """What the server remembers of `dev_id` with authority `server_id` (created on first contact)."""
        key = (server_id, dev_id)
        known = self.nonces.get(key)
        if known is None:
            account = self.config.authority(server_id)
            rule = account.account_for(dev_id) if account is not None else None
            known = self.nonces[key] = DeviceNonces(
                client=rule.client_nonce if rule is not None else None,
                server=rule.server_nonce if rule is not None and rule.server_nonce is not None
                else self.config.factory_nonce)
        return known

    def handle(self, body: bytes, media_type: str, headers: dict[str, str], *, url: str = "",
               server_id: str | None = None) -> Reply:
        """One client message in, the server's message out; DecodeError for what cannot be answered,
        UnknownAuthorityError when `server_id` (the route's, None for `/dm12`) is not played here."""
        authority = self.authority(server_id)
        kind = media_kind(media_type)
        msg = parse_message(body, media_type)
        hdr = msg.header
        dev_id = hdr.source
        if not dev_id:
            raise DecodeError("SyncHdr has no Source/LocURI (the device id)")
        base = url.split("?", 1)[0]
        key = (authority.server_id, hdr.session_id, dev_id)
        session = self.active.get(key)
        opens = any(isinstance(c, Alert) and c.code in (codes.ALERT_CLIENT_INITIATED_MGMT,
                                                         codes.ALERT_SERVER_INITIATED_MGMT) for c in msg.commands)
        if key in self.failed:
            raise DecodeError(f"session {hdr.session_id!r} of {dev_id!r} ended: the client did not authenticate")
        # a Package 1 (MsgID 1) on an unfinished session: the device gave that session up and starts anew
        restart = opens and session is not None and not session.done and hdr.msg_id == "1"
        if session is None or (session.done and opens) or restart:
            if not opens:
                raise DecodeError(f"no open session {hdr.session_id!r} for {dev_id!r} and no Alert 1200/1201")
            if hdr.msg_id != "1":
                raise DecodeError(f"a session starts at MsgID 1, not {hdr.msg_id} (session {hdr.session_id!r})")
            session = Dm12Session(self, hdr.session_id, dev_id, authority, scheme=presented_scheme(msg, headers),
                                  source=base or _route(authority.server_id, self.config.server_id),
                                  ver_proto=hdr.ver_proto.strip())
            self.active[key] = session
            self.sessions.setdefault(dev_id, []).append(session)
        elif session.done:
            raise DecodeError(f"session {hdr.session_id!r} of {dev_id!r} is over")
        session.wbxml = (kind == "wbxml") if self.config.wbxml is None else self.config.wbxml
        if base:
            session.resp_uri = f"{base}?session={hdr.session_id}&dev={len(self.sessions[dev_id])}"
        reply = session.handle(msg, body, headers)
        extra: dict[str, str] = {}
        if session.done:
            self.active.pop(key, None)
            for hook in self.on_done:
                hook(session)
            if session.outcome == AUTH_FAILED:  # refused for good: that SessionID opens nothing again
                self.failed[key] = None
                while len(self.failed) > FAILED_SESSIONS_KEPT:
                    self.failed.popitem(last=False)
        out = build_message(reply, wbxml=session.wbxml)
        if session.scheme == "hmac":  # sign the bytes actually sent
            extra[auth.HMAC_HEADER] = auth.hmac_header(session.server_name, session.secrets.server,
                                                       session.our_nonce, out)
        return Reply(200, out, content_type(wbxml=session.wbxml), extra,
                     authenticated=session.client_ok and session.scheme != "none")

    def signing(self, authority: Authority, dev_id: str) -> tuple[str, SecretPair]:
        """The name and pair the server signs with for ``dev_id`` outside a session (a Package 0, a
        sessionless message): the pair the device proved it holds, else the first candidate (a device
        never seen: its DevId does not say which profile it came from)."""
        nonces = self.device_auth(authority.server_id, dev_id)
        first = next(iter(authority.candidates(dev_id=dev_id)), SecretPair("", ""))
        pair = nonces.secrets or first
        if (pair.client, pair.server) == (first.client, first.server):
            pair = first  # the device's profile's own pair: it says whether notifications have their own secret
        rule = authority.account_for(dev_id)
        return (rule.server_name if rule is not None and rule.server_name else authority.server_id), pair

    def build_package0(self, dev_id: str, *, server_id: str | None = None, session_id: int | None = None,
                       ui_mode: int = 0, version: int = 11, expiry: int | None = None, reason: str = "",
                       requested: tuple[str, ...] = ()) -> bytes:
        """The notification that asks `dev_id` to open a session with an authority (None: the default),
        digest with the nonce the device holds for it and the device's pair (the first candidate for
        a device never seen: the DevId does not say which profile it came from)."""
        authority = self.authority(server_id)
        nonces = self.device_auth(authority.server_id, dev_id)
        name, pair = self.signing(authority, dev_id)
        sid = secrets.randbelow(0xFFFF) + 1 if session_id is None else session_id
        vendor = b""
        if expiry is not None or reason or requested:  # DM 1.3 fields: a version-13 notification
            try:
                vendor = encode_extension(Extension(expiry, reason, tuple(requested)))
            except ValueError as exc:
                raise EmulatorError(f"cannot build the DM 1.3 notification: {exc}", status=400) from None
            version = VERSION_13
        if pair.notification:  # DM 1.3 separate notification credentials: their own secret, nonce 0
            raw = build_notification(name, pair.notification, FACTORY_NONCE,
                                     session_id=sid, version=version, ui_mode=ui_mode, vendor=vendor)
        else:
            raw = build_notification(name, pair.server, nonces.server,
                                     session_id=sid, version=version, ui_mode=ui_mode, vendor=vendor)
        return self.state.faults.package0(dev_id, "dm12", raw)  # a fault may spoil it


def presented_scheme(msg: Message, headers: dict[str, str]) -> str | None:
    """The auth scheme a client message uses: an HMAC header, else the type of its Cred; None: neither."""
    if hmac_value(headers) is not None:
        return "hmac"
    cred = msg.header.cred
    if cred is None:
        return None
    return {v: k for k, v in SCHEME_TYPES.items()}.get(cred.type or codes.AUTH_BASIC)


def _route(server_id: str, default_id: str) -> str:
    return ROUTE if server_id == default_id else f"{ROUTE}/{quote(server_id, safe='')}"


def build_package0(state: ServerState, dev_id: str, **kw) -> bytes:
    """Package 0 for a device from the server set up on `state` (see Dm12Server.build_package0)."""
    if state.dm12 is None:
        raise EmulatorError("the DM 1.2 server is not set up (call setup_dm12 first)")
    return state.dm12.build_package0(dev_id, **kw)


def setup_dm12(app: web.Application, state: ServerState, config: Dm12Config | None = None) -> Dm12Server:
    """Add `POST /dm12` and `POST /dm12/<ServerID>` to `app`; the server's sessions live in `state.dm12` /
    `state.dm12_sessions`. No `config`: the authorities of the shipped profiles (Dm12Config.shipped())."""
    server = Dm12Server(config, state)
    state.dm12 = server

    async def handle(request: web.Request) -> web.Response:
        server_id = request.match_info.get("server_id")
        try:
            server.authority(server_id)
        except UnknownAuthorityError as exc:
            return web.Response(status=404, text=str(exc))
        body = await request.read()
        media = request.headers.get("Content-Type", "")
        try:
            reply = server.handle(body, media, dict(request.headers), url=request_base_url(request),
                                  server_id=server_id)
        except EmulatorError as exc:
            return web.Response(status=400, text=f"bad SyncML DM message: {exc}")
        if reply.authenticated:
            note_address(state, request)
        headers = {"Content-Type": reply.content_type, **reply.headers}
        return web.Response(status=reply.status, body=reply.body, headers=headers)

    app.router.add_post(ROUTE, handle)
    app.router.add_post(ROUTE + "/{server_id}", handle)
    return server
