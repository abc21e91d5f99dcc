"""`dm-emulator run` against the reference server in another process: reports, exit codes, scenarios.

The server is the bench's (the reference server with quick scripts for both protocols, no web UI
hold), so a run takes well under a second; the timeline test checks every kind of event.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import textwrap
from xml.etree import ElementTree as ET

import pytest

from emulator.cli import main
from emulator.commands.bench import server_process
from emulator.scenarios.model import load_scenario
from emulator.scenarios.runner import ScenarioRunner

ADMIN_TOKEN = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def server():
    with server_process(ADMIN_TOKEN) as url:
        yield url


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_fleet_run_writes_json_and_junit_and_exits_0(server, tmp_path, capsys):
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    code = main(["run", "--server", server, "--profile", "smartphone", "--count", "6", "--protocol", "dm12",
                 "--report", str(report), "--junit", str(junit)])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(report.read_text())
    assert data["sessions_completed"] == 6 and data["sessions_failed"] == 0
    assert {r["outcome"] for r in data["results"]} == {"completed"} and len({r["device"] for r in data["results"]}) == 6
    assert data["messages"] >= 6 * 4
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root
    assert suite.get("tests") == "7" and suite.get("failures") == "0"  # 6 devices and the expectation
    assert len({c.get("name") for c in suite.iter("testcase") if c.get("classname") == "fleet.devices"}) == 6
    assert "6/6 sessions completed" in out.out


def test_failed_sessions_exit_1(tmp_path, capsys):
    """Nothing listens on port 9 (discard): every session fails, the run says so and exits 1."""
    report = tmp_path / "r.json"
    code = main(["run", "--server", "http://127.0.0.1:9", "--profile", "smartphone", "--count", "2",
                 "--protocol", "dm2", "--report", str(report)])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot connect" in err
    data = json.loads(report.read_text())
    assert data["sessions_failed"] == 2 and data["sessions_completed"] == 0 and not data["passed"]


def test_scenario_mistake_stops_before_anything_runs(tmp_path, capsys):
    text = '[[devices]]\nprofile = "smartphone"\ncount = 2\n\n[[events]]\nat = "1s"\ndo = "reboot"\n'
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code = main(["run", "--server", "http://127.0.0.1:9", "--scenario", str(path)])
    err = capsys.readouterr().err
    assert code == 2  # cannot start: nothing ran
    assert f"{path}:{line_of(text, 'do = ')}:" in err and "'reboot' is not one of" in err
    assert "cannot connect" not in err  # no session was tried


def test_failed_expectation_names_its_line_and_exits_1(server, tmp_path, capsys):
    text = textwrap.dedent("""\
        [[devices]]
        name = "phones"
        profile = "smartphone"
        count = 3
        protocol = "dm2"

        [[expect]]
        status = "completed"

        [[expect]]
        node = "./DevDetail/FwV"
        equals = "not what it is"
        """)
    path = tmp_path / "s.toml"
    path.write_text(text)
    junit = tmp_path / "j.xml"
    code = main(["run", "--server", server, "--scenario", str(path), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"ok   {path}:{line_of(text, '[[expect]]')}: all devices: every session completed" in out
    failed_line = line_of(text, 'node = ') - 1  # the [[expect]] header above it
    assert f"FAIL {path}:{failed_line}: all devices: ./DevDetail/FwV == 'not what it is'" in out
    assert "3 of 3" in out
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")
             if c.get("classname", "").endswith(".expect")}
    assert len(cases) == 2
    (bad,) = [c for c in cases.values() if c.find("failure") is not None]
    # named by what it checks (stable when the file is edited); the line is in its output
    assert bad.get("name") == "all devices: ./DevDetail/FwV == 'not what it is'"
    assert bad.find("system-out").text == f"{path}:{failed_line}"
    assert len(bad.find("failure").text.splitlines()) == 3  # every device that broke it


# Sessions of a and c at 0, 4.5 and 9 s; every event sits between them with about a second of room
# either way (c's first session ends before its radios go at 1.8 s; the outage 4.2-5.7 s covers the
# 4.5 s sessions): on a loaded machine a session can take over a second, and the plan must still hold.
TIMELINE = """\
name = "timeline"
seed = 5
duration = "12s"

[[devices]]
name = "a"
profile = "smartphone"
count = 2
protocol = "dm12"

[[devices]]
name = "b"
profile = "smartphone"
count = 2
protocol = "dm2"

[[devices]]
name = "c"
profile = "smartphone"
count = 1
protocol = "dm12"

[[sessions]]
devices = ["a", "c"]
every = "4.5s"
count = 3

[[sessions]]
devices = "b"

[[sessions]]
devices = "b"
on = "notification"

[[events]]
at = "1.8s"
do = "bearer_down"
devices = "c"
bearer = "lte0"

[[events]]
at = "1.8s"
do = "bearer_down"
devices = "c"
bearer = "nr0"

[[events]]
at = "2.1s"
do = "set_node"
devices = "a"
path = "./DevDetail/FwV"
value = "changed"

[[events]]
at = "2.7s"
do = "crash"
devices = "a"
limit = 1
duration = "0.9s"

[[events]]
at = "4.2s"
do = "server_down"
duration = "1.5s"

[[events]]
at = "6.0s"
do = "notify"
devices = "b"
limit = 1

[[events]]
at = "6.6s"
do = "alert"
devices = "a"
limit = 1
type = "Reversed-Domain-Name: org.example.test"
data = "hello"

[[expect]]
devices = "a"
min_sessions = 3

[[expect]]
devices = "b"
limit = 1
sessions = 2

[[expect]]
devices = "b"
status = "completed"

[[expect]]
devices = "a"
node = "./DevDetail/FwV"
equals = "changed"

[[expect]]
within = "40s"
"""


def test_timeline_events_and_expectations(server, tmp_path):
    path = tmp_path / "timeline.toml"
    path.write_text(TIMELINE)
    scenario = load_scenario(path)
    assert scenario.needs_store
    result = asyncio.run(ScenarioRunner(scenario, server, admin_token=ADMIN_TOKEN).run())
    by_dev: dict[str, list] = {}
    for s in result.sessions:
        by_dev.setdefault(s.device, []).append(s)
    a0, a1, b0, b1, c0 = (result_ids := [d for g in scenario.groups for d in _ids(g)])
    assert set(by_dev) <= set(result_ids)

    # the outage: the sessions planned at 4.5 s found no server
    for dev in (a0, a1):
        outcomes = [(s.outcome, s.detail) for s in by_dev[dev] if s.reason == "scheduled"]
        assert [o for o, _ in outcomes] == ["completed", "failed", "completed"], outcomes
        assert "scenario outage" in outcomes[1][1]
    # c lost both its radios: only its first session went through, the others sent nothing
    c_runs = by_dev[c0]
    assert c_runs[0].outcome == "completed" and len(c_runs) == 3
    assert all(s.outcome == "failed" and "no bearer is up" in s.detail for s in c_runs[1:]), c_runs
    # a[0] (the first of a: limit = 1) raised a generic alert in a session of its own
    assert [s.outcome for s in by_dev[a0] if s.reason == "alert"] == ["completed"]
    assert not [s for s in by_dev[a1] if s.reason == "alert"]
    # b[0] was notified through the push channel and ran a server-initiated session
    assert [(s.reason, s.outcome) for s in by_dev[b0]] == [("scheduled", "completed"), ("notification", "completed")]
    assert [s.reason for s in by_dev[b1]] == ["scheduled"]

    checks = {r.expectation.line: r for r in result.expectations}
    # a[0] crashed after the local change and before any session: the change was written to the
    # workspace when it was made, so the restarted device still has it, as a[1] does
    assert all(r.passed for r in checks.values()), checks
    assert checks[line_of(TIMELINE, "equals =") - 3].detail == ""
    assert result.passed and not result.problems
    report = result.report()
    assert report["sessions_started"] == len(result.sessions) and report["sessions_failed"] >= 4


def _ids(group) -> list[str]:
    from emulator.device.identity import make_identity

    return [make_identity(group.profile.identity, i).dev_id for i in range(group.first_index,
                                                                            group.first_index + group.count)]


def test_time_limit_stops_the_run(server, tmp_path):
    text = textwrap.dedent("""\
        duration = "30s"

        [[devices]]
        profile = "smartphone"
        count = 2
        protocol = "dm12"

        [[sessions]]
        every = "0.4s"

        [[expect]]
        within = "1s"
        """)
    path = tmp_path / "limit.toml"
    path.write_text(text)
    result = asyncio.run(ScenarioRunner(load_scenario(path), server).run())
    assert result.stopped_at_limit and result.elapsed < 5  # not the 30 s the timeline asked for
    (limit,) = result.expectations
    assert not limit.passed and "stopped" in limit.detail
    assert len(result.sessions) >= 2 and all(s.outcome for s in result.sessions)  # none left unfinished
