"""The fleet list's model (ui/fleet_model.py): rows for the devices the filter matches, in fleet order,
kept right as devices come, go and change state, and a big fleet filtered in slices."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, Qt

from emulator.events import DeviceStateChanged, OperationChanged, TransferProgress
from emulator.fleet.fleet import Fleet
from ui import fleet_model
from ui.fleet_model import FleetModel


@pytest.fixture
def fleet():
    f = Fleet(server="http://127.0.0.1:9")
    f.add("smartphone", 4)
    f.add("nbiot-sensor", 2)
    return f


def rows(model: FleetModel) -> list[str]:
    return [model.device_id(r) for r in range(model.rowCount())]


def test_rows_follow_the_fleet_and_the_filter(qapp, fleet):
    model = FleetModel(fleet)
    ids = list(fleet.devices)
    assert rows(model) == ids and model.row_of(ids[5]) == 5
    model.set_filter("NBIOT")  # any column, any case
    assert rows(model) == ids[4:] and model.row_of(ids[4]) == 0 and model.row_of(ids[0]) == -1
    added = fleet.add("nbiot-sensor", 1) + fleet.add("smartphone", 1)
    model.sync()
    assert rows(model) == [*ids[4:], added[0].id]  # the new sensor matches, the new phone does not
    fleet.remove(ids[4])
    model.sync()
    assert rows(model) == [ids[5], added[0].id]
    model.set_filter("")
    assert rows(model) == list(fleet.devices)


def test_a_device_that_changes_state_comes_and_goes_in_its_place(qapp, fleet):
    model = FleetModel(fleet)
    ids = list(fleet.devices)
    model.set_filter("error")
    assert rows(model) == []
    events: list[object] = []
    fleet.bus.subscribe(events.append, DeviceStateChanged)
    for i in (3, 1):
        fleet.devices[ids[i]].set_state("error", "boom")
    model.apply_events(events)
    assert rows(model) == [ids[1], ids[3]]  # fleet order, whatever order they changed in
    events.clear()
    fleet.devices[ids[1]].set_state("idle")
    model.apply_events(events)
    assert rows(model) == [ids[3]]


def test_a_big_fleet_is_filtered_in_slices(qapp, fleet, monkeypatch):
    monkeypatch.setattr(fleet_model, "FILTER_SLICE_S", 0.0)  # one chunk per slice
    fleet.add("smartphone", 1200)
    model = FleetModel(fleet)
    model.set_filter("nbiot")
    assert model.filtering and model.rowCount() == len(fleet.devices)  # the old rows until it is done
    for _ in range(100):
        if not model.filtering:
            break
        QCoreApplication.processEvents()
    assert not model.filtering and rows(model) == [d for d, dev in fleet.devices.items()
                                                   if dev.profile.name == "nbiot-sensor"]
    model.set_filter("")
    assert model.rowCount() == len(fleet.devices)


class _Waiting:
    """The window's waiting requests as the model reads them: which devices wait for the user."""

    def __init__(self, *device_ids: str) -> None:
        self.ids = list(device_ids)

    def devices(self) -> list[str]:
        return self.ids

    def waiting(self, device_id: str) -> list[str]:
        return ["a page"] if device_id in self.ids else []


def _with_operations(model: FleetModel, fleet: Fleet) -> list[str]:
    """Devices 1 and 2 ran operations: a download that stopped, an update that completed."""
    ids = list(fleet.devices)
    model.ops.note(TransferProgress(ids[1], "t1", "http://127.0.0.1:9/packages/fw", 100_000, 2_000_000,
                                    outcome="network"))
    model.ops.note(OperationChanged(ids[2], "fumo", "./FwUpdate/fw/DownloadAndUpdate", "40",
                                    detail="Download Complete"))
    return ids


def test_the_filter_finds_a_device_by_its_download_or_its_last_operation(qapp, fleet):
    model = FleetModel(fleet)
    ids = _with_operations(model, fleet)
    for needle, found in (("NETWORK at 5", [ids[1]]), ("download complete", [ids[2]]),
                          ("fumo downloadandupdate", [ids[2]]), ("100 kB/2.0 MB", [ids[1]])):
        model.set_filter(needle)
        assert rows(model) == found, needle  # devices without operations are not matched by others' texts
    model.set_filter("")
    assert rows(model) == ids


def test_the_filter_matches_exactly_where_the_rows_text_holds_it(qapp, fleet):
    """The filter looks at each column without building the row's line; it must agree with that line."""
    model = FleetModel(fleet)
    ids = _with_operations(model, fleet)
    model.pending = _Waiting(ids[3])
    fleet.devices[ids[0]].set_state("error", "boom")
    fleet.devices[ids[4]].last_result = "Completed: 200 OK"
    fleet.devices[ids[5]].bearer = ""
    needles = ["imei", ids[3][-4:].lower(), "phone", "nbiot", "idle", "error", "waiting for you", "waiting for",
               "no bearer", "200", "ok", "network", "fumo", "kb", "\n", "phone\nidle", "e\n", "zzz", ":", "o"]
    sizes = set()
    for needle in needles:
        model.set_filter(needle)
        expected = [d for d in ids if needle in model.filter_text(fleet.devices[d])]
        assert rows(model) == expected, needle
        sizes.add(len(expected))
    assert {0, 1, len(ids)} < sizes  # the needles find none, one, some and every device


def test_devices_added_while_a_filter_is_scanned_are_each_one_row(qapp, fleet, monkeypatch):
    monkeypatch.setattr(fleet_model, "FILTER_SLICE_S", 0.0)  # one chunk per slice
    fleet.add("smartphone", 1200)
    model = FleetModel(fleet)
    model.set_filter("nbiot")
    assert model.filtering
    added = fleet.add("nbiot-sensor", 1)[0].id
    model.sync()  # the old rows (every device) until the scan is done, the new one among them once
    assert rows(model) == list(fleet.devices)
    for _ in range(100):
        if not model.filtering:
            break
        QCoreApplication.processEvents()
    assert rows(model) == [d for d, dev in fleet.devices.items() if dev.profile.name == "nbiot-sensor"]
    assert rows(model)[-1] == added


def test_fitting_the_device_column_reads_a_few_rows_not_a_thousand(qapp, qtbot, monkeypatch):
    """Filtering or clearing a filter fits the Device column again: Qt would read 1,000 rows for it."""
    from ui.fleet_panel import FIT_ROWS, FleetPanel

    read: set[int] = set()
    data = FleetModel.data

    def counting(self, index, role=Qt.ItemDataRole.DisplayRole):
        if index.column() == 0 and role == Qt.ItemDataRole.DisplayRole:
            read.add(index.row())
        return data(self, index, role)

    monkeypatch.setattr(FleetModel, "data", counting)  # before the model: Qt's calls go through it
    big = Fleet(server="http://127.0.0.1:9")
    big.add("smartphone", 2000)
    panel = FleetPanel(big)
    qtbot.addWidget(panel)
    panel.resize(600, 400)
    panel.show()
    QCoreApplication.processEvents()
    read.clear()
    panel._fit_ids()
    assert 0 < len(read) <= FIT_ROWS


def test_a_click_on_a_column_header_sorts_the_rows_and_keeps_the_selection(qapp, qtbot, fleet):
    """The view reads the model itself until the user sorts; then the sorting proxy comes in, with
    the columns as they were and the selected devices still selected."""
    from PySide6.QtCore import QPoint

    from ui.fleet_model import DOWNLOAD_COLUMN
    from ui.fleet_panel import FleetPanel

    panel = FleetPanel(fleet)
    qtbot.addWidget(panel)
    panel.resize(900, 400)
    panel.show()
    ids = list(fleet.devices)
    for dev_id, done in ((ids[0], 900), (ids[3], 100), (ids[4], 500)):  # the others: no download (first)
        panel.model.ops.note(TransferProgress(dev_id, "t", "http://127.0.0.1:9/fw", done, 1000))
    panel.view.setColumnWidth(1, 123)
    panel.select(ids[3])
    assert panel.view.model() is panel.model and panel.selected_ids() == [ids[3]]
    header = panel.view.horizontalHeader()
    where = QPoint(header.sectionViewportPosition(DOWNLOAD_COLUMN) + 20, header.height() // 2)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=where)
    shown = [panel.view.model().index(r, 0).data() for r in range(panel.view.model().rowCount())]
    assert shown == [ids[1], ids[2], ids[5], ids[3], ids[4], ids[0]]  # by how far each download got
    assert panel.view.model() is panel.proxy and header.sortIndicatorSection() == DOWNLOAD_COLUMN
    assert panel.selected_ids() == [ids[3]] and panel.view.columnWidth(1) == 123
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=where)  # again: the other way round
    assert panel.view.model().index(0, 0).data() == ids[0] and panel.selected_ids() == [ids[3]]
    panel.view.doubleClicked.disconnect()  # (a double click would start a session)
    assert panel._id_at(panel.view.model().index(0, 3)) == ids[0]


def test_the_selected_device_stays_selected_and_in_view_through_a_filter_and_its_clearing(qapp, qtbot):
    from ui.fleet_panel import FleetPanel

    big = Fleet(server="http://127.0.0.1:9")
    big.add("smartphone", 600)
    ids = list(big.devices)
    panel = FleetPanel(big)
    qtbot.addWidget(panel)
    panel.resize(600, 300)
    panel.show()
    panel.select(ids[450])
    panel.search.setText(ids[450][-3:])  # this device and a few others
    qtbot.waitUntil(lambda: not panel.model.filtering)
    assert ids[450] in rows(panel.model) and len(rows(panel.model)) < len(ids)
    assert panel.selected_ids() == [ids[450]]
    panel.view.scrollToTop()
    panel.search.setText("")  # every device back: the selected one still selected, and in view
    assert rows(panel.model) == ids and panel.selected_ids() == [ids[450]]
    shown = panel.view.viewport().rect()
    assert shown.intersects(panel.view.visualRect(panel.model.index(450, 0)))
