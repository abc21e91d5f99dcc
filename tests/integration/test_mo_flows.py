"""LAWMO lock/unlock/wipe and SCOMO install/activate/remove as the per-device flows of the admin API
(``/admin/flow/<DevID>``, one-device campaigns of emulator.server.campaigns), end to end over real
loopback HTTP against the reference server, DM 1.2 and DM 2.0: each step Execs an operation, the
device answers 202, carries it out after the session (the SCOMO package really downloaded from the
server), and reports in a new session with the MO's generic alert, whose session takes the next
step."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from descriptor_cases import DESCRIPTOR_CASES
from session_kit import server_and_fleet

from emulator.events import OperationChanged, TransferProgress
from emulator.fleet.fleet import Fleet
from emulator.server import campaign_steps as steps
from emulator.server.app import start_server
from emulator.server.state import ServerState
from emulator.util.admin_token import admin_headers

PACKAGE_SIZE = 16384


async def _run(flow: str, protocol: str, *, prepare=None, serve=None, **params):
    async with server_and_fleet() as bench:
        server, fleet = bench.server, bench.fleet
        server.state.packages.add("notes.bin", PACKAGE_SIZE, "2.4.0")
        if serve is not None:
            serve(server.state)
        logged: list[object] = []
        fleet.bus.subscribe(logged.append, TransferProgress, OperationChanged)
        (dev,) = bench.phones()
        if prepare is not None:
            prepare(dev)
        if "package_url" in params:
            params["package_url"] = params["package_url"].format(base=server.url)
        server.control.start_flow(dev.id, flow, protocol, **params)
        first = await fleet.run_session(dev.id, protocol)
        await bench.settle(until=lambda: server.control.flow(dev.id, protocol)["outcome"] != "running")
        return first, server.control.flow(dev.id, protocol), dev, server.state, logged


def _ops(run) -> list[tuple[str, int]]:
    return [(node.rsplit("/", 1)[1], code) for node, code in run["results"]]


@pytest.mark.parametrize("protocol", ["dm12", "dm2"])
def test_lock_unlock_wipe_end_to_end(protocol):
    first, run, dev, state, _ = asyncio.run(_run("lawmo", protocol, wipe=["Contacts"]))
    assert first.outcome == "completed", first.detail
    assert run["outcome"] == "completed", run
    assert _ops(run) == [("FullyLock", 1200), ("UnLock", 1200), ("Wipe", 1200)]
    assert dev.tree.value("./LAWMO/State") == "30"
    assert dev.tree.children("./Data/Contacts") == [] and dev.tree.children("./Data/Photos") == ["IMG_0001"]
    if protocol == "dm2":
        alerts = state.device(dev.id).alerts_of(steps.LAWMO_ALERT)
        assert [a.source_uri for a in alerts] == [f"{steps.LAWMO_MOID}/LAWMO/Operations/{op}"
                                                  for op in ("FullyLock", "UnLock", "Wipe")]
        assert all(a.data == {"Value": "1200"} for a in alerts)
    else:
        alerts = [a for s in state.dm12_sessions[dev.id] for a in s.generic_alerts]
        assert [a.correlator for a in alerts] == [f"{run['campaign']}-{n}" for n in (1, 2, 3)]
        assert [(a.items[0].source, a.items[0].data) for a in alerts] == [
            (f"./LAWMO/Operations/{op}", "1200") for op in ("FullyLock", "UnLock", "Wipe")]


@pytest.mark.parametrize("protocol", ["dm12", "dm2"])
def test_install_activate_remove_end_to_end(protocol):
    root = steps.ROOTS[("scomo", protocol)]
    seen: dict[str, str] = {}

    def watch(dev):
        def on_change(event):
            if event.path == f"{root}/Inventory/Deployed/notes/State":
                seen.setdefault("states", "")
                seen["states"] += f"{event.new},"
        dev.tree.subscribe(on_change)

    first, run, dev, state, logged = asyncio.run(_run(
        "scomo", protocol, prepare=watch, package_url="{base}/packages/notes.bin", package="notes",
        pkg_id="com.acme.notes", version="2.4.0"))
    assert first.outcome == "completed", first.detail
    assert run["outcome"] == "completed", run
    assert _ops(run) == [("DownloadInstallInactive", 1200), ("Activate", 1200), ("Remove", 1200)]
    assert seen["states"].startswith("10,") and "20," in seen["states"]  # deployed inactive, then activated
    assert not dev.tree.exists(f"{root}/Inventory/Deployed/notes")
    assert dev.tree.value(f"{root}/Inventory/Delivered/notes/State") == "10"
    assert dev.tree.value(f"{root}/Inventory/Delivered/notes/Ext/Size") == str(PACKAGE_SIZE)
    assert state.packages.packages["notes.bin"].downloads >= 1  # really fetched from the server
    done = [e for e in logged if isinstance(e, TransferProgress) and e.outcome]
    assert [(e.outcome, e.done) for e in done] == [("completed", PACKAGE_SIZE)]
    states = [e.state for e in logged if isinstance(e, OperationChanged) and e.operation == "scomo"]
    assert states[:2] == ["30", "40"] and states.count("ended") == 3
    if protocol == "dm2":
        alerts = state.device(dev.id).alerts_of(steps.SCOMO_ALERT)
        assert alerts[0].target_uri == f"{steps.SCOMO_MOID}/SCOMO/Inventory/Deployed/notes"
        assert alerts[0].data == {"Value": "<ResultCode>1200</ResultCode><Identifier>com.acme.notes</Identifier>"}
    else:
        alerts = [a for s in state.dm12_sessions[dev.id] for a in s.generic_alerts]
        assert alerts[0].items[0].target == "./SCOMO/Inventory/Deployed/notes"
        assert alerts[0].items[0].meta.type == steps.SCOMO_ALERT


@pytest.mark.parametrize("protocol", ["dm12", "dm2"])
def test_a_garbage_package_url_stops_the_flow_with_1402_and_delivers_nothing(protocol):
    root = steps.ROOTS[("scomo", protocol)]
    first, run, dev, _, _ = asyncio.run(_run("scomo", protocol, package_url="not a url at all", package="bad"))
    assert run["outcome"] == "failed at scomo.install: 1402", run
    assert _ops(run) == [("DownloadInstallInactive", 1402)]  # activate and remove never went out
    assert dev.tree.value(f"{root}/Download/bad/Status") == "20"
    assert dev.tree.children(f"{root}/Inventory/Delivered") == []
    assert dev.tree.children(f"{root}/Inventory/Deployed") == ["com.nordwave.maps"]


@pytest.mark.parametrize("protocol", ["dm12", "dm2"])
def test_install_through_a_download_descriptor_end_to_end(protocol):
    """PkgURL names the package's OMA download descriptor: the device fetches the object it names,
    checks its size and SHA-256, posts 900 Success to its installNotifyURI and installs it."""
    root = steps.ROOTS[("scomo", protocol)]
    first, run, dev, state, logged = asyncio.run(_run(
        "scomo", protocol, package_url="{base}/packages/notes.bin/dd", package="notes", pkg_id="com.acme.notes",
        version="2.4.0"))
    assert first.outcome == "completed", first.detail
    assert run["outcome"] == "completed", run
    assert [code for _, code in run["results"]] == [1200, 1200, 1200]
    package = state.packages.get("notes.bin")
    assert dev.tree.value(f"{root}/Inventory/Delivered/notes/Ext/Size") == str(PACKAGE_SIZE)
    assert dev.tree.value(f"{root}/Inventory/Delivered/notes/Ext/SHA256") == package.sha256
    assert [line for _, line in package.notifications] == ["900 Success"]
    done = [e for e in logged if isinstance(e, TransferProgress) and e.outcome]
    assert done[-1].outcome == "completed" and done[-1].done == PACKAGE_SIZE  # the object, not the descriptor


SCOMO_DESCRIPTOR_CODES = {"oversize by descriptor": 1404, "wrong size": 1402, "corrupt": 1402,
                          "descriptor garbage": 1500}


@pytest.mark.parametrize("case", sorted(DESCRIPTOR_CASES))
def test_hostile_descriptors_end_the_scomo_download_with_its_code_and_deliver_nothing(case):
    url, prepare, knobs, told, package = DESCRIPTOR_CASES[case]
    root = steps.ROOTS[("scomo", "dm12")]
    first, run, dev, state, _ = asyncio.run(_run(
        "scomo", "dm12", serve=prepare, prepare=lambda d: d.behaviours.configure("scomo", knobs),
        package_url=url("{base}"), package="app"))
    code = SCOMO_DESCRIPTOR_CODES[case]
    assert run["outcome"] == f"failed at scomo.install: {code}", run
    assert _ops(run) == [("DownloadInstallInactive", code)]
    assert dev.tree.value(f"{root}/Download/app/Status") == "20"
    assert dev.tree.children(f"{root}/Inventory/Delivered") == []
    assert dev.tree.children(f"{root}/Inventory/Deployed") == ["com.nordwave.maps"]
    if package:
        assert [line for _, line in state.packages.get(package).notifications] == [told]


def test_the_admin_api_starts_and_reports_flows():
    async def main():
        server = await start_server(ServerState(push_wait_s=0.2))
        base = server.url + "/admin/flow"
        out = {}
        try:
            async with aiohttp.ClientSession(headers=admin_headers(server.state.admin_token)) as http:
                for name, method, url, body in (
                    ("start", "POST", f"{base}/IMEI:1", b'{"flow": "lawmo", "protocol": "dm12", "wipe": ["Photos"]}'),
                    ("get", "GET", f"{base}/IMEI:1?protocol=dm12", b""),
                    ("none", "GET", f"{base}/IMEI:1", b""),
                    ("unknown flow", "POST", f"{base}/IMEI:1", b'{"flow": "fumo"}'),
                    ("no url", "POST", f"{base}/IMEI:1", b'{"flow": "scomo"}'),
                    ("bad param", "POST", f"{base}/IMEI:1", b'{"flow": "lawmo", "colour": "red"}'),
                    ("bad wipe", "POST", f"{base}/IMEI:1", b'{"flow": "lawmo", "wipe": ["../x"]}'),
                ):
                    async with http.request(method, url, data=body) as r:
                        out[name] = r.status, await r.text()
        finally:
            await server.stop()
        return out

    out = asyncio.run(main())
    assert out["start"][0] == 200 and json.loads(out["start"][1])["stages"] == 3
    assert json.loads(out["get"][1])["outcome"] == "running"
    assert out["none"][0] == 404
    for name in ("unknown flow", "no url", "bad param", "bad wipe"):
        assert out[name][0] == 400, (name, out[name])


@pytest.mark.parametrize("protocol", ["dm12", "dm2"])
def test_factory_reset_keeps_the_profile_accounts_and_the_device_still_reaches_its_server(protocol):
    def add_account(dev):
        dev.tree.add("./DMAcc/rogue/ServerID", "rogue", by=None)
        dev.tree.add("./DM2/DMAcc/rogue/SrvID", "rogue", by=None)
        dev.tree.set_node("./Data/Contacts/3", "Carol")

    first, run, dev, _, _ = asyncio.run(_run("reset", protocol, prepare=add_account))
    assert first.outcome == "completed", first.detail
    # the result came back in a session of its own after the reset: the surviving account still works
    assert run["outcome"] == "completed" and run["results"][0][1] == 1200, run
    assert not dev.tree.exists("./DMAcc/rogue") and not dev.tree.exists("./DM2/DMAcc/rogue")
    assert {a.server_id for a in dev.accounts()} == {"demo-dm12", "demo-dm2"}
    assert dev.tree.children("./Data/Contacts") == ["1", "2"]


def test_hostile_execs_get_their_status_over_both_protocols_and_change_nothing():
    """DM 1.2: Exec Wipe naming an entry the list does not hold, Exec on a component that does not
    exist; DM 2.0: EXEC Remove of a component not deployed. Each is answered 404, nothing runs."""
    import socket

    from aiohttp import web

    from emulator.protocol.syncml.commands import Exec, Item
    from emulator.server.dm2 import setup_dm2
    from emulator.server.dm12 import Dm12Config, setup_dm12
    from emulator.server.state import STATE_KEY

    def script(config):
        def hostile(s):
            if s.statuses:
                return []
            return [Exec(cmd_id="0", correlator="w", items=[Item(target="./LAWMO/Operations/Wipe", data="Music")]),
                    Exec(cmd_id="0", items=[Item(target="./SCOMO/Inventory/Deployed/ghost/Operations/Remove")])]

        return [("hostile", hostile)]

    async def main():
        state = ServerState()
        app = web.Application()
        app[STATE_KEY] = state
        setup_dm2(app)
        setup_dm12(app, state, Dm12Config.shipped(script=script))
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        fleet = Fleet(server=base)
        try:
            (dev,) = fleet.add("smartphone", 1)
            dev.bearers, dev.bearer = {}, ""
            state.set_script(dev.id, [[["EXEC", f"{steps.SCOMO_MOID}/SCOMO/Inventory/Deployed/ghost/Operations/Remove"],
                                       ["EXEC", f"{steps.LAWMO_MOID}/LAWMO/Operations/Wipe?Music"]]])
            version = dev.tree.version
            dm12 = await fleet.run_session(dev.id, "dm12")
            dm2 = await fleet.run_session(dev.id, "dm2")
            return dev, state, dm12, dm2, version
        finally:
            await fleet.aclose()
            await runner.cleanup()

    dev, state, dm12, dm2, version = asyncio.run(main())
    assert dm12.outcome == dm2.outcome == "completed"
    (session,) = state.dm12_sessions[dev.id]
    assert [(s.target, s.code) for s in session.script_statuses()] == [
        ("./LAWMO/Operations/Wipe", 404), ("./SCOMO/Inventory/Deployed/ghost/Operations/Remove", 404)]
    assert [s.sc for s in state.device(dev.id).status_of("EXEC")] == [404, 404]
    assert dev.behaviours.jobs == [] and dev.tree.children("./Data/Contacts") == ["1", "2"]
