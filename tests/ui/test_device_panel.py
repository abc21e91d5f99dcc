"""The "Apps & authorities" tab: authorities with their delegation state, bearers with a working switch
button, environments side by side, apps with their grants, notifications and refusals."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QGroupBox, QPushButton

from emulator.device.apps import AppAccessError

ALL = "Add={ids}&Delete={ids}&Exec={ids}&Get={ids}&Replace={ids}"


@pytest.fixture
def tablet(window):
    dev = next(d for d in window.fleet.devices.values() if d.profile.name == "tablet-dual-env")
    window.select_device(dev.id)
    window.device_tabs.setCurrentWidget(window.device_panel)
    return dev


def _column(table, col: int) -> list[str]:
    return [table.item(r, col).text() for r in range(table.rowCount())]


def test_authorities_and_environments_side_by_side(window, tablet):
    panel = window.device_panel
    assert panel.device is tablet and tablet.id in panel.title.text()
    assert sorted(_column(panel.accounts, 0)) == ["demo-dm2", "work-mdm"]
    rows = {panel.accounts.item(r, 0).text(): r for r in range(panel.accounts.rowCount())}
    assert panel.accounts.item(rows["work-mdm"], 1).text() == "dm12"
    assert panel.accounts.item(rows["work-mdm"], 2).text() == str(tablet.account("work-mdm").priority)
    boxes = {b.objectName(): b for b in panel.environments.findChildren(QGroupBox)}
    assert set(boxes) == {"env-host", "env-work"}
    work_labels = [w.text() for w in boxes["env-work"].findChildren(type(panel.title))]
    assert any(tablet.environment("work").id in t and t.startswith("Identity") for t in work_labels)
    assert any("(the device's)" in t for t in (w.text() for w in boxes["env-host"].findChildren(type(panel.title))))


def test_the_switch_button_changes_the_bearer_and_the_table_follows(window, tablet, qtbot):
    panel = window.device_panel
    assert tablet.bearer == "wlan0"
    row = _column(panel.bearers, 1).index("lte0")
    button = panel.bearers.cellWidget(row, panel.bearers.columnCount() - 1)
    assert isinstance(button, QPushButton) and button.text() == "Switch to"
    button.click()
    assert tablet.bearer == "lte0" and tablet.tree.value("./DM2/DevInfo/Bearer/lte0/State") == "up"
    qtbot.waitUntil(lambda: panel.bearers.item(_column(panel.bearers, 1).index("lte0"), 0).text() == "●",
                    timeout=2000)
    assert panel.bearers.item(_column(panel.bearers, 1).index("wlan0"), 0).text() == ""


def test_apps_show_grants_notifications_and_refusals(window, tablet, qtbot):
    panel = window.device_panel
    tablet.tree.set_node("./Vendor/Mail/Server", "imap.example.net")
    tablet.tree.replace_prop("./Vendor/Mail", "ACL", ALL.format(ids="work-mdm"))
    app = tablet.apps.register("mail", ["./Vendor/Mail"])
    app.subscribe("./Vendor/Mail")
    tablet.tree.replace("./Vendor/Mail/Server", "imap2.example.net", by="work-mdm")
    with pytest.raises(AppAccessError):
        app.read("./DevInfo/DevId")
    window.batcher.flush()
    assert _column(panel.apps, 0) == ["mail"] and _column(panel.apps, 1) == ["./Vendor/Mail"]
    assert _column(panel.apps, 2) == ["1"]
    panel.apps.selectRow(0)
    texts = [panel.notifications.item(i).text() for i in range(panel.notifications.count())]
    assert texts == ["replace ./Vendor/Mail/Server by work-mdm: 'imap.example.net' → 'imap2.example.net'"]
    refused = [panel.refusals.item(i).text() for i in range(panel.refusals.count())]
    assert len(refused) == 1 and "./DevInfo/DevId" in refused[0]


def test_delegate_and_revoke_from_the_panel_and_refusals_are_reported(window, tablet, qtbot):
    panel = window.device_panel
    tablet.tree.set_node("./Vendor/App", format="node", acl=ALL.format(ids="work-mdm"))
    panel.delegator.setCurrentText("work-mdm")
    panel.delegate_to.setCurrentText("demo-dm2")
    panel.scope.setText("./Vendor/App")
    panel.kind.setCurrentText("full")
    panel.delegate_button.click()
    assert _column(panel.delegations, 2) == ["work-mdm"] and _column(panel.delegations, 1) == ["full"]
    rows = {panel.accounts.item(r, 0).text(): r for r in range(panel.accounts.rowCount())}
    assert "full to demo-dm2" in panel.accounts.item(rows["work-mdm"], 3).text()
    assert tablet.tree.info("./Vendor/App").acl == ALL.format(ids="demo-dm2")
    with qtbot.waitSignal(panel.error, timeout=2000) as refused:  # again: work-mdm gave it all away
        panel.delegate_button.click()
    assert "refused (425)" in refused.args[0] and "does not control" in refused.args[0]
    panel.delegations.selectRow(0)
    panel.revoke_button.click()
    assert panel.delegations.rowCount() == 0 and not tablet.delegations.active()
    assert tablet.tree.info("./Vendor/App").acl == ALL.format(ids="work-mdm")
