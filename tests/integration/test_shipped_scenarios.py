"""Every scenario shipped in assets/scenarios/ passes against the reference server (issue 14).

They run side by side in one loop, each against a reference server of its own (their device
identities overlap), so the suite waits for the longest one (about 30 s of scenario time), not for
their sum. A scenario whose fleet is too big for the suite is scaled down here, and only that: its
count, ramp-up and time limit; its sessions, events and expectations are the shipped ones.
"""

from __future__ import annotations

import asyncio
import dataclasses

from emulator.scenarios.model import SCENARIO_DIR, Scenario, load_scenario
from emulator.scenarios.runner import RunResult, ScenarioRunner
from emulator.server.app import start_server
from emulator.server.state import ServerState

SUITE_DEVICES = 100  # the most devices one shipped scenario may bring into the suite
BOUND_S = 240.0  # a hang bound for the whole test, not a speed figure


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


def test_every_shipped_scenario_passes_against_the_reference_server():
    files = sorted(SCENARIO_DIR.glob("*.toml"))
    assert {f.stem for f in files} >= {"demo", "morning-rush", "bearer-handover", "resilience", "delegation"}
    scenarios = [scaled(load_scenario(f)) for f in files]

    async def main():
        return await asyncio.wait_for(asyncio.gather(*(_run(sc) for sc in scenarios)), BOUND_S)

    results = asyncio.run(main())
    for f, result in zip(files, results, strict=True):
        broken = [f"{r.expectation.describe()}: {r.detail}" for r in result.expectations if not r.passed]
        assert result.passed, (f.name, broken, result.problems)
        assert result.sessions and all(s.outcome for s in result.sessions), f.name


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
