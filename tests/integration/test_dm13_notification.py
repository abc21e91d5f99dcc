"""DM 1.3 extended notification over real HTTP: the reference server builds it, POSTs it to the
fleet's listener, and the device honours each field (README "DM 1.3"): the requested MO goes in
Package 1, the reason labels the session, an expired or replayed notification is dropped. A DM 1.2
device of the same server reads none of it and opens a plain session."""

from __future__ import annotations

import asyncio
import time

from emulator.events import AlertRaised, EventBus, SessionEnded, SessionStarted
from emulator.fleet.fleet import Fleet
from emulator.server.app import start_server
from emulator.server.notify_out import post_package0
from emulator.server.state import ServerState


async def _settle(fleet: Fleet) -> None:
    while fleet._tasks:
        await asyncio.gather(*list(fleet._tasks), return_exceptions=True)


def _run(profile: str, body):
    async def main():
        server = await start_server(ServerState())
        bus = EventBus()
        events: list[object] = []
        bus.subscribe(events.append, SessionStarted, SessionEnded, AlertRaised)
        fleet = Fleet(server=server.url, bus=bus)
        try:
            (dev,) = fleet.add(profile, 1)
            listener = await fleet.start_listener()
            result = await body(server.state, fleet, listener, dev)
            await _settle(fleet)
            return result, server.state.dm12_sessions.get(dev.id, []), events
        finally:
            await fleet.aclose()
            await server.stop()

    return asyncio.run(asyncio.wait_for(main(), 60))


def test_dm13_device_sends_the_requested_mo_and_drops_replays_and_expired_ones():
    async def body(state, fleet, listener, dev):
        url = listener.notify_url(dev.id)
        raw = state.dm12.build_package0(dev.id, expiry=int(time.time()) + 600, reason="firmware check",
                                        requested=("./DevDetail",))
        first = await post_package0(url, raw, "dm12")
        await _settle(fleet)
        replay = await post_package0(url, raw, "dm12")
        old = state.dm12.build_package0(dev.id, expiry=int(time.time()) - 5, reason="too late")
        expired = await post_package0(url, old, "dm12")
        return first, replay, expired

    (first, replay, expired), sessions, events = _run("smartphone-dm13", body)
    assert first[0] == 202, first
    assert replay[0] == 403 and "replayed" in replay[1]
    assert expired[0] == 403 and "expired" in expired[1]
    (session,) = sessions  # only the first one opened a session
    assert session.outcome == "completed"
    tnds = session.devinfo["./DevDetail"]
    assert tnds.startswith("<MgmtTree") and "X6-BL-3.01.02" in tnds  # the MO, values included, in Package 1
    assert any(isinstance(e, SessionStarted) and e.reason == "notification: firmware check" for e in events)


def test_dm12_device_reads_no_dm13_field():
    async def body(state, fleet, listener, dev):
        raw = state.dm12.build_package0(dev.id, expiry=int(time.time()) - 5, requested=("./DevDetail",))
        return await post_package0(listener.notify_url(dev.id), raw, "dm12")

    answer, sessions, _ = _run("smartphone", body)
    assert answer[0] == 202  # the expiry means nothing to it: it opens its session
    (session,) = sessions
    assert session.outcome == "completed" and "./DevDetail" not in session.devinfo


def test_dm13_device_checks_notifications_with_their_own_credentials():
    """Separate credentials for DM notification (DM 1.3): the account's NOTIFCRED secret, not the server's."""
    from emulator.protocol.syncml.notification import build_notification

    async def body(state, fleet, listener, dev):
        url = listener.notify_url(dev.id)
        as_dm12 = build_notification("demo-dm12", "demo-server-secret", b"\0\0\0\0", session_id=7)
        refused = await post_package0(url, as_dm12, "dm12")  # signed with the server's credentials
        accepted = await post_package0(url, state.dm12.build_package0(dev.id), "dm12")
        return refused, accepted, dev.account("demo-dm12", "dm12")

    (refused, accepted, account), sessions, _ = _run("smartphone-dm13", body)
    assert account.notification_secret == f"demo-notification-{account.client_user}"
    assert refused[0] == 403 and "does not verify" in refused[1]
    assert accepted[0] == 202 and [s.outcome for s in sessions] == ["completed"]
