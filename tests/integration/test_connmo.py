"""Connectivity under server control (DM-HLF-007) over real loopback HTTP: what a server writes into
the ConnMO-style object (or a bearer MO's State) takes effect on the device's transport when its
session ends; values the device cannot act on are refused (400) and change nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from emulator.events import SessionEnded
from emulator.fleet.fleet import Fleet
from emulator.protocol.dm2.moser import MOSerialization
from emulator.protocol.syncml.commands import Command, Item, Meta, Replace
from emulator.server.app import RunningServer, start_server

CONN = "urn:oma:mo:ext-dmemulator-connmo:1.0/"


def _replaces(*pairs: tuple[str, str]) -> Any:
    """A one-off DM 1.2 script: one package of Replaces."""
    def script(config: Any) -> Any:
        def step(s: Any) -> list[Command]:
            return [Replace(cmd_id="0", meta=Meta(format="chr", type="text/plain"), items=[Item(target=t, data=v)])
                    for t, v in pairs]

        return [("connectivity", step)]

    return script


async def _with(body: Any) -> Any:
    server: RunningServer = await start_server()
    fleet = Fleet(server=server.url)
    ended: list[SessionEnded] = []
    fleet.bus.subscribe(ended.append, SessionEnded)
    try:
        return await body(server, fleet, ended)
    finally:
        await fleet.aclose()
        await server.stop()


def _statuses(server: RunningServer, dev_id: str) -> dict[str, int]:
    return {r.target: r.code for s in server.state.dm12_sessions[dev_id] for r in s.script_statuses()}


def test_dm12_disabling_the_active_bearer_moves_the_next_session() -> None:
    async def body(server: RunningServer, fleet: Fleet, ended: list[SessionEnded]) -> Any:
        (dev,) = fleet.add("smartphone", 1)
        assert dev.bearer == "lte0"
        server.state.dm12_scripts[dev.id] = _replaces(("./ConnMO/NAP/lte0/State", "down"))
        first = await fleet.run_session(dev.id, "dm12")
        second = await fleet.run_session(dev.id, "dm12")
        return first, second, dev.bearer, dev.tree.value("./ConnMO/Active"), dev.tree.value(
            "./DevDetail/Bearer/lte0/State"), _statuses(server, dev.id), ended

    first, second, bearer, active, bearer_mo, statuses, ended = asyncio.run(_with(body))
    assert first.outcome == second.outcome == "completed"
    assert statuses["./ConnMO/NAP/lte0/State"] == 200
    assert ended[0].bearer == "lte0"  # the status of the Replace went over the bearer it came on
    assert bearer == active == "nr0" and ended[1].bearer == "nr0"
    assert bearer_mo == "down"  # the bearer MO follows


def test_dm12_bearer_mo_state_takes_effect_and_all_down_is_offline() -> None:
    async def body(server: RunningServer, fleet: Fleet, ended: list[SessionEnded]) -> Any:
        (dev,) = fleet.add("smartphone", 1)
        server.state.dm12_scripts[dev.id] = _replaces(("./DevDetail/Bearer/lte0/State", "down"),
                                                      ("./DevDetail/Bearer/nr0/State", "down"))
        first = await fleet.run_session(dev.id, "dm12")
        offline = await fleet.run_session(dev.id, "dm12")
        dev.set_bearer("wlan0", up=True)  # the user switches Wi-Fi on: back online
        back = await fleet.run_session(dev.id, "dm12")
        return first, offline, back, ended, dev.diagnostics.log_text()

    first, offline, back, ended, log = asyncio.run(_with(body))
    assert first.outcome == "completed"
    assert offline.outcome == "failed" and "no bearer is up" in offline.detail
    assert back.outcome == "completed" and ended[-1].bearer == "wlan0"
    assert "now on no bearer (offline)" in log


def test_dm2_preferred_bearer_and_settings() -> None:
    async def body(server: RunningServer, fleet: Fleet, ended: list[SessionEnded]) -> Any:
        (dev,) = fleet.add("smartphone", 1)
        for key, uri, data in (("pref", CONN + "/PrefConRef", {"PrefConRef": "wlan0"}),
                               ("wlan", CONN + "/NAP/wlan0/State", {"State": "up"}),
                               ("ssid", CONN + "/NAP/wlan0/SSID", {"SSID": "Office 5G"})):
            server.state.put_repo(f"conn/{key}", [MOSerialization(client_uri=uri, mo_data=data)])
        server.state.dm2_once[dev.id] = [[["HGET", "${base}/repo/conn/pref", CONN + "/PrefConRef"],
                                          ["HGET", "${base}/repo/conn/wlan", CONN + "/NAP/wlan0/State"],
                                          ["HGET", "${base}/repo/conn/ssid", CONN + "/NAP/wlan0/SSID"]], [["END"]]]
        first = await fleet.run_session(dev.id, "dm2")
        codes = [s.sc for s in server.state.device(dev.id).status_of("HGET")]
        second = await fleet.run_session(dev.id, "dm2")
        return first, second, codes, ended, dev.tree.value("./DM2/ConnMO/NAP/wlan0/SSID"), dev.preferred

    first, second, codes, ended, ssid, preferred = asyncio.run(_with(body))
    assert codes == [200, 200, 200]
    assert first.outcome == second.outcome == "completed"
    assert ended[0].bearer == "lte0" and ended[1].bearer == "wlan0"
    assert ssid == "Office 5G" and preferred == "wlan0"


def test_hostile_connectivity_writes_are_400_and_change_nothing() -> None:
    async def body(server: RunningServer, fleet: Fleet, ended: list[SessionEnded]) -> Any:
        (dev,) = fleet.add("smartphone", 1)
        server.state.dm12_scripts[dev.id] = _replaces(
            ("./ConnMO/NAP/lte0/State", "maybe"), ("./ConnMO/PrefConRef", "eth9"),
            ("./ConnMO/NAP/wlan0/SSID", "x" * 33), ("./ConnMO/NAP/lte0/APN", ""),
            ("./DevDetail/Bearer/nr0/State", "off"), ("./ConnMO/Active", "wlan0"))
        before = {n.path: n.value for n in dev.tree.walk("./ConnMO")}
        done = await fleet.run_session(dev.id, "dm12")
        after = {n.path: n.value for n in dev.tree.walk("./ConnMO")}
        return done, _statuses(server, dev.id), before, after, dev.bearer, dict(dev.bearers)

    done, statuses, before, after, bearer, bearers = asyncio.run(_with(body))
    assert done.outcome == "completed"
    assert statuses == {"./ConnMO/NAP/lte0/State": 400, "./ConnMO/PrefConRef": 400, "./ConnMO/NAP/wlan0/SSID": 400,
                        "./ConnMO/NAP/lte0/APN": 400, "./DevDetail/Bearer/nr0/State": 400,
                        "./ConnMO/Active": 405}
    assert after == before and bearer == "lte0"
    assert all(b.up == (name != "wlan0") for name, b in bearers.items())
