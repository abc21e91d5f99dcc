"""`dm-emulator run --processes N`: the fleet cut into worker processes, one merged report that counts
every device once (emulator/scenarios/shards.py)."""

from __future__ import annotations

import json
import secrets
import textwrap
from xml.etree import ElementTree as ET

import pytest

from emulator.cli import main
from emulator.commands.bench import server_process
from emulator.scenarios.model import default_scenario
from emulator.scenarios.shards import MIN_DEVICES_PER_PROCESS, default_processes, shard, why_not_sharded

ADMIN_TOKEN = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def server():
    with server_process(ADMIN_TOKEN) as url:
        yield url


def test_two_processes_report_every_device_once(server, tmp_path, capsys):
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    code = main(["run", "--server", server, "--profile", "smartphone", "--count", "7", "--protocol", "dm12",
                 "--processes", "2", "--report", str(report), "--junit", str(junit)])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(report.read_text())
    assert data["devices"] == 7 and data["sessions_completed"] == 7 and data["sessions_failed"] == 0
    devices = [r["device"] for r in data["results"]]
    assert len(devices) == len(set(devices)) == 7
    # the same devices a one-process run has: identity indexes 0..6, whichever worker ran them
    assert set(devices) == {f"IMEI:{d}" for d in _imeis(7)}
    assert data["messages"] >= 7 * 4 and data["passed"]
    (suite,) = ET.parse(junit).getroot()
    assert suite.get("tests") == "8" and suite.get("failures") == "0"  # 7 devices and the expectation
    assert "7/7 sessions completed" in out.out
    assert "(2 processes)" in out.err and "7/7 devices up" in out.err  # one merged progress line


def _imeis(n: int) -> list[str]:
    from emulator.device.identity import make_identity
    from emulator.device.profile import find_profile

    spec = find_profile("smartphone").identity
    return [make_identity(spec, i).imei or "" for i in range(n)]


def test_an_expectation_per_group_holds_across_workers(server, tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(textwrap.dedent("""\
        [[devices]]
        name = "phones"
        profile = "smartphone"
        count = 3
        protocol = "dm2"

        [[devices]]
        name = "laptops"
        profile = "windows-laptop"
        count = 2

        [[expect]]
        devices = "phones"
        sessions = 1

        [[expect]]
        status = "completed"
        """))
    report = tmp_path / "r.json"
    code = main(["run", "--server", server, "--scenario", str(path), "--processes", "2", "--report", str(report)])
    data = json.loads(report.read_text())
    assert code == 0, data["expectations"]
    assert [e["passed"] for e in data["expectations"]] == [True, True]
    assert data["sessions_completed"] == 5 and len({r["device"] for r in data["results"]}) == 5


def test_failures_in_every_worker_add_up(tmp_path):
    report = tmp_path / "r.json"
    code = main(["run", "--server", "http://127.0.0.1:9", "--profile", "smartphone", "--count", "4",
                 "--protocol", "dm2", "--processes", "2", "--report", str(report)])
    data = json.loads(report.read_text())
    assert code == 1 and data["sessions_failed"] == 4 and not data["passed"]


@pytest.mark.parametrize("extra,why", [
    (["--workspace", "WS"], "a workspace"),
])
def test_a_run_that_cannot_be_cut_is_refused_before_it_starts(tmp_path, capsys, extra, why):
    args = [a.replace("WS", str(tmp_path / "ws")) for a in extra]
    code = main(["run", "--server", "http://127.0.0.1:9", "--profile", "smartphone", "--count", "2",
                 "--processes", "2", *args])
    err = capsys.readouterr().err
    assert code == 2 and "--processes 2: this run cannot be cut into processes" in err and why in err


def test_which_runs_can_be_cut(tmp_path):
    plain = default_scenario("smartphone", 10)
    assert why_not_sharded(plain) is None
    assert "workspace" in (why_not_sharded(plain, workspace="ws") or "")
    import dataclasses

    from emulator.scenarios.model import Expectation, Selector, TimelineEvent

    events = dataclasses.replace(plain, events=(TimelineEvent(at=1.0, action="server_down", devices=Selector(),
                                                              duration=1.0),))
    assert "timeline events" in (why_not_sharded(events) or "")
    some = dataclasses.replace(plain, expectations=(Expectation(devices=Selector(limit=2), status="completed"),))
    assert "some devices" in (why_not_sharded(some) or "")
    from emulator.scenarios.model import find_scenario, load_scenario

    campaign = load_scenario(find_scenario("fumo-campaign"))  # 1,000 phones: one campaign, asked for once
    assert campaign.device_count >= 1000 and "campaign" in (why_not_sharded(campaign) or "")


def test_slices_cover_every_group_once():
    scenario = default_scenario("smartphone", 10)
    slices = [shard(scenario, k, 3) for k in range(3)]
    ranges = [(s.groups[0].first_index, s.groups[0].count) for s in slices]
    assert ranges == [(0, 3), (3, 3), (6, 4)]
    assert all(s.pacing.max_in_flight >= 1 for s in slices)


@pytest.mark.parametrize("devices,cores,expected", [
    (1, 2, 1), (MIN_DEVICES_PER_PROCESS * 2 - 1, 2, 1), (MIN_DEVICES_PER_PROCESS * 2, 2, 2),
    (1_000_000, 2, 2), (1_000_000, 8, 8),
])
def test_default_is_one_process_per_core_for_big_fleets(devices, cores, expected):
    assert default_processes(devices, cores) == expected


def test_managed_object_reports_of_the_workers_add_up():
    from emulator.scenarios.shards import merge_operations

    one = {"downloads": {"count": 2, "bytes": 10, "resumed": 1, "resumptions": 1, "failed": 0},
           "fumo": {"started": 2, "unfinished": 0, "results": {"200": 2},
                    "states": {"Downloading": {"count": 2, "mean_s": 1.0, "p50_s": 1.0, "p90_s": 1.0, "max_s": 1.0}}}}
    two = {"fumo": {"started": 1, "unfinished": 1, "results": {"200": 1, "402": 1},
                    "states": {"Downloading": {"count": 1, "mean_s": 4.0, "p50_s": 4.0, "p90_s": 4.0, "max_s": 4.0}}}}
    merged = merge_operations([one, {}, two])
    assert merged["downloads"]["count"] == 2
    assert merged["fumo"]["started"] == 3 and merged["fumo"]["unfinished"] == 1
    assert merged["fumo"]["results"] == {"200": 3, "402": 1}
    assert merged["fumo"]["states"]["Downloading"] == {"count": 3, "mean_s": 2.0, "p50_s": 2.0, "p90_s": 2.0,
                                                       "max_s": 4.0}
    assert merge_operations([{}, one]) == one and merge_operations([]) == {}


def test_every_workers_device_alerts_reach_the_merged_report(server, tmp_path):
    """A trap each device's server arms fires once the session ends ("diagnostics trap", a device's own
    alert): the report of a two-process run lists it for every device, whichever worker ran it."""
    import subprocess
    import sys

    import httpx

    imeis = _imeis(4)
    for imei in imeis:
        answer = httpx.post(f"{server}/admin/diag/IMEI:{imei}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                            json={"script": "trap", "trap": "Battery", "threshold": 101, "protocol": "dm12"})
        assert answer.status_code == 200, answer.text
    report = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "emulator", "run", "--server", server, "--profile", "smartphone",
                           "--count", "4", "--protocol", "dm12", "--processes", "2", "--report", str(report)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "(2 processes)" in proc.stderr
    alerts = json.loads(report.read_text())["device_alerts"]
    trapped = sorted(a["device"] for a in alerts if a["kind"] == "diagnostics trap")
    assert trapped == sorted(f"IMEI:{d}" for d in imeis), alerts
    assert all("Battery/Level" in a["detail"] for a in alerts if a["kind"] == "diagnostics trap")
