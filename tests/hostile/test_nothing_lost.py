"""Nothing lost between sessions: an app's write, a local set_node, a delegation and an app registration
made on the device, then a crash before any session. The restarted device (rebuilt from its
workspace) still has every one of them; the old code wrote the workspace only when a session ended."""

from __future__ import annotations

import asyncio

from emulator.scenarios.model import load_scenario
from emulator.scenarios.runner import ScenarioRunner
from emulator.server.app import start_server
from emulator.server.state import ServerState

SCENARIO = """\
name = "nothing-lost"
duration = "1.5s"

[[devices]]
name = "cars"
profile = "vehicle-telematics"
count = 1
protocol = "dm2"

[[sessions]]  # the only session starts after the restart: it cannot have saved the changes
at = "1s"

[[events]]
at = "100ms"
do = "delegate"
delegator = "insurer"
delegate = "oem"
scope = "./DevDetail"
kind = "shared"

[[events]]
at = "100ms"
do = "app"
app = "dashboard"
grants = ["./DevDetail"]
write_grants = ["./DevDetail"]

[[events]]
at = "200ms"
do = "app_write"
app = "dashboard"
uri = "./DevDetail/SwV"
value = "written-by-the-app"

[[events]]
at = "200ms"
do = "set_node"
path = "./DevDetail/FwV"
value = "set-on-the-device"

[[events]]
at = "400ms"
do = "crash"
duration = "300ms"

[[expect]]
node = "./DevDetail/SwV"
equals = "written-by-the-app"

[[expect]]
node = "./DevDetail/FwV"
equals = "set-on-the-device"

[[expect]]
server = "oem"
can_get = "./DevDetail/FwV"
"""


def test_local_changes_survive_a_crash_before_any_session(tmp_path):
    path = tmp_path / "lost.toml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    assert scenario.needs_store

    async def main():
        server = await start_server(ServerState())
        try:
            runner = ScenarioRunner(scenario, server.url)
            return runner, await runner.run()
        finally:
            await server.runner.cleanup()

    runner, result = asyncio.run(main())
    assert not result.problems, result.problems
    assert [s.start > 0.7 for s in result.sessions] == [True]  # after the crash and restart
    failed = [(r.expectation.line, r.detail) for r in result.expectations if not r.passed]
    assert failed == []
    (dev,) = runner.fleet.devices.values()
    assert "dashboard" in dev.apps.apps  # the registration came back with the device
    assert [r.delegate for r in dev.delegations.records.values()] == ["oem"]
