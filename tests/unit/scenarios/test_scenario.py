"""Scenario files: what they mean, and that every mistake names its file, line and reason."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import FileFormatError
from emulator.scenarios.model import (
    SCENARIO_DIR,
    Selector,
    SessionRule,
    find_scenario,
    load_scenario,
    parse_duration,
)
from emulator.scenarios.pacing import jittered, plan_sessions, ramp_offset

GOOD = """\
name = "t"
duration = "20s"

[pacing]
ramp_up = "2s"
think_time = 0.5
jitter = 0.1

[[devices]]
name = "phones"
profile = "smartphone"
count = 4
protocol = "dm2"

[[devices]]
name = "old"
profile = "smartphone"
count = 2
protocol = "dm12"

[[sessions]]
devices = "phones"
every = "5s"
count = 3

[[sessions]]
devices = "phones"
on = "notification"

[[events]]
at = "15s"
do = "switch_bearer"
devices = ["phones", "old"]
bearer = "wlan0"

[[events]]
at = "3s"
do = "set_node"
devices = "old"
limit = 1
path = "./DevDetail/FwV"
value = "2.0"

[ui]
confirm = "no"
choices = [2, 3]
form = { ssid = "lab", hidden = true }

[[expect]]
devices = "old"
node = "./DevDetail/FwV"
equals = "2.0"

[[expect]]
within = "90s"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the n-th line containing ``needle``: where the error must point."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def fails(tmp_path: Path, text: str, **kw) -> FileFormatError:
    path = write(tmp_path, text)
    with pytest.raises(FileFormatError) as info:
        load_scenario(path, **kw)
    assert info.value.path == str(path)
    return info.value


# ------------------------------------------------------------------------------ reading


def test_good_scenario_reads_into_a_timeline(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD))
    assert [g.name for g in sc.groups] == ["phones", "old"]
    # the second group of the same profile continues the identity range of the first
    assert [(g.first_index, g.count) for g in sc.groups] == [(0, 4), (4, 2)]
    assert sc.device_count == 6
    assert sc.sessions[0].every == 5.0 and sc.sessions[0].count == 3
    assert sc.sessions[1].on_notification
    assert [e.at for e in sc.events] == [3.0, 15.0]  # sorted by time, not by file order
    assert sc.events[0].devices == Selector(("old",), 1)
    assert sc.ui.confirm == "no" and sc.ui.choices == (2, 3) and sc.ui.form == {"ssid": "lab", "hidden": "true"}
    assert sc.pacing.ramp_up == 2.0 and sc.pacing.think_time == 0.5
    assert sc.time_limit == 90.0
    assert sc.expectations[0].equals == "2.0"
    assert not sc.needs_store


def test_every_shipped_scenario_loads():
    files = sorted(SCENARIO_DIR.glob("*.toml"))
    assert any(f.stem == "demo" for f in files)
    for f in files:
        sc = load_scenario(f)
        assert sc.groups and sc.expectations, f


def test_find_scenario_by_name_or_path(tmp_path):
    assert find_scenario("demo") == SCENARIO_DIR / "demo.toml"
    p = write(tmp_path, GOOD)
    assert find_scenario(str(p)) == p
    with pytest.raises(FileFormatError, match="shipped scenarios: .*demo"):
        find_scenario("no-such-scenario")


def test_devices_from_the_command_line_when_the_file_has_none(tmp_path):
    text = '[[expect]]\nstatus = "completed"\n'
    sc = load_scenario(write(tmp_path, text), profile="smartphone", count=7, protocol="dm12")
    assert [(g.name, g.count, g.protocol) for g in sc.groups] == [("devices", 7, "dm12")]
    err = fails(tmp_path, text)
    assert "no [[devices]]" in err.reason and "--profile" in err.reason


def test_crash_needs_a_store(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD.replace('do = "switch_bearer"', 'do = "crash"')
                             .replace('bearer = "wlan0"\n', "")))
    assert sc.needs_store


# ------------------------------------------------------------------------------ mistakes, with their line


def test_toml_syntax_error_has_its_line(tmp_path):
    text = GOOD.replace("count = 4", "count = = 4")
    err = fails(tmp_path, text)
    assert err.line == line_of(text, "count = = 4")
    assert "TOML syntax" in err.reason


@pytest.mark.parametrize(
    ("old", "new", "needle", "words"),
    [
        ('think_time = 0.5', 'thinktime = 0.5', "thinktime", "did you mean 'think_time'"),
        ('ramp_up = "2s"', 'ramp_up = "2 minutes"', "ramp_up", "is not a duration"),
        ('profile = "smartphone"\ncount = 4', 'profile = "toaster"\ncount = 4', "toaster", "no device profile"),
        ('count = 2\nprotocol = "dm12"', 'count = 2\nprotocol = "dm3"', "dm3", "is not one of"),
        ('devices = "phones"\nevery', 'devices = "phone"\nevery', 'devices = "phone"', "no device group 'phone'"),
        ('bearer = "wlan0"', 'bearer = "wlan9"', "wlan9", "has no bearer 'wlan9'"),
        ('path = "./DevDetail/FwV"', 'path = "./DevDetail/Nope"', "Nope", "has no node ./DevDetail/Nope"),
        ('path = "./DevDetail/FwV"', 'path = "DevDetail/FwV"', 'path = "DevDetail', "absolute DM URI"),
        ('at = "15s"', 'at = "15s"\nnat = true', "nat = true", "switch_bearer takes no 'nat'"),
        ('confirm = "no"', 'confirm = "maybe"', "maybe", "is not one of yes, no"),
        ('choices = [2, 3]', 'choices = [0]', "choices", "choice numbers from 1"),
        ('jitter = 0.1', 'jitter = 1.5', "jitter", "must be between 0.0 and 1.0"),
        ('equals = "2.0"', 'equals = "2.0"\nstatus = "completed"', "[[expect]]", "exactly one thing"),
        ('count = 3\n', 'count = 0\n', "count = 0", "must be at least 1"),
    ],
)
def test_mistakes_name_their_line(tmp_path, old, new, needle, words):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    err = fails(tmp_path, text)
    assert words in err.reason, err
    assert err.line == line_of(text, needle), err


def test_event_after_the_duration(tmp_path):
    text = GOOD.replace('at = "15s"', 'at = "1m"')  # after the 20 s duration
    err = fails(tmp_path, text)
    assert err.line == line_of(text, 'at = "1m"')
    assert "after the scenario's duration" in err.reason


def test_periodic_rule_without_an_end(tmp_path):
    text = GOOD.replace('duration = "20s"\n', "").replace("count = 3\n", "")
    err = fails(tmp_path, text)
    assert err.line == line_of(text, "[[sessions]]")
    assert "no end" in err.reason


def test_overlapping_identity_ranges(tmp_path):
    text = GOOD.replace('count = 2\nprotocol = "dm12"', 'count = 2\nfirst_index = 3\nprotocol = "dm12"')
    err = fails(tmp_path, text)
    assert err.line == line_of(text, "first_index = 3")
    assert "overlap" in err.reason and "'phones'" in err.reason


def test_group_used_twice(tmp_path):
    text = GOOD.replace('name = "old"', 'name = "phones"')
    err = fails(tmp_path, text)
    assert err.line == line_of(text, 'name = "phones"', 2)


def test_notifications_only_for_dm2_groups(tmp_path):
    text = GOOD.replace('devices = "phones"\non = "notification"', 'devices = "old"\non = "notification"')
    err = fails(tmp_path, text)
    assert err.line == line_of(text, 'on = "notification"')
    assert "push channel" in err.reason


def test_protocol_the_profile_does_not_speak(tmp_path):
    text = 'name = "x"\n[[devices]]\nprofile = "nbiot-sensor"\nprotocol = "dm2"\n'
    err = fails(tmp_path, text)
    assert err.line == 4 and "does not speak dm2" in err.reason


def test_not_utf8(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_bytes(b'name = "a"\nx = "\xff"\n')
    with pytest.raises(FileFormatError) as info:
        load_scenario(p)
    assert info.value.line == 2 and "UTF-8" in info.value.reason


# ------------------------------------------------------------------------------ durations and pacing


@pytest.mark.parametrize(("text", "seconds"), [
    (30, 30.0), (2.5, 2.5), ("500ms", 0.5), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), (" 1.5 s ", 1.5),
])  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 min", "-1s", -3, True, None, [1]])
def test_not_durations(text):
    assert parse_duration(text) is None


def test_ramp_offsets_spread_evenly():
    offsets = [ramp_offset(i, 4, 8.0) for i in range(4)]
    assert offsets == [0.0, 2.0, 4.0, 6.0]
    assert ramp_offset(3, 4, 0.0) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1e4), st.floats(0, 1), st.integers(0, 2**32))
def test_jitter_stays_within_its_fraction(seconds, jitter, seed):
    got = jittered(seconds, jitter, random.Random(seed))
    assert seconds * (1 - jitter) - 1e-9 <= got <= seconds * (1 + jitter) + 1e-9


def test_plan_counts_periods_and_stops_at_the_duration():
    rng = random.Random(1)
    every = SessionRule(Selector(), at=1.0, every=10.0)
    once = SessionRule(Selector(), at=4.0)
    notified = SessionRule(Selector(), on_notification=True)
    plan = plan_sessions([every, once, notified], offset=2.0, duration=35.0, jitter=0.0, rng=rng)
    assert [p.at for p in plan] == [3.0, 6.0, 13.0, 23.0, 33.0]
    counted = SessionRule(Selector(), every=10.0, count=2)
    assert [p.at for p in plan_sessions([counted], 0.0, None, 0.0, rng)] == [0.0, 10.0]


def test_plan_is_the_same_for_the_same_seed():
    rule = SessionRule(Selector(), every=5.0, count=20)
    a = plan_sessions([rule], 0.0, None, 0.3, random.Random(42))
    b = plan_sessions([rule], 0.0, None, 0.3, random.Random(42))
    assert a == b and len(a) == 20
    gaps = [y.at - x.at for x, y in zip(a, a[1:], strict=False)]
    assert all(3.5 - 1e-9 <= g <= 6.5 + 1e-9 for g in gaps) and len(set(gaps)) > 1


# ------------------------------------------------------------------------------ judging sessions


def test_a_session_cut_by_a_bearer_switch_is_judged_by_its_retry():
    import asyncio

    from emulator.events import SessionEnded, SessionStarted
    from emulator.scenarios.model import Expectation, default_scenario
    from emulator.scenarios.runner import ScenarioRunner

    runner = ScenarioRunner(default_scenario("smartphone", 2, "dm12"), "http://127.0.0.1:9")
    runner.members = {"devices": ["d1", "d2"]}
    runner.fleet = object()  # type: ignore[assignment]  # only node expectations read the fleet

    async def feed():
        runner._t0 = asyncio.get_running_loop().time()
        for event in (
            SessionStarted("d1", "s1", "dm12", "srv", "lte0", "scheduled"),
            SessionEnded("d1", "s1", "failed", "the bearer changed from lte0 to nr0 while the request was in flight"),
            SessionStarted("d1", "s2", "dm12", "srv", "nr0", "bearer change"),
            SessionEnded("d1", "s2", "completed"),
            SessionStarted("d2", "s3", "dm12", "srv", "lte0", "scheduled"),
            SessionEnded("d2", "s3", "completed"),
        ):
            runner._on_bus(event)

    asyncio.run(feed())
    assert [s.retried for s in runner.sessions] == [True, False, False]
    assert runner.check(Expectation(status="completed"), 1.0, False).passed
    assert runner.check(Expectation(sessions=1), 1.0, False).passed  # the retry is the same session
    # a failure that no retry followed still counts
    runner.sessions[1].outcome = "failed"
    result = runner.check(Expectation(status="completed"), 1.0, False)
    assert not result.passed and result.detail.startswith("1 of 2: d1 failed")
