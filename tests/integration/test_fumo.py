"""FUMO end to end over real loopback HTTP: the reference server's package repository (Range,
descriptors), a device's DownloadAndUpdate through its bearer, the State machine, the reboot, and
the generic alert with the FUMO result code in a later session, over DM 1.2 and DM 2.0; and what
hostile packages and servers do to a device (the right result code, the device left consistent)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from emulator.device.profile import find_profile
from emulator.events import OperationChanged, SessionEnded, TransferProgress
from emulator.fleet.fleet import Fleet
from emulator.mo.fumo import ALERT_TYPES
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Exec, Item, Meta, Replace
from emulator.server.app import start_server
from emulator.server.dm12 import Dm12Config, setup_dm12
from emulator.server.packages import setup_packages
from emulator.server.state import ServerState

FAST = {"install_s": 0.05, "reboot_s": 0.05}
DM1_NODE = "./FwUpdate/fw"


async def _settle(fleet: Fleet, ended: list[SessionEnded], n: int) -> None:
    for _ in range(800):
        if len(ended) >= n and not fleet._tasks:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"only {len(ended)} of {n} sessions ended: {[e.detail for e in ended]}")


def _dm12_run(url_of: Callable[[str], str], *, knobs: dict[str, object] | None = None, sessions: int = 2,
              prepare: Callable[[ServerState], None] | None = None, version: str = "X5P-FW-3.0") -> dict[str, Any]:
    """One DM 1.2 session that Replaces PkgURL/PkgVersion and Execs DownloadAndUpdate; then the fleet
    runs on until the device's report came back."""
    prof = find_profile("smartphone")
    where: list[str] = []

    def script(config):
        def fumo(s):
            if s.generic_alerts:
                return []
            meta = Meta(format="chr", type="text/plain")
            return [Replace(cmd_id="0", meta=meta, items=[
                        Item(target=f"{DM1_NODE}/DownloadAndUpdate/PkgURL", data=url_of(where[0])),
                        Item(target=f"{DM1_NODE}/PkgVersion", data=version)]),
                    Exec(cmd_id="0", correlator="fumo-1", items=[Item(target=f"{DM1_NODE}/DownloadAndUpdate")])]
        return [("fumo", fumo)]

    async def main():
        state = ServerState()
        if prepare is not None:
            prepare(state)
        app = web.Application()
        setup_dm12(app, state, Dm12Config.shipped(script=script))
        setup_packages(app, state.packages)
        runner = web.AppRunner(app)
        await runner.setup()
        import socket
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        where.append(base)
        fleet = Fleet(server=base)
        fleet.resume_wait_s = 0.01
        fleet.alert_retry_s = 0.01
        events: list[Any] = []
        ended: list[SessionEnded] = []
        fleet.bus.subscribe(ended.append, SessionEnded)
        fleet.bus.subscribe(events.append, OperationChanged, TransferProgress)
        try:
            (dev,) = fleet.add(prof, 1)
            dev.bearers, dev.bearer = {}, ""
            dev.behaviours.configure("fumo", {**FAST, **(knobs or {})})
            first = await fleet.run_session(dev.id, "dm12")
            await _settle(fleet, ended, sessions)
            return {"first": first, "dev": dev, "sessions": state.dm12_sessions[dev.id], "ended": ended,
                    "events": events, "state": state}
        finally:
            await fleet.aclose()
            await runner.cleanup()

    return asyncio.run(main())


def test_dm12_download_and_update_end_to_end():
    def prepare(state):
        state.packages.add("fw3", 600_000, "X5P-FW-3.0")

    r = _dm12_run(lambda base: f"{base}/packages/fw3", prepare=prepare)
    assert r["first"].outcome == "completed", r["first"].detail
    first, report = r["sessions"][0], r["sessions"][1]
    assert [s.code for s in first.statuses if s.step == "fumo" and s.cmd == "Exec"] == [codes.ACCEPTED]
    (alert,) = report.generic_alerts
    assert alert.correlator == "fumo-1"
    item = alert.items[0]
    assert (item.meta.type, item.meta.format, item.data, item.source) == (
        ALERT_TYPES["DownloadAndUpdate"], "int", "200", f"{DM1_NODE}/DownloadAndUpdate")
    dev = r["dev"]
    assert dev.tree.value("./DevDetail/FwV") == "X5P-FW-3.0"
    assert dev.tree.value(f"{DM1_NODE}/State") == "100"
    states = [e.state for e in r["events"] if isinstance(e, OperationChanged)]
    assert states == ["30", "40", "50", "60", "rebooting", "100", "ended"]
    progress = [e for e in r["events"] if isinstance(e, TransferProgress)]
    assert progress[-1].outcome == "completed" and progress[-1].done == 600_000
    assert len(progress) >= 3  # 3 pieces of 256 KiB


DM2_FUMO = "urn:oma:mo:oma-fumo:1.0"


def _dm2_run(pkg_url: Callable[[str], str], *, knobs: dict[str, object] | None = None, sessions: int = 2,
             prepare: Callable[[ServerState], None] | None = None, version: str = "X5P-FW-3.0") -> dict[str, Any]:
    """The full reference server: a DM 2.0 script HGETs PkgURL and PkgVersion into the device's FUMO
    instance and EXECs DownloadAndUpdate with the alerts ServerURI."""
    from emulator.protocol.dm2.moser import MOSerialization

    prof = find_profile("smartphone")

    async def main():
        running = await start_server()
        state = running.state
        if prepare is not None:
            prepare(state)
        base = running.url
        state.put_repo("fumo/url", [MOSerialization(f"{DM2_FUMO}//", {"DownloadAndUpdate": {"PkgURL": pkg_url(base)}})])
        state.put_repo("fumo/version", [MOSerialization(f"{DM2_FUMO}//", {"PkgVersion": version})])
        fleet = Fleet(server=base)
        fleet.resume_wait_s = 0.01
        fleet.alert_retry_s = 0.01
        events: list[Any] = []
        ended: list[SessionEnded] = []
        fleet.bus.subscribe(ended.append, SessionEnded)
        fleet.bus.subscribe(events.append, OperationChanged, TransferProgress)
        try:
            (dev,) = fleet.add(prof, 1)
            dev.bearers, dev.bearer = {}, ""
            dev.behaviours.configure("fumo", {**FAST, **(knobs or {})})
            running.control.set_script(dev.id, steps=[
                [["HGET", f"{base}/repo/fumo/url", f"{DM2_FUMO}/*/DownloadAndUpdate"],
                 ["HGET", f"{base}/repo/fumo/version", f"{DM2_FUMO}/*/PkgVersion"]],
                [["EXEC", f"{DM2_FUMO}/*/DownloadAndUpdate", "${alerts}"]],
            ])
            first = await fleet.run_session(dev.id, "dm2")
            await _settle(fleet, ended, sessions)
            return {"first": first, "dev": dev, "log": state.device(dev.id), "ended": ended, "events": events,
                    "state": state}
        finally:
            await fleet.aclose()
            await running.stop()

    return asyncio.run(main())


def test_dm2_download_and_update_end_to_end():
    def prepare(state):
        state.packages.add("fw3", 300_000, "X5P-FW-3.0")

    r = _dm2_run(lambda base: f"{base}/packages/fw3/dd", prepare=prepare)
    assert r["first"].outcome == "completed", r["first"].detail
    log = r["log"]
    assert [s.sc for s in log.status_of("EXEC")] == [202], log.statuses
    (alert,) = log.alerts_of(ALERT_TYPES["DownloadAndUpdate"])
    assert alert.source_uri == f"{DM2_FUMO}/fw/DownloadAndUpdate"
    assert alert.data == {"Value": "200"}
    dev = r["dev"]
    assert dev.tree.value("./DM2/DevInfo/FwV") == "X5P-FW-3.0"
    assert dev.tree.value("./DM2/oma-fumo/fw/State") == "100"
    assert r["state"].packages.get("fw3").notifications[0][1] == "900 Success"  # DLOTA install-notify
