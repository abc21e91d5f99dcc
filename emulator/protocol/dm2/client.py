"""The DM 2.0 client engine: one management session, sans-IO (PROTOCOL 1.2-1.9, 1.18, 1.19).

Driven as :mod:`emulator.protocol.actions` describes: ``next_action()`` until ``SessionDone``,
feeding back ``receive_message`` (after a ``SendMessage``) and ``receive_http`` (after an
``HttpRequest``). The session:

1. Package#1 (POST to the account's SrvURI): the session alert (ClientInitiatedMgmt,
   ServerInitiatedMgmt with ``Data.NotificationID`` (1.19 item 4), or BootstrapComplete), any
   extra alerts, and ``MOS`` when the notification asked for it (REQ-MOS): only MOIDs granted to
   this server, only MIIDs of instances it may access.
2. Each Package#2: commands strictly in order, one status each, same order, in the Package#3.
   HGET/HPUT/HPOST wait for their HTTP exchange before the next command starts.
3. END: the rest of that package still runs, no Package#3 follows.

Choices where the public text leaves room (all [P], see PROTOCOL 1.19):
- Every command gets exactly one status, DEFAULT included (200): 1.7 wants one entry per command
  in the same order; "without reporting status" in 1.9 is read as the later HGET a DEFAULT leads
  to, which happens outside any session and reports nothing.
- EXEC with a ServerURI: the node runs at once; 202 in the Package#3 and a generic alert
  ``urn:oma:at:dm:2.0:ExecResult`` (SourceURI = node, ``Data.sc`` = result) in ``pending_alerts``
  for a NEW session to that ServerURI. A refusal before anything ran (403/404/405) is reported
  synchronously instead: nothing will follow it.
- SHOW: status 200 and an ``OpenBrowser(wait=False)``; 500 when the device has no browser. The
  engine goes straight on (1.18); the server holds its answer (1.19 item 5), or ENDs and the device
  resumes in a new session when the page ends (account ``ui_resume = "client"``, seeds/004 B.3:
  the fleet opens it, with the :data:`ALERT_UI_RESUME` alert). An empty Package#2
  gets an empty Package#3 at once; ``max_empty_rounds`` of them in a row end the session.
- HTTP credentials (Basic or Digest, from the account) go to the session URL and to ServerURIs of
  the same origin only, never to a third-party repository. Digest (RFC 7616, :mod:`digest`): the
  first request goes without, a 401 challenge is answered by sending the same message again, and
  later requests reuse the nonce with a growing count; MAX_DIGEST_REFUSALS fresh challenges end it.
- Repository failures are that command's status: no answer or an HTTP error 500, a body that is
  not MO serialization 415, too large 413; the tree is left as it was. HTTP 4xx/5xx (or no answer)
  on the session itself ends it (1.3) with the server's words in the detail.
- SUB pushes raised while the session runs go out as ``HttpRequest`` PUTs before each Package#3
  and before the session ends (see :mod:`subscriptions` for the rest).
"""

from __future__ import annotations

import base64
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from emulator.errors import DecodeError, EmulatorError, TooLargeError
from emulator.mo.accounts import Account
from emulator.mo.instances import server_get, set_default
from emulator.mo.operations import describe_result
from emulator.protocol.actions import (
    Action,
    HttpRequest,
    HttpResult,
    OpenBrowser,
    SendMessage,
    SessionDone,
    UserAnswer,
    header,
)
from emulator.protocol.dm2 import jsonsafe, media
from emulator.protocol.dm2.digest import DigestClient
from emulator.protocol.dm2.executor import (
    Actor,
    check_perm,
    delete,
    execute,
    parse,
    read,
    resolve_targets,
    status_of,
    store,
    supported_mos,
)
from emulator.protocol.dm2.messages import (
    ALERT_BOOTSTRAP_COMPLETE,
    ALERT_CLIENT_INITIATED,
    ALERT_SERVER_INITIATED,
    Alert,
    Cont,
    Default,
    Delete,
    End,
    Exec,
    Get,
    HGet,
    HPost,
    HPut,
    Initiation,
    Malformed,
    Response,
    Show,
    StatusEntry,
    Sub,
    TypedCommand,
    Unknown,
    Unsub,
    decode_request,
    encode_initiation,
    encode_response,
    parse_command,
    server_initiated_alert,
)
from emulator.protocol.dm2.moser import decode_mos, encode_mos
from emulator.protocol.dm2.notification import (
    Notification,
    NotificationGuard,
    parse_notification,
    verify_digest,
)
from emulator.protocol.dm2.subscriptions import Subscription, Subscriptions, subscriptions_for
from emulator.protocol.urls import refused_url
from emulator.protocol.values import SessionOutcome
from emulator.tree import Tree
from emulator.tree.ddf import MODescription

ALERT_UI_RESUME = "urn:dmemulator:at:UIResume"
"""Project alert type [P] in the Package#1 of the session a device opens when a SHOW's page flow ended
(``Data``: ``URL`` of the page, ``Result`` of the flow) under ``ui_resume = "client"``."""

MAX_DIGEST_REFUSALS = 2
"""401s with a fresh (not stale) Digest challenge a session answers before it gives up."""

ALERT_EXEC_RESULT = "urn:oma:at:dm:2.0:ExecResult"
"""Project alert type for the asynchronous result of an EXEC with a ServerURI [P]."""

SESSION_ALERTS = {
    "ClientInitiated": ALERT_CLIENT_INITIATED,
    "ServerInitiated": ALERT_SERVER_INITIATED,
    "BootstrapComplete": ALERT_BOOTSTRAP_COMPLETE,
}


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """An alert that must travel in a new session to ``server_uri`` (async EXEC result)."""

    server_uri: str
    alert: Alert


Continuation = Callable[[HttpResult], "StatusEntry | HttpRequest | None"]


class DM2Client:
    """One DM 2.0 session of one device with one server (see module doc).

    ``alerts`` go in Package#1 after the session alert; :class:`PendingAlert` items (from an
    earlier session's ``pending_alerts``) also choose the session URL: their ServerURI.
    ``server_uri`` overrides the account's SrvURI. ``subscriptions`` defaults to the tree's
    registry, so SUBs outlive the session.
    """

    def __init__(
        self,
        tree: Tree,
        account: Account,
        *,
        dev_id: str,
        alert_type: str = "ClientInitiated",
        notification_id: int | None = None,
        req_mos: bool = False,
        alerts: Iterable[Alert | PendingAlert] = (),
        accept_types: tuple[str, ...] = media.MO_JSON_ACCEPTED,
        max_size: int = jsonsafe.DEFAULT_MAX_SIZE,
        has_browser: bool = True,
        subscriptions: Subscriptions | None = None,
        server_uri: str | None = None,
        max_empty_rounds: int = 240,
        describe_mo: Callable[[str], MODescription | None] | None = None,
        cnonce_factory: Callable[[], str] | None = None,
    ) -> None:
        session_alert = SESSION_ALERTS.get(alert_type, alert_type)
        if session_alert not in SESSION_ALERTS.values():
            raise ValueError(f"unknown session alert type {alert_type!r}")
        if not accept_types:
            raise ValueError("accept_types must name at least one MO media type")
        self.tree = tree
        self.account = account
        self.dev_id = dev_id
        self.actor = Actor(account.server_id, frozenset(account.perms), describe_mo or (lambda moid: None))
        self.session_alert = session_alert
        self.notification_id = notification_id
        self.req_mos = req_mos
        self.accept_types = accept_types
        self.max_size = max_size
        self.has_browser = has_browser
        self.subscriptions = subscriptions if subscriptions is not None else subscriptions_for(tree)
        self.max_empty_rounds = max_empty_rounds
        extra = list(alerts)
        self.extra_alerts = [a.alert if isinstance(a, PendingAlert) else a for a in extra]
        pending_url = next((a.server_uri for a in extra if isinstance(a, PendingAlert)), None)
        self.url = server_uri or pending_url or account.server_uri
        self.pending_alerts: list[PendingAlert] = []
        self.notes: list[str] = []
        self.browsed: list[str] = []
        self.packages = 0
        self.commands_run = 0
        self.server_accept: str | None = None
        self._auth = basic_auth(account)
        self._digest: DigestClient | None = None
        if account.auth == "digest" and account.client_user:
            self._digest = DigestClient(account.client_user, account.client_secret)
            if cnonce_factory is not None:
                self._digest.cnonce_factory = cnonce_factory
        self._digest_refusals = 0
        self._last_sent: SendMessage | None = None
        if self._auth and ":" in account.client_user:
            self.notes.append(f"HTTP Basic user-id {account.client_user!r} contains ':', which RFC 7617 forbids; "
                              "a server splitting at the first ':' reads another user")
        self._origin = _origin(self.url) or _origin(account.server_uri)
        self._ids = itertools.count(1)
        self._started = False
        self._done: SessionDone | None = None
        self._done_sent = False
        self._awaiting_message = False
        self._waiting: str | None = None
        self._continuation: Continuation | None = None
        self._ready: Action | None = None
        self._commands: deque[TypedCommand] = deque()
        self._statuses: list[StatusEntry] = []
        self._pushes: deque[HttpRequest] | None = None
        self._ended = False
        self._empty_rounds = 0

    # ------------------------------------------------------------------ driver interface

    def start(self) -> None:
        """Nothing to do before the first ``next_action`` (kept for the driver contract)."""

    def next_action(self) -> Action | None:
        action = self._next()
        if action is not None and action is self._done:
            if self._done_sent:
                return None
            self._done_sent = True
        return action

    def _next(self) -> Action | None:
        if self._done is not None:
            return self._done
        if self._ready is not None:
            action, self._ready = self._ready, None
            return action
        if self._waiting is not None or self._awaiting_message:
            what = f"HTTP answer {self._waiting}" if self._waiting else "the server's answer"
            return self._finish("failed", f"driver asked for an action while the engine waits for {what}")
        if not self._started:
            self._started = True
            self._awaiting_message = True
            return self._package1()
        return self._advance()

    def receive_message(self, result: HttpResult) -> None:
        if not self._awaiting_message or self._done is not None:
            return
        self._awaiting_message = False
        where = f"Package#{1 if self.packages == 0 else 3} to {self.url}"
        if result.too_large:
            self._finish("failed", f"the answer to {where} is over the device's limit: {result.error}", status=413)
            return
        if result.status == 0:
            self._finish("failed", f"no answer to {where}: {result.error or 'connection failed'}")
            return
        if result.status == 401 and self._answer_challenge(result):
            return
        if not 200 <= result.status < 300:
            text = _snippet(result.body)
            self._finish("failed", f"server answered HTTP {result.status} to {where}" + (f": {text}" if text else ""),
                         status=result.status)
            return
        try:
            request = decode_request(result.body, max_size=self.max_size)
        except DecodeError as exc:
            self._finish("failed", f"unreadable Package#2 from {self.url}: {exc}", status=exc.status)
            return
        self.packages += 1
        self.server_accept = header(result.headers, media.HEADER_ACCEPT)
        if request.commands:
            self._empty_rounds = 0
        else:
            self._empty_rounds += 1
            if self._empty_rounds > self.max_empty_rounds:
                self._finish("failed", f"server sent {self._empty_rounds} empty Package#2 in a row")
                return
        self._statuses = []
        self._commands = deque(parse_command(c) for c in request.commands)

    def receive_http(self, request_id: str, result: HttpResult) -> None:
        if request_id != self._waiting or self._continuation is None:
            self.notes.append(f"ignored an HTTP answer for {request_id} nobody waits for")
            return
        continuation, self._continuation, self._waiting = self._continuation, None, None
        out = continuation(result)
        if isinstance(out, HttpRequest):
            self._wait(out, continuation)
        elif isinstance(out, StatusEntry):
            self._statuses.append(out)

    def answer_user(self, request_id: str, answer: UserAnswer) -> None:
        """DM 2.0 never waits for the user: a late browser result is only noted."""
        self.notes.append(f"UI {request_id} ended: {answer.outcome}")

    def fail(self, reason: str) -> None:
        if self._done is None:
            self._finish("failed", reason)

    def abort(self, reason: str) -> None:
        """The device ends the session (a session limit). DM 2.0 gives a client no message to end a
        session with (END is the server's, PROTOCOL 1.9): nothing more is sent; ``failed``."""
        self.fail(reason)

    # ------------------------------------------------------------------ packages

    def _headers(self, url: str | None = None, method: str = "GET", *, digest: bool = True) -> dict[str, str]:
        """OMADM-DevID, and the account's credentials for the session's origin only. Digest answers are
        one-use (their nonce count grows): ``digest=False`` for headers kept for later (SUB pushes)."""
        headers = {media.HEADER_DEVID: self.dev_id}
        if url is not None and _origin(url) != self._origin:
            return headers
        if self._auth:
            headers["Authorization"] = self._auth
        elif self._digest is not None and digest:
            value = self._digest.authorization(method, request_uri(url or self.url))
            if value is not None:
                headers["Authorization"] = value
        return headers

    def _session_post(self, body: bytes, content_type: str, summary: str) -> SendMessage:
        message = SendMessage(url=self.url, body=body, content_type=content_type,
                              headers={**self._headers(self.url, "POST"), "Accept": media.REQUEST}, summary=summary,
                              max_body=self.max_size)
        self._last_sent = message
        return message

    def _answer_challenge(self, result: HttpResult) -> bool:
        """A 401 on a session message, with a Digest challenge we can answer: the same message goes
        again with credentials (True). A stale nonce renews freely; a real refusal counts, and after
        MAX_DIGEST_REFUSALS the 401 ends the session like any HTTP error."""
        if self._digest is None or self._last_sent is None:
            return False
        challenge = self._digest.take(header(result.headers, "www-authenticate") or "")
        if challenge is None:
            return False
        if not challenge.stale:
            self._digest_refusals += 1
            if self._digest_refusals > MAX_DIGEST_REFUSALS:
                return False
        last = self._last_sent
        self._ready = self._session_post(last.body, last.content_type, last.summary + " (Digest)")
        self._awaiting_message = True
        return True

    def _package1(self) -> SendMessage | SessionDone:
        if not self.url:
            return self._finish("failed", f"account {self.account.server_id} has no SrvURI")
        first = (
            server_initiated_alert(self.notification_id)
            if self.session_alert == ALERT_SERVER_INITIATED
            else Alert(self.session_alert)
        )
        mos = supported_mos(self.tree, self.actor, self.account.perms) if self.req_mos else []
        body = encode_initiation(Initiation(mos, [first, *self.extra_alerts]))
        kind = self.session_alert.rsplit(":", 1)[-1]
        shown = []
        for alert in self.extra_alerts:
            value = (alert.data or {}).get("Value", "") if isinstance(alert.data, dict) else ""
            shown.append(alert.alert_type.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
                         + (f" {describe_result(alert.alert_type, value)}" if value else ""))
        return self._session_post(
            body, media.INITIATION,
            f"Package#1 {kind}" + (f" + alerts: {', '.join(shown)}" if shown else ""),
        )

    def _package3(self) -> SendMessage:
        statuses, self._statuses = self._statuses, []
        self._awaiting_message = True
        codes = ",".join(str(s.sc) for s in statuses)
        return self._session_post(encode_response(Response(statuses)), media.RESPONSE, f"Package#3 [{codes}]")

    def _finish(self, outcome: SessionOutcome, detail: str, *, status: int | None = None) -> SessionDone:
        self._done = SessionDone(outcome, detail, status)
        return self._done

    def _wait(self, request: HttpRequest, continuation: Continuation) -> None:
        self._waiting = request.request_id
        self._continuation = continuation
        self._ready = request

    def _advance(self) -> Action:
        while self._commands:
            command = self._commands.popleft()
            self.commands_run += 1
            try:
                action = self._run(command)
            except EmulatorError as exc:
                self._fail_command(command, status_of(exc), str(exc))
                continue
            except Exception as exc:  # an engine bug costs one command, not the session
                self._fail_command(command, 500, f"internal error: {type(exc).__name__}: {exc}")
                continue
            if action is not None:
                self._ready = None  # an HTTP exchange was armed with _wait: it is this action
                return action
        if self._pushes is None:
            self._pushes = deque(self.subscriptions.pending_pushes())
        if self._pushes:
            push = self._pushes.popleft()
            self._waiting, self._continuation = push.request_id, self._pushed(push)
            return push
        self._pushes = None
        if self._ended:
            return self._finish("completed", f"{self.packages} Package#2, {self.commands_run} commands")
        return self._package3()

    def _pushed(self, push: HttpRequest, *, answered: bool = False) -> Continuation:
        def done(result: HttpResult) -> None:
            again = None if answered else self._digest_again(push, result)
            if again is not None:  # the server asks who uploads (its repository): once, with Digest
                self._wait(again, self._pushed(again, answered=True))
                return
            if not 200 <= result.status < 300:
                self.notes.append(f"SUB push to {push.url} failed: HTTP {result.status} {result.error}".rstrip())
            retry = self.subscriptions.push_result(push.request_id, result)
            if retry is not None:
                self._wait(retry, self._pushed(retry))

        return done

    def _fail_command(self, command: TypedCommand, status: int, why: str) -> None:
        self.notes.append(f"{type(command).__name__.upper()} -> {status}: {why}")
        self._statuses.append(StatusEntry(status))

    # ------------------------------------------------------------------ commands

    def _run(self, command: TypedCommand) -> Action | None:
        """Run one command; append its status, or return the action it needs first."""
        url = getattr(command, "server_uri", None)
        refused = refused_url(self.url, url) if isinstance(url, str) else None
        if refused and isinstance(command, Cont):  # the session itself would move: it ends here
            return self._finish("failed", f"the server's CONT was refused: {refused}", status=403)
        if refused:
            raise EmulatorError(f"ServerURI refused: {refused}", status=403)
        match command:
            case HGet():
                return self._hget(command)
            case HPut(server_uri=url, client_uris=uris):
                return self._upload("PUT", url, uris)
            case HPost(server_uri=url, client_uris=uris):
                return self._upload("POST", url, uris)
            case Get(client_uri=uri):
                code, items, found = read(self.tree, uri, self.actor)
                self._statuses.append(StatusEntry(code, uri=found, mos=items if code == 200 else None))
            case Delete(client_uri=uri):
                delete(self.tree, uri, self.actor)
                self._statuses.append(StatusEntry(200))
            case Exec():
                self._exec(command)
            case Show(server_uri=url):
                if not self.has_browser:
                    raise EmulatorError("this device has no web browser component", status=500)
                self.browsed.append(url)
                self._statuses.append(StatusEntry(200))
                return OpenBrowser(self._new_id("show"), url, wait=False)
            case Cont(server_uri=url):
                self.url = url
                self._statuses.append(StatusEntry(200))
            case End():
                self._ended = True
            case Default(moid=moid, server_uri=url):
                check_perm(self.actor, moid)
                set_default(self.tree, moid, url)
                self._statuses.append(StatusEntry(200))
            case Sub(client_uri=uri, server_uri=url):
                self._sub(uri, url)
            case Unsub(client_uri=uri):
                if not self.subscriptions.remove(self.actor.server_id, uri):
                    raise EmulatorError(f"no subscription of {self.actor.server_id} to {uri}", status=404)
                self._statuses.append(StatusEntry(200))
            case Unknown(name=name):
                raise EmulatorError(f"unknown command {name!r}", status=501)
            case Malformed(name=name, reason=reason):
                raise EmulatorError(f"malformed {name}: {reason}", status=400)
        return None

    def _new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def _hget(self, command: HGet) -> HttpRequest:
        if command.client_uri is not None:
            check_perm(self.actor, parse(command.client_uri).moid)
        request = HttpRequest(
            self._new_id("hget"), "GET", command.server_uri,
            headers={**self._headers(command.server_uri), "Accept": ", ".join(self.accept_types)},
            max_body=self.max_size,
        )

        def fetched(result: HttpResult) -> StatusEntry:
            problem = _repository_problem(result)
            if problem is not None:
                code, why = problem
                self.notes.append(f"HGET {command.server_uri} -> {code}: {why}")
                return StatusEntry(code)
            try:
                items = decode_mos(result.body, max_size=self.max_size)
            except TooLargeError as exc:
                self.notes.append(f"HGET {command.server_uri} -> 413: {exc}")
                return StatusEntry(413)
            except DecodeError as exc:
                self.notes.append(f"HGET {command.server_uri} -> 415: {exc}")
                return StatusEntry(415)
            try:
                written = store(self.tree, self.actor, items, command.client_uri)
            except EmulatorError as exc:
                code = status_of(exc)
                self.notes.append(f"HGET {command.server_uri} -> {code}: {exc}")
                return StatusEntry(code)
            return StatusEntry(200, uri=written)

        self._wait(request, fetched)
        return request

    def _upload(self, method: str, url: str, client_uris: tuple[str, ...]) -> HttpRequest | None:
        items = []
        uris: list[str] = []
        fresh = False
        for text in client_uris:
            code, found, resolved = read(self.tree, text, self.actor)
            uris.extend(resolved)
            if code == 200:
                items.extend(found)
                fresh = True
        if not fresh:
            self._statuses.append(StatusEntry(304, uri=uris))
            return None
        if self.server_accept:
            content_type = media.negotiate(self.server_accept, self.accept_types)
            if content_type is None:
                raise EmulatorError(f"no MO media type in common with OMADM-Accept {self.server_accept!r}",
                                    status=406)
        else:
            content_type = self.accept_types[0]
        body = encode_mos(items)
        tried = {content_type}

        def make(ctype: str) -> HttpRequest:
            return HttpRequest(self._new_id(method.lower()), method, url, body,
                               headers={**self._headers(url, method), "Content-Type": ctype}, max_body=self.max_size)

        def sent(result: HttpResult) -> StatusEntry | HttpRequest:
            if 200 <= result.status < 300:
                return StatusEntry(200, uri=uris)
            if result.status == 415:
                accept = header(result.headers, media.HEADER_ACCEPT)
                other = media.negotiate(accept, [t for t in self.accept_types if t not in tried]) if accept else None
                if other:
                    tried.add(other)
                    return make(other)
            code = result.status if result.status in (406, 413, 415) else 500
            self.notes.append(f"{method} {url} -> {code}: HTTP {result.status} {result.error}".rstrip())
            return StatusEntry(code)

        request = make(content_type)
        self._wait(request, sent)
        return request

    def _exec(self, command: Exec) -> None:
        code, uri = execute(self.tree, command.client_uri, self.actor, command.server_uri)
        if command.server_uri is None or code == 202:  # 202: the behaviour reports its result itself
            self._statuses.append(StatusEntry(code))
            return
        mark = "informational" if 200 <= code < 300 else "critical"
        alert = Alert(ALERT_EXEC_RESULT, source_uri=uri, mark=mark, data={"sc": code})
        self.pending_alerts.append(PendingAlert(command.server_uri, alert))
        self._statuses.append(StatusEntry(202))

    def _digest_again(self, push: HttpRequest, result: HttpResult) -> HttpRequest | None:
        """A SUB push the session's server refused with a Digest challenge, with a fresh answer (its
        headers were kept without one: Digest answers are one-use); None when there is nothing to do."""
        if result.status != 401 or self._digest is None or _origin(push.url) != self._origin:
            return None
        if self._digest.take(header(result.headers, "www-authenticate") or "") is None:
            return None
        value = self._digest.authorization(push.method, request_uri(push.url))
        return None if value is None else replace(push, headers={**push.headers, "Authorization": value})

    def _sub(self, text: str, url: str) -> None:
        uri = parse(text)
        targets = resolve_targets(self.tree, uri, self.actor)
        for t in targets:
            server_get(self.tree, t.path, self.actor.server_id)  # SUB is a read: needs Get (1.9), no secrets
        self.subscriptions.add(Subscription(
            server_id=self.actor.server_id, perms=self.actor.perms, client_uri=text, server_uri=url,
            watched=tuple(t.path for t in targets), headers=self._headers(url, digest=False),
            content_type=self._push_type(),
        ))
        self._statuses.append(StatusEntry(200, uri=[t.client_uri for t in targets]))

    def _push_type(self) -> str:
        if self.server_accept:
            return media.negotiate(self.server_accept, self.accept_types) or self.accept_types[0]
        return self.accept_types[0]


# --- notifications (Package#0) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationDecision:
    """Whether a Package#0 may start a session; ``reason`` says why not (for the log)."""

    accepted: bool
    reason: str
    notification: Notification | None = None

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`DM2Client` for the session this notification asks for."""
        n = self.notification
        if n is None or not self.accepted:
            raise ValueError(f"notification not accepted: {self.reason}")
        return {"alert_type": "ServerInitiated", "notification_id": n.notification_id, "req_mos": n.req_mos}


def check_notification(
    raw: bytes,
    account: Account | Iterable[Account] | None,
    guard: NotificationGuard | None,
    now: float,
) -> NotificationDecision:
    """Verify a Package#0 against the account of the server it names (1.4): the client MUST
    ignore it without notification credentials or with a wrong digest; replays are dropped by
    ``guard``. Never raises for bad input: a rejection is a decision the caller logs."""
    try:
        n = parse_notification(raw)
    except EmulatorError as exc:
        return NotificationDecision(False, f"malformed notification: {exc}")
    if isinstance(account, Account) or account is None:
        candidates = [account] if account is not None else []
    else:
        candidates = list(account)
    acc = next((a for a in candidates if a.server_id == n.server_id and a.protocol == "dm2"), None)
    if acc is None:
        return NotificationDecision(False, f"notification from unknown server {n.server_id!r}", n)
    if not acc.noti_secret:
        return NotificationDecision(False, f"account {acc.server_id} has no notification credentials", n)
    if n.digest is None:
        return NotificationDecision(False, "notification has no SHA256-DIGEST", n)
    if not verify_digest(raw, acc.noti_secret, acc.noti_data):
        return NotificationDecision(False, f"bad SHA256-DIGEST in notification from {acc.server_id}", n)
    if guard is not None:
        verdict = guard.check(n, now)
        if verdict != "ok":
            return NotificationDecision(False, f"{verdict} notification from {acc.server_id} dropped", n)
    return NotificationDecision(True, "ok", n)


# --- helpers --------------------------------------------------------------------------------------


def request_uri(url: str) -> str:
    """The request-target a Digest ``uri`` names: path and query of the URL."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def default_fetch(dev_id: str, account: Account, url: str, request_id: str = "default") -> HttpRequest:
    """The GET a device makes for a DEFAULT's ServerURI (PROTOCOL 1.9: an HGET outside any session),
    as the account whose server gave it: MO serialization accepted, Basic credentials when it has
    them (the URL has that server's origin: the caller chose the account by it)."""
    headers = {"Accept": ", ".join(media.MO_JSON_ACCEPTED), media.HEADER_DEVID: dev_id}
    auth = basic_auth(account)
    if auth:
        headers["Authorization"] = auth
    return HttpRequest(request_id, "GET", url, b"", headers)


def basic_auth(account: Account) -> str | None:
    if account.auth != "basic" or not account.client_user:
        return None
    token = base64.b64encode(f"{account.client_user}:{account.client_secret}".encode()).decode("ascii")
    return f"Basic {token}"


def _origin(url: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace").strip()
    return " ".join(text.split())


def _repository_problem(result: HttpResult) -> tuple[int, str] | None:
    """Why a repository answer cannot be stored (status, reason), None when it can."""
    if result.too_large:
        return 413, result.error
    if result.status == 0:
        return 500, result.error or "no answer"
    if not 200 <= result.status < 300:
        return 500, f"repository answered HTTP {result.status}"
    ctype = header(result.headers, "content-type")
    if ctype and not media.is_mo_json(ctype):
        return 415, f"repository sent {media.media_type(ctype)}, not MO serialization"
    return None
