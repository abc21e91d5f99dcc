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
