"""Every scenario shipped in assets/scenarios/ passes against the reference server (issue 14).

Each runs alone, in a loop and against a reference server of its own, as a user runs it: run side
by side in one loop they shared one core, and on a loaded machine a short scenario's own time limit
("within") was spent waiting for the others' devices. pytest-xdist spreads them over the workers. A scenario whose fleet is too big for the suite is scaled down here, and only that: its
count, ramp-up and time limit; its sessions, events and expectations are the shipped ones.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from emulator.scenarios.model import SCENARIO_DIR, Scenario, load_scenario
from emulator.scenarios.runner import RunResult, ScenarioRunner
from emulator.server.app import start_server
from emulator.server.state import ServerState

SUITE_DEVICES = 100  # the most devices one shipped scenario may bring into the suite
BOUND_S = 240.0  # a hang bound for one scenario, not a speed figure


def scaled(sc: Scenario) -> Scenario:
    """The scenario with at most SUITE_DEVICES devices, its ramp-up shrunk in proportion."""
    total = sc.device_count
    if total <= SUITE_DEVICES:
        return sc
    factor = SUITE_DEVICES / total
    groups = tuple(dataclasses.replace(g, count=max(1, int(g.count * factor))) for g in sc.groups)
    pacing = dataclasses.replace(sc.pacing, ramp_up=sc.pacing.ramp_up * factor)
    return dataclasses.replace(sc, groups=groups, pacing=pacing)


async def _run(sc: Scenario) -> RunResult:
    server = await start_server(ServerState())
    try:  # notify events go through the reference server's admin API, which asks for its token
        return await ScenarioRunner(sc, server.url, admin_token=server.state.admin_token).run()
    finally:
        await server.stop()


SHIPPED = sorted(SCENARIO_DIR.glob("*.toml"))


def test_the_scenarios_the_readme_names_are_shipped():
    assert {f.stem for f in SHIPPED} >= {"demo", "morning-rush", "bearer-handover", "resilience", "delegation",
                                         "bootstrap", "fumo-campaign"}


@pytest.mark.parametrize("path", SHIPPED, ids=[f.stem for f in SHIPPED])
def test_every_shipped_scenario_passes_against_the_reference_server(path):
    async def main():
        return await asyncio.wait_for(_run(scaled(load_scenario(path))), BOUND_S)

    result = asyncio.run(main())
    broken = [f"{r.expectation.describe()}: {r.detail}" for r in result.expectations if not r.passed]
    assert result.passed, (path.name, broken, result.problems)
    assert result.sessions and all(s.outcome for s in result.sessions), path.name


def test_morning_rush_counts_one_session_per_phone_though_each_sends_an_async_result():
    """The DM 2.0 EXEC result goes out in a session of its own: a follow-up, not a second check-in."""
    sc = load_scenario(SCENARIO_DIR / "morning-rush.toml")
    sc = dataclasses.replace(sc, groups=(dataclasses.replace(sc.groups[0], count=4),),
                             pacing=dataclasses.replace(sc.pacing, ramp_up=0.0))
    result = asyncio.run(_run(sc))
    assert result.passed, [r.detail for r in result.expectations]
    reasons = sorted(s.reason for s in result.sessions)
    assert reasons == ["async result"] * 4 + ["scheduled"] * 4  # both ran, and both are in the report
    assert all(s.follow_up for s in result.sessions if s.reason == "async result")
