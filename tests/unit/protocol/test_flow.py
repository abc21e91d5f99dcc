"""The one session flow, without a socket: a scripted engine, replies fed in by hand."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import pytest

from emulator.events import (
    MessageLogged,
    RoundTrip,
    SessionEnded,
    SessionStarted,
    UiFinished,
    UiRequested,
)
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.actions import (
    AskUser,
    HttpRequest,
    HttpResult,
    OpenBrowser,
    SendMessage,
    SessionDone,
    UserAnswer,
)
from emulator.protocol.flow import (
    Background,
    Fetch,
    Now,
    Post,
    Reply,
    SessionCancelled,
    SessionLimits,
    Sleep,
    UiFlow,
    Wait,
    answered,
    session_flow,
)

T0 = Now(1000.0, 50.0)


@dataclass
class Info:
    device_id: str = "dev"
    session_id: str = "s1"
    protocol: str = "dm2"
    server: str = "srv"
    bearer: str = "lte0"
    messages: int = 0


class Scripted:
    """An engine that hands out ``script`` (then SessionDone) and records what it was fed."""

    def __init__(self, *script: object, endless: bool = False) -> None:
        self.script = deque(script)
        self.endless = endless
        self.fed: list[tuple[str, object]] = []
        self.aborted: str | None = None
        self.sent = 0

    def next_action(self) -> object | None:
        if self.aborted is not None:
            return SessionDone("failed", self.aborted)
        if self.endless:
            self.sent += 1
            return SendMessage("http://s/dm", f"m{self.sent}".encode(), "application/json", summary=f"m{self.sent}")
        return self.script.popleft() if self.script else None

    def receive_message(self, result: HttpResult) -> None:
        self.fed.append(("message", result))

    def receive_http(self, request_id: str, result: HttpResult) -> None:
        self.fed.append(("http", (request_id, result)))

    def answer_user(self, request_id: str, answer: UserAnswer) -> None:
        self.fed.append(("user", (request_id, answer)))

    def abort(self, reason: str) -> None:
        self.aborted = reason


def _start(engine, ui=None, **kw):
    events: list[object] = []
    info = Info()
    flow = session_flow(engine, info, events.append, ui=ui or HeadlessUi(), start=T0, **kw)
    return flow, events, info


def _finish(flow, step, answer):
    """Feed ``answer(step)`` for every step until the flow returns its SessionDone."""
    try:
        while True:
            step = flow.send(answer(step))
    except StopIteration as stop:
        return stop.value


OK = HttpResult(200, b'{"CMD":[]}', {"content-type": "application/vnd.oma.dm.request+json"})


def test_a_message_round_trip_is_logged_both_ways_with_the_drivers_times():
    engine = Scripted(SendMessage("http://s/dm", b"hello", "application/json", summary="Package#1"),
                      SessionDone("completed", "done"))
    flow, events, info = _start(engine, reason="client")
    step = next(flow)
    assert isinstance(step, Post) and step.message.body == b"hello"
    assert step.request.method == "POST" and step.request.headers["Content-Type"] == "application/json"
    done = _finish(flow, step, lambda s: Reply(Now(1000.25, 50.25), OK, 250.0))
    assert done == SessionDone("completed", "done")
    started, out, trip, came, ended = events
    assert started == SessionStarted("dev", "s1", "dm2", "srv", "lte0", "client")
    assert (out.direction, out.ts, out.body, out.summary, out.rtt_ms) == ("out", 1000.0, b"hello", "Package#1", None)
    assert trip == RoundTrip("dev", "s1", "message", "POST", "http://s/dm", 200, 250.0, len(OK.body))
    assert (came.direction, came.ts, came.rtt_ms, came.content_type) == ("in", 1000.25, 250.0, OK.headers["content-type"])
    assert ended == SessionEnded("dev", "s1", "completed", "done", "lte0")
    assert engine.fed == [("message", OK)] and info.messages == 2


def test_no_answer_logs_the_message_out_only_and_the_round_trip_as_failed():
    engine = Scripted(SendMessage("http://s/dm", b"x", "t"), SessionDone("failed", "no answer"))
    flow, events, info = _start(engine)
    _finish(flow, next(flow), lambda s: Reply(T0, HttpResult(0, error="refused"), 3.0))
    assert [type(e).__name__ for e in events] == ["SessionStarted", "MessageLogged", "RoundTrip", "SessionEnded"]
    assert events[2].status == 0 and events[2].error == "refused" and info.messages == 1


def test_side_requests_are_fetched_and_fed_back_by_id():
    request = HttpRequest("h1", "GET", "http://repo/x")
    engine = Scripted(request, SessionDone("completed"))
    flow, events, _ = _start(engine)
    step = next(flow)
    assert step == Fetch(request)
    _finish(flow, step, lambda s: Reply(T0, HttpResult(200, b"{}"), 1.0))
    assert engine.fed == [("http", ("h1", HttpResult(200, b"{}")))]
    assert [e.kind for e in events if isinstance(e, RoundTrip)] == ["request"]


def test_alerts_are_answered_by_the_answerer_without_a_step():
    engine = Scripted(AskUser("a1", "confirm", "Reboot?"), SessionDone("completed"))
    flow, events, _ = _start(engine, ui=HeadlessUi(policy="decline"))
    with pytest.raises(StopIteration):
        next(flow)
    assert engine.fed == [("user", ("a1", UserAnswer("no")))]
    assert [type(e).__name__ for e in events] == ["SessionStarted", "UiRequested", "UiFinished", "SessionEnded"]


class Waiting:
    """An answerer that lives on an event loop (as the window): one Wait step, then a Sleep."""

    def ask(self, session, action) -> UiFlow:
        reply = yield Wait(lambda: None)
        yield Sleep(0.5)
        return UserAnswer(reply.value)

    def browse(self, session, action) -> UiFlow:
        return answered(UserAnswer("ok"))


def test_an_answerers_steps_go_to_the_driver_and_time_moves_on():
    engine = Scripted(AskUser("a1", "display", "Hi"), SendMessage("u", b"", "t"), SessionDone("completed"))
    flow, events, _ = _start(engine, ui=Waiting())
    assert isinstance(next(flow), Wait)
    assert flow.send(Reply(Now(1001.0, 51.0), "timeout")) == Sleep(0.5)
    step = flow.send(Reply(Now(1002.0, 52.0)))
    assert isinstance(step, Post)
    assert engine.fed == [("user", ("a1", UserAnswer("timeout")))]
    assert [e for e in events if isinstance(e, MessageLogged)][0].ts == 1002.0  # the clock of the last reply


def test_a_page_the_session_does_not_wait_for_is_a_background_flow_of_its_own():
    engine = Scripted(OpenBrowser("w1", "http://s/ui/page"), SessionDone("completed"))
    flow, events, _ = _start(engine)
    step = next(flow)
    assert isinstance(step, Background) and step.request_id == "w1"
    assert [type(e).__name__ for e in events] == ["SessionStarted", "UiRequested"]
    # the page flow yields its own requests; it reports only through UiFinished
    page = step.flow
    fetch = next(page)
    assert fetch.request.method == "GET" and fetch.request.url == "http://s/ui/page"
    with pytest.raises(StopIteration) as stop:
        page.send(Reply(T0, HttpResult(404)))
    assert stop.value.value.outcome == "failed"
    assert isinstance(events[-1], UiFinished) and events[-1].outcome == "failed"
    _finish(flow, step, lambda s: Reply(T0))
    assert isinstance(events[-1], SessionEnded) and engine.fed == []  # DM 2.0 SHOW: nothing fed back


def test_a_page_the_session_waits_for_is_answered_inline():
    engine = Scripted(OpenBrowser("w1", "http://s/ui/done", wait=True), SessionDone("completed"))
    flow, events, _ = _start(engine)
    step = next(flow)
    assert isinstance(step, Fetch)
    _finish(flow, step, lambda s: Reply(T0, HttpResult(200, b"thanks")))
    assert engine.fed == [("user", ("w1", UserAnswer("ok", text="http://s/ui/done")))]
    assert [e.kind for e in events if isinstance(e, UiRequested)] == ["web"]


def test_a_cancelled_driver_ends_the_session_aborted():
    engine = Scripted(SendMessage("u", b"", "t"), SessionDone("completed"))
    flow, events, _ = _start(engine)
    next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.throw(SessionCancelled())
    assert stop.value.value == SessionDone("aborted", "session cancelled")
    assert events[-1] == SessionEnded("dev", "s1", "aborted", "session cancelled", "lte0")


def test_a_closed_flow_still_publishes_its_end():
    engine = Scripted(SendMessage("u", b"", "t"))
    flow, events, _ = _start(engine)
    next(flow)
    flow.close()
    assert isinstance(events[-1], SessionEnded) and events[-1].outcome == "aborted"


def test_engine_bugs_and_silent_engines_end_the_session_failed():
    class Broken(Scripted):
        def receive_message(self, result):
            raise KeyError("oops")

    flow, events, _ = _start(Broken(SendMessage("u", b"", "t")))
    done = _finish(flow, next(flow), lambda s: Reply(T0, OK, 1.0))
    assert done.outcome == "failed" and "internal error: KeyError" in done.detail
    flow, events, _ = _start(Scripted())
    with pytest.raises(StopIteration) as stop:
        next(flow)
    assert stop.value.value == SessionDone("failed", "engine stopped without ending the session")


def test_a_driver_error_thrown_in_fails_the_session_with_its_words():
    flow, events, _ = _start(Scripted(SendMessage("u", b"", "t")))
    next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.throw(TypeError("no event loop here"))
    assert stop.value.value.detail == "internal error: TypeError: no event loop here"


# ------------------------------------------------------------------------------------------ limits


def _run_endless(limits: SessionLimits, clock=lambda n: T0):
    engine = Scripted(endless=True)
    flow, events, _ = _start(engine, limits=limits)
    posts = 0
    step = next(flow)
    try:
        while True:
            assert isinstance(step, Post)
            posts += 1
            step = flow.send(Reply(clock(posts), OK, 1.0))
    except StopIteration as stop:
        return stop.value, posts, engine, events


@pytest.mark.parametrize("cap", [1, 3, 200])
def test_the_message_at_the_cap_goes_and_the_next_one_does_not(cap):
    done, posts, engine, events = _run_endless(SessionLimits(max_messages=cap))
    assert posts == cap
    assert engine.aborted == done.detail == f"server never ended the session after {cap} messages (limit {cap})"
    assert done.outcome == "failed"
    assert len([e for e in events if isinstance(e, MessageLogged) and e.direction == "out"]) == cap


def test_the_default_cap_is_200_messages_and_600_seconds():
    done, posts, _, _ = _run_endless(SessionLimits())
    assert posts == 200 and "after 200 messages" in done.detail
    assert (SessionLimits().max_messages, SessionLimits().max_seconds) == (200, 600.0)


def test_the_session_may_last_its_time_to_the_second_and_not_beyond():
    # each reply comes 100 s after the start: at 600 s the next message still goes, past it not
    elapsed = {1: 100.0, 2: 200.0, 3: 300.0, 4: 400.0, 5: 500.0, 6: 600.0, 7: 600.001}

    def clock(n):
        return Now(T0.wall + elapsed[n], T0.mono + elapsed[n])

    done, posts, _, _ = _run_endless(SessionLimits(max_seconds=600), clock)
    assert posts == 7  # sent at 0, 100, ..., 500 and 600 s; the 8th would leave at 600.001 s
    assert done.detail == "server kept the session going for more than 600 s (limit)"


def test_after_the_abort_the_engines_last_message_goes_uncounted():
    class Aborting(Scripted):
        def abort(self, reason):
            super().abort(reason)
            self.script = deque([SendMessage("u", b"1223", "t", summary="abort"), SessionDone("failed", reason)])
            self.endless = False
            self.aborted = None

    engine = Aborting(endless=True)
    flow, events, _ = _start(engine, limits=SessionLimits(max_messages=2))
    bodies = []
    done = _finish(flow, next(flow), lambda s: (bodies.append(s.message.body), Reply(T0, OK, 1.0))[1])
    assert bodies == [b"m1", b"m2", b"1223"] and done.outcome == "failed"


@pytest.mark.parametrize("kw", [{"max_messages": 0}, {"max_messages": 100_001}, {"max_seconds": 0.5},
                                {"max_seconds": 86_401}, {"max_seconds": math.nan}])
def test_limits_out_of_range_are_refused(kw):
    with pytest.raises(ValueError):
        SessionLimits(**kw)
    assert SessionLimits(max_messages=100_000, max_seconds=86_400).max_messages == 100_000
