"""Both drivers end a cancelled session the same way: aborted, SessionEnded published, cancel re-raised."""

from __future__ import annotations

import asyncio

import pytest

from emulator.events import EventBus, SessionEnded
from emulator.fleet.drive import SessionContext, drive
from emulator.fleet.drive_sync import drive_sync
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.actions import HttpResult, SendMessage, SessionDone


class OneMessage:
    def __init__(self) -> None:
        self.sent = False

    def next_action(self):
        if self.sent:
            return SessionDone("completed")
        self.sent = True
        return SendMessage("http://s/dm", b"x", "t")

    def receive_message(self, result: HttpResult) -> None: ...
    def receive_http(self, request_id, result) -> None: ...
    def answer_user(self, request_id, answer) -> None: ...
    def abort(self, reason: str) -> None: ...


def _ctx(transport) -> tuple[SessionContext, list[SessionEnded]]:
    bus = EventBus()
    ended: list[SessionEnded] = []
    bus.subscribe(ended.append, SessionEnded)
    return SessionContext("d", "s1", "dm2", "srv", bus, transport), ended


def test_a_cancelled_asyncio_session_ends_aborted_and_the_cancel_goes_on():
    class Hangs:
        async def request(self, *a, **kw):
            await asyncio.sleep(3600)

        post = request  # a session message goes out as post (the lane a server may hold)

    ctx, ended = _ctx(Hangs())

    async def main():
        task = asyncio.ensure_future(drive(OneMessage(), ctx, HeadlessUi()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert [(e.outcome, e.detail) for e in ended] == [("aborted", "session cancelled")]


def test_a_killed_blocking_session_ends_aborted_and_the_kill_goes_on():
    class Killed:  # what gevent's GreenletExit (a BaseException) does to a Locust user in a request
        def request(self, *a, **kw):
            raise KeyboardInterrupt

    ctx, ended = _ctx(Killed())
    with pytest.raises(KeyboardInterrupt):
        drive_sync(OneMessage(), ctx, HeadlessUi())
    assert [(e.outcome, e.detail) for e in ended] == [("aborted", "session cancelled")]


@pytest.mark.parametrize("driver", ["asyncio", "blocking"])
def test_a_transport_that_raises_fails_the_session_with_its_words(driver):
    class Broken:
        async def arequest(self, *a, **kw):
            raise RuntimeError("socket on fire")

        def request(self, *a, **kw):
            if driver == "asyncio":
                return self.arequest()
            raise RuntimeError("socket on fire")

        post = request  # a session message goes out as post (the lane a server may hold)

    ctx, ended = _ctx(Broken())
    done = asyncio.run(drive(OneMessage(), ctx, HeadlessUi())) if driver == "asyncio" else \
        drive_sync(OneMessage(), ctx, HeadlessUi())
    assert done == SessionDone("failed", "internal error: RuntimeError: socket on fire")
    assert [e.outcome for e in ended] == ["failed"]
