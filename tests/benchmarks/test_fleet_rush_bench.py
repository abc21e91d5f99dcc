"""A DM 2.0 rush with web UI flows: many phones, many sessions in flight, against the full reference
server (SHOW answers held until each form is submitted) in a second process.

Run for real with ``pytest tests/benchmarks/test_fleet_rush_bench.py --benchmark-enable -s``: 5,000
phones, ``max_in_flight = 500`` (issue 14: this deadlocked above ~200 in flight). Under the default
``--benchmark-disable`` it runs once on 60 phones with 30 in flight as a smoke test. What is
asserted is that every session completes (no stall); the figures are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import textwrap
import time

from test_tree_bench import enabled, report  # one way to print figures

from emulator.commands.bench import reference_server_process
from emulator.scenarios.model import load_scenario
from emulator.scenarios.runner import ScenarioRunner

RUSH = """\
name = "rush"
seed = 1

[pacing]
max_in_flight = {in_flight}

[[devices]]
name = "phones"
profile = "smartphone"
count = {count}
protocol = "dm2"

[[expect]]
status = "completed"

[[expect]]
devices = "phones"
sessions = 1
"""


def test_dm2_rush_with_web_ui_flows_completes_without_stall(request, capsys, tmp_path):
    full = enabled(request)
    count, in_flight = (5000, 500) if full else (60, 30)
    path = tmp_path / "rush.toml"
    path.write_text(textwrap.dedent(RUSH.format(count=count, in_flight=in_flight)))
    with reference_server_process() as url:
        started = time.perf_counter()
        result = asyncio.run(ScenarioRunner(load_scenario(path), url).run())
        wall = time.perf_counter() - started
    data = result.report()
    assert result.passed, [r.detail for r in result.expectations]
    assert data["sessions_completed"] == data["attempts"] == 2 * count  # each check-in and its async result
    report(request, capsys, f"DM 2.0 rush: {count} phones, {in_flight} in flight, web UI flow each: "
                            f"{wall:.1f} s, {data['sessions_per_s']} sessions/s, latency p50 "
                            f"{data['latency_p50_ms']} ms / p95 {data['latency_p95_ms']} ms / p99 "
                            f"{data['latency_p99_ms']} ms")

