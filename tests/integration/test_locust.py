"""Locust users that are our devices, and the blocking driver they run the engines with.

Locust monkey-patches its process for gevent, so it only ever runs in a child process here; the
pytest process itself must stay free of gevent (the last test checks). The blocking driver has no
gevent in it and is tested directly, against the reference server with its full demo scripts.
"""

from __future__ import annotations

import csv
import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.commands.bench import server_process
from emulator.commands.locust import LOCUSTFILE, locust_command
from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import EventBus, MessageLogged, RoundTrip, UiFinished
from emulator.fleet.drive import SessionContext
from emulator.fleet.drive_sync import drive_sync
from emulator.fleet.engines import make_engine
from emulator.fleet.headless import HeadlessUi
from emulator.transport.blocking import BlockingTransport

HAS_LOCUST = importlib.util.find_spec("locust") is not None  # never import it: that patches for gevent
needs_locust = pytest.mark.skipif(not HAS_LOCUST, reason="locust is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def demo_server():
    """`dm-emulator server` as shipped: DM 2.0 demo script with a SHOW web flow and the long-poll hold."""
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "server", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("reference DM server on http://"), first + proc.stderr.read()
        yield first.split()[-1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def _session(base: str, protocol: str, index: int):
    dev = VirtualDevice(find_profile("smartphone"), index, server=base)
    bus = EventBus()
    events: list[object] = []
    bus.subscribe(events.append, MessageLogged, UiFinished)
    exchanges: list[tuple[int, float]] = []
    bus.subscribe(lambda e: exchanges.append((e.status, e.rtt_ms)), RoundTrip)
    transport = BlockingTransport()
    account = dev.account(None, protocol)
    ctx = SessionContext(dev.id, "s1", protocol, account.server_id, bus, transport)
    try:
        done = drive_sync(make_engine(dev, account, "s1"), ctx, HeadlessUi())
    finally:
        transport.close()
    return dev, done, events, exchanges, ctx


def test_blocking_driver_runs_the_dm2_demo_with_its_web_flow(demo_server):
    dev, done, events, exchanges, ctx = _session(demo_server, "dm2", 7)
    assert done.outcome == "completed", done
    # the SHOW page was answered (no thread: before the session's next message), and the server
    # released its held answer once the form was in: a web UI interaction that ended submitted ("ok")
    assert [e.outcome for e in events if isinstance(e, UiFinished)] == ["ok"]
    logged = [e for e in events if isinstance(e, MessageLogged)]
    assert [e.direction for e in logged[:2]] == ["out", "in"] and ctx.messages == len(logged)
    assert all(status == 200 for status, _ in exchanges) and all(rtt >= 0 for _, rtt in exchanges)
    assert len(exchanges) >= ctx.messages // 2  # every message round trip, plus HGET/SUB pushes


def test_blocking_driver_runs_a_dm12_session(demo_server):
    dev, done, events, exchanges, ctx = _session(demo_server, "dm12", 8)
    assert done.outcome == "completed", done
    assert dev.tree.value("./DemoApp/Greeting") == "hello, device"  # written by the server's script
    assert ctx.messages >= 4 and len(exchanges) == ctx.messages // 2


def test_unreachable_server_is_a_failed_exchange_not_an_exception():
    transport = BlockingTransport(connect_timeout=2)
    try:
        result = transport.post("http://127.0.0.1:9/dm2", b"{}", "application/json")
    finally:
        transport.close()
    assert result.status == 0 and "cannot connect" in result.error


def test_locust_command_line_uses_our_locustfile_unless_given_one():
    cmd = locust_command(["--headless", "-u", "3"])
    assert cmd[1:5] == ["-m", "locust", "-f", str(LOCUSTFILE)] and cmd[-2:] == ["-u", "3"]
    assert LOCUSTFILE.is_file()
    own = locust_command(["-f", "mine.py", "--headless"])
    assert own.count("-f") == 1 and "mine.py" in own


def _stats(prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


@needs_locust
def test_locust_local_runner_reports_sessions_and_messages(tmp_path):
    prefix = tmp_path / "run"
    with server_process() as url:
        proc = subprocess.run(
            # a profile with quick bearers: Locust devices get their bearer's latency, and every user
            # must get through a session of each protocol within the run. Locust's run time starts on
            # gevent's cached clock, seconds stale after a slow start on a busy machine: 6 s leaves room
            [sys.executable, "-m", "emulator", "locust", "--host", url, "--headless", "-u", "4", "-r", "4",
             "-t", "6s", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
             "--dm-profile", "home-gateway"],
            capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = _stats(prefix)  # Locust writes the CSV every second: it may miss the last requests
    for protocol in ("dm12", "dm2"):
        row = stats[("DM session", protocol)]
        assert int(row["Request Count"]) >= 4 and row["Failure Count"] == "0", row
        assert float(row["Average Response Time"]) > 0
        assert int(stats[("DM message", f"{protocol} POST")]["Request Count"]) >= 2 * int(row["Request Count"])


@needs_locust
def test_locust_counts_failed_sessions():
    proc = subprocess.run(
        [sys.executable, "-m", "emulator", "locust", "--host", "http://127.0.0.1:9", "--headless", "-u", "2",
         "-r", "2", "-t", "4s", "--only-summary", "--loglevel", "WARNING", "--dm-protocols", "dm2"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1  # Locust's exit code when requests failed
    report = proc.stdout + proc.stderr
    # Locust's error report: the failed sessions, with the device's reason, and their messages
    assert "DM session dm2: SessionFailed('failed: " in report and "cannot connect" in report
    assert "DM message dm2 POST: MessageFailed(" in report
    assert "dm12" not in report


def test_this_process_never_loaded_gevent():
    assert "gevent" not in sys.modules and "locust" not in sys.modules
