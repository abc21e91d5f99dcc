"""The DM 1.2 client engine (sans-IO): one management session with one server (PROTOCOL.md 2.2-2.10).

Driven through the action vocabulary of `emulator/protocol/actions.py` (see `emulator/protocol/flow.py`):
`next_action()` hands out SendMessage / AskUser / OpenBrowser / SessionDone; the driver feeds back
`receive_message`, `answer_user`, or `fail`. Command execution lives in executor.py, message filling
and chunking in packer.py; this module keeps the session: counters, authentication both ways, nonces,
RespURI, multi-message packages (Alert 1222) and the end of the session.

Authentication policy (DM-HLF-015, both sides authenticated; [P] where the spec leaves a choice):

- Our credentials follow the account's scheme: `basic` and `md5` as SyncHdr Cred (until the server
  answers 212), `hmac` as the `x-syncml-hmac` header on every message, `none` nothing. A 401/407 on
  our SyncHdr with a Chal makes us resend Package 1 with the scheme and nonce it names, at most
  MAX_AUTH_RETRIES times; then the session fails saying why.
- The server must authenticate itself when the account's scheme is `md5` (Cred once per session) or
  `hmac` (a valid `x-syncml-hmac` header on every message). With `basic`, a server Cred is checked
  if sent, but a server without one is accepted (the transport, TLS, is taken to authenticate it)
  [P]; with `none` nothing is checked. A server that fails gets 401 (407 when it sent nothing) with
  our Chal and a fresh NextNonce on the SyncHdr Status and on every command, none of which runs; after
  MAX_AUTH_RETRIES such replies the session fails.
- The account's server authentication policy (`server_auth`, PROTOCOL.md 2.9: a peer is
  authenticated at the DM layer *or* the transport) relaxes the above for a server that sends no
  DM-layer credentials at all: `dm` (default) as above; `transport` lets it through when the message
  came over HTTPS with the certificate verified; `none` always (the driver raises a warning).
  Credentials a server does send are checked under every policy. The device's own scheme is
  independent of the policy. A session that fails for missing server credentials names the option.
- Nonces: a NextNonce from the server is used at once for our next credentials, but kept as the
  account's nonce (`client_nonce`) only once the server has authenticated itself. A NextNonce we
  issue (`server_nonce`) is what the server must use next; it is issued on every successful md5
  check (212 + Chal: the nonce for the next session), on every failure, and per message for hmac.
  The caller persists both with `save_nonces()` (or mo.accounts.store_nonces).

Other choices: the session ends (`completed`) when a complete server package holds no command but
Status/Results and nothing of ours is left to send; Alert 1223 from the server ends it as `aborted`;
a message that does not parse, names another SessionID or repeats a MsgID ends it as `failed`.
Nothing of a message that fails to parse is applied.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from emulator.errors import EmulatorError, SessionError
from emulator.mo.accounts import SERVER_AUTH_POLICIES, Account, store_nonces
from emulator.mo.operations import describe_result
from emulator.protocol.actions import (
    Action,
    AskUser,
    HttpResult,
    OpenBrowser,
    SendMessage,
    SessionDone,
    UserAnswer,
    header,
)
from emulator.protocol.syncml import auth, codes
from emulator.protocol.syncml.commands import (
    Alert,
    Chal,
    Command,
    Cred,
    Item,
    Message,
    Meta,
    Replace,
    Results,
    Status,
    SyncHdr,
)
from emulator.protocol.syncml.executor import ALERT_LARGE_OBJECT_RESUME, Executor, PartialObject, Run
from emulator.protocol.syncml.message import build_message, content_type, parse_message, walk
from emulator.protocol.syncml.notification import (
    RESYNC_NONCE,
    Notification,
    parse_notification,
    verify_digest,
    verify_with_resync,
)
from emulator.protocol.syncml.packer import pack
from emulator.protocol.syncml.quirks import Deviations
from emulator.protocol.urls import refused_url
from emulator.protocol.values import SessionOutcome
from emulator.tree import Tree
from emulator.tree.query import run_query

DEVINFO_URIS = ("./DevInfo/DevId", "./DevInfo/Man", "./DevInfo/Mod", "./DevInfo/DmV", "./DevInfo/Lang")
MAX_AUTH_RETRIES = 2
SCHEME_OF_TYPE = {codes.AUTH_BASIC: "basic", codes.AUTH_MD5: "md5", codes.AUTH_MAC: "hmac",
                  codes.AUTH_SHA256: "sha256"}
DM13_SCHEMES = frozenset({"sha256"})
"""Schemes only a DM 1.3 device knows: a DM 1.2 device refuses a challenge to them (406)."""
NONCE_SCHEMES = frozenset({"md5", "sha256"})
"""Cred schemes with a nonce: sent until 212, the server's checked once per session."""
TYPE_OF_SCHEME = {v: k for k, v in SCHEME_OF_TYPE.items()}


@dataclass(frozen=True, slots=True)
class GenericAlert:
    """A device-raised Alert 1226 (PROTOCOL.md 2.10) sent in Package 1."""

    type: str  # "Reversed-Domain-Name: ..." or "Content-Type: ..."
    format: str
    data: str | bytes
    source: str | None = None
    mark: str | None = None
    correlator: str | None = None
    target: str | None = None  # what the operation produced (SCOMO: the deployed component)


def check_notification(raw: bytes, account: Account) -> tuple[Literal["ok", "resync", "bad"], Notification]:
    """Package 0 check: ('ok' | 'resync' | 'bad', the notification). DecodeError if it does not parse.

    'bad' also when the notification names another server than the account's. On 'resync' start
    the session with `resync=True` (both nonces 0x00000000, fresh ones issued in the session).
    """
    n = parse_notification(raw)
    if n.server_id != account.server_id:
        return "bad", n
    if account.notification_secret:  # DM 1.3 separate credentials: only they verify, no resync
        ok = verify_digest(n, raw, account.notification_user or account.server_id, account.notification_secret,
                           account.notification_nonce)
        return ("ok" if ok else "bad"), n
    verdict = verify_with_resync(n, raw, account.server_user or account.server_id, account.server_secret,
                                 account.server_nonce)
    return verdict, n


class SyncMLClient:
    """One DM 1.2 session of a device (`tree`, `dev_id`) with the server of `account`."""

    def __init__(
        self,
        tree: Tree,
        account: Account,
        *,
        dev_id: str,
        session_id: str,
        server_initiated: bool = False,
        max_msg_size: int = 16384,
        max_obj_size: int = 1048576,
        wbxml: bool = False,
        ui: bool = True,
        browser: bool | None = None,
        devinfo_uris: Sequence[str] = DEVINFO_URIS,
        generic_alerts: Iterable[GenericAlert | tuple[Any, ...]] = (),
        resync: bool = False,
        trust_server: bool = False,
        nonce_factory: Callable[[], bytes] | None = None,
        server_auth: str | None = None,
        strict: bool = False,
        dm_version: str = "1.2",
        requested_mos: Sequence[str] = (),
        resume_object: PartialObject | None = None,
    ) -> None:
        """``resume_object``: a large object the last session with this server left half received
        (DM-HLF-021, see :mod:`emulator.protocol.syncml.executor`): announced in Package 1 and
        continued when the server sends the rest."""
        if dm_version not in codes.DM_VERSIONS:
            raise SessionError(f"DM version {dm_version!r} is not one of {', '.join(codes.DM_VERSIONS)}",
                               status=codes.BAD_REQUEST)
        if dm_version == "1.2" and account.auth in DM13_SCHEMES:
            raise SessionError(f"auth {account.auth!r} is a DM 1.3 scheme; this device implements DM 1.2",
                               status=codes.OPTIONAL_FEATURE_NOT_SUPPORTED)
        self.dm_version = dm_version
        self.requested_mos = tuple(requested_mos)  # DM 1.3: MOs the notification asked for in Package 1
        self.tree = tree
        self.account = account
        self.dev_id = dev_id
        self.session_id = session_id
        self.server_initiated = server_initiated
        self.max_msg_size = max_msg_size
        self.max_obj_size = max_obj_size
        self.wbxml = wbxml
        self.devinfo_uris = tuple(devinfo_uris)
        self.generic_alerts = tuple(g if isinstance(g, GenericAlert) else GenericAlert(*g) for g in generic_alerts)
        if resume_object is not None:
            self.generic_alerts += (GenericAlert(ALERT_LARGE_OBJECT_RESUME, "chr", resume_object.announcement,
                                                 resume_object.target),)
        self.trust_server = trust_server
        self._new_nonce = nonce_factory or (lambda: secrets.token_bytes(16))
        self.executor = Executor(tree, account.server_id, ui=ui, browser=browser, wbxml=wbxml,
                                 max_obj_size=max_obj_size, request_prefix=f"{session_id}-ui",
                                 resume=resume_object, dm_version=dm_version)
        # session state
        self._scheme = "none" if trust_server else account.auth
        self._server_scheme = self._scheme  # what the server must prove itself with; never switches
        self.server_auth = server_auth or account.server_auth  # dm, transport, none (run --server-auth)
        if self.server_auth not in SERVER_AUTH_POLICIES:
            raise SessionError(f"server authentication {self.server_auth!r} is not one of "
                               f"{', '.join(SERVER_AUTH_POLICIES)}", status=codes.BAD_REQUEST)
        self._posted_url = account.server_uri  # where the message being answered went
        self.strict = strict or account.strict  # a server deviation ends the session, not a warning
        self.deviations = Deviations()
        self._server_msgs = 0
        self._cred_msgs: set[str] = set()  # our MsgIDs that carried credentials
        self._results_sent: set[tuple[str, str]] = set()
        self._url = account.server_uri
        self._target = account.server_uri
        self._msg_id = 0
        self._actions: deque[Action] = deque()
        self._handed: Action | None = None
        self._started = False
        self._outbox: deque[Command] = deque()
        self._lead: list[Command] = []
        self._server_final = True
        self._seen: set[str] = set()
        self._running: Run | None = None
        self._waiting: str | None = None
        self._peer_max_msg: int | None = None
        # authentication
        self._cred_nonce = RESYNC_NONCE if resync else account.client_nonce
        self._server_nonce = RESYNC_NONCE if resync else account.server_nonce
        self._accepted = False  # 212 received: stop sending Cred
        self._auth_retries = 0
        self._server_ok = trust_server or self._server_scheme == "none"
        self._server_failures = 0
        self._pending_client_nonce: bytes | None = None
        self._prev_server_nonce: bytes | None = None
        # results
        self.client_nonce: bytes | None = None
        self.server_nonce: bytes | None = None
        self._sent_server_nonce: bytes | None = None  # the last one a message of ours carried
        self.outcome: SessionDone | None = None
        self.sent: dict[tuple[str, str | None], str] = {}  # (MsgID, CmdID) -> command name
        self.received_statuses: list[tuple[str | None, Status]] = []

    # ------------------------------------------------------------------------------ constructors

    @classmethod
    def from_notification(cls, raw: bytes, tree: Tree, account: Account, *, dev_id: str, **kw: Any) -> SyncMLClient:
        """A server-initiated session for a Package 0; SessionError if its digest does not verify."""
        verdict, n = check_notification(raw, account)
        if verdict == "bad":
            raise SessionError(f"notification from {n.server_id!r} does not verify with the account of "
                               f"{account.server_id!r}: ignored", status=codes.INVALID_CREDENTIALS)
        return cls(tree, account, dev_id=dev_id, session_id=n.syncml_session_id, server_initiated=True,
                   resync=verdict == "resync", **kw)

    @classmethod
    def respond_to(cls, tree: Tree, account: Account, raw: bytes, media_type: str, *, dev_id: str,
                   **kw: Any) -> SyncMLClient:
        """An engine that answers one server package without Package 1, the server taken as trusted.

        Used by `dm-emulator respond`: drive it like any engine; its first SendMessage is the answer.
        """
        try:
            session_id = parse_message(raw, media_type).header.session_id
        except EmulatorError:
            session_id = "0"
        engine = cls(tree, account, dev_id=dev_id, session_id=session_id, trust_server=True, **kw)
        engine._started = True
        engine.receive_message(HttpResult(200, raw, {"content-type": media_type}))
        return engine

    # ------------------------------------------------------------------------------ driver interface

    def start(self) -> None:
        """Queue Package 1 (also done by the first next_action)."""
        if not self._started:
            self._started = True
            self._outbox.extend(self._package1())
            alerts = "; ".join(f"Alert 1226 {g.type.rsplit('.', 1)[-1]} {describe_result(g.type, g.data)}"
                               for g in self.generic_alerts)
            self._flush(summary="Package 1" + (f" + {alerts}" if alerts else ""))

    def next_action(self) -> Action | None:
        self.start()
        if self._actions:
            self._handed = self._actions.popleft()
            return self._handed
        return None

    def receive_http(self, request_id: str, result: HttpResult) -> None:
        """DM 1.2 makes no side requests."""

    def answer_user(self, request_id: str, answer: UserAnswer) -> None:
        if self.outcome is not None or request_id != self._waiting:
            return
        self._waiting = None
        self._advance(answer)

    def fail(self, reason: str) -> None:
        if self.outcome is None:
            self._end("failed", reason)

    def abort(self, reason: str) -> None:
        """The device ends the session (a session limit): Alert 1223 with Final (PROTOCOL 2.3) goes in
        place of the action last handed out, which is dropped (a message never sent frees its MsgID);
        the server's answer to it is not read. The session ends ``failed`` with ``reason``."""
        if self.outcome is not None:
            return
        if isinstance(self._handed, SendMessage):
            self._msg_id -= 1
        self._actions.clear()
        self._lead = []
        self._outbox = deque([Alert(cmd_id="0", code=codes.ALERT_SESSION_ABORT)])
        self._server_final = True
        self._flush(summary="session abort")
        if self.outcome is None:
            self._end("failed", reason)

    def save_nonces(self) -> None:
        """Write the nonces learnt in this session into the account's DMAcc entry."""
        if self.account.path and (self.client_nonce is not None or self.server_nonce is not None):
            store_nonces(self.tree, self.account, client_nonce=self.client_nonce, server_nonce=self.server_nonce)

    # ------------------------------------------------------------------------------ sending

    def _package1(self) -> list[Command]:
        code = codes.ALERT_SERVER_INITIATED_MGMT if self.server_initiated else codes.ALERT_CLIENT_INITIATED_MGMT
        out: list[Command] = [Alert(cmd_id="0", code=code)]
        items: list[Item] = []
        for uri in self.devinfo_uris:
            try:
                node = self.tree.lookup(uri)  # (the device's own read, as Tree.info: no ACL)
            except EmulatorError:
                continue
            if node is None:
                continue
            value = node.value
            if uri.endswith("/DevId"):
                value = self.dev_id
            items.append(Item(source=uri, meta=Meta(format=node.format or "chr", type=node.type or "text/plain"),
                              data=value if value is not None else ""))
        items.extend(self._requested_items())
        if items:
            out.append(Replace(cmd_id="0", items=items))
        for g in self.generic_alerts:
            out.append(Alert(cmd_id="0", code=codes.ALERT_GENERIC, correlator=g.correlator, items=[
                Item(source=g.source, target=g.target, meta=Meta(type=g.type, format=g.format, mark=g.mark),
                     data=g.data)]))
        return out

    def _requested_items(self) -> list[Item]:
        """DM 1.3: the MOs a notification asked for, one Item each, the subtree as TNDS (Value
        included) and only what the server may Get (its ACLs, as for a Get). An MO the device does not
        have, or the server may not read, is left out: Package 1 carries no statuses of its own."""
        out: list[Item] = []
        for uri in self.requested_mos:
            try:
                result = run_query(self.tree, f"{uri}?list=TNDS+Value", by=self.account.server_id)
            except EmulatorError:
                continue
            if result.document is not None:
                out.append(Item(source=uri, meta=Meta(format="xml", type=result.mime),
                                data=result.document.decode("utf-8")))
        return out

    def _header(self) -> SyncHdr:
        self._msg_id += 1
        cred = None
        acc = self.account
        if not self._accepted and self._scheme == "basic":
            cred = Cred(type=codes.AUTH_BASIC, format="b64", data=auth.basic_credential(acc.client_user, acc.client_secret))
        elif not self._accepted and self._scheme in NONCE_SCHEMES:
            cred = Cred(type=TYPE_OF_SCHEME[self._scheme], format="b64",
                        data=auth.digest_credential(self._scheme, acc.client_user, acc.client_secret,
                                                    self._cred_nonce))
        return SyncHdr(
            session_id=self.session_id,
            msg_id=str(self._msg_id),
            ver_proto=codes.ver_proto(self.dm_version),
            target=self._target,
            source=self.dev_id,
            source_name=acc.client_user or None,
            cred=cred,
            max_msg_size=self.max_msg_size,
            max_obj_size=self.max_obj_size,
        )

    def _flush(self, summary: str = "") -> None:
        """Send the next message: the lead statuses, as much of the outbox as fits, Alert 1222 when the
        server's package is not complete, Final when everything of ours went and the server's did too."""
        header = self._header()
        trailer = [] if self._server_final else [Alert(cmd_id="0", code=codes.ALERT_NEXT_MESSAGE)]
        built: list[bytes] = []
        commands = pack(header, self._outbox, max_size=self._peer_max_msg, wbxml=self.wbxml,
                        lead=self._lead, trailer=trailer, built=built)
        self._lead = []
        final = not self._outbox and self._server_final
        msg = Message(header=header, commands=commands, final=final)
        try:
            body = built[0] if built and final else build_message(msg, wbxml=self.wbxml)
        except EmulatorError as exc:
            self._end("failed", f"cannot encode our message: {exc}")
            return
        headers: dict[str, str] = {}
        if self._scheme == "hmac":
            acc = self.account
            headers[auth.HMAC_HEADER] = auth.hmac_header(acc.client_user, acc.client_secret, self._cred_nonce, body)
        for cmd in commands:
            if isinstance(cmd, Results):
                self._results_sent.add((header.msg_id, cmd.cmd_id))
            elif not isinstance(cmd, Status):
                self.sent[(header.msg_id, cmd.cmd_id)] = cmd.name
        if header.cred is not None or auth.HMAC_HEADER in headers:
            self._cred_msgs.add(header.msg_id)
        counts: dict[str, int] = {}
        for cmd in commands:
            counts[cmd.name] = counts.get(cmd.name, 0) + 1
        text = ", ".join(f"{n} {name}" for name, n in counts.items())
        self._sent_server_nonce = self.server_nonce
        self._posted_url = self._url
        self._actions.append(SendMessage(self._url, body, content_type(wbxml=self.wbxml), headers,
                                         f"{summary + ': ' if summary else ''}MsgID {header.msg_id}: {text}"
                                         f"{', Final' if final else ''}", max_body=self.max_msg_size))

    # ------------------------------------------------------------------------------ receiving

    def receive_message(self, result: HttpResult) -> None:
        if self.outcome is not None:
            return
        if self._waiting is not None:
            self._end("failed", "a server message arrived while a question to the user was open")
            return
        if result.too_large:
            self._end("failed", f"the server's message is over our MaxMsgSize: {result.error}", status=413)
            return
        if result.status == 0:
            self._end("failed", f"no answer from the server: {result.error or 'connection failed'}")
            return
        if result.status != 200:
            excerpt = result.body[:200].decode("utf-8", "replace").strip()
            self._end("failed", f"server answered HTTP {result.status}" + (f": {excerpt}" if excerpt else ""))
            return
        media = header(result.headers, "content-type") or content_type(wbxml=self.wbxml)
        try:  # our MaxMsgSize is what we told the server we can take: anything bigger is refused whole
            msg = parse_message(result.body, media, max_size=self.max_msg_size)
        except EmulatorError as exc:
            self._end("failed", f"bad message from the server: {exc}", status=exc.status)
            return
        try:
            self._handle(msg, result)
        except EmulatorError as exc:  # defensive: a typed error still ends the session in words
            self._end("failed", f"cannot process the server's message: {exc}", status=exc.status)

    def _handle(self, msg: Message, result: HttpResult) -> None:
        hdr = msg.header
        if hdr.session_id != self.session_id:
            self._end("failed", f"server answered for session {hdr.session_id!r}, ours is {self.session_id!r}")
            return
        if hdr.msg_id in self._seen:
            self._end("failed", f"server repeated MsgID {hdr.msg_id} in session {self.session_id}")
            return
        self._seen.add(hdr.msg_id)
        refusal = codes.version_refusal(hdr.ver_dtd, hdr.ver_proto, self.dm_version)
        if refusal is not None:
            self._refuse_version(msg, *refusal)
            return
        fresh = self._note_deviations(msg)
        if fresh and self.strict:
            self._end("failed", f"strict mode: the server deviates from the protocol: {'; '.join(fresh)}",
                      status=codes.BAD_REQUEST)
            return
        if hdr.resp_uri:
            refused = refused_url(self._url, hdr.resp_uri)
            if refused:
                self._end("failed", f"the server's RespURI was refused: {refused}", status=403)
                return
            self._url = hdr.resp_uri
        if hdr.max_msg_size:
            self._peer_max_msg = hdr.max_msg_size
        if hdr.max_obj_size:
            self.executor.peer_max_obj_size = hdr.max_obj_size
        ops: list[Command] = [c for c in msg.commands if not isinstance(c, Status | Results)]
        header_status: Status | None = None
        for cmd in msg.commands:
            if isinstance(cmd, Status):
                self.received_statuses.append((self.sent.get((cmd.msg_ref or "", cmd.cmd_ref)), cmd))
                if cmd.cmd_ref == "0":
                    header_status = cmd
        if any(isinstance(c, Alert) and c.code == codes.ALERT_SESSION_ABORT for c in ops):
            self._end("aborted", "the server aborted the session (Alert 1223)")
            return
        next_only = bool(ops) and all(isinstance(c, Alert) and c.code == codes.ALERT_NEXT_MESSAGE for c in ops)
        if not (next_only and self._outbox):  # a "send the next message" reply does not open a package
            self._server_final = msg.final
        code, chal = self._check_server(msg, result)
        self._lead = [Status(cmd_id="0", msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr", code=code,
                             target_refs=[hdr.target] if hdr.target else [],
                             source_refs=[hdr.source] if hdr.source else [], chal=chal)]
        if header_status is not None and header_status.chal is not None and header_status.chal.next_nonce:
            self._cred_nonce = auth.decode_nonce(header_status.chal.next_nonce)
            self._pending_client_nonce = self._cred_nonce
        if self._server_ok and self._pending_client_nonce is not None:
            self.client_nonce, self._pending_client_nonce = self._pending_client_nonce, None
        if header_status is not None and not self.trust_server:
            if header_status.code in (codes.INVALID_CREDENTIALS, codes.MISSING_CREDENTIALS):
                self._retry_package1(header_status)
                return
            if header_status.code == codes.AUTH_ACCEPTED:
                self._accepted = True
            elif not codes.is_success(header_status.code):
                self._end("failed", f"the server refused our session: SyncHdr status {header_status.code} "
                                    f"({codes.status_name(header_status.code)})", status=header_status.code)
                return
        if code in (codes.INVALID_CREDENTIALS, codes.MISSING_CREDENTIALS):
            self._server_failures += 1
            if self._server_failures > MAX_AUTH_RETRIES:
                advice = self._server_auth_advice() if code == codes.MISSING_CREDENTIALS else ""
                self._end("failed", f"the server {self.account.server_id!r} did not authenticate itself "
                                    f"({codes.status_name(code).lower()}, {self._server_failures} times){advice}",
                          status=code)
                return
            for cmd in ops:
                self._outbox.extend(self.executor.not_executed(cmd, code))
            self._flush(summary="server not authenticated")
            return
        if not ops and msg.final and not self._outbox and not self.executor.receiving_object:
            # no reply goes out: a nonce issued while checking this package never reaches the server
            self.server_nonce = self._sent_server_nonce
            self._end("completed", f"session {self.session_id} with {self.account.server_id} completed")
            return
        self.executor.msg_ref = hdr.msg_id
        self._running = self.executor.run(ops, hdr.msg_id, final=msg.final)
        self._advance(None)

    def _note_deviations(self, msg: Message) -> list[str]:
        """Record what the server did against the protocol but harmlessly (see quirks.py); the texts."""
        hdr = msg.header
        found = list(msg.deviations)
        self._server_msgs += 1
        if hdr.msg_id != str(self._server_msgs):
            found.append(("msgid-sequence", f"server MsgID {hdr.msg_id} where {self._server_msgs} was due"))
        if not hdr.ver_dtd or not hdr.ver_proto:
            found.append(("no-version", "SyncHdr without " + " and ".join(
                n for n, v in (("VerDTD", hdr.ver_dtd), ("VerProto", hdr.ver_proto)) if not v)))
        ids: dict[str, int] = {}
        for cmd in walk(msg.commands):
            if cmd.cmd_id:
                ids[cmd.cmd_id] = ids.get(cmd.cmd_id, 0) + 1
        reused = {k: n for k, n in ids.items() if n > 1}
        if reused:
            found.append(("cmdid-reused", f"CmdID reused in server MsgID {hdr.msg_id}: "
                                          + ", ".join(f"{k} {n} times" for k, n in reused.items())))
        header_status = False
        for cmd in msg.commands:
            if not isinstance(cmd, Status):
                continue
            ref = (cmd.msg_ref or "", cmd.cmd_ref)
            if cmd.cmd_ref == "0":
                header_status = True
                if cmd.code == codes.AUTH_ACCEPTED and (self._scheme == "hmac" or ref[0] not in self._cred_msgs):
                    why = "auth-MAC wants 200 on every message" if self._scheme == "hmac" else \
                        f"our MsgID {ref[0]} carried no credentials"
                    found.append(("auth-212", f"SyncHdr status 212 where 200 is due ({why})"))
            elif ref in self._results_sent:
                if cmd.code == codes.OK:
                    found.append(("results-status", f"Status 200 for our Results (MsgID {ref[0]}, CmdID {ref[1]}): "
                                                    "not sent for a Results whose status would be 200"))
            elif ref not in self.sent:
                found.append(("status-unknown-ref", f"Status for MsgID {ref[0] or '?'} CmdID {ref[1]}, "
                                                    "a command the device never sent"))
        if not header_status and self._msg_id:
            found.append(("no-header-status", f"server MsgID {hdr.msg_id} has no Status for our SyncHdr"))
        return [text for kind, text in found if self.deviations.add(kind, text)]

    def _refuse_version(self, msg: Message, code: int, why: str) -> None:
        """A message in a SyncML/DM version we do not speak: 505/513 on its SyncHdr, 215 for each of its
        commands (none runs), Final, and the session ends: there is no common language to go on in."""
        hdr = msg.header
        if hdr.resp_uri:
            self._url = hdr.resp_uri
        self._lead = [Status(cmd_id="0", msg_ref=hdr.msg_id, cmd_ref="0", cmd="SyncHdr", code=code,
                             target_refs=[hdr.target] if hdr.target else [],
                             source_refs=[hdr.source] if hdr.source else [])]
        self.executor.msg_ref = hdr.msg_id
        self._outbox.clear()
        for cmd in msg.commands:
            if not isinstance(cmd, Status | Results):
                self._outbox.extend(self.executor.not_executed(cmd))
        self._server_final = True
        self._flush(summary=f"refused: {code}")
        self._end("failed", f"the server's message is in a version the device does not speak: {why}; "
                            f"answered {code} ({codes.status_name(code)}) and ran nothing", status=code)

    def _retry_package1(self, status: Status) -> None:
        if self._auth_retries >= MAX_AUTH_RETRIES:
            self._end("failed", f"the server refused our credentials ({status.code} "
                                f"{codes.status_name(status.code).lower()}) after {self._auth_retries} retries",
                      status=status.code)
            return
        chal = status.chal
        if chal is not None and SCHEME_OF_TYPE.get(chal.type or "") in DM13_SCHEMES and self.dm_version == "1.2":
            self._end("failed", f"the server challenged with {chal.type}, a DM 1.3 scheme; this device "
                                f"implements DM 1.2 and cannot answer it",
                      status=codes.OPTIONAL_FEATURE_NOT_SUPPORTED)
            return
        if chal is not None and chal.type in SCHEME_OF_TYPE:
            self._scheme = SCHEME_OF_TYPE[chal.type]
        elif chal is None and self._auth_retries:
            self._end("failed", f"the server refused our credentials ({status.code}) without a challenge",
                      status=status.code)
            return
        self._auth_retries += 1
        self._accepted = False
        self._server_final = True
        self._outbox = deque(self._package1())
        self._flush(summary=f"Package 1 again (challenge {self._auth_retries})")

    def _check_server(self, msg: Message, result: HttpResult) -> tuple[int, Chal | None]:
        """Our SyncHdr status for the server's message, and the Chal to send with it."""
        hdr = msg.header
        if self.trust_server:
            return (codes.AUTH_ACCEPTED if hdr.cred is not None else codes.OK), None
        acc = self.account
        user, secret = acc.server_user or acc.server_id, acc.server_secret
        scheme = self._server_scheme
        if self._trusted_without_dm(msg, result):
            self._server_ok = True
            return codes.OK, None
        expected = auth.nonce_candidates(auth.encode_nonce(self._server_nonce))
        if self._server_ok and self._prev_server_nonce is not None:  # a Cred repeated after our 212
            expected += auth.nonce_candidates(auth.encode_nonce(self._prev_server_nonce))
        if scheme == "hmac":
            value = header(result.headers, auth.HMAC_HEADER)
            ok = False
            if value:
                try:
                    ok = auth.verify_hmac(value, user, secret, expected, result.body)
                except EmulatorError:
                    ok = False
            code = codes.OK if ok else (codes.INVALID_CREDENTIALS if value else codes.MISSING_CREDENTIALS)
            self._server_ok = self._server_ok or ok
            return code, self._issue_chal(codes.AUTH_MAC)
        if scheme in NONCE_SCHEMES:  # md5, and DM 1.3's sha256: the same exchange, another hash
            kind = TYPE_OF_SCHEME[scheme]
            cred = hdr.cred
            if cred is None:
                if self._server_ok:
                    return codes.OK, None
                return codes.MISSING_CREDENTIALS, self._issue_chal(kind)
            ok = (cred.type or codes.AUTH_BASIC) == kind and auth.verify_digest(scheme, cred.data, user, secret,
                                                                                expected)
            if ok:
                self._server_ok = True
                return codes.AUTH_ACCEPTED, self._issue_chal(kind)
            return codes.INVALID_CREDENTIALS, self._issue_chal(kind)
        if scheme == "basic":
            cred = hdr.cred
            if cred is None:
                self._server_ok = True  # [P] basic: a server without Cred is authenticated by the transport
                return codes.OK, None
            if (cred.type or codes.AUTH_BASIC) == codes.AUTH_BASIC and auth.verify_basic(cred.data, user, secret):
                self._server_ok = True
                return codes.AUTH_ACCEPTED, None
            return codes.INVALID_CREDENTIALS, Chal(type=codes.AUTH_BASIC, format="b64")
        self._server_ok = True
        return codes.OK, None

    @property
    def transport_verified(self) -> bool:
        """The last message came over HTTPS with the server's certificate checked (the transport
        refuses the connection otherwise), so TLS authenticated the server (PROTOCOL.md 2.9)."""
        return self._posted_url.lower().startswith("https://") and self.account.verify

    def _trusted_without_dm(self, msg: Message, result: HttpResult) -> bool:
        """The account's policy lets a server that sends no DM-layer credentials through.

        `transport`: when TLS verified it; `none`: always. Credentials it does send are still
        checked (a wrong one is a wrong one), so this only answers for a server that sent none.
        """
        if self.server_auth == "dm" or (self.server_auth == "transport" and not self.transport_verified):
            return False
        if self._server_scheme == "hmac":
            return header(result.headers, auth.HMAC_HEADER) is None
        return msg.header.cred is None

    def _server_auth_advice(self) -> str:
        """What to change when a server never authenticates itself: the policy, by its option names."""
        if self.server_auth == "transport" and not self.transport_verified:
            why = (f"server authentication 'transport' needs a verified TLS connection, but {self._posted_url} is "
                   + ("plain HTTP" if not self._posted_url.lower().startswith("https://")
                      else "HTTPS with certificate verification off"))
            return f"; {why} (use https:// with a trusted certificate, or --server-auth none)"
        return ("; if the server relies on TLS instead of DM-layer credentials, set its server authentication "
                "to 'transport' (or 'none'): run --server-auth, profile account key server_auth, or the "
                "window's server dialog")

    def _issue_chal(self, kind: str) -> Chal:
        nonce = self._new_nonce()
        self._prev_server_nonce = self._server_nonce
        self._server_nonce = nonce
        self.server_nonce = nonce
        return Chal(type=kind, format="b64", next_nonce=auth.encode_nonce(nonce))

    # ------------------------------------------------------------------------------ execution

    def _advance(self, value: UserAnswer | None) -> None:
        running = self._running
        if running is None:
            return
        try:
            request = next(running) if value is None else running.send(value)  # None: its first step
        except StopIteration as stop:
            self._running = None
            self._outbox.extend(stop.value)
            self._outbox.extend(self.executor.alerts_out)
            self.executor.alerts_out.clear()
            self._flush()
            return
        except EmulatorError as exc:
            self._running = None
            self._end("failed", f"cannot execute the server's commands: {exc}", status=exc.status)
            return
        assert isinstance(request, AskUser | OpenBrowser)
        self._waiting = request.request_id
        self._actions.append(request)

    def _end(self, outcome: SessionOutcome, detail: str, status: int | None = None) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.close()  # an open Atomic rolls back
        self._waiting = None
        self.outcome = SessionDone(outcome, detail, status, self.deviations.texts())
        self._actions.append(self.outcome)
