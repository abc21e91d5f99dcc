"""A held DM 2.0 answer never starves the request that releases it (issue 14: fleets deadlocked).

The reference server holds the answer to a Package#3 while the web page its SHOW opened is not
submitted (PROTOCOL 1.19 item 5). Sessions in flight beyond the connection pool used to take every
connection with such held messages, and the form posts that would release them waited for a
connection for ever. Session messages and every other request now have pools of their own.
"""

from __future__ import annotations

import asyncio

import pytest

from emulator.fleet.fleet import Fleet
from emulator.server.app import start_server
from emulator.server.state import ServerState
from emulator.transport.http import FETCHES, MESSAGES, HttpTransport

HOLD_S = 600.0  # longer than the test may last: a held answer is released by its form or never
BOUND_S = 90.0  # a deadlock bound, not a speed figure: the run takes about a second


def test_more_sessions_in_flight_than_connections_complete_every_ui_flow():
    async def main():
        server = await start_server(ServerState(show_hold_s=HOLD_S))
        fleet = Fleet(server=server.url, transport=HttpTransport(max_connections=10))
        try:
            devs = fleet.add("smartphone", 20)
            for dev in devs:
                dev.set_bearer("wlan0", up=True, make_current=True)
            runs = [fleet.run_session(dev.id, "dm2") for dev in devs]  # 20 in flight, 10 connections
            done = await asyncio.wait_for(asyncio.gather(*runs), BOUND_S)
        finally:
            await fleet.aclose()
            await server.stop()
        return done, server.state

    done, state = asyncio.run(main())
    assert [d.outcome for d in done] == ["completed"] * 20, [d.detail for d in done if d.outcome != "completed"]
    flows = list(state.ui_sessions.values())
    assert len(flows) == 20 and {ui.outcome for ui in flows} == {"submitted"}


def test_lanes_have_their_own_limits():
    transport = HttpTransport(max_connections=3, fetch_connections=7)
    assert transport.limits == {MESSAGES: 3, FETCHES: 7}
    assert HttpTransport(max_connections=1).limits == {MESSAGES: 1, FETCHES: 1}  # the smallest pool
    with pytest.raises(ValueError):
        HttpTransport(max_connections=0)
    with pytest.raises(ValueError):
        HttpTransport(fetch_connections=0)
