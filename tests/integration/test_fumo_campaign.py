"""The shipped firmware campaign scenario, scaled down: 100 phones (both protocols) against the
reference server in this process; the scenario starts the campaign through the admin API, the
report's histogram of FUMO result codes matches the failure mix within binomial bounds (4 standard
deviations; the devices' draws are seeded by profile and index, so the run is the same every time),
every State is timed, and the server's campaign saw the same results."""

from __future__ import annotations

import asyncio
import math

from emulator.scenarios.model import find_scenario, load_scenario
from emulator.scenarios.runner import ScenarioRunner
from emulator.server.app import start_server

MIX = {"402": 0.2, "410": 0.15}  # stronger than the shipped 3 % / 1 %, so 100 devices say something


def _scaled(tmp_path):
    text = find_scenario("fumo-campaign").read_text()
    for old, new in (("count = 500", "count = 50"), ('ramp_up = "20s"', 'ramp_up = "1s"'),
                     ("size = 131072", "size = 16384"), ("install_s = 2", "install_s = 0.05"),
                     ("reboot_s = 1", "reboot_s = 0.05"), ("bearer_kbps = 2000", "bearer_kbps = 50000"),
                     ('fail = { "402" = 0.03, "410" = 0.01 }', 'fail = { "402" = 0.2, "410" = 0.15 }')):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "campaign.toml"
    path.write_text(text)
    return load_scenario(path)


def _within(count: int, n: int, p: float) -> bool:
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return mean - 4 * sd <= count <= mean + 4 * sd


def test_the_campaign_scenario_reports_the_mix_within_binomial_bounds(tmp_path):
    scenario = _scaled(tmp_path)

    async def main():
        running = await start_server()
        try:
            result = await ScenarioRunner(scenario, running.url, admin_token=running.state.admin_token).run()
            return result, running.state.campaigns.get(scenario.name).summary()
        finally:
            await running.stop()

    result, server_side = asyncio.run(main())
    report = result.report()
    assert result.passed, (report["problems"], report["expectations"])
    fumo = report["operations"]["fumo"]
    n = sum(fumo["results"].values())
    assert n == 100 and fumo["unfinished"] == 0, fumo
    for code, p in MIX.items():
        assert _within(fumo["results"].get(code, 0), n, p), (code, fumo["results"])
    assert _within(fumo["results"]["200"], n, 1 - sum(MIX.values())), fumo["results"]
    assert set(fumo["states"]) >= {"30", "40", "50", "60", "rebooting"}
    assert fumo["states"]["60"]["count"] == n  # every install ran (the failures are drawn at its end)
    assert server_side["results"] == fumo["results"]  # the server saw every report
    downloads = report["operations"]["downloads"]
    assert (downloads["count"], downloads["failed"]) == (200, 0)  # a descriptor and a package each
