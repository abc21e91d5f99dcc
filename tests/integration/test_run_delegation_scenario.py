"""The shipped delegation scenario against the reference server running in this process: three
authorities delegate and revoke, an app stays inside its grants, and every check at the end holds.
A scenario whose expectations contradict what the device does fails, naming the line."""

from __future__ import annotations

import asyncio
from pathlib import Path

from emulator.cli import main
from emulator.commands.bench import server_process
from emulator.scenarios.model import find_scenario, load_scenario
from emulator.scenarios.runner import RunResult, ScenarioRunner
from emulator.server.app import start_server
from emulator.server.state import ServerState

EXAMPLE = find_scenario("delegation")


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    return [i for i, line in enumerate(text.splitlines(), 1) if needle in line][occurrence - 1]


def run_in_process(path: Path) -> tuple[RunResult, ScenarioRunner]:
    async def go() -> tuple[RunResult, ScenarioRunner]:
        server = await start_server(ServerState(show_hold_s=0.2, push_wait_s=0.2))
        try:
            runner = ScenarioRunner(load_scenario(path), server.url)
            return await runner.run(), runner
        finally:
            await server.stop()

    return asyncio.run(go())


def test_shipped_delegation_scenario_passes_against_the_reference_server():
    result, runner = run_in_process(EXAMPLE)
    assert result.problems == []
    failed = [(r.expectation.describe(), r.detail) for r in result.expectations if not r.passed]
    assert failed == []
    assert result.passed
    assert len(result.expectations) == 7
    assert len(result.sessions) == 2 and {s.outcome for s in result.sessions} == {"completed"}
    assert runner.fleet is not None
    for dev_ids in runner.members.values():
        for dev_id in dev_ids:
            dev = runner.fleet.device(dev_id)
            # in force: insurer -> oem (shared) and its sub-delegation oem -> fleet; the full one was revoked
            assert sorted((d.delegator, d.delegate, d.scope, d.kind) for d in dev.delegations.active()) == [
                ("insurer", "oem", "./DevDetail", "shared"), ("oem", "fleet", "./DevDetail", "shared")]
            refused = {(r.app, r.operation, r.target) for r in dev.apps.refusals}
            assert refused == {("spy", "register", "./DMAcc"), ("dashboard", "write", "./DevDetail/FwV"),
                               ("dashboard", "read", "./DevInfo/Man")}
            assert set(dev.apps.apps) == {"dashboard"}


def test_what_the_device_does_not_do_fails_the_run_with_its_line(tmp_path):
    text = EXAMPLE.read_text()
    # the fleet operator's sub-delegation now expected to work (it has no level left: 425)
    text = text.replace('scope = "./DevDetail"\nexpect = "refused"', 'scope = "./DevDetail"', 1)
    # the app's read outside its grants expected to work (403)
    text = text.replace('uri = "./DevInfo/Man"\nexpect = "refused"', 'uri = "./DevInfo/Man"', 1)
    # a grant over the accounts (credentials) expected to be given (403)
    text = text.replace('grants = ["./DMAcc"]\nexpect = "refused"', 'grants = ["./DMAcc"]', 1)
    # the revoked fleet operator expected to still read ./DevInfo, and the OEM expected locked out of ./DevDetail
    text = text.replace('server = "fleet"\ncannot_get = "./DevInfo/Man"', 'server = "fleet"\ncan_get = "./DevInfo/Man"')
    text = text.replace('server = "oem"\ncan_get = "./DevDetail/FwV"', 'server = "oem"\ncannot_get = "./DevDetail/FwV"')
    path = tmp_path / "contradicted.toml"
    path.write_text(text)
    result, _ = run_in_process(path)
    assert not result.passed
    events = {line_of(text, 'delegator = "fleet"') - 3: "delegate", line_of(text, 'uri = "./DevInfo/Man"') - 4:
              "app_read", line_of(text, 'grants = ["./DMAcc"]') - 4: "app"}
    for line, action in events.items():
        mine = [p for p in result.problems if p.startswith(f"line {line}: {action} on ")]
        assert len(mine) == 2, (line, result.problems)  # one per car
        assert all("refused (4" in p for p in mine)
    assert len(result.problems) == 6
    failed = {r.expectation.line: r.detail for r in result.expectations if not r.passed}
    fleet_line = line_of(text, 'can_get = "./DevInfo/Man"', 1) - 2
    oem_line = line_of(text, 'cannot_get = "./DevDetail/FwV"') - 2
    assert set(failed) == {fleet_line, oem_line}
    assert failed[fleet_line].startswith("2 of 2: ") and "refused (425)" in failed[fleet_line]
    assert failed[oem_line].startswith("2 of 2: ") and "allowed" in failed[oem_line]


def test_a_refusal_the_device_does_not_make_is_a_problem(tmp_path):
    """expect = "refused" on something the device allows fails the run too."""
    text = EXAMPLE.read_text().replace('uri = "./DevDetail/FwV"\n\n', 'uri = "./DevDetail/FwV"\nexpect = "refused"\n\n', 1)
    path = tmp_path / "s.toml"
    path.write_text(text)
    result, _ = run_in_process(path)
    line = line_of(text, 'do = "app_read"') - 2
    assert [p.split(": ", 2)[2] for p in result.problems if p.startswith(f"line {line}: ")] == [
        "expected a refusal, but the device allowed it (read ./DevDetail/FwV = 'E3.21.004')"] * 2
    assert not result.passed


def test_run_command_finds_the_shipped_scenario_by_name(capsys):
    """What the README tells a user to type: dm-emulator run --server URL --scenario delegation."""
    with server_process() as url:
        code = main(["run", "--server", url, "--scenario", "delegation"])
    out = capsys.readouterr()
    assert code == 0, out.err + out.out
    assert "FAIL" not in out.out and "insurer can Get ./DevInfo/Man" in out.out
