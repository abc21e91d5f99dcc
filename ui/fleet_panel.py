"""The fleet: a filterable table of devices and the buttons that add, remove and run them."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from emulator.device.profile import list_profiles
from emulator.errors import EmulatorError
from emulator.events import DeviceStateChanged, SessionEnded, SessionStarted
from emulator.fleet.fleet import Fleet
from emulator.protocol.values import is_protocol
from ui.heap import settle
from ui.progress import ChunkedJob
from ui.signals import emit

COLUMNS = ("Device", "Profile", "State", "Bearer", "Last result")
STATE_COLORS = {
    "in session": QColor(40, 120, 220),
    "waiting for UI": QColor(200, 120, 0),
    "error": QColor(200, 40, 40),
}
DeviceIdRole = Qt.ItemDataRole.UserRole + 1
SETTLE_AFTER = 100  # devices added or removed at once past which the heap is settled (ui.heap)


def profile_names() -> list[str]:
    """Profile names the Add button offers; empty (with nothing to add) when they cannot be listed."""
    try:
        return [p.name for p in list_profiles()]
    except (EmulatorError, OSError):
        return []


class FleetModel(QAbstractTableModel):
    """One row per device of the fleet, in the order they were added."""

    def __init__(self, fleet: Fleet, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self._ids: list[str] = list(fleet.devices)
        self._rows: dict[str, int] = {d: i for i, d in enumerate(self._ids)}

    def sync(self) -> None:
        """Pick up devices added or removed since the last call."""
        current = list(self.fleet.devices)
        old = len(self._ids)
        if len(current) > old and current[:old] == self._ids:  # only added: keeps selection and scroll
            self.beginInsertRows(QModelIndex(), old, len(current) - 1)
            self._ids = current
            self._rows.update((d, i) for i, d in enumerate(current[old:], old))
            self.endInsertRows()
        elif current != self._ids:
            self.beginResetModel()
            self._ids = current
            self._rows = {d: i for i, d in enumerate(current)}
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
                return dev.state
            if col == 3:
                return dev.bearer or "(no bearer up)"
            return dev.last_result
        if role == Qt.ItemDataRole.ForegroundRole and col == 2:
            return STATE_COLORS.get(dev.state)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{dev.id}\n{dev.profile.title}\nprotocols: {', '.join(dev.profile.protocols)}"
            if dev.detail:
                tip += f"\n{dev.state}: {dev.detail}"
            if dev.last_result and dev.last_result != dev.detail:
                tip += f"\nlast session: {dev.last_result}"
            return tip
        if role == DeviceIdRole:
            return dev.id
        return None


class FleetPanel(QWidget):
    """Devices table with search, add/remove and "Start session"; double-click starts one too."""

    device_selected = Signal(object)  # device id or None
    error = Signal(str)
    info = Signal(str)

    def __init__(self, fleet: Fleet, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self.adding: ChunkedJob | None = None  # devices being added (see add_devices)
        self.model = FleetModel(fleet, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self.search = QLineEdit(placeholderText="Filter devices (id, profile, state …)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)

        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSortingEnabled(True)
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # order added
        self.model.modelReset.connect(lambda: self.view.resizeColumnToContents(0))
        self.model.rowsInserted.connect(self._rows_inserted)
        self.view.resizeColumnToContents(0)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.doubleClicked.connect(lambda idx: self.start_sessions([self._id_at(idx)]))
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)

        self.profile_box = QComboBox()
        self.profile_box.addItems(profile_names())
        self.count_box = QSpinBox(minimum=1, maximum=10_000, value=1)
        add = QPushButton("Add")
        add.setToolTip("Add this many devices built from the profile")
        add.clicked.connect(self._add)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove)
        self.protocol_box = QComboBox()
        self.protocol_box.addItems(["profile default", "dm2", "dm12"])
        self.protocol_box.setToolTip("Protocol of the sessions the Start button runs")
        self.start_button = QPushButton("Start session")
        self.start_button.clicked.connect(lambda: self.start_sessions(self.selected_ids()))

        adder = QHBoxLayout()
        adder.addWidget(QLabel("Profile"))
        adder.addWidget(self.profile_box, 1)
        adder.addWidget(self.count_box)
        adder.addWidget(add)
        actions = QHBoxLayout()
        actions.addWidget(self.remove_button)
        actions.addStretch(1)
        actions.addWidget(self.protocol_box)
        actions.addWidget(self.start_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.view, 1)
        layout.addLayout(adder)
        layout.addLayout(actions)

    def _rows_inserted(self, _parent: QModelIndex, first: int, _last: int) -> None:
        if first == 0:  # the first devices: fit their ids (later ones are numbered alike)
            self.view.resizeColumnToContents(0)

    def _id_at(self, proxy_index: QModelIndex) -> str:
        return self.model.device_id(self.proxy.mapToSource(proxy_index).row())

    def selected_ids(self) -> list[str]:
        rows = {i.row() for i in self.view.selectionModel().selectedRows()}
        return [self._id_at(self.proxy.index(r, 0)) for r in sorted(rows)]

    def select(self, device_id: str) -> None:
        row = self.model.row_of(device_id)
        if row >= 0:
            self.view.selectRow(self.proxy.mapFromSource(self.model.index(row, 0)).row())

    def _selection_changed(self) -> None:
        ids = self.selected_ids()
        emit(self.device_selected, ids[0] if ids else None)

    def _add(self) -> None:
        self.add_devices(self.profile_box.currentText(), self.count_box.value())

    def add_devices(self, name: str, count: int) -> ChunkedJob | None:
        """Add in slices: thousands of devices take seconds, and the window shows progress meanwhile."""
        if not name:
            emit(self.error, "no device profile to add from")
            return None
        if self.adding is not None:
            emit(self.error, "still adding devices: wait for it or cancel it")
            return None

        def step(done: int, n: int) -> int:
            added = self.fleet.add(name, n)
            self.model.sync()
            return len(added)

        def finished(done: int, cancelled: bool) -> None:
            self.adding = None
            self.model.sync()
            if done > SETTLE_AFTER:
                settle()  # the new devices live on: keep them out of the collector's walks
            if done or not failed:
                emit(self.info, f"added {done} {name} device(s)" + (" (cancelled)" if cancelled else ""))

        failed: list[str] = []

        def error(text: str) -> None:
            failed.append(text)
            emit(self.error, f"cannot add {name} devices: {text}")

        job = ChunkedJob(self, f"Adding {count} {name} devices…", count, step)
        job.error.connect(error)
        job.finished.connect(finished)
        self.adding = job
        return job.start()

    def _remove(self) -> None:
        ids = self.selected_ids()
        for dev_id in ids:
            self.fleet.remove(dev_id)
        self.model.sync()
        if len(ids) > SETTLE_AFTER:
            settle(release=True)  # frees the removed devices' reference cycles
        if ids:
            emit(self.info, f"removed {len(ids)} device(s)")

    def start_sessions(self, ids: list[str]) -> list[asyncio.Task]:
        chosen = self.protocol_box.currentText()
        protocol = chosen if is_protocol(chosen) else None  # "profile default": each device's own
        tasks = []
        for dev_id in ids:
            dev = self.fleet.devices.get(dev_id)
            if dev is None:
                continue
            if protocol and protocol not in dev.profile.protocols:
                emit(self.error, f"{dev_id} does not speak {protocol} (has {', '.join(dev.profile.protocols)})")
                continue
            task = self.fleet.start_session(dev_id, protocol)
            task.add_done_callback(functools.partial(self._session_done, dev_id))
            tasks.append(task)
        if not ids:
            emit(self.error, "select one or more devices first")
        return tasks

    def _session_done(self, dev_id: str, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            what = "the session engines are not available yet" if isinstance(exc, ImportError) else str(exc)
            emit(self.error, f"{dev_id}: session could not run: {what}")
            dev = self.fleet.devices.get(dev_id)
            if dev is not None:  # the row says so too (state, last result, tooltip)
                dev.last_result = f"could not run: {what}"
                dev.set_state("error", f"session could not run: {what}")
        self.model.refresh({dev_id})
