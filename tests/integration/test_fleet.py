"""The fleet runs whole sessions of both protocols against the reference server over loopback HTTP."""

from __future__ import annotations

import asyncio

from aiohttp import web

from emulator.events import EventBus, SessionEnded
from emulator.fleet.fleet import Fleet
from emulator.server.app import start_server
from emulator.server.state import ServerState
from emulator.store import Workspace


async def _serve(state: ServerState) -> tuple[web.AppRunner, str]:
    server = await start_server(state)
    return server.runner, server.url


def test_dm2_demo_session_runs_the_ui_flow_and_the_async_alert_session(tmp_path):
    async def main():
        state = ServerState(show_hold_s=5, push_wait_s=1)
        runner, base = await _serve(state)
        bus = EventBus()
        ended: list[SessionEnded] = []
        bus.subscribe(ended.append, SessionEnded)
        with Workspace.open(tmp_path / "ws") as ws:
            fleet = Fleet(server=base, bus=bus, workspace=ws)
            try:
                (dev,) = fleet.add("smartphone", 1)
                dev.set_bearer("lte0", up=True)  # keep shaping small: LTE latency only
                done = await fleet.run_session(dev.id, "dm2")
                for _ in range(100):  # the EXEC result goes out in a session of its own
                    if len(ended) >= 2:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await fleet.aclose()
                await runner.cleanup()
            sessions = ws.sessions(dev.id)
            stored = ws.load_tree(dev.id)
        return dev, done, ended, sessions, stored

    dev, done, ended, sessions, stored = asyncio.run(main())
    assert done.outcome == "completed", done
    assert [e.outcome for e in ended] == ["completed", "completed"]
    # the Wi-Fi wizard's default answers reached the tree, and the device connected
    wlan = [p for p in stored.children("./DM2") if "wlan" in p]
    assert wlan, stored.children("./DM2")
    (instance,) = stored.children(f"./DM2/{wlan[0]}")
    assert stored.value(f"./DM2/{wlan[0]}/{instance}/State") == "connected"
    assert {s.outcome for s in sessions} == {"completed"} and len(sessions) == 2
    assert dev.state == "idle" and dev.last_result.startswith("completed")


def test_dm12_sessions_keep_their_nonces_between_sessions():
    async def main():
        state = ServerState()
        runner, base = await _serve(state)
        fleet = Fleet(server=base)
        try:
            (dev,) = fleet.add("smartphone", 1)
            first = await fleet.run_session(dev.id, "dm12")
            nonce_after_first = dev.account(protocol="dm12").client_nonce
            second = await fleet.run_session(dev.id, "dm12")
        finally:
            await fleet.aclose()
            await runner.cleanup()
        return first, second, nonce_after_first, state

    first, second, nonce, state = asyncio.run(main())
    assert first.outcome == second.outcome == "completed", (first, second)
    assert nonce not in (b"", b"\x00\x00\x00\x00")  # the server's NextNonce was kept
    sessions = next(iter(state.dm12_sessions.values()))
    assert len(sessions) == 2
