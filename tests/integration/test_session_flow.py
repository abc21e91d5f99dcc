"""Both session drivers over real loopback HTTP: the same events, the same limits, the same shaping.

The asyncio driver (``drive``) and the blocking one (``drive_sync``, Locust's) run one flow; these
tests would catch them drifting apart again. (The hostile servers that never end a session are in
tests/hostile/test_session_limits.py.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys

import pytest
from session_kit import DRIVERS, Forever, hostile_account, phone, run_session, serve

from emulator.device.profile import find_profile
from emulator.events import MessageLogged, RoundTrip, SessionEnded, SessionStarted, UiFinished, UiRequested
from emulator.fleet.fleet import Fleet
from emulator.protocol.flow import SessionLimits
from emulator.transport.shaping import Shaping

# ------------------------------------------------------------------------------------ no drift


@pytest.fixture(scope="module")
def demo_server():
    """`dm-emulator server` as shipped: DM 2.0 demo with a SHOW web flow, DM 1.2 demo with auth."""
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "server", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("reference DM server on http://"), first + proc.stderr.read()
        yield first.split()[-1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def _shape(events: list[object]) -> list[tuple]:
    """The events as a driver-independent sequence: no times, ids, nonces; UI ends apart (below)."""
    out: list[tuple] = []
    for e in events:
        if isinstance(e, SessionStarted):
            out.append(("started", e.protocol, e.server))
        elif isinstance(e, MessageLogged):
            out.append(("message", e.direction, e.summary, e.content_type.split(";")[0], e.url.split("?")[0]))
        elif isinstance(e, RoundTrip):
            out.append(("round trip", e.kind, e.method, e.status))
        elif isinstance(e, UiRequested):
            out.append(("ui", e.kind))
        elif isinstance(e, SessionEnded):
            out.append(("ended", e.outcome))
    return out


@pytest.mark.parametrize("protocol", ["dm2", "dm12"])
def test_both_drivers_publish_the_same_session(demo_server, protocol):
    runs = {driver: run_session(driver, phone(demo_server, 20 + i), protocol) for i, driver in enumerate(DRIVERS)}
    (done_a, events_a), (done_b, events_b) = runs["asyncio"], runs["blocking"]
    assert done_a.outcome == done_b.outcome == "completed", (done_a, done_b)
    assert _shape(events_a) == _shape(events_b)
    assert len(_shape(events_a)) >= 8  # a real exchange, not two empty lists
    # a SHOW page ends while the session goes on: when exactly differs by design (drive_sync doc)
    ui_a = [e.outcome for e in events_a if isinstance(e, UiFinished)]
    assert ui_a == [e.outcome for e in events_b if isinstance(e, UiFinished)]
    if protocol == "dm2":
        assert ui_a == ["ok"]
    # every message both ways is logged, with the driver's round-trip time on the answers
    for events in (events_a, events_b):
        answers = [e for e in events if isinstance(e, MessageLogged) and e.direction == "in"]
        assert answers and all(e.rtt_ms is not None and e.rtt_ms >= 0 for e in answers)


def test_the_profiles_limits_reach_the_fleets_sessions():
    server = Forever()
    profile = dataclasses.replace(find_profile("smartphone"), limits=SessionLimits(max_messages=5))
    with serve(server.app()) as base:
        async def main():
            fleet = Fleet(server=base)
            try:
                (dev,) = fleet.add(profile)
                return await fleet.run_session(dev.id, "dm2", server_uri=f"{base}/dm2")
            finally:
                await fleet.aclose()

        done = asyncio.run(main())
    assert done.outcome == "failed" and "after 5 messages" in done.detail
    assert len(server.posts) == 5


# ------------------------------------------------------------------------------------ shaping


@pytest.mark.parametrize("driver", DRIVERS)
def test_bearer_shaping_applies_under_both_drivers(driver):
    server = Forever(end_at=2)
    delays: list[float] = []
    with serve(server.app()) as base:
        dev = phone(base)
        done, _ = run_session(driver, dev, "dm2", account=hostile_account(dev, "dm2", base),
                              shaping=Shaping(latency_ms=40), sleep=delays.append)
    assert done.outcome == "completed"
    assert delays == [0.04, 0.04]  # the bearer's latency before each of the two messages


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_bearer_that_loses_everything_fails_the_session_under_both_drivers(driver):
    server = Forever()
    with serve(server.app()) as base:
        dev = phone(base)
        done, _ = run_session(driver, dev, "dm2", account=hostile_account(dev, "dm2", base),
                              shaping=Shaping(loss=1.0), sleep=lambda s: None)
    assert done.outcome == "failed" and "retransmissions (simulated loss 100.0%)" in done.detail
    assert server.posts == []
