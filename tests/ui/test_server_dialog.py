"""Session > Server connection… and Notify, progress for long work, failed sessions on the device row."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from emulator.transport.http import TlsConfig
from ui.server_dialog import KEEP, ServerDialog

QUICK_DM2 = [[["GET", "urn:oma:mo:oma-dm-devinfo:1.2//FwV"]], [["END"]]]


def _ids(window, profile):
    return [d.id for d in window.fleet.devices.values() if d.profile.name == profile]


def test_dialog_writes_only_what_changed_into_the_chosen_devices(window, qtbot):
    from ui.settings import recent_servers

    phones = _ids(window, "smartphone")
    others = [d for d in window.fleet.devices if d not in phones]
    before = {d: window.fleet.devices[d].accounts() for d in others}
    dialog = ServerDialog(window.fleet, phones, window)
    qtbot.addWidget(dialog)
    dm12, dm2 = dialog.forms["dm12"], dialog.forms["dm2"]
    assert dialog.only_selected.isChecked()
    # shared values are shown; the per-device user names are not (writing one would clobber the rest)
    assert dm12.url.currentText() == "http://127.0.0.1:9/dm12" and dm12.user.text() == ""
    assert [dm2.auth.itemText(i) for i in range(dm2.auth.count())] == ["basic", "digest", "none"]
    assert dm2.server_auth is None and dm12.server_auth.currentText() == "dm"
    assert dm12.ui_resume is None and dm2.ui_resume.currentText() == "held"
    assert not dialog.warning.isVisible()
    dm12.url.setCurrentText("https://dm.example.com/oma")
    dm12.auth.setCurrentText("hmac")
    dm12.server_auth.setCurrentText("transport")
    dm12.user.setText("{dev_id}-x")
    dm12.secret.setText("s3cret")
    dm2.setChecked(False)
    dialog.verify.setChecked(False)
    assert dialog.warning.isVisibleTo(dialog) and "OFF" in dialog.warning.text()
    dialog.ca_file.edit.setText("/etc/dm-ca.pem")
    changes = dialog.changes()
    assert changes.dm2 is None and changes.dm12.server_id is None  # untouched: kept per device
    job = window.server_actions.apply(changes)
    qtbot.waitUntil(lambda: not job.running, timeout=3000)
    for dev_id in phones:
        dev = window.fleet.devices[dev_id]
        acc = dev.account(protocol="dm12")
        assert (acc.server_uri, acc.auth, acc.client_user, acc.client_secret) == (
            "https://dm.example.com/oma", "hmac", f"{dev_id}-x", "s3cret")
        assert acc.server_auth == "transport"
        assert TlsConfig.for_account(acc).verify is False and acc.ca_file == "/etc/dm-ca.pem"
        assert dev.account(protocol="dm2").server_uri == "http://127.0.0.1:9/dm2"  # DM 2.0 left alone
        assert dev.account(protocol="dm2").verify
    assert {d: window.fleet.devices[d].accounts() for d in others} == before
    assert recent_servers("dm12")[0] == "https://dm.example.com/oma"
    assert "2 device(s)" in window.statusBar().currentMessage()


def test_dialog_refuses_bad_urls_and_offers_keep_for_mixed_values(window, qtbot):
    gw, phone = _ids(window, "home-gateway")[0], _ids(window, "smartphone")[0]
    window.fleet.devices[phone].tree.replace("./DMAcc/demo-dm12/AAuthPref", "BASIC")
    window.fleet.devices[phone].tree.replace("./DMAcc/demo-dm12/AppAuth/CLCRED/AAuthType", "BASIC")
    dialog = ServerDialog(window.fleet, [gw, phone], window)
    qtbot.addWidget(dialog)
    dm12 = dialog.forms["dm12"]
    assert dm12.auth.currentText() == KEEP  # md5 on one, basic on the other
    dm12.url.setCurrentText("ftp://dm.example.com/")
    dialog.show()
    dialog.try_accept()
    assert dialog.isVisible() and "not an http" in dialog.problem_label.text()
    dm12.url.setCurrentText("")
    dialog.try_accept()
    assert "cannot be empty" in dialog.problem_label.text()
    dm12.url.setCurrentText("https://dm.example.com/{serial}")
    dialog.try_accept()
    assert dialog.result() == ServerDialog.DialogCode.Accepted
    changes = dialog.changes()
    assert changes.dm12.auth is None and changes.device_ids == [gw, phone]
    job = window.server_actions.apply(changes)
    qtbot.waitUntil(lambda: not job.running, timeout=3000)
    gw_dev = window.fleet.devices[gw]
    assert gw_dev.account(protocol="dm12").server_uri == f"https://dm.example.com/{gw_dev.identity.serial}"
    assert window.fleet.devices[phone].account(protocol="dm12").auth == "basic"


def test_menu_opens_the_dialog_for_the_selection(window, qtbot):
    phone = _ids(window, "smartphone")[0]
    window.fleet_panel.select(phone)
    window.server_actions.connect_action.trigger()
    dialog = window.server_actions.dialog
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    assert dialog.device_ids() == [phone] and dialog.windowModality() != Qt.WindowModality.NonModal
    dialog.reject()


def test_adding_many_devices_shows_progress_and_keeps_going(window, qtbot):
    panel = window.fleet_panel
    first = panel.model.rowCount()
    job = panel.add_devices("nbiot-sensor", 4000)
    assert job is not None and job.running  # seconds of work: not done in one slice
    assert panel.add_devices("nbiot-sensor", 1) is None  # one at a time
    qtbot.waitUntil(lambda: job.dialog is not None or not job.running, timeout=5000)
    assert job.dialog is not None and job.dialog.isVisible()
    qtbot.waitUntil(lambda: not job.running, timeout=15_000)
    assert panel.model.rowCount() == first + 4000 == len(window.fleet.devices)
    assert "added 4000 nbiot-sensor" in window.statusBar().currentMessage()


def test_sessions_bar_follows_the_current_wave(window):
    bar, st = window.session_progress, window.fleet.stats
    st.sessions_started, st.sessions_completed, st.sessions_failed = 4, 4, 0
    bar.refresh()
    assert bar.isHidden()
    st.sessions_started = 14  # a wave of ten
    bar.refresh()
    assert bar.isVisibleTo(window) and (bar.value(), bar.maximum()) == (0, 10)
    st.sessions_completed, st.sessions_failed = 9, 2
    bar.refresh()
    assert (bar.value(), bar.maximum()) == (7, 10)
    st.sessions_completed = 12
    bar.refresh()
    assert bar.isHidden()


def test_failed_session_detail_shows_in_the_row_tooltip(window, qtbot):
    phone = _ids(window, "smartphone")[0]
    (task,) = window.fleet_panel.start_sessions([phone])  # nothing listens on 127.0.0.1:9
    qtbot.waitUntil(task.done, timeout=4000)
    done = task.result()
    assert done.outcome != "completed" and done.detail
    model = window.fleet_panel.model
    row = model.row_of(phone)
    qtbot.waitUntil(lambda: model.index(row, 2).data() == "error", timeout=2000)
    tip = model.index(row, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert done.detail in tip and "error" in tip


@pytest.fixture
def desktop(desktop):
    desktop.server.control.set_script("*", steps=QUICK_DM2)  # no web page: the session ends on its own
    return desktop


def _notify(desktop, qtbot, dev_id, protocol):
    """Session > Notify selected device on one device; its Notified once the device answered."""
    w = desktop.window
    w.fleet_panel.select(dev_id)
    w.fleet_panel.protocol_box.setCurrentText(protocol)
    (task,) = w.server_actions.notify_selected()
    qtbot.waitUntil(task.done, timeout=4000)
    return task.result()


def _reachable(desktop, profile="smartphone"):
    """A device of ``profile`` taken out of NAT: servers reach it on the fleet's listener."""
    dev = next(d for d in desktop.fleet.devices.values() if d.profile.name == profile)
    dev.set_bearer(dev.bearer, nat=False)
    assert not dev.behind_nat
    return dev.id


def test_notify_over_the_listener_starts_a_session_and_a_rejection_is_reported(desktop, qtbot):
    w, state, listener = desktop.window, desktop.server.running.state, desktop.fleet.listener
    phone = _reachable(desktop)
    accepted, delivered = listener.accepted, desktop.fleet.push.delivered
    notified = _notify(desktop, qtbot, phone, "dm2")
    assert notified.channel == "listener" and notified.session is not None, notified
    assert listener.accepted == accepted + 1 and desktop.fleet.push.delivered == delivered
    qtbot.waitUntil(notified.session.done, timeout=4000)
    assert notified.session.result().outcome == "completed", notified.session.result()
    log = state.device(phone)
    assert log.notification_ids == log.notifications_sent and len(log.notifications_sent) == 1
    qtbot.waitUntil(lambda: "listener" in w.statusBar().currentMessage(), timeout=2000)
    assert "session started" in w.statusBar().currentMessage()

    state.noti_secret = b"not the device's secret"
    rejected = listener.rejected
    notified = _notify(desktop, qtbot, phone, "dm2")
    assert notified.session is None and notified.rejected and "digest" in notified.why.lower(), notified
    assert listener.rejected == rejected + 1 and listener.accepted == accepted + 1
    qtbot.waitUntil(lambda: "rejected" in w.statusBar().currentMessage(), timeout=2000)
    assert "digest" in w.statusBar().currentMessage().lower()
    assert state.device(phone).completed == 1


def test_notify_a_dm12_device_over_the_listener(desktop, qtbot):
    gateway = _reachable(desktop, "home-gateway")
    listener = desktop.fleet.listener
    accepted = listener.accepted
    notified = _notify(desktop, qtbot, gateway, "dm12")
    assert (notified.channel, notified.protocol) == ("listener", "dm12") and notified.session is not None
    assert listener.accepted == accepted + 1
    qtbot.waitUntil(notified.session.done, timeout=4000)
    assert notified.session.result().outcome == "completed", notified.session.result()


def test_notify_behind_nat_goes_over_the_push_channel(desktop, qtbot):
    w, state, push = desktop.window, desktop.server.running.state, desktop.fleet.push
    phone = next(d for d in desktop.fleet.devices.values() if d.profile.name == "smartphone")
    assert phone.behind_nat and phone.id in push.polling  # the demo's phones wait on the push channel
    accepted, delivered = desktop.fleet.listener.accepted, push.delivered
    notified = _notify(desktop, qtbot, phone.id, "dm2")
    assert notified.channel == "push" and notified.session is not None, notified
    assert push.delivered == delivered + 1 and desktop.fleet.listener.accepted == accepted
    qtbot.waitUntil(notified.session.done, timeout=4000)
    assert notified.session.result().outcome == "completed"
    qtbot.waitUntil(lambda: "push" in w.statusBar().currentMessage(), timeout=2000)

    state.noti_secret = b"not the device's secret"  # the poller delivers it; the device says no
    notified = _notify(desktop, qtbot, phone.id, "dm2")
    assert notified.session is None and notified.rejected and "digest" in notified.why.lower(), notified
    assert push.delivered == delivered + 2
    qtbot.waitUntil(lambda: "rejected" in w.statusBar().currentMessage(), timeout=2000)


def test_a_notified_session_that_fails_stays_on_its_row(desktop, qtbot):
    phone = _reachable(desktop)
    desktop.server.running.state.add_fault("malformed", device=phone)  # the server answers garbage
    notified = _notify(desktop, qtbot, phone, "dm2")
    assert notified.channel == "listener" and notified.session is not None, notified
    qtbot.waitUntil(notified.session.done, timeout=4000)
    done = notified.session.result()
    assert done.outcome != "completed" and done.detail
    model = desktop.window.fleet_panel.model
    row = model.row_of(phone)
    qtbot.waitUntil(lambda: model.index(row, 2).data() == "error", timeout=2000)
    assert done.detail in model.index(row, 0).data(Qt.ItemDataRole.ToolTipRole)


def test_notify_without_a_listener_hands_it_over_directly(desktop, qtbot):
    fleet = desktop.fleet
    listener, fleet.listener = fleet.listener, None
    try:
        phone = _reachable(desktop)
        notified = _notify(desktop, qtbot, phone, "dm2")
    finally:
        fleet.listener = listener
    assert notified.channel == "direct" and notified.session is not None and listener.accepted == 0
    qtbot.waitUntil(notified.session.done, timeout=4000)


def test_server_label_shows_where_notifications_go(desktop, qtbot):
    label, url = desktop.window.server_label, desktop.fleet.listener.url
    assert url.startswith("http://127.0.0.1:")
    qtbot.waitUntil(lambda: f"notifications: {url}" in label.text(), timeout=2000)  # the count timer
    assert label.text() == f"Server: {desktop.server.url} · notifications: {url}"


def test_first_devices_added_get_a_device_column_that_fits(qtbot):
    from emulator.events import EventBus
    from emulator.fleet.fleet import Fleet
    from ui.fleet_panel import MAX_ID_WIDTH, FleetPanel

    fleet = Fleet(server="http://127.0.0.1:9", bus=EventBus())
    panel = FleetPanel(fleet)
    qtbot.addWidget(panel)
    panel.show()
    narrow = panel.view.columnWidth(0)
    fleet.add("smartphone", 2)
    panel.model.sync()  # rows appended, not a reset: the selection would survive
    # ids as wide as they are, up to MAX_ID_WIDTH (cut in the middle beyond: the other columns stay in view)
    assert panel.view.columnWidth(0) >= min(panel.view.sizeHintForColumn(0), MAX_ID_WIDTH)
    assert panel.view.columnWidth(0) > narrow


def test_dialog_sets_the_dm2_ui_resumption_style(window, qtbot):
    phones = _ids(window, "smartphone")
    dialog = ServerDialog(window.fleet, phones, window)
    qtbot.addWidget(dialog)
    dialog.forms["dm12"].setChecked(False)
    dialog.forms["dm2"].ui_resume.setCurrentText("client")
    changes = dialog.changes()
    assert changes.dm12 is None and changes.dm2.ui_resume == "client" and changes.dm2.auth is None
    job = window.server_actions.apply(changes)
    qtbot.waitUntil(lambda: not job.running, timeout=3000)
    for dev_id in phones:
        dev = window.fleet.devices[dev_id]
        assert dev.account(protocol="dm2").ui_resume == "client"
        assert dev.account(protocol="dm12").server_auth == "dm"  # DM 1.2 left alone


def test_keep_or_shared_offers_keep_only_when_the_devices_differ(qtbot):
    from ui.server_dialog import keep_or_shared

    shared = keep_or_shared(["held", "client"], ["client", "client"], "tip")
    mixed = keep_or_shared(["dm", "transport", "none"], ["dm", "none"], "tip")
    none = keep_or_shared(["dm", "transport"], [], "tip")
    for box in (shared, mixed, none):
        qtbot.addWidget(box)
    assert [shared.itemText(i) for i in range(shared.count())] == ["held", "client"]
    assert shared.currentText() == "client" and shared.toolTip() == "tip"
    assert [mixed.itemText(i) for i in range(mixed.count())] == [KEEP, "dm", "transport", "none"]
    assert mixed.currentText() == KEEP and none.currentText() == KEEP
