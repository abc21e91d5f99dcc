"""FUMO end to end over real loopback HTTP: the reference server's package repository (Range,
descriptors), a device's DownloadAndUpdate through its bearer, the State machine, the reboot, and
the generic alert with the FUMO result code in a later session, over DM 1.2 and DM 2.0; and what
hostile packages and servers do to a device (the right result code, the device left consistent)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from descriptor_cases import DESCRIPTOR_CASES
from session_kit import server_and_fleet, settle

from emulator.device.profile import find_profile
from emulator.events import MessageLogged, OperationChanged, SessionEnded, TransferProgress
from emulator.fleet.fleet import Fleet
from emulator.mo.fumo import ALERT_TYPES, RESULT_CODES
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Exec, Item, Meta, Replace
from emulator.server.app import start_server
from emulator.server.dm12 import Dm12Config, setup_dm12
from emulator.server.packages import setup_packages
from emulator.server.state import ServerState

FAST = {"install_s": 0.05, "reboot_s": 0.05}
DM1_NODE = "./FwUpdate/fw"


def _dm12_run(url_of: Callable[[str], str], *, knobs: dict[str, object] | None = None, sessions: int = 2,
              prepare: Callable[[ServerState], None] | None = None, version: str = "X5P-FW-3.0",
              commands: Callable[[str], list[Any]] | None = None, cut: int = 0,
              plan: list[Callable[[str], list[Any]]] | None = None) -> dict[str, Any]:
    """One DM 1.2 session that Replaces PkgURL/PkgVersion and Execs DownloadAndUpdate (or sends
    ``commands(base)``); then the fleet runs on until the device's report came back. ``cut``: the
    device switches bearer while its ``cut``-th package request is in flight (it keeps its bearers).
    ``plan``: the commands of each session in turn (the device's reports open the later ones)."""
    prof = find_profile("smartphone")
    where: list[str] = []

    turns: list[int] = []

    def script(config):
        def fumo(s):
            if plan is not None:
                turns.append(1)
                return plan[len(turns) - 1](where[0]) if len(turns) <= len(plan) else []
            if s.generic_alerts:
                return []
            if commands is not None:
                return commands(where[0])
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
        devices: list[Any] = []
        package_requests: list[str] = []

        @web.middleware
        async def switch(request: web.Request, handler):
            if request.path.startswith("/packages/"):
                package_requests.append(request.headers.get("Range", ""))
                if len(package_requests) == cut and devices:
                    devices[0].set_bearer("nr0")
            return await handler(request)

        app = web.Application(middlewares=[switch])
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
        fleet.bus.subscribe(events.append, OperationChanged, TransferProgress, MessageLogged)
        try:
            (dev,) = fleet.add(prof, 1)
            devices.append(dev)
            if not cut:
                dev.bearers, dev.bearer = {}, ""
            dev.behaviours.configure("fumo", {**FAST, **(knobs or {})})
            first = await fleet.run_session(dev.id, "dm12")
            await settle(fleet, ended, sessions)
            return {"first": first, "dev": dev, "sessions": state.dm12_sessions[dev.id], "ended": ended,
                    "events": events, "state": state, "ranges": package_requests}
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
        fleet.bus.subscribe(events.append, OperationChanged, TransferProgress, MessageLogged)
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
            await settle(fleet, ended, sessions)
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
    summaries = [e.summary for e in r["events"] if isinstance(e, MessageLogged)]
    assert any("alerts: downloadandupdate 200 Successful" in x for x in summaries), summaries


def test_a_campaign_runs_on_both_protocols_and_its_progress_is_on_the_admin_api():
    """Four phones, two per protocol: the reference server's campaign sends each the FUMO script in
    its next session, notes the 202s and the reports; the admin API (with its token) shows it."""
    import json


    async def main():
        async with server_and_fleet(ServerState()) as bench:
            running, fleet, base = bench.server, bench.fleet, bench.server.url
            running.control.add_campaign({"id": "spring", "package": "fw4", "size": 300_000, "version": "X5P-FW-4.0"})
            devs = bench.phones(4)
            firsts = await asyncio.gather(*(fleet.run_session(d.id, "dm12" if i < 2 else "dm2")
                                            for i, d in enumerate(devs)))
            await bench.settle(8)
            again = await fleet.run_session(devs[0].id, "dm12")  # a later session: the campaign is done with it
            api = await fleet.transport.request("GET", f"{base}/admin/campaigns", headers=bench.admin)
            page = await fleet.transport.request("GET", f"{base}/admin/campaigns?format=html", headers=bench.admin)
            refused = await fleet.transport.request("GET", f"{base}/admin/campaigns")
            one = await fleet.transport.request("GET", f"{base}/admin/campaigns/spring", headers=bench.admin)
            return devs, firsts, again, api, page, refused, one, running.state

    devs, firsts, again, api, page, refused, one, state = asyncio.run(main())
    assert all(f.outcome == "completed" for f in firsts), [f.detail for f in firsts]
    assert again.outcome == "completed"
    summary = json.loads(api.body)["campaigns"][0]
    assert summary["states"]["reported"] == 4, json.loads(one.body)["runs"]
    assert summary["results"] == {"200": 4}
    assert {r["protocol"] for r in json.loads(one.body)["runs"]} == {"dm12", "dm2"}
    assert all(r["exec_status"] == 202 for r in json.loads(one.body)["runs"])
    assert b"<h1>Campaigns</h1>" in page.body and b"Successful" in page.body and b"accepted p50" in page.body
    assert set(summary["time_in_state_s"]) >= {"sent", "accepted"}
    assert refused.status == 401
    for dev in devs:
        assert dev.tree.value("./DevDetail/FwV") == "X5P-FW-4.0"
    assert len(state.campaigns.alerts) == 4


FUMO_DESCRIPTOR_CODES = {"oversize by descriptor": 501, "wrong size": 402, "corrupt": 402, "descriptor garbage": 500}

HOSTILE = {
    # case: (PkgURL from the base, prepare the server, knobs, result code, final State)
    "bad url": (lambda b: "ftp://fota.example.com/fw.bin", None, {}, 411, "20"),
    "not found": (lambda b: f"{b}/packages/nothing", None, {}, 500, "20"),
    "oversize": (lambda b: f"{b}/packages/big", lambda s: s.packages.add("big", 300_000), {"free_bytes": 299_999},
                 501, "20"),
    **{case: (url, prepare, knobs, FUMO_DESCRIPTOR_CODES[case], "20")
       for case, (url, prepare, knobs, _, _) in DESCRIPTOR_CASES.items()},
    "range ignored": (lambda b: f"{b}/packages/old", lambda s: s.packages.add("old", 600_000, ranges=False),
                      {}, 200, "100"),
    "low battery": (lambda b: f"{b}/packages/fw", lambda s: s.packages.add("fw", 1000), {"battery": 10,
                                                                                          "min_battery": 20}, 450, "70"),
    "user declines": (lambda b: f"{b}/packages/fw", lambda s: s.packages.add("fw", 1000), {"consent": "decline"},
                      401, "70"),
    "install fails": (lambda b: f"{b}/packages/fw", lambda s: s.packages.add("fw", 1000), {"fail": {"410": 1.0}},
                      410, "70"),
    "package rejected": (lambda b: f"{b}/packages/fw", lambda s: s.packages.add("fw", 1000), {"fail": {"403": 1.0}},
                         403, "80"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_packages_get_their_fumo_result_code_and_leave_the_device_consistent(case):
    from emulator.mo.check import check_subtree

    url, prepare, knobs, code, state = HOSTILE[case]
    r = _dm12_run(url, prepare=prepare, knobs=knobs)
    (alert,) = r["sessions"][1].generic_alerts
    assert alert.items[0].data == str(code), case
    dev = r["dev"]
    assert dev.tree.value(f"{DM1_NODE}/State") == state
    assert dev.tree.value("./DevDetail/FwV") == ("X5P-FW-3.0" if code == 200 else "X5P-BL-2.14.07")
    assert check_subtree(dev.tree, DM1_NODE) == []
    # the instance is free again: a new operation is accepted
    assert dev.tree.exec(f"{DM1_NODE}/Download", by="demo-dm12") == 202
    # the traffic says what the code means
    summaries = [e.summary for e in r["events"] if isinstance(e, MessageLogged)]
    assert any(f"Alert 1226 downloadandupdate {code} {RESULT_CODES[code]}" in s for s in summaries), summaries


@pytest.mark.parametrize("case", sorted(c for c, (*_, package) in DESCRIPTOR_CASES.items() if package))
def test_hostile_descriptors_post_their_install_status(case):
    url, prepare, knobs, told, package = DESCRIPTOR_CASES[case]
    r = _dm12_run(url, prepare=prepare, knobs=knobs)
    assert [line for _, line in r["state"].packages.get(package).notifications] == [told]


@pytest.mark.parametrize("policy", ["accept", "decline"])
def test_a_campaign_with_consent_asks_the_dm12_user_first(policy):
    """``consent``: an Alert 1101 before the Exec; a user who says no gets no update (401 on the
    server's side), one who says yes gets it."""
    from emulator.fleet.headless import HeadlessUi

    async def main():
        async with server_and_fleet(ServerState(), ui=HeadlessUi(policy=policy)) as bench:
            running, fleet = bench.server, bench.fleet
            running.control.add_campaign({"id": "ask", "package": "fw5", "size": 1000,
                                          "version": "X5P-FW-5.0", "consent": True})
            (dev,) = bench.phones()
            await fleet.run_session(dev.id, "dm12")
            await bench.settle(2 if policy == "accept" else 1)
            return dev, running.state.campaigns.get("ask").details()

    dev, details = asyncio.run(main())
    (run,) = details["runs"]
    if policy == "accept":
        assert (run["state"], run["result"]) == ("reported", 200)
        assert dev.tree.value("./DevDetail/FwV") == "X5P-FW-5.0"
    else:
        assert (run["state"], run["result"]) == ("declined", 401)
        assert dev.tree.value("./DevDetail/FwV") == "X5P-BL-2.14.07"
        assert dev.tree.value(f"{DM1_NODE}/State") == "10"


def test_dm12_update_installs_the_package_the_server_wrote_into_pkgdata():
    """FUMO's first scenario: the package itself Replaced into Update/PkgData (a DM 1.2 large object,
    bigger than one message), then Exec of Update: 202, installed, the update alert with 200."""
    package = bytes(range(256)) * 200  # 51,200 bytes: several messages of the phone's 16 KiB

    def commands(base: str) -> list[Any]:
        return [Replace(cmd_id="0", items=[
                    Item(target=f"{DM1_NODE}/Update/PkgData", data=package,
                         meta=Meta(format="bin", type="application/octet-stream"))]),
                Replace(cmd_id="0", meta=Meta(format="chr", type="text/plain"),
                        items=[Item(target=f"{DM1_NODE}/PkgVersion", data="X5P-FW-6.0")]),
                Exec(cmd_id="0", correlator="upd-1", items=[Item(target=f"{DM1_NODE}/Update")])]

    r = _dm12_run(lambda base: "", commands=commands)
    first = r["sessions"][0]
    assert [s.code for s in first.script_statuses() if s.cmd == "Exec"] == [codes.ACCEPTED], first.statuses
    (alert,) = r["sessions"][1].generic_alerts
    assert (alert.correlator, alert.items[0].meta.type, alert.items[0].data) == ("upd-1", ALERT_TYPES["Update"], "200")
    dev = r["dev"]
    assert dev.tree.value("./DevDetail/FwV") == "X5P-FW-6.0"
    assert dev.tree.value(f"{DM1_NODE}/State") == "100"
    assert dev.tree.value(f"{DM1_NODE}/Update/PkgData") in (b"", "")  # installed: the package is deleted


def test_a_bearer_switch_during_the_download_resumes_it_with_range():
    """The phone moves from LTE to 5G while the second piece of its firmware is on the way: that
    piece is lost with the connection, asked for again from where it stopped, and the update goes on."""
    r = _dm12_run(lambda base: f"{base}/packages/fw3", prepare=lambda s: s.packages.add("fw3", 600_000, "X5P-FW-3.0"),
                  cut=2)
    (alert,) = r["sessions"][1].generic_alerts
    assert alert.items[0].data == "200"
    assert r["ranges"] == ["bytes=0-262143", "bytes=262144-524287", "bytes=262144-524287", "bytes=524288-599999"]
    final = [e for e in r["events"] if isinstance(e, TransferProgress) and e.outcome]
    assert [(e.outcome, e.resumed, e.done) for e in final] == [("completed", 1, 600_000)]
    assert r["dev"].bearer == "nr0"


@pytest.mark.parametrize("policy", ["accept", "decline"])
def test_a_campaign_with_consent_shows_the_dm2_user_a_page_first(policy):
    """DM 2.0 side of ``consent``: a SHOW of the campaign's page; the answer brings the HGETs and
    the EXEC (accepted) or ends the session (declined: 401 on the server's side, no update)."""
    from emulator.fleet.headless import HeadlessUi

    async def main():
        async with server_and_fleet(ServerState(), ui=HeadlessUi(policy=policy)) as bench:
            running, fleet = bench.server, bench.fleet
            running.control.add_campaign({"id": "ask2", "package": "fw7", "size": 1000,
                                          "version": "X5P-FW-7.0", "consent": True})
            (dev,) = bench.phones()
            first = await fleet.run_session(dev.id, "dm2")
            await bench.settle(2 if policy == "accept" else 1)
            return first, dev, running.state.campaigns.get("ask2").details()

    first, dev, details = asyncio.run(main())
    assert first.outcome == "completed", first.detail
    (run,) = details["runs"]
    if policy == "accept":
        assert (run["state"], run["result"], run["exec_status"]) == ("reported", 200, 202)
        assert dev.tree.value("./DM2/DevInfo/FwV") == "X5P-FW-7.0"
    else:
        assert (run["state"], run["result"]) == ("declined", 401)
        assert dev.tree.value("./DM2/oma-fumo/fw/State") == "10"


def test_dm12_download_then_update_are_two_operations_with_their_own_alerts():
    """Exec Download: State 40 and a download alert; the session that brings it Execs Update: the
    package downloaded is installed, an update alert follows."""
    meta = Meta(format="chr", type="text/plain")
    plan = [
        lambda base: [Replace(cmd_id="0", meta=meta, items=[
                          Item(target=f"{DM1_NODE}/Download/PkgURL", data=f"{base}/packages/fw8"),
                          Item(target=f"{DM1_NODE}/PkgVersion", data="X5P-FW-8.0")]),
                      Exec(cmd_id="0", correlator="dl", items=[Item(target=f"{DM1_NODE}/Download")])],
        lambda base: [Exec(cmd_id="0", correlator="up", items=[Item(target=f"{DM1_NODE}/Update")])],
    ]
    r = _dm12_run(lambda base: "", plan=plan, sessions=3, prepare=lambda s: s.packages.add("fw8", 20_000))
    reports = [(a.correlator, a.items[0].meta.type, a.items[0].data)
               for session in r["sessions"] for a in session.generic_alerts]
    assert reports == [("dl", ALERT_TYPES["Download"], "200"), ("up", ALERT_TYPES["Update"], "200")]
    states = [e.state for e in r["events"] if isinstance(e, OperationChanged)]
    assert states == ["30", "40", "ended", "50", "60", "rebooting", "100", "ended"]
    assert r["dev"].tree.value("./DevDetail/FwV") == "X5P-FW-8.0"
