"""Scenario semantics a QA engineer relies on (issue 14): event targeting (a share, a seeded random
pick, the devices in session now) and events that hit nobody; retries after an outage and the
``eventually`` expectation; which server a device talks to when its profile names another one."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from emulator.errors import FileFormatError
from emulator.scenarios.model import MAX_RETRY, load_scenario
from emulator.scenarios.runner import RunResult, ScenarioRunner
from emulator.server.app import start_server
from emulator.server.state import ServerState

ROOT = Path(__file__).resolve().parents[2]


def scenario(tmp_path: Path, text: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_scenario(path)


async def _run(sc, server_url: str | None = None) -> RunResult:
    server = await start_server(ServerState())
    try:
        return await ScenarioRunner(sc, server_url or server.url).run()
    finally:
        await server.stop()


PHONES = """\
seed = 4
[[devices]]
name = "phones"
profile = "smartphone"
count = 10
protocol = "dm12"
"""


def test_percent_and_seeded_random_pick(tmp_path):
    sc = scenario(tmp_path, PHONES + """
        [[events]]
        at = 0
        do = "set_node"
        devices = "phones"
        percent = 25
        pick = "random"
        path = "./DevDetail/FwV"
        value = "x"
        """)
    runner = ScenarioRunner(sc, "http://127.0.0.1:9")
    runner.members = {"phones": [f"d{i}" for i in range(10)]}
    event = sc.events[0]
    picked = runner.selected(event.devices)
    assert len(picked) == 3  # 25 % of 10, rounded up
    assert picked == runner.selected(event.devices)  # the same pick every time (seed and line)
    assert picked != ["d0", "d1", "d2"]  # not the first ones
    other = scenario(tmp_path, PHONES.replace("seed = 4", "seed = 5") + textwrap.dedent("""
        [[events]]
        at = 0
        do = "set_node"
        devices = "phones"
        percent = 25
        pick = "random"
        path = "./DevDetail/FwV"
        value = "x"
        """), "t.toml")
    runner2 = ScenarioRunner(other, "http://127.0.0.1:9")
    runner2.members = runner.members
    assert runner2.selected(other.events[0].devices) != picked  # another seed, another pick
    # limits at their exact values
    assert len(runner.selected(type(event.devices)(percent=100.0))) == 10
    assert len(runner.selected(type(event.devices)(percent=0.1))) == 1
    assert len(runner.selected(type(event.devices)(limit=10))) == 10


@pytest.mark.parametrize("pacing, says", [
    ("retry = 11", "11 must be between 0 and 10"),
    ("retry = -1", "-1 must be at least 0"),
    ('retry_backoff = "1s"', "retry_backoff goes with retry"),
    ('retry = 1\nretry_backoff = "soon"', "is not a duration"),
])
def test_retry_limits(tmp_path, pacing, says):
    with pytest.raises(FileFormatError, match=says):
        scenario(tmp_path, PHONES + "[pacing]\n" + pacing + "\n")
    assert MAX_RETRY == 10
    assert scenario(tmp_path, PHONES + "[pacing]\nretry = 10\n", "ok.toml").pacing.retry == 10
    assert scenario(tmp_path, PHONES + "[pacing]\nretry = 0\n", "zero.toml").pacing.retry == 0


@pytest.mark.parametrize("event, says", [
    ("percent = 0", "must be more than 0 and at most 100"),
    ("percent = 100.5", "must be more than 0 and at most 100"),
    ("percent = 10\nlimit = 1", "not both"),
    ('pick = "any"', "'any' is not one of first, random"),
    ('state = "busy"', "'busy' is not one of in_session, idle"),
])
def test_targeting_mistakes(tmp_path, event, says):
    with pytest.raises(FileFormatError, match=says):
        scenario(tmp_path, PHONES + f'[[events]]\nat = 0\ndo = "crash"\n{event}\n')


def test_in_session_targets_devices_in_session_and_an_event_that_hits_nobody_is_reported(tmp_path):
    sc = scenario(tmp_path, PHONES + """
        duration = "3s"

        [[sessions]]
        at = "0.5s"

        [[events]]
        at = "0.1s"
        do = "set_node"
        state = "in_session"
        path = "./DevDetail/FwV"
        value = "early"

        [[events]]
        at = "2.5s"
        do = "set_node"
        state = "idle"
        path = "./DevDetail/FwV"
        value = "late"

        [[expect]]
        node = "./DevDetail/FwV"
        equals = "late"
        """.replace('duration = "3s"\n', "").replace("seed = 4\n", 'seed = 4\nduration = "3s"\n'))
    result = asyncio.run(_run(sc))
    assert result.passed, [r.detail for r in result.expectations]
    (warning,) = result.warnings
    assert "line " in warning and "set_node at 0.1 s hit no device (all devices in session)" in warning
    assert [e["hit"] for e in result.events] == [0, 10]
    assert result.report()["warnings"] == [warning]


def test_retry_after_an_outage_and_every_device_eventually_completes(tmp_path):
    sc = scenario(tmp_path, """
        seed = 2
        [[devices]]
        name = "meters"
        profile = "smartphone"
        count = 3
        protocol = "dm12"

        [pacing]
        retry = 3
        retry_backoff = "0.4s"

        [[events]]
        at = 0
        do = "server_down"
        duration = "0.5s"

        [[expect]]
        status = "completed"

        [[expect]]
        eventually = "completed"

        [[expect]]
        sessions = 1
        """)
    result = asyncio.run(_run(sc))
    assert result.passed, [r.detail for r in result.expectations]
    report = result.report()
    assert report["sessions_completed"] == 3 and report["sessions_recovered"] == 3 and report["sessions_failed"] == 0
    assert all("scenario outage" in s.detail for s in result.sessions if s.retried)
    # without retry, the same outage fails every session, and `eventually` says which devices
    no_retry = scenario(tmp_path, sc.source and Path(sc.source).read_text().replace("retry = 3\n", "")
                        .replace('retry_backoff = "0.4s"\n', ""), "nr.toml")
    failed = asyncio.run(_run(no_retry))
    eventually = next(r for r in failed.expectations if r.expectation.eventually)
    assert not eventually.passed and len(eventually.broken) == 3
    assert all("last session failed" in b for b in eventually.broken)


def test_the_command_line_server_wins_over_a_profile_that_names_another_host(tmp_path):
    text = (ROOT / "profiles" / "smartphone.toml").read_text()
    text = text.replace('name = "smartphone"', 'name = "elsewhere-phone"', 1)
    text = text.replace('protocol = "dm12"\n', 'protocol = "dm12"\nserver_uri = "http://127.0.0.2:9/dm12"\n', 1)
    profile = tmp_path / "elsewhere-phone.toml"
    profile.write_text(text)
    sc = scenario(tmp_path, f"""
        [[devices]]
        name = "phones"
        profile = "{profile}"
        count = 2
        protocol = "dm12"
        """)
    result = asyncio.run(_run(sc))
    assert result.passed, [r.detail for r in result.expectations]  # 127.0.0.2:9 would have refused
    (group,) = result.report()["groups"]
    assert group["server"] == result.server.rstrip("/") + "/dm12"
    (warning,) = result.warnings
    assert "names the server http://127.0.0.2:9/dm12; --server wins" in warning
