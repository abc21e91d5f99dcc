"""The fleet list's model: one row per device, nothing built per device until a row is shown.

Why a model and not widgets: a fleet of 100,000 devices would be 500,000 table items, built and kept
up to date whether or not anyone looks at them. :class:`FleetModel` keeps the list of device ids and
answers ``data()`` for the rows the view draws (a screenful), from the devices themselves.

What stays cheap at 100,000 devices (``tests/benchmarks/test_fleet_list_bench.py`` prints the
longest stall): :meth:`FleetModel.sync` runs after every batch of events, so it costs nothing when
no device came or went (the fleet's size and its count of removals tell), only the new ids when
devices were added, and one full pass only after a removal; state changes repaint the changed rows
only. The filter lives in the model too (:meth:`FleetModel.set_filter`): a proxy model's filter
asks ``data()`` for every cell of every row at once, about half a second for 100,000 devices; this
one checks one line per device, in slices the window repaints between, and then only the devices
whose row changes.

The Download and Last operation columns come from :class:`ui.device_ops.DeviceOps` (fed by the same
batches); the Download cell is painted as a bar by :class:`ui.download_bar.DownloadBarDelegate`, which
reads :data:`DownloadRole`. Sorting goes by :data:`SortRole`: the text, but a download by how far it got.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import islice
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtGui import QColor, QFont

from emulator.events import (
    DeviceStateChanged,
    OperationChanged,
    SessionEnded,
    SessionStarted,
    TransferProgress,
)
from emulator.fleet.fleet import Fleet
from ui.device_ops import DeviceOps
from ui.signals import emit

if TYPE_CHECKING:
    from emulator.device.virtual import VirtualDevice
    from ui.pending import PendingRequests

COLUMNS = ("Device", "Profile", "State", "Bearer", "Last result", "Download", "Last operation")
DOWNLOAD_COLUMN, OPERATION_COLUMN = 5, 6
WAITING = "waiting for you"
NO_BEARER = "(no bearer up)"
STATE_COLORS = {
    "in session": QColor(40, 120, 220),
    "waiting for UI": QColor(200, 120, 0),
    WAITING: QColor(200, 120, 0),
    "error": QColor(200, 40, 40),
}
DeviceIdRole = Qt.ItemDataRole.UserRole + 1
DownloadRole = Qt.ItemDataRole.UserRole + 2  # the Download cell's ui.device_ops.Download (None: none yet)
SortRole = Qt.ItemDataRole.UserRole + 3
_ROW_EVENTS = (DeviceStateChanged, SessionStarted, SessionEnded)
_OPERATION_EVENTS = (TransferProgress, OperationChanged)
FILTER_SLICE_S = 0.008  # filtering a big fleet: the window repaints at least this often (a slice and
# a repaint can come back to back: together well under the 50 ms a stall may take)
SCAN_CHUNK = 512  # devices checked between two looks at the clock
_DISPLAY, _FOREGROUND, _FONT, _TOOLTIP = (int(r) for r in (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole, Qt.ItemDataRole.ToolTipRole))
_ROLES = frozenset({_DISPLAY, _FOREGROUND, _FONT, _TOOLTIP, int(DeviceIdRole), int(DownloadRole), int(SortRole)})


class _Scan:
    """A filter being applied: the devices to check (the rows when it began), how far it got, and
    the places of those that matched."""

    __slots__ = ("ids", "keys", "matches", "pos")

    def __init__(self, ids: list[str], matches: Callable[[str], bool]) -> None:
        self.ids, self.matches, self.pos = ids, matches, 0
        self.keys: list[int] = []


class FleetModel(QAbstractTableModel):
    """One row per device of the fleet that matches the filter, in the order they were added."""

    def __init__(self, fleet: Fleet, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self._all: list[str] = []  # every device, in the fleet's order
        self._pos: dict[str, int] = {}  # device -> its place in _all
        self._ids: list[str] = self._all  # the rows: _all itself, or the devices the filter matched
        self._keys: list[int] = []  # with a filter: the rows' places in _all, ascending
        self._removals = -1
        self._needle = ""
        self._scan: _Scan | None = None  # a filter being applied slice by slice
        # the next slice: a timer, not a posted call, so that the window's other timers (and a repaint)
        # come between two slices rather than two slices between two of them
        self._next_slice = QTimer(self, singleShot=True, interval=0)
        self._next_slice.timeout.connect(lambda: self._scan and self._scan_slice(self._scan))
        self._touched: set[str] = set()  # devices that changed while a scan ran
        self.pending: PendingRequests | None = None  # the window's waiting requests ("waiting for you")
        self.ops = DeviceOps()  # downloads and operations, per device that ran one
        self.sync()

    def sync(self) -> None:
        """Pick up devices added or removed since the last call (see the module doc for its cost)."""
        devices = self.fleet.devices
        old, now = len(self._all), len(devices)
        if self.fleet.removals == self._removals and now == old:
            return
        if self.fleet.removals == self._removals and now > old:  # only added: keeps selection and scroll
            added = list(islice(devices, old, None))
            filtered = self._ids is not self._all  # (a filter being scanned shows all rows until it is done)
            matches = self._matcher() if filtered else None
            shown = [d for d in added if matches(d)] if matches is not None else added
            first = len(self._ids)
            if shown:
                self.beginInsertRows(QModelIndex(), first, first + len(shown) - 1)
            self._all.extend(added)  # also the rows themselves when there is no filter: the same list
            self._pos.update((d, i) for i, d in enumerate(added, old))
            if filtered:
                self._ids.extend(shown)
                self._keys.extend(self._pos[d] for d in shown)
            if shown:
                self.endInsertRows()
            if self._scan is not None:
                self._touched.update(added)
            return
        self._removals = self.fleet.removals
        self.beginResetModel()
        self._all = list(devices)
        self.ops.keep(devices)
        self._pos = {d: i for i, d in enumerate(self._all)}
        self._ids, self._keys = self._all, []
        self.endResetModel()
        if self._needle:
            self.set_filter(self._needle)

    def device_id(self, row: int) -> str:
        return self._ids[row]

    def row_of(self, device_id: str) -> int:
        pos = self._pos.get(device_id)
        if pos is None:
            return -1
        if self._ids is self._all:
            return pos
        row = bisect_left(self._keys, pos)
        return row if row < len(self._keys) and self._keys[row] == pos else -1

    def refresh(self, device_ids: set[str]) -> None:
        for dev_id in device_ids:
            row = self.row_of(dev_id)
            if row >= 0:
                emit(self.dataChanged, self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def apply_events(self, events: Sequence[object]) -> None:
        self.sync()
        touched = {e.device_id for e in events if isinstance(e, _ROW_EVENTS)}
        for e in events:
            if isinstance(e, _OPERATION_EVENTS):
                self.ops.note(e)
                touched.add(e.device_id)
        if touched:
            self.refresh(touched)
            if self._scan is not None:
                self._touched.update(touched)
            elif self._needle:
                self._refilter(touched)

    # ------------------------------------------------------------------ the filter

    def set_filter(self, text: str) -> None:
        """Show only devices with ``text`` in any column (case-insensitive). A big fleet is scanned in
        slices of :data:`FILTER_SLICE_S` between which the window repaints; the rows change once the
        scan is done (a small fleet's at once), in a callback of its own. Devices whose row changes
        are checked again as they change."""
        self._needle = text.lower()
        self._touched = set()
        if not self._needle:
            self._scan = None
            if self._ids is not self._all:
                self._unfilter()
            return
        self._scan = _Scan(list(self._all), self._matcher())
        self._scan_slice(self._scan)

    @property
    def filtering(self) -> bool:
        """A filter is being applied (its rows are not shown yet)."""
        return self._scan is not None

    def _scan_slice(self, scan: _Scan) -> None:
        if scan is not self._scan:
            return  # a newer filter replaced this one
        end = time.monotonic() + FILTER_SLICE_S
        ids, keys, matches, total = scan.ids, scan.keys, scan.matches, len(scan.ids)
        pos = scan.pos
        while pos < total:
            if pos > scan.pos and time.monotonic() >= end:  # (a fleet of one chunk: its rows at once)
                scan.pos = pos
                self._next_slice.start()
                return
            stop = min(pos + SCAN_CHUNK, total)
            keys.extend(p for p in range(pos, stop) if matches(ids[p]))
            pos = stop
        self._scan = None
        self.beginResetModel()
        self._ids, self._keys = [ids[p] for p in keys], keys  # (places in _all: it only grew meanwhile)
        self.endResetModel()
        touched, self._touched = self._touched, set()
        if touched:
            self._refilter(touched)

    def _unfilter(self) -> None:
        """Every device shown again, as one reset: 2.5 ms with 100,000 devices, where inserting the
        hidden ones back run by run took 18 ms (the view's sections and persistent indexes moved at
        each run, and the lists in Python); the window keeps the selection across it (ui.fleet_panel)."""
        self.beginResetModel()
        self._ids, self._keys = self._all, []
        self.endResetModel()

    def _refilter(self, device_ids: set[str]) -> None:
        """Devices whose row changed, shown or hidden as they now match the filter, in their place."""
        matches = self._matcher()
        for dev_id in device_ids:
            pos = self._pos.get(dev_id)
            if pos is None:
                continue
            row = bisect_left(self._keys, pos)
            shown = row < len(self._keys) and self._keys[row] == pos
            if matches(dev_id) == shown:
                continue
            if shown:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._ids[row], self._keys[row]
                self.endRemoveRows()
            else:
                self.beginInsertRows(QModelIndex(), row, row)
                self._ids.insert(row, dev_id)
                self._keys.insert(row, pos)
                self.endInsertRows()

    def filter_text(self, dev: VirtualDevice) -> str:
        """Every column's text of a device's row in one lower-case line: what the filter looks in (a
        needle without a line break matches within one column, as a per-column filter would)."""
        return "\n".join((dev.id, dev.profile.name, self.state(dev), dev.bearer or NO_BEARER,
                          dev.last_result, self.ops.download_text(dev.id), self.ops.operation_text(dev.id))).lower()

    def _matcher(self) -> Callable[[str], bool]:
        """Whether a device's :meth:`filter_text` holds the filter, without building that text: a
        needle without a line break is in it when it is in one column's. Profile, state, bearer and
        result are few texts shared by many devices (each set of them is looked in once), and only
        devices that ran an operation have Download or Last operation text (:class:`DeviceOps`)."""
        needle, devices = self._needle, self.fleet.devices
        if "\n" in needle:
            return lambda dev_id: (dev := devices.get(dev_id)) is not None and needle in self.filter_text(dev)
        waiting = set(self.pending.devices()) if self.pending is not None else set()
        ops = self.ops
        downloads, operations = ops.downloads, ops.operations
        seen: dict[tuple[str, str, str, str, bool], bool] = {}

        def matches(dev_id: str) -> bool:
            dev = devices.get(dev_id)
            if dev is None:
                return False
            if needle in dev_id.lower():
                return True
            key = (dev.profile.name, dev.state, dev.bearer, dev.last_result, dev_id in waiting)
            hit = seen.get(key)
            if hit is None:
                hit = seen[key] = any(needle in text.lower() for text in (
                    key[0], WAITING if key[4] else key[1], key[2] or NO_BEARER, key[3]))
            if hit:
                return True
            return (dev_id in downloads or dev_id in operations) and (
                needle in ops.download_text(dev_id).lower() or needle in ops.operation_text(dev_id).lower())

        return matches

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
        # Painting asks each cell for 7 roles, through Python; most are none of ours: they go first.
        if role not in _ROLES or not index.isValid():
            return None
        col = index.column()
        if role == _FONT and col != 2:
            return None
        dev = self.fleet.devices.get(self._ids[index.row()])
        if dev is None:
            return None
        if role == SortRole:
            if col == DOWNLOAD_COLUMN:
                download = self.ops.download(dev.id)
                fraction = download.fraction if download is not None else None
                return -1.0 if fraction is None else fraction
            role = _DISPLAY
        if role == _DISPLAY:
            if col == 0:
                return dev.id
            if col == 1:
                return dev.profile.name
            if col == 2:
                return self.state(dev)
            if col == 3:
                return dev.bearer or NO_BEARER
            if col == DOWNLOAD_COLUMN:
                return self.ops.download_text(dev.id)
            if col == OPERATION_COLUMN:
                return self.ops.operation_text(dev.id)
            return dev.last_result
        if role == _FOREGROUND:
            if col == 2:
                return STATE_COLORS.get(self.state(dev))
            if col == DOWNLOAD_COLUMN and (download := self.ops.download(dev.id)) is not None:
                return download.color()
            if col == OPERATION_COLUMN and (op := self.ops.operation(dev.id)) is not None:
                return op.color()
            return None
        if role == DownloadRole:
            return self.ops.download(dev.id) if col == DOWNLOAD_COLUMN else None
        if role == _FONT:
            if self.state(dev) != WAITING:
                return None
            bold = QFont()
            bold.setBold(True)
            return bold
        if role == _TOOLTIP:
            tip = f"{dev.id}\n{dev.profile.title}\nprotocols: {', '.join(dev.profile.protocols)}"
            if self.pending is not None:
                for p in self.pending.waiting(dev.id):
                    tip += f"\nwaiting for you: {p.what}"
            if dev.detail:
                tip += f"\n{dev.state}: {dev.detail}"
            if dev.last_result and dev.last_result != dev.detail:
                tip += f"\nlast session: {dev.last_result}"
            for part in (self.ops.operation(dev.id), self.ops.download(dev.id)):
                if part is not None:
                    tip += f"\n{part.tooltip()}"
            return tip
        return dev.id  # DeviceIdRole
