"""The whole demo as a user sees it: the reference server in the loop, a DM 2.0 session that asks for
a web page, each page of the Wi-Fi wizard shown in the window's web view (its address and title), the
form filled in there, the session finishing, and what the user typed arriving in the device's tree."""

from __future__ import annotations

from emulator.protocol.actions import UI_DONE_PATH
from emulator.server.ui_flows import WIFI

SSID = "demo-net"
FILL_AND_SUBMIT = """
(function () {
  var form = document.forms[0];
  if (!form) { return false; }
  for (var i = 0; i < form.elements.length; i++) {
    var el = form.elements[i];
    if (el.name === 'ssid') { el.value = 'SSID'; }
    if (el.type === 'password') { el.value = 'correct-horse-battery'; }
    if (el.type === 'checkbox' && el.required) { el.checked = true; }
  }
  if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  return true;
})();
""".replace("'SSID'", f"'{SSID}'")


def test_demo_session_shows_each_server_page_and_the_answers_reach_the_tree(desktop, qtbot):
    w, fleet = desktop.window, desktop.fleet
    dock = w.web_dock
    phone = next(d for d in fleet.devices.values() if d.profile.name == "smartphone")
    w.fleet_panel.select(phone.id)
    assert w.tree_panel.model.changed_paths(phone.id) == []
    shown: list[tuple[str, str, bool]] = []  # (path, title, dock visible) of every page the view finished

    def note(ok: bool) -> None:
        if ok:
            shown.append((dock.view.url().path(), dock.view.title(), dock.isVisible()))

    dock.view.loadFinished.connect(note)
    task = fleet.start_session(phone.id, "dm2")
    for _ in range(len(WIFI.pages)):  # one form per page until the done page
        loads = len(shown)
        qtbot.waitUntil(lambda loads=loads: len(shown) > loads or task.done(), timeout=15_000)
        assert not task.done(), task.result()
        if shown[-1][0].endswith(UI_DONE_PATH):
            break
        dock.page.runJavaScript(FILL_AND_SUBMIT)
    qtbot.waitUntil(lambda: shown[-1][0].endswith(UI_DONE_PATH) or task.done(), timeout=15_000)
    qtbot.waitUntil(task.done, timeout=20_000)
    assert task.result().outcome == "completed", task.result()

    # the pages the user saw, in order, in a visible dock: the wizard's two pages, then the done page
    assert [p for p, _, _ in shown] == ["/ui/wifi", "/ui/wifi/1", UI_DONE_PATH], shown
    assert [t for _, t, _ in shown] == [WIFI.pages[0].title, WIFI.pages[1].title, "All set"], shown
    assert all(visible for _, _, visible in shown)
    # what the user typed on the first page is now a node of the device, and the tree panel marks it
    ssid_paths = [i.path for i in phone.tree.walk(".") if i.children is None and i.value == SSID]
    assert ssid_paths and ssid_paths[0].endswith("/SSID"), ssid_paths
    assert ssid_paths[0] in w.tree_panel.model.changed_paths(phone.id)
    qtbot.waitUntil(lambda: w.traffic_panel.model.rowCount() >= 2, timeout=2000)
    assert any(m.device_id == phone.id for m in w.traffic_panel.model.messages)
    assert w.fleet_panel.model.index(w.fleet_panel.model.row_of(phone.id), 4).data().startswith("completed")
