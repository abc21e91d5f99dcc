"""Failures the user can see: every failed exchange is a red row of the traffic list with its reason in
the detail pane, the event log keeps every status bar message, and the counters count every failure
(also a session that could not run). Real loopback: a port where nothing listens, and a real HTTP
server answering an error status or garbage."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web
from PySide6.QtCore import Qt

from emulator.events import EventBus
from emulator.fleet.fleet import Fleet
from ui.mainwindow import MainWindow
from ui.traffic_panel import FAILED_BACKGROUND


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released: connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def make_window(qtbot, disposer, arun):
    fleets = []

    def make(server: str, profiles=(("smartphone", 1), ("home-gateway", 1))) -> MainWindow:
        fleet = Fleet(server=server, bus=EventBus())
        fleets.append(fleet)
        for profile, count in profiles:
            fleet.add(profile, count)
        w = MainWindow(fleet, remember=False)
        fleet.ui = w.ui_handler
        w.fleet_panel.model.sync()
        disposer(w)
        w.show()
        return w

    yield make
    for fleet in fleets:
        arun(fleet.aclose())


@pytest.fixture
def error_server(arun):
    """A real HTTP server: /dm2 and /dm12 answer 503 with a text body, /garbage answers 200 with junk."""

    async def unavailable(request):
        return web.Response(status=503, text="maintenance until 02:00", content_type="text/plain")

    async def garbage(request):
        return web.Response(status=200, body=b"\x00\x01 this is not DM", content_type="application/json")

    app = web.Application()
    for path in ("/dm2", "/dm12", "/dm"):
        app.router.add_post(path, unavailable)
    app.router.add_post("/garbage/dm2", garbage)
    runner = web.AppRunner(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)

    async def start():
        await runner.setup()
        await web.SockSite(runner, sock).start()

    arun(start())
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    arun(runner.cleanup())


def _run_one(w, qtbot, profile="smartphone", protocol="dm2"):
    dev_id = next(d.id for d in w.fleet.devices.values() if d.profile.name == profile)
    w.fleet_panel.select(dev_id)
    w.fleet_panel.protocol_box.setCurrentText(protocol)
    (task,) = w.fleet_panel.start_sessions([dev_id])
    qtbot.waitUntil(task.done, timeout=10_000)
    return dev_id, task.result()


def _failed_rows(w):
    """(row in the list, summary, detail pane text) of every red row the user sees."""
    panel = w.traffic_panel
    out = []
    for row in range(panel.proxy.rowCount()):
        idx = panel.proxy.index(row, 6)
        if idx.data(Qt.ItemDataRole.BackgroundRole) == FAILED_BACKGROUND:
            panel.view.selectRow(row)
            out.append((row, idx.data(), panel.detail.toPlainText()))
    return out


def test_refused_connection_is_a_red_row_with_its_reason_and_in_the_event_log(make_window, qtbot):
    port = _closed_port()
    w = make_window(f"http://127.0.0.1:{port}")
    dev_id, done = _run_one(w, qtbot)
    assert done.outcome == "failed"
    qtbot.waitUntil(lambda: bool(_failed_rows(w)), timeout=3000)
    rows = _failed_rows(w)
    assert len(rows) == 1, rows  # one failure, one row (the session's end is told in its detail)
    _, summary, detail = rows[0]
    assert "connection refused" in summary
    flat = " ".join(detail.split())
    assert "connection refused" in flat and f"127.0.0.1:{port}" in flat
    assert "ended: failed" in flat
    # the outgoing Package#1 is there too, before the red row
    assert w.traffic_panel.proxy.index(0, 0).data() == "→"
    # the status bar message is kept, with its time, in the event log; the counters count it
    log = w.event_log.log.texts()
    assert sum(dev_id in t and "refused" in t for t in log) == 1, log  # told once, not once per listener
    assert w.event_log.log.list.item(w.event_log.log.list.count() - 1).text()[:2].isdigit()  # HH:MM:SS
    w.update_counts()
    assert "1 failed" in w.counts.text()


def test_http_error_status_marks_the_answer_red_with_the_status_in_the_detail(make_window, error_server, qtbot):
    w = make_window(error_server)
    _dev_id, done = _run_one(w, qtbot)
    assert done.outcome == "failed"
    qtbot.waitUntil(lambda: bool(_failed_rows(w)), timeout=3000)
    rows = _failed_rows(w)
    assert len(rows) == 1, rows
    _, _summary, detail = rows[0]
    assert "HTTP 503 Service Unavailable" in " ".join(detail.split())
    assert "maintenance until 02:00" in detail  # the server's own words, decoded below
    assert w.traffic_panel.proxy.index(rows[0][0], 0).data() == "←"  # the server's answer is the red row


def test_protocol_error_ends_in_a_red_row_with_the_reason(make_window, error_server, qtbot):
    w = make_window(error_server + "/garbage")
    dev_id = next(d.id for d in w.fleet.devices.values() if d.profile.name == "smartphone")
    w.fleet.server_wins = True  # the device's DM 2.0 account goes to the server's /garbage path
    _dev_id, done = _run_one(w, qtbot)
    assert done.outcome == "failed"
    qtbot.waitUntil(lambda: bool(_failed_rows(w)), timeout=3000)
    rows = _failed_rows(w)
    assert len(rows) == 1, rows
    _, summary, detail = rows[0]
    assert "session" in summary and "failed" in summary
    assert " ".join(done.detail.split()) in " ".join(detail.split())
    assert dev_id in detail


def test_a_session_that_could_not_run_is_counted_logged_and_shown(make_window, qtbot):
    w = make_window(f"http://127.0.0.1:{_closed_port()}")
    phone = next(d for d in w.fleet.devices.values() if d.profile.name == "smartphone")
    phone.tree.delete("./DM2", by=None)  # no DM 2.0 account left
    w.fleet_panel.select(phone.id)
    w.fleet_panel.protocol_box.setCurrentText("dm2")
    (task,) = w.fleet_panel.start_sessions([phone.id])
    qtbot.waitUntil(task.done, timeout=5000)
    qtbot.waitUntil(lambda: bool(_failed_rows(w)), timeout=3000)
    (row,) = _failed_rows(w)
    assert "could not run" in row[1] and "no account" in " ".join(row[2].split())
    w.update_counts()
    assert "1 failed" in w.counts.text()
    assert any("could not run" in t for t in w.event_log.log.texts())


def test_every_status_bar_message_stays_in_the_event_log(window, qtbot):
    bar = window.statusBar()
    long = "a message far too long for the status bar at 1280 pixels, " * 4
    bar.showMessage("first", 100)
    bar.showMessage(long.strip(), 100)
    window.show_error("something broke")
    window.show_error("something broke")
    texts = window.event_log.log.texts()
    assert texts[0].endswith("first")
    assert texts[1].endswith(long.strip())  # whole, not cut
    assert texts[2].endswith("⚠ something broke  (×2)")
    assert bar.toolTip() == "⚠ something broke"
    assert window.event_log.toggleViewAction() in window.view_menu.actions()
