"""Desktop conventions as the user meets them: Help menu and About, shortcuts, context menus,
traffic exported as HAR and as raw bodies."""

from __future__ import annotations

import json
import time

from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication

from emulator.events import MessageLogged


def _menu(window, title: str):
    return next(a.menu() for a in window.menuBar().actions() if a.text() == title)


def test_help_menu_has_about_and_the_readme_on_f1(window):
    help_menu = _menu(window, "&Help")
    texts = [a.text() for a in help_menu.actions()]
    assert texts == ["README", "About dm-emulator…"]
    readme = help_menu.actions()[0]
    assert readme.shortcut() == QKeySequence(QKeySequence.StandardKey.HelpContents)
    opened = []
    window.desktop.open_url = opened.append
    readme.trigger()
    assert opened and opened[0].toString().endswith("README.md")


def test_about_names_the_version_and_the_licences(window, qtbot):
    from emulator import __version__

    dialog = window.desktop.show_about()
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert f"dm-emulator {__version__}" in text
    assert "Qt" in text and "LGPL" in text and "PySide6" in text
    for lib in ("aiohttp", "lxml", "cryptography", "qasync"):
        assert lib in text
    assert "Apache-2.0" in text and "BSD" in text
    assert "README" in text


def test_shortcuts_are_set_on_the_actions(window):
    file_texts = {a.text(): a.shortcut().toString() for a in _menu(window, "&File").actions()}
    assert file_texts["Open traffic log…"] == QKeySequence(QKeySequence.StandardKey.Open).toString()
    assert file_texts["Save traffic log…"] == QKeySequence(QKeySequence.StandardKey.Save).toString()
    assert "Export traffic as HAR…" in file_texts and "Export message bodies…" in file_texts
    session = {a.text(): a.shortcut().toString() for a in _menu(window, "&Session").actions()}
    assert session["Start session on selection"] == "Ctrl+R"
    assert window.desktop.search.shortcut() == QKeySequence(QKeySequence.StandardKey.Find)
    assert window.desktop.stop.shortcut().toString() == "Esc"
    assert window.desktop.delete.shortcut() == QKeySequence(QKeySequence.StandardKey.Delete)


def test_ctrl_f_goes_to_the_traffic_search(window, qtbot):
    window.traffic_dock.close()
    window.traffic_panel.search.setText("hget")
    window.desktop.search.trigger()
    assert window.traffic_dock.isVisible()
    qtbot.waitUntil(lambda: window.traffic_panel.search.hasFocus() or not window.isActiveWindow())
    assert window.traffic_panel.search.selectedText() == "hget"


def test_esc_stops_the_selected_devices_sessions(window):
    calls = []
    window.fleet_panel.stop_sessions = lambda ids: calls.append(ids) or len(ids)
    dev = next(iter(window.fleet.devices))
    window.fleet_panel.select(dev)
    window.desktop.stop.trigger()
    assert calls == [[dev]]


def test_fleet_context_menu_starts_stops_and_shows_in_tree(window):
    dev = list(window.fleet.devices)[1]
    window.fleet_panel.select(dev)
    menu = window.desktop.fleet_menu()
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert texts == ["Start session", "Stop session", "Show in tree", "Show its traffic", "Copy device id"]
    window.device_tabs.setCurrentIndex(1)
    next(a for a in menu.actions() if a.text() == "Show in tree").trigger()
    assert window.device_tabs.currentWidget() is window.tree_panel
    assert window.tree_panel.model.device_id == dev
    next(a for a in menu.actions() if a.text() == "Copy device id").trigger()
    assert QGuiApplication.clipboard().text() == dev


def test_tree_context_menu_copies_uri_and_value(window):
    dev = next(iter(window.fleet.devices.values()))
    window.fleet_panel.select(dev.id)
    assert window.tree_panel.select_path("./DevInfo/Man")
    menu = window.desktop.tree_menu()
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert texts[:3] == ["Copy URI", "Copy value", "Chart value history"] and "Delete…" in texts
    next(a for a in menu.actions() if a.text() == "Copy URI").trigger()
    assert QGuiApplication.clipboard().text() == "./DevInfo/Man"
    next(a for a in menu.actions() if a.text() == "Copy value").trigger()
    assert QGuiApplication.clipboard().text() == dev.tree.value("./DevInfo/Man")
    assert window.tree_panel.select_path("./DevInfo")
    menu = window.desktop.tree_menu()
    assert not next(a for a in menu.actions() if a.text() == "Copy value").isEnabled()  # interior node


def _traffic(window):
    dev = next(iter(window.fleet.devices))
    window.fleet_panel.select(dev)
    msgs = [
        MessageLogged(dev, "s1", "out", time.time(), "application/vnd.oma.dm.initiation+json", b'{"x": 1}',
                      "Package#1", None, "http://127.0.0.1:9/dm2"),
        MessageLogged(dev, "s1", "in", time.time(), "application/vnd.oma.dm.request+json",
                      b'{"CMD": [["GET", "./DevInfo/Man"]]}', "HTTP 200", 5.0, "http://127.0.0.1:9/dm2"),
        MessageLogged(dev, "s2", "out", time.time(), "application/json", b"{}", "Package#1", None, "u"),
    ]
    window.traffic_panel.add_messages(msgs)
    return dev, msgs


def test_traffic_context_menu_copies_follows_and_shows(window):
    dev, _ = _traffic(window)
    panel = window.traffic_panel
    panel.view.selectRow(1)
    menu = window.desktop.traffic_menu()
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert texts == ["Copy message", "Copy body as sent", "Follow session", "Show device in tree",
                     "Export traffic as HAR…", "Export message bodies…"]
    next(a for a in menu.actions() if a.text() == "Copy message").trigger()
    assert "GET" in QGuiApplication.clipboard().text() and "server → device" in QGuiApplication.clipboard().text()
    next(a for a in menu.actions() if a.text() == "Follow session").trigger()
    assert panel.session_box.currentText() == "s1"
    assert panel.proxy.rowCount() == 2
    next(a for a in menu.actions() if a.text() == "Show device in tree").trigger()
    assert window.tree_panel.model.device_id == dev


def test_traffic_exports_as_har_and_raw_bodies(window, tmp_path):
    _traffic(window)
    assert window.desktop.export_har_to(tmp_path / "t.har") == 2
    doc = json.loads((tmp_path / "t.har").read_text())
    assert doc["log"]["version"] == "1.2"
    assert doc["log"]["entries"][0]["response"]["status"] == 200
    assert window.desktop.export_bodies_to(tmp_path / "bodies") == 3
    assert len(list((tmp_path / "bodies").iterdir())) == 3
    QApplication.processEvents()
