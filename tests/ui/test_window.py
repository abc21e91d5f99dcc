"""The main window over a real fleet: devices listed, tree changes reach the rows, traffic decodes."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from emulator.errors import FileFormatError
from emulator.events import MessageLogged
from ui.app import DEMO_DEVICES, Desktop
from ui.tree_model import NodeRole

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples" / "dm12"


def test_window_lists_the_demo_devices(window):
    model = window.fleet_panel.model
    assert model.rowCount() == sum(n for _, n in DEMO_DEVICES)
    profiles = {model.index(r, 1).data() for r in range(model.rowCount())}
    assert profiles == {p for p, _ in DEMO_DEVICES}
    window.fleet_panel.search.setText("nbiot")
    assert window.fleet_panel.proxy.rowCount() == 1


def test_desktop_demo_without_server_says_so(qtbot, arun, disposer):
    desktop = Desktop(argparse.Namespace(workspace=None, no_demo=False, screenshot=None), stop_loop=False)
    arun(desktop.start())
    try:
        assert desktop.window is not None
        assert len(desktop.fleet.devices) == sum(n for _, n in DEMO_DEVICES)
        if desktop.server.url:  # the reference server has landed: sessions go to it
            assert desktop.fleet.server == desktop.server.url
        else:
            assert "not available" in desktop.window.server_label.text()
    finally:
        disposer(desktop.window)
        arun(desktop.stop())


def test_tree_change_updates_the_row_after_the_flush(window, qtbot):
    dev = next(iter(window.fleet.devices.values()))
    window.select_device(dev.id)
    panel = window.tree_panel
    assert panel.select_path("./DevDetail/FwV")
    idx = panel.model.ensure_path("./DevDetail/FwV")
    before = idx.siblingAtColumn(1).data()
    dev.tree.replace("./DevDetail/FwV", "X5P-BL-9.99.99", by=None)
    assert idx.siblingAtColumn(1).data() == before  # not yet: batched
    qtbot.waitUntil(lambda: idx.siblingAtColumn(1).data() == "X5P-BL-9.99.99", timeout=2000)
    assert idx.data(NodeRole).value == "X5P-BL-9.99.99"
    assert idx.siblingAtColumn(1).data(Qt.ItemDataRole.BackgroundRole) is not None  # flashing
    qtbot.waitUntil(lambda: idx.siblingAtColumn(1).data(Qt.ItemDataRole.BackgroundRole) is None, timeout=4000)
    changes = panel.model.history("./DevDetail/FwV")
    assert [(c.old, c.new) for c in changes] == [(before, "X5P-BL-9.99.99")]
    assert "X5P-BL-9.99.99" in panel.model.tooltip("./DevDetail/FwV")


def test_tree_panel_edit_goes_through_the_tree_and_shows_refusals(window):
    dev = next(iter(window.fleet.devices.values()))
    window.select_device(dev.id)
    panel = window.tree_panel
    assert panel.select_path("./DevInfo/Lang")
    panel.value_edit.setText("fr-FR")
    assert panel.edit_selected()
    assert dev.tree.value("./DevInfo/Lang") == "fr-FR"
    assert panel.select_path("./DevInfo")
    panel.value_edit.setText("x")
    assert not panel.edit_selected()  # interior node: Replace needs TNDS
    assert "405" in panel.message.text()


def test_message_appears_in_traffic_and_decodes(window, qtbot):
    dev = next(iter(window.fleet.devices.values()))
    window.select_device(dev.id)
    body = (EXAMPLES / "replace.wbxml").read_bytes()  # holds an Add
    window.fleet.bus.publish(MessageLogged(dev.id, "s1", "in", time.time(), "application/vnd.syncml.dm+wbxml",
                                           body, "HTTP 200", 12.5, "http://127.0.0.1:9/dm12"))
    window.fleet.bus.publish(MessageLogged("other-device", "s2", "out", time.time(), "application/json",
                                           b'{"a": [1, 2]}', "Package #1", None, "http://127.0.0.1:9/dm2"))
    traffic = window.traffic_panel
    qtbot.waitUntil(lambda: traffic.model.rowCount() == 2, timeout=2000)
    assert traffic.proxy.rowCount() == 1  # only the selected device
    traffic.view.selectRow(0)
    text = traffic.detail.toPlainText()
    assert "<SyncML" in text and "<Add>" in text
    traffic.only_selected.setChecked(False)
    traffic.session_box.setCurrentText("s2")
    assert traffic.proxy.rowCount() == 1
    traffic.view.selectRow(0)
    assert '"a": [\n' in traffic.detail.toPlainText()


def test_traffic_log_saves_and_opens_again(window, qtbot, tmp_path):
    traffic = window.traffic_panel
    msg = MessageLogged("dev", "s9", "out", 1700000000.25, "application/json", b"\x00\x01{}", "x", 3.0, "u")
    traffic.add_messages([msg])
    assert traffic.save(tmp_path / "t.jsonl") == 1
    traffic.clear()
    assert traffic.load(tmp_path / "t.jsonl") == 1
    assert traffic.model.messages == [msg]
    (tmp_path / "bad.jsonl").write_text('{"device_id": "d"}\n')
    with pytest.raises(FileFormatError, match=":1:"):
        traffic.load(tmp_path / "bad.jsonl")


def test_closing_does_not_remember_the_window_s_own_server(window):
    from ui.settings import recent_servers

    window.save_settings()  # the demo's server (a random port) is gone with the window: not a recent server
    assert window.fleet.server not in recent_servers("dm12") + recent_servers("dm2")
