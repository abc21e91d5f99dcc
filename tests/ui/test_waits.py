"""A fleet of web-UI sessions as the user sees it: who waits for a page, a list of the waiting pages,
the server page following the selected device, Stop session, Answer with defaults (the headless
answerer), a progress bar that says why it does not move, one session per account at a time, and
the DM 1.2 alert dialog naming its device. Real reference server, real web view, real HTTP."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from emulator.fleet.drive import run
from emulator.protocol.actions import UI_DONE_PATH, AskUser, UserAnswer
from emulator.server.ui_flows import WIFI
from ui.fleet_panel import WAITING
from ui.webview import AlertDialog

FILL_AND_SUBMIT = """
(function () {
  var form = document.forms[0];
  if (!form) { return false; }
  for (var i = 0; i < form.elements.length; i++) {
    var el = form.elements[i];
    if (el.name === 'ssid') { el.value = 'office'; }
    if (el.type === 'password') { el.value = 'correct-horse-battery'; }
    if (el.type === 'checkbox' && el.required) { el.checked = true; }
  }
  if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  return true;
})();
"""


def _phones(desktop, n):
    """``n`` smartphones (the demo has two; more are added), their sessions asking for the Wi-Fi page."""
    w, fleet = desktop.window, desktop.fleet
    have = [d.id for d in fleet.devices.values() if d.profile.name == "smartphone"]
    if len(have) < n:
        fleet.add("smartphone", n - len(have))
        w.fleet_panel.model.sync()
    return [d.id for d in fleet.devices.values() if d.profile.name == "smartphone"][:n]


def _state(w, dev_id):
    model = w.fleet_panel.model
    return model.index(model.row_of(dev_id), 2).data()


def _start_waiting(desktop, qtbot, ids):
    w = desktop.window
    w.fleet_panel.protocol_box.setCurrentText("dm2")
    w.fleet_panel.view.clearSelection()
    tasks = dict(zip(ids, w.fleet_panel.start_sessions(ids), strict=True))
    qtbot.waitUntil(lambda: w.ui_handler.pending.count() == len(ids), timeout=20_000)
    return tasks


def test_waiting_sessions_show_in_the_fleet_the_list_and_the_progress_bar(desktop, qtbot):
    w = desktop.window
    ids = _phones(desktop, 3)
    tasks = _start_waiting(desktop, qtbot, ids)
    panel = w.fleet_panel
    # every row says it waits for the user, in the state column the user reads
    qtbot.waitUntil(lambda: all(_state(w, d) == WAITING for d in ids), timeout=2000)
    # the list of waiting pages: one entry per device, visible, titled with the count
    assert panel.waiting_box.isVisibleTo(w)
    assert "3" in panel.waiting_box.title()
    listed = [panel.waiting_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.waiting_list.count())]
    assert sorted(listed) == sorted(ids)
    # the progress bar says why it does not move, and the status bar counts them
    w.session_progress.refresh()
    assert "3 wait for you" in w.session_progress.text()
    w.update_counts()
    assert "3 sessions running" in w.counts.text() and "3 of the sessions running wait" in w.counts.toolTip()
    assert not any(t.done() for t in tasks.values())


def test_the_server_page_follows_the_selected_device_and_the_list_opens_a_page(desktop, qtbot):
    w = desktop.window
    dock = w.web_dock
    ids = _phones(desktop, 3)
    _start_waiting(desktop, qtbot, ids)
    first = w.ui_handler.pending.items[0].device_id  # the first to ask shows at once
    qtbot.waitUntil(lambda: dock.device_id == first and dock.loaded_url != "", timeout=10_000)
    ids = [first] + [d for d in ids if d != first]
    # selecting another waiting device in the fleet: the dock shows its page
    w.fleet_panel.select(ids[2])
    qtbot.waitUntil(lambda: dock.device_id == ids[2] and dock.loaded_url != "", timeout=10_000)
    assert ids[2] in dock.header.text()
    page_of_2 = next(p for p in w.ui_handler.pending.items if p.device_id == ids[2])
    assert dock.loaded_url.split("?")[0] == page_of_2.action.url.split("?")[0]
    # one click in the waiting list opens that device's page and selects the device
    panel = w.fleet_panel
    item = next(panel.waiting_list.item(i) for i in range(panel.waiting_list.count())
                if panel.waiting_list.item(i).data(Qt.ItemDataRole.UserRole) == ids[1])
    panel.waiting_list.itemClicked.emit(item)
    qtbot.waitUntil(lambda: dock.device_id == ids[1] and dock.loaded_url != "", timeout=10_000)
    assert panel.selected_ids() == [ids[1]]
    assert ids[1] in dock.header.text()


def test_answer_with_defaults_and_stop_session(desktop, qtbot):
    w = desktop.window
    ids = _phones(desktop, 3)
    tasks = _start_waiting(desktop, qtbot, ids)
    panel = w.fleet_panel
    # the selected device answered by the headless answerer: the page is filled in, the session completes
    panel.select(ids[1])
    panel.defaults_selected.trigger()
    qtbot.waitUntil(tasks[ids[1]].done, timeout=20_000)
    assert tasks[ids[1]].result().outcome == "completed", tasks[ids[1]].result()
    qtbot.waitUntil(lambda: _state(w, ids[1]) == "idle", timeout=2000)
    assert "answering 1 page" in w.event_log.log.texts()[-1] or any(
        "answering 1 page" in t for t in w.event_log.log.texts())
    # Stop session: the session ends, the device is no longer waiting nor "in session", nothing red
    panel.select(ids[0])
    panel.stop_button.click()
    qtbot.waitUntil(tasks[ids[0]].done, timeout=5000)
    qtbot.waitUntil(lambda: _state(w, ids[0]) == "idle", timeout=2000)
    assert w.fleet.devices[ids[0]].last_result.startswith("aborted")
    assert [p.device_id for p in w.ui_handler.pending.items] == [ids[2]]
    # all waiting devices answered with defaults: the last one completes too, the list goes
    panel.defaults_all.trigger()
    qtbot.waitUntil(tasks[ids[2]].done, timeout=20_000)
    assert tasks[ids[2]].result().outcome == "completed"
    qtbot.waitUntil(lambda: not panel.waiting_box.isVisibleTo(w), timeout=2000)
    assert w.ui_handler.pending.count() == 0


def test_a_device_in_a_session_does_not_get_a_second_one(desktop, qtbot):
    w = desktop.window
    (phone,) = _phones(desktop, 1)
    tasks = _start_waiting(desktop, qtbot, [phone])
    started = w.fleet.stats.sessions_started
    assert w.fleet_panel.start_sessions([phone]) == []  # refused, said so
    message = w.statusBar().currentMessage()
    assert phone in message and "already in a session" in message and "one session per account" in message
    assert w.fleet.stats.sessions_started == started
    assert _state(w, phone) == WAITING  # not "error"
    assert w.fleet.devices[phone].state != "error"
    w.fleet_panel.stop_sessions([phone])
    qtbot.waitUntil(tasks[phone].done, timeout=5000)


def test_a_finished_page_does_not_say_the_session_goes_on_after_it_ended(desktop, qtbot):
    w = desktop.window
    dock = w.web_dock
    (phone,) = _phones(desktop, 1)
    tasks = _start_waiting(desktop, qtbot, [phone])
    qtbot.waitUntil(lambda: dock.loaded_url != "", timeout=10_000)
    for _ in range(len(WIFI.pages)):  # the user fills in each page of the wizard
        loads = dock.loads
        dock.page.runJavaScript(FILL_AND_SUBMIT)
        qtbot.waitUntil(lambda loads=loads: dock.loads > loads, timeout=10_000)
        if dock.loaded_url.split("?")[0].endswith(UI_DONE_PATH):
            break
    assert dock.loaded_url.split("?")[0].endswith(UI_DONE_PATH)
    assert "finished" in dock.header.text()
    # the session is answered 'ok' and ends: the header now says so
    qtbot.waitUntil(tasks[phone].done, timeout=20_000)
    session = tasks[phone].result()
    qtbot.waitUntil(lambda: "goes on" not in dock.header.text(), timeout=3000)
    assert "session" in dock.header.text() and (session.outcome in dock.header.text())


def test_alert_dialog_names_the_device_and_its_title_fits(window, qloop, qtbot):
    ctx = type("S", (), {"device_id": "IMEI:354679100000002", "server": "demo-dm12", "session_id": "s9"})()
    action = AskUser("a9", "confirm", "Install the update now? The device restarts.")
    task = qloop.create_task(run(window.ui_handler.ask(ctx, action), ctx))
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(AlertDialog)), timeout=3000)
    dialog = next(d for d in window.findChildren(AlertDialog) if d.isVisible())
    title = dialog.windowTitle()
    assert "IMEI:354679100000002" in title
    assert dialog.width() >= dialog.fontMetrics().horizontalAdvance(title) + 100  # room for the whole title
    assert "IMEI:354679100000002" in dialog.who.text() and "demo-dm12" in dialog.who.text()
    assert window.fleet_panel.pending.count() == 1
    window.fleet_panel.answer_with_defaults(None)  # confirm's default: yes
    qtbot.waitUntil(task.done, timeout=3000)
    assert task.result() == UserAnswer("ok")
    QApplication.processEvents()
    assert not any(d.isVisible() for d in window.findChildren(AlertDialog))
