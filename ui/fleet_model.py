"""The fleet list's model: one row per device, nothing built per device until a row is shown.

Why a model and not widgets: a fleet of 100,000 devices would be 500,000 table items, built and kept
up to date whether or not anyone looks at them. :class:`FleetModel` keeps the list of device ids and
answers ``data()`` for the rows the view draws (a screenful), from the devices themselves.

What stays cheap at 100,000 devices (``tests/benchmarks/test_fleet_list_bench.py`` prints the
longest stall): :meth:`FleetModel.sync` runs after every batch of events, so it costs nothing when
no device came or went (the fleet's size and its count of removals tell), only the new ids when
devices were added, and one full pass only after a removal; state changes repaint the changed rows
only. The filter (:class:`FleetFilter`) tests one precomputed line per device instead of asking
``data()`` for every column of every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QFont

from emulator.events import DeviceStateChanged, SessionEnded, SessionStarted
from emulator.fleet.fleet import Fleet
from ui.signals import emit

if TYPE_CHECKING:
    from emulator.device.virtual import VirtualDevice
    from ui.pending import PendingRequests

COLUMNS = ("Device", "Profile", "State", "Bearer", "Last result")
WAITING = "waiting for you"
STATE_COLORS = {
    "in session": QColor(40, 120, 220),
    "waiting for UI": QColor(200, 120, 0),
    WAITING: QColor(200, 120, 0),
    "error": QColor(200, 40, 40),
}
DeviceIdRole = Qt.ItemDataRole.UserRole + 1
FilterTextRole = Qt.ItemDataRole.UserRole + 2  # every column's text of a row, lower case, one line


class FleetModel(QAbstractTableModel):
    """One row per device of the fleet, in the order they were added."""

    def __init__(self, fleet: Fleet, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self._ids: list[str] = list(fleet.devices)
        self._rows: dict[str, int] = {d: i for i, d in enumerate(self._ids)}
        self._removals = fleet.removals
        self.pending: PendingRequests | None = None  # the window's waiting requests ("waiting for you")

    def sync(self) -> None:
        """Pick up devices added or removed since the last call (see the module doc for its cost)."""
        devices = self.fleet.devices
        old, now = len(self._ids), len(devices)
        if self.fleet.removals == self._removals and now == old:
            return
        if self.fleet.removals == self._removals and now > old:  # only added: keeps selection and scroll
            added = list(islice(devices, old, None))
            self.beginInsertRows(QModelIndex(), old, now - 1)
            self._ids.extend(added)
            self._rows.update((d, i) for i, d in enumerate(added, old))
            self.endInsertRows()
            return
        self.beginResetModel()
        self._ids = list(devices)
        self._rows = {d: i for i, d in enumerate(self._ids)}
        self._removals = self.fleet.removals
        self.endResetModel()

    def device_id(self, row: int) -> str:
        return self._ids[row]

    def row_of(self, device_id: str) -> int:
        return self._rows.get(device_id, -1)

    def refresh(self, device_ids: set[str]) -> None:
        for dev_id in device_ids:
            row = self._rows.get(dev_id)
            if row is not None:
                emit(self.dataChanged, self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def apply_events(self, events: Sequence[object]) -> None:
        self.sync()
        touched = {e.device_id for e in events if isinstance(e, DeviceStateChanged | SessionStarted | SessionEnded)}
        if touched:
            self.refresh(touched)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def state(self, dev: VirtualDevice) -> str:
        """The device's state as the user sees it: "waiting for you" while a server waits for an answer."""
        if self.pending is not None and self.pending.waiting(dev.id):
            return WAITING
        return dev.state

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        dev = self.fleet.devices.get(self._ids[index.row()])
        if dev is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return dev.id
            if col == 1:
                return dev.profile.name
            if col == 2:
                return self.state(dev)
            if col == 3:
                return dev.bearer or "(no bearer up)"
            return dev.last_result
        if role == Qt.ItemDataRole.ForegroundRole and col == 2:
            return STATE_COLORS.get(self.state(dev))
        if role == Qt.ItemDataRole.FontRole and col == 2 and self.state(dev) == WAITING:
            bold = QFont()
            bold.setBold(True)
            return bold
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{dev.id}\n{dev.profile.title}\nprotocols: {', '.join(dev.profile.protocols)}"
            if self.pending is not None:
                for p in self.pending.waiting(dev.id):
                    tip += f"\nwaiting for you: {p.what}"
            if dev.detail:
                tip += f"\n{dev.state}: {dev.detail}"
            if dev.last_result and dev.last_result != dev.detail:
                tip += f"\nlast session: {dev.last_result}"
            return tip
        if role == DeviceIdRole:
            return dev.id
        if role == FilterTextRole:
            return self.filter_text(index.row())
        return None

    def filter_text(self, row: int) -> str:
        """Every column's text of ``row`` in one lower-case line: what the filter looks in."""
        dev = self.fleet.devices.get(self._ids[row])
        if dev is None:
            return ""
        return "\n".join((dev.id, dev.profile.name, self.state(dev), dev.bearer or "(no bearer up)",
                          dev.last_result)).lower()


class FleetFilter(QSortFilterProxyModel):
    """The fleet list's filter: a row matches when any column contains the text (case-insensitive),
    as with ``setFilterKeyColumn(-1)``, at one check per row instead of one ``data()`` per cell."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._needle = ""
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def setFilterFixedString(self, pattern: str) -> None:  # noqa: N802 - Qt's name, a slot too
        if hasattr(self, "beginFilterChange"):  # Qt 6.10: invalidateFilter() is deprecated
            self.beginFilterChange()
            self._needle = pattern.lower()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._needle = pattern.lower()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if not self._needle:
            return True
        model = self.sourceModel()
        if isinstance(model, FleetModel):
            return self._needle in model.filter_text(source_row)
        return super().filterAcceptsRow(source_row, source_parent)
