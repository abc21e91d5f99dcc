"""The emulator's own CPU per session (issue 18's target: 0.4 ms), against the quick reference server
of ``dm-emulator bench`` in a second process, over real loopback HTTP: each device runs one DM 1.2
and one DM 2.0 session, 200 at a time, as the bench does; only this process's CPU time is counted.

Run for real with ``pytest tests/benchmarks/test_session_cpu_bench.py --benchmark-enable -s``
(2,000 devices); under the default ``--benchmark-disable`` it runs once on 20 devices as a smoke
test. Figures are printed, never asserted; what is asserted is that every session completes and
that a device's second DM 1.2 session needs no challenge round (it kept the server's NextNonce).
"""

from __future__ import annotations

import asyncio
import time

from test_tree_bench import enabled, report  # one way to print figures

from emulator.commands.bench import BENCH_PROFILE, CONCURRENCY, server_process, unshaped
from emulator.device.profile import find_profile
from emulator.fleet.fleet import Fleet
from emulator.protocol.values import DmProtocol
from emulator.transport.http import HttpTransport


async def _sessions(url: str, devices: int) -> dict[str, float]:
    fleet = Fleet(server=url, transport=HttpTransport(max_connections=CONCURRENCY))
    try:
        fleet.add(unshaped(find_profile(BENCH_PROFILE)), devices)
        ids = list(fleet.devices)
        protocols: tuple[DmProtocol, ...] = ("dm12", "dm2")
        todo = iter([(d, p) for p in protocols for d in ids])
        failed: list[str] = []

        async def worker() -> None:
            for dev_id, protocol in todo:
                done = await fleet.run_session(dev_id, protocol)
                if done.outcome != "completed":
                    failed.append(f"{dev_id} {protocol}: {done.detail}")

        cpu0, wall0, msgs0 = time.process_time(), time.perf_counter(), fleet.stats.messages
        await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, 2 * devices))))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        messages = fleet.stats.messages - msgs0
        assert failed == []
        before = fleet.stats.messages
        again = await fleet.run_session(ids[0], "dm12")
        assert again.outcome == "completed", again.detail
        second_dm12 = fleet.stats.messages - before
    finally:
        await fleet.aclose()
    sessions = 2 * devices
    return {"sessions": sessions, "cpu_ms": cpu * 1000 / sessions, "per_s": sessions / wall,
            "messages": messages / sessions, "second_dm12": second_dm12}


def test_emulator_cpu_per_session(benchmark, request, capsys):
    devices = 2000 if enabled(request) else 20
    with server_process() as url:
        figures = benchmark.pedantic(lambda: asyncio.run(_sessions(url, devices)), rounds=1, iterations=1)
    # a first DM 1.2 session is challenged once (3 round trips); the next one uses the kept nonce (2)
    assert figures["second_dm12"] == 4
    report(request, capsys, f"{devices:,} devices, one DM 1.2 and one DM 2.0 session each: emulator CPU "
                            f"{figures['cpu_ms']:.3f} ms per session (target 0.4 ms), "
                            f"{figures['per_s']:,.0f} sessions/s, {figures['messages']:.1f} messages per session")
