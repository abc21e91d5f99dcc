"""The window's safety nets: Quit asks while sessions run, the demo can be saved as a workspace and
opened again with its devices and edits, and Clear of the traffic can be undone."""

from __future__ import annotations

import argparse
import asyncio
import socket
import time

import pytest
from aiohttp import web

from emulator.errors import EmulatorError
from emulator.events import MessageLogged
from emulator.fleet.fleet import Fleet
from emulator.store import Workspace
from tests.ui.test_tree_safety import answer_box
from ui.app import Desktop
from ui.safety import save_workspace_as


@pytest.fixture
def silent_server(arun):
    """A real HTTP server on loopback that takes a request and never answers (a session stays running)."""
    release = asyncio.Event()

    async def hold(_request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=503)

    async def start():
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", hold)
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        return runner, sock.getsockname()[1]

    runner, port = arun(start())
    yield f"http://127.0.0.1:{port}"
    release.set()
    arun(runner.cleanup())


def test_quit_asks_while_sessions_run(window, qtbot, arun, silent_server):
    fleet = window.fleet
    dev = next(iter(fleet.devices.values()))
    account = dev.account(protocol="dm2")
    task = fleet.start_session(dev.id, "dm2", server_id=account.server_id, server_uri=silent_server + "/dm2")
    qtbot.waitUntil(lambda: fleet.stats.running == 1, timeout=5000)
    seen: list[str] = []
    answer_box("Cancel", seen)
    window.request_quit()
    assert "1 session is still running" in seen[0] and "Save workspace as" in seen[0]
    assert window.isVisible()
    answer_box("Quit", seen)
    window.request_quit()
    assert len(seen) == 2 and not window.isVisible()
    task.cancel()
    arun(fleet.aclose())


def test_quit_with_nothing_running_asks_nothing(window):
    assert window.fleet.stats.running == 0
    window.request_quit()
    assert not window.isVisible()


def test_save_workspace_as_then_open_it_again(window, qtbot, arun, disposer, tmp_path):
    fleet = window.fleet
    added = fleet.add("nbiot-sensor", 2)
    window.fleet_panel.model.sync()
    dev = added[-1]
    window.select_device(dev.id)
    panel = window.tree_panel
    assert panel.select_path("./DevInfo/Lang")
    panel.value_edit.setText("fr-FR")
    assert panel.edit_selected()
    assert panel.add_node("./Notes", None, "node")
    file_menu = window.menuBar().actions()[0].menu()
    assert window.safety.save_workspace in file_menu.actions()
    text = save_workspace_as(window.fleet, tmp_path / "ws")
    assert f"saved {len(fleet.devices)} devices" in text and "dm-emulator gui --workspace" in text
    panel.value_edit.setText("de-DE")  # after the save: kept there too, as it happens
    assert panel.edit_selected()
    fleet.flush_changes()
    with pytest.raises(EmulatorError, match="in use"):
        save_workspace_as(window.fleet, tmp_path / "ws")
    ids = list(fleet.devices)
    fleet.workspace.close()

    desktop = Desktop(argparse.Namespace(workspace=str(tmp_path / "ws"), no_demo=True, screenshot=None),
                      stop_loop=False)
    arun(desktop.start())
    try:
        assert list(desktop.fleet.devices) == ids
        again = desktop.fleet.devices[dev.id]
        assert again.tree.value("./DevInfo/Lang") == "de-DE"
        assert again.tree.info("./Notes").children == ()
        assert desktop.window.fleet_panel.model.rowCount() == len(ids)
    finally:
        disposer(desktop.window)
        arun(desktop.stop())


def test_save_workspace_as_refuses_another_workspace(window, tmp_path):
    with Workspace.open(tmp_path / "other") as other:
        Fleet(server="http://127.0.0.1:9", workspace=other).add("nbiot-sensor", 1)
    with pytest.raises(EmulatorError, match="already holds a workspace with 1 devices"):
        save_workspace_as(window.fleet, tmp_path / "other")
    assert window.fleet.workspace is None
    with Workspace.open(tmp_path / "other") as other:  # closed again, and untouched
        assert len(other.list_devices()) == 1


def test_clear_of_the_traffic_can_be_undone(window, qtbot):
    traffic = window.traffic_panel
    msgs = [MessageLogged("dev", f"s{i}", "out", time.time(), "application/json", b"{}", "x", 1.0, "u")
            for i in range(3)]
    traffic.add_messages(msgs)
    traffic.add_not_run("dev", "nothing listens there")  # a red row, with its reason
    reasons = list(traffic.model.reasons)
    assert any("nothing listens there" in r for r in reasons)
    traffic.clear_button.click()
    assert traffic.model.rowCount() == 0
    assert "cleared 4 traffic messages" in window.statusBar().currentMessage()
    later = MessageLogged("dev", "s9", "in", time.time(), "application/json", b"{}", "y", 1.0, "u")
    traffic.add_messages([later])
    assert "Clear traffic" in window.safety.undo.text()
    window.safety.undo.trigger()
    assert traffic.model.messages[:3] == msgs and traffic.model.messages[-1] == later
    assert traffic.model.reasons == [*reasons, ""]
    assert traffic.session_box.findText("s1") >= 0
    window.safety.redo.trigger()
    assert traffic.model.rowCount() == 0
