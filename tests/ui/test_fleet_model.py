"""The fleet list's model (ui/fleet_model.py): rows for the devices the filter matches, in fleet order,
kept right as devices come, go and change state, and a big fleet filtered in slices."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication

from emulator.events import DeviceStateChanged
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
