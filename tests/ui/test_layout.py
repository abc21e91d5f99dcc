"""The window's layout as the user meets it: every part a dock with a View toggle, "Reset layout",
the layout remembered between runs, and readable columns at 1280x800."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDockWidget

from ui.mainwindow import MainWindow

DOCK_TITLES = {"Fleet", "Device", "Traffic", "Message detail", "Server page"}


def _view_menu_texts(window: MainWindow) -> list[str]:
    return [a.text() for a in window.view_menu.actions() if not a.isSeparator()]


def test_every_part_is_a_dock_listed_in_the_view_menu(window):
    docks = {d.windowTitle() for d in window.findChildren(QDockWidget)}
    assert docks >= DOCK_TITLES
    texts = _view_menu_texts(window)
    assert set(texts) >= DOCK_TITLES
    assert "Reset layout" in texts
    assert window.centralWidget() is None or not window.centralWidget().isVisible()
    for title in ("Fleet", "Device", "Traffic", "Message detail"):
        assert next(d for d in window.findChildren(QDockWidget) if d.windowTitle() == title).isVisible()
    assert not window.web_dock.isVisible()  # no page yet


def test_view_toggle_hides_and_shows_a_dock(window, qtbot):
    action = next(a for a in window.view_menu.actions() if a.text() == "Traffic")
    assert action.isChecked()
    action.trigger()
    assert not window.traffic_dock.isVisible()
    action.trigger()
    assert window.traffic_dock.isVisible()


def test_reset_layout_brings_back_closed_and_floating_docks(window, qtbot):
    window.traffic_dock.close()
    window.detail_dock.setFloating(True)
    window.removeDockWidget(window.fleet_dock)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, window.fleet_dock)
    window.reset_action.trigger()
    assert window.traffic_dock.isVisible()
    assert not window.detail_dock.isFloating()
    assert window.dockWidgetArea(window.fleet_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    qtbot.waitUntil(lambda: window.fleet_dock.geometry().right() < window.tree_dock.geometry().left())
    # the detail sits beside the traffic list, under the tree
    assert window.detail_dock.geometry().left() > window.traffic_dock.geometry().left()
    assert window.traffic_dock.geometry().top() > window.tree_dock.geometry().top()


def test_layout_is_saved_and_restored(window, qtbot, disposer):
    window.detail_dock.close()
    window.save_settings()
    again = MainWindow(window.fleet)
    disposer(again)
    again.show()
    assert not again.detail_dock.isVisible()
    assert again.traffic_dock.isVisible()
    again.reset_layout()
    assert again.detail_dock.isVisible()
    window.reset_layout()  # the window saves again when it closes: leave the default for later tests
    QSettings("dm-emulator", "dm-emulator").remove("window/state")


def test_added_dock_is_listed_and_reset_with_the_rest(window):
    from PySide6.QtWidgets import QLabel

    from ui.mainwindow import EVENT_LOG_PLACE

    dock = window.add_dock("event-log", "Event log", QLabel("log"), EVENT_LOG_PLACE)
    assert "Event log" in _view_menu_texts(window)
    assert _view_menu_texts(window).index("Event log") < _view_menu_texts(window).index("Reset layout")
    dock.close()
    window.reset_layout()
    assert dock.isVisible()
    assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.LeftDockWidgetArea


# ------------------------------------------------------------------ readable at 1280x800 and 1600

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "assets" / "examples"


def _settle(window, qtbot, width: int, height: int = 780) -> None:
    window.resize(width, height)
    window.reset_layout()
    from ui.mainwindow import FLEET_SHARE, FLEET_WIDTH

    fleet_w = max(FLEET_WIDTH, int(width * FLEET_SHARE))
    qtbot.waitUntil(lambda: window.width() == width and abs(window.fleet_dock.width() - fleet_w) < 12)
    qtbot.waitUntil(lambda: window.traffic_panel.view.viewport().width() > 100)


def _fully_visible(view, column: int) -> bool:
    header = view.horizontalHeader() if hasattr(view, "horizontalHeader") else view.header()
    left = header.sectionViewportPosition(column)
    return not view.isColumnHidden(column) and left >= 0 and left + header.sectionSize(column) <= view.viewport().width()


def _messages(window):
    import json
    import time

    from emulator.events import MessageLogged

    dev = next(iter(window.fleet.devices.values()))
    window.fleet_panel.select(dev.id)
    cmd = json.dumps({"CMD": [["GET", "./DevInfo/Man"], ["GET", "./DevInfo/Mod"], ["HGET", "http://x/y", "z"],
                              ["SHOW", "http://x/ui"]]}).encode()
    window.traffic_panel.add_messages([
        MessageLogged(dev.id, "s1", "out", time.time(), "application/vnd.oma.dm.initiation+json", b"{}",
                      "Package#1", None, "http://127.0.0.1:9/dm2"),
        MessageLogged(dev.id, "s1", "in", time.time(), "application/vnd.oma.dm.request+json", cmd, "HTTP 200",
                      12.0, "http://127.0.0.1:9/dm2"),
        MessageLogged(dev.id, "s1", "in", time.time(), "application/vnd.syncml.dm+xml",
                      (EXAMPLES / "dm12" / "replace.xml").read_bytes(), "HTTP 200", 9.0, "http://127.0.0.1:9/dm12"),
    ])
    return dev


def test_columns_are_readable_at_1280_and_1600(window, qtbot):
    for width in (1280, 1600):
        _settle(window, qtbot, width)
        dev = _messages(window)
        fleet = window.fleet_panel.view
        assert all(_fully_visible(fleet, c) for c in range(4)), f"fleet columns cut at {width}"  # up to Bearer
        tree = window.tree_panel
        tree.show_device(dev.id, dev.tree)
        assert _fully_visible(tree.view, 3), f"tree ACL cut at {width}"
        traffic = window.traffic_panel
        assert traffic.view.isColumnHidden(2)  # "This device": no Device column
        summary_left = traffic.view.horizontalHeader().sectionViewportPosition(6)
        assert traffic.view.viewport().width() - summary_left >= 150, f"summary has no room at {width}"
        assert all(_fully_visible(traffic.view, c) for c in (0, 1, 3, 4, 5))
        traffic.only_selected.setChecked(False)
        assert not traffic.view.isColumnHidden(2)
        # all devices: their ids take room from the summary (which is why one device drops them)
        assert traffic.view.viewport().width() - traffic.view.horizontalHeader().sectionViewportPosition(6) >= 80
        traffic.only_selected.setChecked(True)
        assert traffic.view.isColumnHidden(2)


def test_long_ids_are_cut_in_the_middle(window):
    from PySide6.QtCore import Qt as _Qt

    assert window.fleet_panel.view.textElideMode() == _Qt.TextElideMode.ElideMiddle
    assert window.traffic_panel.view.textElideMode() == _Qt.TextElideMode.ElideMiddle
    assert window.fleet_panel.view.columnWidth(0) <= 140


def test_server_rows_summarise_their_commands(window, qtbot):
    _messages(window)
    model = window.traffic_panel.proxy
    summaries = [model.index(r, 6).data() for r in range(model.rowCount())]
    assert summaries[-2:] == ["GET ×2, HGET, SHOW", "Replace, Add, Get"]
    window.traffic_panel.search.setText("hget")  # the search finds what the list shows
    assert model.rowCount() == 1


def test_detail_wraps_and_highlights_xml(window, qtbot):
    _settle(window, qtbot, 1280)
    _messages(window)
    traffic = window.traffic_panel
    traffic.view.selectRow(traffic.proxy.rowCount() - 1)
    detail = traffic.detail
    assert "<SyncML" in detail.toPlainText()
    qtbot.waitUntil(lambda: detail.horizontalScrollBar().maximum() == 0)  # wrapped: nothing to scroll sideways
    doc = detail.document()
    block = doc.begin()
    while block.isValid() and not block.text().lstrip().startswith("<SyncML"):
        block = block.next()
    assert block.isValid()
    colours = {r.format.foreground().color().name() for r in block.layout().formats()}
    assert "#1f5fa8" in colours  # the tag is coloured


def test_detail_highlights_json(window, qtbot):
    _messages(window)
    traffic = window.traffic_panel
    traffic.view.selectRow(traffic.proxy.rowCount() - 2)
    block = traffic.detail.document().begin()
    while block.isValid() and '"CMD"' not in block.text():
        block = block.next()
    assert block.isValid()
    assert {r.format.foreground().color().name() for r in block.layout().formats()} >= {"#a0522d"}  # the key


def test_columns_are_chosen_from_the_header_menu(window, qtbot):
    chooser = window.traffic_panel.columns
    menu = chooser.menu()
    titles = [a.text() for a in menu.actions()]
    assert "Size" in titles and "Summary" in titles
    next(a for a in menu.actions() if a.text() == "Size").trigger()
    assert window.traffic_panel.view.isColumnHidden(4)
    assert chooser.header.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
    device = next(a for a in chooser.menu().actions() if a.text() == "Device")
    assert not device.isEnabled()  # hidden by "This device" for now
    chooser.set_shown(4, True)
    assert not window.traffic_panel.view.isColumnHidden(4)
    tree_titles = [a.text() for a in window.tree_panel.columns.menu().actions()]
    assert tree_titles == ["Name", "Value", "Format", "ACL"]
    fleet_menu = window.fleet_panel.columns.menu()
    next(a for a in fleet_menu.actions() if a.text() == "Last result").trigger()
    assert window.fleet_panel.view.isColumnHidden(4)
    window.fleet_panel.columns.set_shown(4, True)


def test_window_fits_a_1280_screen_with_the_page_and_plots(window, qtbot):
    _settle(window, qtbot, 1280)
    assert window.minimumSizeHint().width() <= 1280
    assert not window.docks["plots"].isVisible()  # shown on demand: four tabs do not fit beside the detail
    window.web_dock.show()
    window.docks["plots"].show()
    qtbot.waitUntil(lambda: window.docks["plots"].isVisible())
    assert window.minimumSizeHint().width() <= 1000  # room to spare: fonts differ between desktops
    assert window.width() == 1280
    window.reset_layout()


def test_a_status_message_has_room_at_1280_and_the_sessions_bar_keeps_its_words_off_its_fill(desktop, qtbot):
    """At 1280x780, with the server and notification URLs, the counts and a wave of sessions shown, a
    usual message is whole; the sessions bar's words are beside it, not drawn over its fill."""
    w = desktop.window
    w.resize(1280, 780)
    st = w.fleet.stats
    st.sessions_started, st.sessions_completed, st.sessions_failed = 25, 12, 0  # 13 running
    w.session_progress.refresh()
    w.update_counts()
    qtbot.waitUntil(lambda: "notifications:" in w.server_label.text(), timeout=2000)
    bar = w.statusBar()
    message = "IMEI:354679100000010: server demo-dm2 asks for a web page"
    bar.showMessage(message, 5000)
    qtbot.waitUntil(lambda: not w.server_label.isVisible())  # a message covers the server, not the counts
    permanent = [x for x in (w.session_progress, w.session_progress.caption, w.counts) if x.isVisible()]
    assert len(permanent) == 3
    room = min(x.geometry().left() for x in permanent)
    assert bar.fontMetrics().horizontalAdvance(message) + 16 < room, (room, w.width())
    assert not w.session_progress.isTextVisible()
    assert w.session_progress.caption.text() == "0/13 sessions"  # the wave: 13 started, none ended yet
    assert w.session_progress.caption.geometry().left() >= w.session_progress.geometry().right()
    bar.clearMessage()
    qtbot.waitUntil(w.server_label.isVisible)  # and back when the message goes
    st.sessions_completed = 25
    w.session_progress.refresh()
    assert w.session_progress.isHidden() and w.session_progress.caption.isHidden()
