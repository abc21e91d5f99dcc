"""The one session flow every driver runs: a generator that owns everything but the I/O.

A management session is the same whatever runs it (the asyncio fleet, a blocking Locust user, a
test): the engine's actions become requests to the driver, every message is logged with its round
trip, the user's part is answered, a session that goes on too long is ended, and the end is always
published. All of that is written once, here, as a generator in the style of httpx's ``auth_flow``:

    flow = session_flow(engine, session, bus.publish, ui=ui, start=Now(time.time(), time.monotonic()))
    step = next(flow)
    while True:                                   # until StopIteration carries the SessionDone
        step = flow.send(<carry out step>)        # always a Reply, stamped with the driver's clocks

What the flow yields (the driver does it, then sends back a :class:`Reply`):

- :class:`Post`: POST a session message; the reply's value is the :class:`HttpResult`, its
  ``rtt_ms`` the round trip by the driver's monotonic clock.
- :class:`Fetch`: an HTTP request a command or a page needs (HGET, HPUT, SUB pushes, form pages).
- :class:`Sleep`: wait (a scripted user's think time).
- :class:`Wait`: await something only an event loop can (the window's dialogs and web view); a
  blocking driver refuses it, which fails the session with a reason.
- :class:`Background`: run another flow (a DM 2.0 SHOW page, which the session does not wait for)
  beside this one; the reply comes once it is started (asyncio) or finished (blocking, see
  :mod:`emulator.fleet.drive_sync`).

Time enters only through replies (``Reply.now``, the driver's wall and monotonic clocks when it
resumed the flow): nothing here reads a clock, sleeps or touches a socket. A driver that is
cancelled throws :class:`SessionCancelled` in; the session then ends ``aborted``.

Session limits (:class:`SessionLimits`, from the profile's ``[limits]``): a device sends at most
``max_messages`` messages in one session and goes on for at most ``max_seconds``. When the engine
wants one more message than that, or anything at all after the time is up, the flow asks the engine
to abort: DM 1.2 sends Alert 1223 (session abort, with Final) in place of the message it did not send;
DM 2.0 has no message a client may end a session with (END is the server's), so the device just
stops. The session ends ``failed`` saying which limit the server ran into.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Protocol

from emulator.events import (
    Event,
    MessageLogged,
    RoundTrip,
    SessionEnded,
    SessionStarted,
    UiFinished,
    UiRequested,
)
from emulator.protocol.actions import (
    AskUser,
    HttpRequest,
    HttpResult,
    OpenBrowser,
    SendMessage,
    SessionDone,
    UserAnswer,
    header,
)
from emulator.protocol.values import DmProtocol

# ---------------------------------------------------------------------------------------------
# what goes between the flow and its driver


@dataclass(frozen=True, slots=True)
class Now:
    """The driver's clocks when it resumed the flow: wall time for the log, monotonic for durations."""

    wall: float
    mono: float


@dataclass(frozen=True, slots=True)
class Reply:
    """What the driver sends back for a step: when, the step's value, and a round trip if it made one."""

    now: Now
    value: Any = None  # HttpResult (Post, Fetch), what Wait awaited, None otherwise
    rtt_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Post:
    message: SendMessage

    @property
    def request(self) -> HttpRequest:
        """The message as the HTTP request that carries it."""
        m = self.message
        return HttpRequest("", "POST", m.url, m.body, {"Content-Type": m.content_type, **m.headers}, m.max_body)


@dataclass(frozen=True, slots=True)
class Fetch:
    request: HttpRequest


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Wait:
    """Await ``start()`` (a coroutine): for answerers that live on an event loop (the window)."""

    start: Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Background:
    """Run ``flow`` (with the same driver) beside the session; the session does not wait for it."""

    flow: Generator[Step, Reply, Any]
    request_id: str = ""


Step = Post | Fetch | Sleep | Wait | Background
Flow = Generator[Step, Reply, SessionDone]
UiFlow = Generator[Step, Reply, UserAnswer]


class SessionCancelled(Exception):
    """Thrown into a flow by a driver that was cancelled (asyncio) or killed (a Locust greenlet)."""


# ---------------------------------------------------------------------------------------------
# who takes part


class Engine(Protocol):
    """A sans-IO protocol engine (:mod:`emulator.protocol.actions` describes the contract)."""

    def next_action(self) -> object | None: ...
    def receive_message(self, result: HttpResult) -> None: ...
    def receive_http(self, request_id: str, result: HttpResult) -> None: ...
    def answer_user(self, request_id: str, answer: UserAnswer) -> None: ...
    def abort(self, reason: str) -> None: ...


class SessionInfo(Protocol):
    """The session as the flow reports it. ``bearer`` may change while it runs (a bearer switch)."""

    device_id: str
    session_id: str
    protocol: DmProtocol
    server: str
    bearer: str
    messages: int


class UiAnswerer(Protocol):
    """Who answers the user's part: headless policies, scenarios, the window. Each answer is a flow
    of its own (a page flow yields its HTTP requests), so every driver can run every answerer."""

    def ask(self, session: Any, action: AskUser) -> UiFlow: ...
    def browse(self, session: Any, action: OpenBrowser) -> UiFlow: ...


def answered(answer: UserAnswer) -> UiFlow:
    """A UI flow that needs nothing from the driver (an answer known at once)."""
    return answer
    yield  # a generator all the same  # noqa: B901


# ---------------------------------------------------------------------------------------------
# limits


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How far one session may go before the device ends it (threat: a server that never ends it).

    ``max_messages``: messages the device sends (each answered by the server); the one at the limit
    goes, the next does not. ``max_seconds``: from the start of the session to the device's last
    step; checked before every step, so one request may overrun it by its own deadline.
    """

    max_messages: int = 200
    max_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_messages <= MAX_MESSAGES_LIMIT:
            raise ValueError(f"max_messages must be 1 to {MAX_MESSAGES_LIMIT}, not {self.max_messages}")
        if not 1 <= self.max_seconds <= MAX_SECONDS_LIMIT:  # also refuses nan
            raise ValueError(f"max_seconds must be 1 to {MAX_SECONDS_LIMIT:g}, not {self.max_seconds}")

    def exceeded(self, sent: int, elapsed: float, *, sending: bool) -> str | None:
        """Why the next step may not go, or None."""
        if sending and sent >= self.max_messages:
            return f"server never ended the session after {sent} messages (limit {self.max_messages})"
        if elapsed > self.max_seconds:
            return f"server kept the session going for more than {self.max_seconds:g} s (limit)"
        return None


MAX_MESSAGES_LIMIT = 100_000
MAX_SECONDS_LIMIT = 86_400.0
DEFAULT_LIMITS = SessionLimits()


# ---------------------------------------------------------------------------------------------
# the flow


def session_flow(engine: Engine, session: SessionInfo, publish: Callable[[Event], None], *,
                 ui: UiAnswerer, start: Now, reason: str = "",
                 limits: SessionLimits = DEFAULT_LIMITS) -> Flow:  # fmt: skip
    """One session from SessionStarted to SessionEnded (see the module doc); never raises for what
    a server, the network or the engine does: that ends the session ``failed`` with a reason."""
    s = session
    publish(SessionStarted(s.device_id, s.session_id, s.protocol, s.server, s.bearer, reason))
    now = start
    sent = 0
    aborting = False
    done: SessionDone | None = None
    try:
        while (action := engine.next_action()) is not None:
            if isinstance(action, SessionDone):
                done = action
                break
            if not aborting:
                why = limits.exceeded(sent, now.mono - start.mono, sending=isinstance(action, SendMessage))
                if why is not None:
                    aborting = True
                    engine.abort(why)  # the action it handed out is dropped; it queues what ends the session
                    continue
            if isinstance(action, SendMessage):
                sent += 1
                result, now = yield from _logged(Post(action), s, publish, now, "message", action.summary)
                engine.receive_message(result)
            elif isinstance(action, HttpRequest):
                reply = yield Fetch(action)
                now, result = reply.now, reply.value
                publish(RoundTrip(s.device_id, s.session_id, "request", action.method, action.url, result.status,
                                  reply.rtt_ms or 0.0, len(result.body), result.error))
                engine.receive_http(action.request_id, result)
            elif isinstance(action, AskUser):
                publish(UiRequested(s.device_id, s.session_id, "alert", server_id=s.server, alert=action,
                                    request_id=action.request_id))
                answer, now = yield from _answer(ui.ask(s, action), now)
                publish(UiFinished(s.device_id, s.session_id, action.request_id, answer.outcome))
                engine.answer_user(action.request_id, answer)
            elif isinstance(action, OpenBrowser):
                publish(UiRequested(s.device_id, s.session_id, "web", url=action.url, server_id=s.server,
                                    request_id=action.request_id))
                if action.wait:
                    answer, now = yield from _answer(ui.browse(s, action), now)
                    publish(UiFinished(s.device_id, s.session_id, action.request_id, answer.outcome))
                    engine.answer_user(action.request_id, answer)
                else:  # DM 2.0 SHOW: the session goes on while the page is open
                    now = (yield Background(page_flow(ui, s, action, publish), action.request_id)).now
            else:
                raise TypeError(f"the engine asked for {type(action).__name__}, which no driver knows")
    except (SessionCancelled, GeneratorExit):
        done = SessionDone("aborted", "session cancelled")
    except Exception as exc:  # an engine or driver bug must still end the session visibly
        done = SessionDone("failed", f"internal error: {type(exc).__name__}: {exc}")
    finally:
        done = done or SessionDone("failed", "engine stopped without ending the session")
        publish(SessionEnded(s.device_id, s.session_id, done.outcome, done.detail, s.bearer, done.warnings))
    return done


def page_flow(ui: UiAnswerer, session: SessionInfo, action: OpenBrowser,
              publish: Callable[[Event], None]) -> Generator[Step, Reply, UserAnswer]:  # fmt: skip
    """A page the session does not wait for: its answer only goes to the log (UiFinished)."""
    try:
        answer = yield from ui.browse(session, action)
    except Exception as exc:
        answer = UserAnswer("failed", text=str(exc))
    publish(UiFinished(session.device_id, session.session_id, action.request_id, answer.outcome))
    return answer


def _answer(flow: UiFlow, now: Now) -> Generator[Step, Reply, tuple[UserAnswer, Now]]:
    """Run a UI flow inline, keeping track of the time of the last reply."""
    with closing(flow):
        try:
            step = next(flow)
            while True:
                reply = yield step
                now = reply.now
                step = flow.send(reply)
        except StopIteration as stop:
            return stop.value, now


def request_flow(request: HttpRequest, info: SessionInfo, publish: Callable[[Event], None], *, start: Now,
                 summary: str) -> Generator[Step, Reply, HttpResult]:  # fmt: skip
    """One HTTP exchange outside any session (a local app's DEFAULT fetch), logged as a session's
    messages are: MessageLogged both ways and a RoundTrip. Returns the answer."""
    result, _ = yield from _logged(Fetch(request), info, publish, start, "request", summary)
    return result


def _logged(step: Post | Fetch, s: SessionInfo, publish: Callable[[Event], None], now: Now, kind: str,
            summary: str) -> Generator[Step, Reply, tuple[HttpResult, Now]]:  # fmt: skip
    """Carry one request through the driver with the traffic log: out, the round trip, in."""
    r = step.request
    s.messages += 1
    publish(MessageLogged(s.device_id, s.session_id, "out", now.wall, header(r.headers, "content-type") or "", r.body,
                          summary, None, r.url))
    reply = yield step
    result: HttpResult = reply.value
    publish(RoundTrip(s.device_id, s.session_id, kind, r.method, r.url, result.status, reply.rtt_ms or 0.0,
                      len(result.body), result.error))
    if result.status:
        s.messages += 1
        publish(MessageLogged(s.device_id, s.session_id, "in", reply.now.wall, header(result.headers, "content-type") or "",
                              result.body, f"HTTP {result.status}", reply.rtt_ms, r.url))
    return result, reply.now
