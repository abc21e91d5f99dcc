"""After a SHOW's page flow, both resumption styles against the reference server: the server holds
its answer (PROTOCOL.md 1.19, ``ui_resume = "held"``) or ENDs and the device resumes in a session of
its own when the page ends (seeds/004 B.3, ``ui_resume = "client"``). Either way the form's result
reaches the tree."""

from __future__ import annotations

import asyncio

import pytest

from emulator.events import SessionEnded, SessionStarted
from emulator.fleet.fleet import Fleet
from emulator.fleet.headless import HeadlessUi
from emulator.mo.accounts import configure_account
from emulator.protocol.dm2.client import ALERT_UI_RESUME
from emulator.server.app import start_server
from emulator.server.state import ServerState
from emulator.server.ui_flows import WLAN_MOID

FORM = {"ssid": "Lab-5G", "security": "wpa3", "password": "s3cret-pass"}


def _grant_wlan(dev) -> None:
    perm = "./DM2/DMAcc/demo-dm2/Perm"
    n = len(dev.tree.children(perm)) + 1
    dev.tree.set_node(f"{perm}/{n}", format="node")
    dev.tree.set_node(f"{perm}/{n}/MOID", WLAN_MOID)


def _run(server_mode: str, device_mode: str):
    state = ServerState(show_hold_s=5, ui_resume=server_mode)

    async def main():
        server = await start_server(state)
        fleet = Fleet(server=server.url, ui=HeadlessUi(FORM))
        events: list[object] = []
        fleet.bus.subscribe(events.append, SessionStarted, SessionEnded)
        try:
            (dev,) = fleet.add("smartphone", 1)
            dev.bearers, dev.bearer = {}, ""
            _grant_wlan(dev)
            if device_mode != "held":
                configure_account(dev.tree, dev.account(protocol="dm2"), ui_resume=device_mode)
            state.set_script(dev.id, [[["SHOW", "${ui:wifi}"]]])
            first = await fleet.run_session(dev.id, "dm2")
            want = 1 if device_mode == "held" else 2
            for _ in range(400):  # bounded: the resumed session is the fleet's own task
                if not fleet._tasks and sum(isinstance(e, SessionEnded) for e in events) >= want:
                    break
                await asyncio.sleep(0.025)
            return first, dev, events
        finally:
            await fleet.aclose()
            await server.stop()

    first, dev, events = asyncio.run(main())
    return first, dev, events, state


@pytest.mark.parametrize("mode", ["held", "client"])
def test_both_styles_bring_the_form_result_into_the_tree(mode):
    first, dev, events, state = _run(mode, mode)
    assert first.outcome == "completed", first.detail
    ended = [e for e in events if isinstance(e, SessionEnded)]
    assert all(e.outcome == "completed" for e in ended), [e.detail for e in ended]
    assert len(ended) == (1 if mode == "held" else 2)
    assert dev.tree.value("./DM2/ext-dmemulator-wlan/i1/SSID") == "Lab-5G"
    log = state.device(dev.id)
    resumed = log.alerts_of(ALERT_UI_RESUME)
    if mode == "client":
        (alert,) = resumed
        assert alert.data["Result"] and "/ui/" in alert.data["URL"]
        started = [e for e in events if isinstance(e, SessionStarted)]
        assert started[1].reason == "UI resumed"
    else:
        assert not resumed
