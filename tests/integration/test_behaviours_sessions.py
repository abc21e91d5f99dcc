"""Declared Exec behaviours over real loopback HTTP: an asynchronous vendor update answers 202, runs
on, and reports in a later session: DM 1.2 Alert 1226 with the Exec's Correlator to the reference
server; DM 2.0 the ExecResult to the EXEC's ServerURI plus the declared alert."""

from __future__ import annotations

import asyncio
import json
import socket

from aiohttp import web

from emulator.device.profile import find_profile
from emulator.events import SessionEnded
from emulator.fleet.fleet import Fleet
from emulator.protocol.dm2 import media
from emulator.protocol.dm2.client import ALERT_EXEC_RESULT
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Exec, Item
from emulator.server.dm12 import Dm12Config, setup_dm12
from emulator.server.state import ServerState

UPDATE = '''
[[behaviours]]
node = "{node}"
[[behaviours.steps]]
set = {{ "{state}" = "updating" }}
[[behaviours.steps]]
wait = 0.05
[[behaviours.steps]]
fail = {p}
status = 410
[[behaviours.steps]]
set = {{ "{state}" = "updated" }}
[[behaviours.steps]]
alert = {{ type = "Reversed-Domain-Name: com.acme.update", data = "{{result}}" }}
'''


async def _until_sessions(fleet: Fleet, ended: list[SessionEnded], n: int) -> None:
    """Wait (bounded) until ``n`` sessions ended: the follow-up session is the fleet's own task."""
    for _ in range(400):
        if len(ended) >= n and not fleet._tasks:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"only {len(ended)} of {n} sessions ended: {[e.detail for e in ended]}")


def _dm12(profile_with, p: float):
    prof = find_profile(str(profile_with(UPDATE.format(node="./Vendor/Acme/Update",
                                                                 state="./Vendor/Acme/State", p=p))))

    def script(config):
        def update(s):
            if s.generic_alerts:  # the device's report: nothing more to do
                return []
            return [Exec(cmd_id="0", correlator="corr-7", items=[Item(target="./Vendor/Acme/Update", data="v2")])]

        return [("exec", update)]

    async def main():
        app = web.Application()
        state = ServerState()
        setup_dm12(app, state, Dm12Config.shipped(script=script))
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        fleet = Fleet(server=base)
        ended: list[SessionEnded] = []
        fleet.bus.subscribe(ended.append, SessionEnded)
        try:
            (dev,) = fleet.add(prof, 1)
            dev.bearers, dev.bearer = {}, ""
            first = await fleet.run_session(dev.id, "dm12")
            await _until_sessions(fleet, ended, 2)
            return first, dev, state.dm12_sessions[dev.id], ended
        finally:
            await fleet.aclose()
            await runner.cleanup()

    return asyncio.run(main())


def test_dm12_async_exec_answers_202_then_reports_with_the_correlator(profile_with):
    first, dev, sessions, ended = _dm12(profile_with, 0.0)
    assert first.outcome == "completed", first.detail
    assert [s.code for s in sessions[0].statuses if s.step == "exec"] == [codes.ACCEPTED]
    assert [e.outcome for e in ended] == ["completed", "completed"]
    (alert,) = sessions[1].generic_alerts
    assert alert.correlator == "corr-7"
    item = alert.items[0]
    assert (item.meta.type, item.data, item.source) == (
        "Reversed-Domain-Name: com.acme.update", "200", "./Vendor/Acme/Update")
    assert dev.tree.value("./Vendor/Acme/State") == "updated"


def test_dm12_async_exec_that_fails_reports_its_failure_status(profile_with):
    _, dev, sessions, _ = _dm12(profile_with, 1.0)
    assert sessions[1].generic_alerts[0].items[0].data == "410"
    assert dev.tree.value("./Vendor/Acme/State") == "updating"


class Dm2Server:
    """Session 1: EXEC the vendor node with a ServerURI, then END; later sessions: END at once."""

    def __init__(self, node_uri: str) -> None:
        self.node_uri = node_uri
        self.packages: list[dict] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.packages.append(body)
        cmd = [["END"]]
        if len(self.packages) == 1:
            cmd = [["EXEC", self.node_uri, f"{self.url}/results"]]  # END next: the 202 needs a Package#3
        return web.Response(body=json.dumps({"CMD": cmd}).encode(), content_type=media.REQUEST)


def test_dm2_async_exec_sends_the_exec_result_to_the_server_uri(profile_with):
    node, state = "./DM2/DevInfo/Ext/AcmeUpdate", "./DM2/DevInfo/Ext/AcmeState"
    prof = find_profile(str(profile_with(UPDATE.format(node=node, state=state, p=0.0))))
    server = Dm2Server("urn:oma:mo:oma-dm-devinfo:1.2//Ext/AcmeUpdate")

    async def main():
        app = web.Application()
        app.router.add_post("/dm2", server.handle)
        app.router.add_post("/results", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        server.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        fleet = Fleet(server=server.url)
        ended: list[SessionEnded] = []
        fleet.bus.subscribe(ended.append, SessionEnded)
        try:
            (dev,) = fleet.add(prof, 1)
            dev.bearers, dev.bearer = {}, ""
            first = await fleet.run_session(dev.id, "dm2")
            await _until_sessions(fleet, ended, 2)
            return first, dev, ended
        finally:
            await fleet.aclose()
            await runner.cleanup()

    first, dev, ended = asyncio.run(main())
    assert first.outcome == "completed", first.detail
    assert server.packages[1]["Status"][0]["sc"] == 202
    alerts = {a["AlertType"]: a for a in server.packages[2]["Alert"]}
    assert alerts[ALERT_EXEC_RESULT]["Data"] == {"sc": 200}
    assert alerts[ALERT_EXEC_RESULT]["SourceURI"] == "urn:oma:mo:oma-dm-devinfo:1.2/DevInfo/Ext/AcmeUpdate"
    assert alerts["Reversed-Domain-Name: com.acme.update"]["Data"] == {"Value": "200"}
    assert dev.tree.value(state) == "updated"
    assert [e.outcome for e in ended] == ["completed", "completed"]
