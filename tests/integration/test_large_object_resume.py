"""Suspend and resume of a DM 1.2 large object (DM-HLF-021) over real loopback HTTP: an Add sent in
chunks (MaxMsgSize 16 KiB) is cut mid-way, by a dropped answer (an outage) or by a bearer switch
while a request is in flight; the next session announces what the device kept and the reference
server sends only the rest. The traffic shows it (the announcement, the rest's Meta/Size), the
report too (the server's events, the device's alerts)."""

from __future__ import annotations

import asyncio
from typing import Any

from emulator.events import AlertRaised, MessageLogged, SessionEnded
from emulator.fleet.fleet import Fleet
from emulator.protocol.syncml.commands import Add, Command, Item, Meta
from emulator.protocol.syncml.executor import ALERT_LARGE_OBJECT_RESUME
from emulator.server.app import RunningServer, start_server

TARGET = "./Vendor/Crash/Dump"
SIZE = 60_000
TEXT = "".join(f"line {n:05d} of a large object\n" for n in range(SIZE // 27 + 1))[:SIZE]


def _script(config: Any) -> Any:
    def big(s: Any) -> list[Command]:
        return [Add(cmd_id="0", meta=Meta(format="chr", type="text/plain"), items=[Item(target=TARGET, data=TEXT)])]

    return [("large object", big)]


async def _with(body: Any) -> Any:
    server: RunningServer = await start_server()
    fleet = Fleet(server=server.url)
    ended: list[SessionEnded] = []
    raised: list[AlertRaised] = []
    out: list[MessageLogged] = []
    fleet.bus.subscribe(ended.append, SessionEnded)
    fleet.bus.subscribe(raised.append, AlertRaised)
    fleet.bus.subscribe(out.append, MessageLogged)
    try:
        return await body(server, fleet, ended, raised, out)
    finally:
        await fleet.aclose()
        await server.stop()


def _check(server: RunningServer, dev_id: str, raised: list[AlertRaised], out: list[MessageLogged]) -> None:
    sessions = server.state.dm12_sessions[dev_id]
    resumed = [e for s in sessions for e in s.events if e.startswith("large object")]
    assert len(resumed) == 1
    received = int(resumed[0].split(" resumed at ")[1].split(" of ")[0])
    assert 0 < received < SIZE
    # the traffic: the device's announcement, then the rest with Meta/Size = what was left
    sent = [m.body.decode() for m in out if m.direction == "out" and b"SyncML" in m.body]
    assert any(ALERT_LARGE_OBJECT_RESUME in b and f"received={received}&amp;size={SIZE}" in b for b in sent)
    answers = [m.body.decode() for m in out if m.direction == "in" and b"SyncML" in m.body]
    assert any(f">{SIZE - received}</Size>" in b for b in answers)
    kinds = [r.alert_type for r in raised]
    assert "large object suspended" in kinds and "large object resumed" in kinds


def test_cut_by_a_dropped_answer_continues_in_the_next_session() -> None:
    async def body(server: RunningServer, fleet: Fleet, ended: list[SessionEnded], raised: list[AlertRaised],
                   out: list[MessageLogged]) -> Any:
        (dev,) = fleet.add("smartphone", 1)
        server.state.add_fault("drop", dev.id, protocol="dm12", message=3)
        server.state.dm12_scripts[dev.id] = _script
        first = await fleet.run_session(dev.id, "dm12")
        kept = dev.partial_objects.get("demo-dm12")
        server.state.dm12_scripts[dev.id] = _script  # the server tries again
        second = await fleet.run_session(dev.id, "dm12")
        _check(server, dev.id, raised, out)
        return first, kept, second, dev.tree.value(TARGET), dev.partial_objects

    first, kept, second, value, left = asyncio.run(_with(body))
    assert first.outcome == "failed"
    assert kept is not None and 0 < kept.received < SIZE
    assert second.outcome == "completed"
    assert value == TEXT and left == {}


def test_cut_by_a_bearer_switch_continues_in_the_rerun() -> None:
    """The fleet reruns a session a bearer switch cut (DM-HLF-008): the rerun goes on from the cut."""
    async def body(server: RunningServer, fleet: Fleet, ended: list[SessionEnded], raised: list[AlertRaised],
                   out: list[MessageLogged]) -> Any:
        (dev,) = fleet.add("smartphone", 1)
        server.state.add_fault("slow", dev.id, protocol="dm12", message=3, seconds=3.0)
        server.state.dm12_scripts[dev.id] = _script
        loop = asyncio.get_running_loop()
        posted = 0

        def switch(event: MessageLogged) -> None:
            nonlocal posted
            if event.direction == "out" and event.device_id == dev.id:
                posted += 1
                if posted == 3:  # the third message waits for the slow answer: move to nr0 meanwhile
                    loop.call_later(0.3, dev.set_bearer, "nr0")

        fleet.bus.subscribe(switch, MessageLogged)

        def again(event: SessionEnded) -> None:
            if event.outcome != "completed":
                server.state.dm12_scripts[dev.id] = _script  # the server tries again in the rerun

        fleet.bus.subscribe(again, SessionEnded)
        done = await fleet.run_session(dev.id, "dm12")
        _check(server, dev.id, raised, out)
        return done, ended, dev.tree.value(TARGET)

    done, ended, value = asyncio.run(_with(body))
    assert [e.outcome for e in ended] == ["failed", "completed"]
    assert ended[0].bearer.startswith("lte0") and ended[1].bearer == "nr0"
    assert done.outcome == "completed" and value == TEXT


def test_a_server_that_starts_over_is_followed(monkeypatch: Any) -> None:
    """A server that ignores the announcement and sends the whole object again (Meta/Size the whole):
    the device drops what it kept and starts over."""
    from emulator.server import dm12

    async def body(server: RunningServer, fleet: Fleet, ended: list[SessionEnded], raised: list[AlertRaised],
                   out: list[MessageLogged]) -> Any:
        (dev,) = fleet.add("smartphone", 1)
        server.state.add_fault("drop", dev.id, protocol="dm12", message=3)
        server.state.dm12_scripts[dev.id] = _script
        await fleet.run_session(dev.id, "dm12")
        kept = dev.partial_objects.get("demo-dm12")
        monkeypatch.setattr(dm12.Dm12Session, "_note_resume", lambda self, alert: None)
        server.state.dm12_scripts[dev.id] = _script
        second = await fleet.run_session(dev.id, "dm12")
        return kept, second, dev.tree.value(TARGET), dev.partial_objects, [r.alert_type for r in raised]

    kept, second, value, left, kinds = asyncio.run(_with(body))
    assert kept is not None
    assert second.outcome == "completed" and value == TEXT and left == {}
    assert "large object resumed" not in kinds
