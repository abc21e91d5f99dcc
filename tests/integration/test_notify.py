"""Fleet.deliver_notification over loopback: the reference server's Package 0 starts a server-initiated
session; a notification that does not verify starts nothing and raises AlertRaised."""

from __future__ import annotations

import asyncio

from aiohttp import web

from emulator.events import AlertRaised, EventBus, SessionStarted
from emulator.fleet.fleet import Fleet
from emulator.server.app import start_server
from emulator.server.state import ServerState

DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.2"
QUICK_DM2 = [[["GET", f"{DEVINFO}//FwV"]], [["END"]]]


async def _serve(state: ServerState) -> tuple[web.AppRunner, str]:
    server = await start_server(state)
    return server.runner, server.url


def _tamper(raw: bytes, digest: bytes) -> bytes:
    """Flip one bit of the digest where it sits in the notification."""
    at = raw.index(digest) + 3
    return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:]


def _dm2_digest(raw: bytes) -> bytes:
    from emulator.protocol.dm2.notification import parse_notification

    return parse_notification(raw).digest


def _dm12_digest(raw: bytes) -> bytes:
    from emulator.protocol.syncml.notification import parse_notification

    return parse_notification(raw).digest


def _run(protocol: str, make_raw):
    """One device; deliver what ``make_raw(state, dev_id)`` returns; (task result or None, events, state)."""
    async def main():
        state = ServerState(push_wait_s=0.2)
        runner, base = await _serve(state)
        bus = EventBus()
        seen: list[object] = []
        bus.subscribe(seen.append, SessionStarted, AlertRaised)
        fleet = Fleet(server=base, bus=bus)
        try:
            (dev,) = fleet.add("smartphone", 1)
            dev.set_bearer("lte0", up=True)
            state.set_script(dev.id, QUICK_DM2)
            if protocol == "dm12":  # the server learns the device's credentials in a first session
                first = await fleet.run_session(dev.id, "dm12")
                assert first.outcome == "completed", first
                state.dm12_sessions.clear()
            results = []
            for raw in make_raw(state, dev.id):
                task = fleet.deliver_notification(dev.id, raw, protocol)
                results.append(None if task is None else await asyncio.wait_for(task, 20))
        finally:
            await fleet.aclose()
            await runner.cleanup()
        return results, seen, state, dev.id

    return asyncio.run(main())


def _dm2_package0(state: ServerState, dev_id: str) -> bytes:
    nid = state.notify(dev_id)
    raw = state.push_queue(dev_id).get_nowait()
    assert nid in state.device(dev_id).notifications_sent
    return raw


def test_dm2_notification_starts_a_server_initiated_session():
    raws: list[bytes] = []

    def make(state, dev_id):
        raws.append(_dm2_package0(state, dev_id))
        return raws

    (done,), seen, state, dev_id = _run("dm2", make)
    assert done.outcome == "completed", done
    log = state.device(dev_id)
    assert log.completed == 1
    # the device echoed the notification's id in its ServerInitiatedMgmt alert (PROTOCOL 1.4)
    assert log.notification_ids == log.notifications_sent
    assert [e.reason for e in seen if isinstance(e, SessionStarted)] == ["notification"]
    assert not [e for e in seen if isinstance(e, AlertRaised)]


def test_dm2_bad_digest_and_replay_start_nothing():
    def make(state, dev_id):
        good = _dm2_package0(state, dev_id)
        return [_tamper(good, _dm2_digest(good)), good, good]  # bad digest, then the real one, then it replayed

    (bad, ok, replay), seen, state, dev_id = _run("dm2", make)
    assert bad is None and replay is None
    assert ok is not None and ok.outcome == "completed"
    alerts = [e for e in seen if isinstance(e, AlertRaised)]
    assert [a.alert_type for a in alerts] == ["notification rejected"] * 2
    assert "digest" in alerts[0].detail.lower() and "duplicate" in alerts[1].detail
    assert all(a.device_id == dev_id for a in alerts)
    assert len([e for e in seen if isinstance(e, SessionStarted)]) == 1
    assert state.device(dev_id).completed == 1


def test_dm12_package0_starts_a_server_initiated_session():
    (done,), seen, state, dev_id = _run("dm12", lambda state, dev_id: [state.dm12.build_package0(dev_id)])
    assert done.outcome == "completed", done
    (session,) = state.dm12_sessions[dev_id]
    assert "package 1 (Alert 1200)" in session.events  # 1200: server-initiated management
    assert [e.reason for e in seen if isinstance(e, SessionStarted)] == ["client", "notification"]
    assert not [e for e in seen if isinstance(e, AlertRaised)]


def test_dm12_bad_digest_starts_nothing():
    def make(state, dev_id):
        raw = state.dm12.build_package0(dev_id)
        return [_tamper(raw, _dm12_digest(raw)), b"\x00" * 5]

    (bad, short), seen, state, dev_id = _run("dm12", make)
    assert bad is None and short is None
    alerts = [e for e in seen if isinstance(e, AlertRaised)]
    assert len(alerts) == 2 and "does not verify" in alerts[0].detail and "malformed" in alerts[1].detail
    assert [e.reason for e in seen if isinstance(e, SessionStarted)] == ["client"]  # the warm-up only
    assert not state.dm12_sessions.get(dev_id)
