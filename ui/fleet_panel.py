"""The fleet: a filterable table of devices and the buttons that add, remove and run them."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSpinBox,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from emulator.device.profile import list_profiles
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from emulator.fleet.fleet import Fleet
from emulator.protocol.values import is_protocol
from ui.columns import ColumnChooser
from ui.download_bar import DownloadBarDelegate
from ui.fleet_model import DOWNLOAD_COLUMN, OPERATION_COLUMN, WAITING, FleetModel, SortRole
from ui.heap import settle
from ui.pending import PendingRequests
from ui.progress import ChunkedJob
from ui.signals import emit

if TYPE_CHECKING:
    from ui.webview import WindowUi  # the web engine loads with the window, not with this module

STATE_PADDING = 24  # a table cell's margins, so "waiting for you" fits its column
COLUMN_WIDTHS = (110, 90, 82, 50, 150, 180)  # Device (at least), Profile, State (widened to "waiting for
# you"), Bearer, Last result, Download (bar and "45 % · 1.2 of 2.6 MB"); Last operation takes the rest
MAX_ID_WIDTH = 120  # longer ids are cut in the middle: "IMEI:354…100000002"
WAITING_LIST_HEIGHT = 110  # about five entries: the fleet table keeps the room
SETTLE_AFTER = 100  # devices added or removed at once past which the heap is settled (ui.heap)
FIT_ROWS = 50  # rows measured to fit the Device column: the visible ones, and others up to this many


class ElideRightDelegate(QStyledItemDelegate):
    """Cuts a cell's text at its end (the view cuts ids in their middle): a result reads from its
    start, ``FUMO DownloadAndUpdate: 402 Corrupted Fi…``, code first."""

    def initStyleOption(self, option: QStyleOptionViewItem,  # noqa: N802 - Qt's name
                        index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


def profile_names() -> list[str]:
    """Profile names the Add button offers; empty (with nothing to add) when they cannot be listed."""
    try:
        return [p.name for p in list_profiles()]
    except (EmulatorError, OSError):
        return []


class FleetPanel(QWidget):
    """Devices table with search, add/remove and "Start session"; double-click starts one too."""

    device_selected = Signal(object)  # device id or None
    error = Signal(str)
    info = Signal(str)
    not_run = Signal(str, str)  # device id, why its session could not run

    def __init__(self, fleet: Fleet, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self.adding: ChunkedJob | None = None  # devices being added (see add_devices)
        self.model = FleetModel(fleet, self)
        self.proxy = QSortFilterProxyModel(self)  # sorting by a column (see _sort); the model itself filters
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SortRole)  # a download sorts by how far it got, not by its text

        self.search = QLineEdit(placeholderText="Filter devices (id, profile, state …)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.model.set_filter)

        self.view = QTableView()
        self.view.setModel(self.model)  # the proxy once the user sorts (see _sort)
        self.view.setItemDelegateForColumn(DOWNLOAD_COLUMN, DownloadBarDelegate(self.view))
        self.view.setItemDelegateForColumn(OPERATION_COLUMN, ElideRightDelegate(self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.view.horizontalHeader()
        header.setSectionsClickable(True)  # a click sorts by the column: _sort (what setSortingEnabled does)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # order added
        header.sortIndicatorChanged.connect(self._sort)
        self._kept: list[str] = []  # the devices selected before the rows were reset (a filter, its clearing)
        self.model.modelAboutToBeReset.connect(self._keep_selection)
        self.model.modelReset.connect(self._fit_ids)
        self.model.modelReset.connect(self._restore_selection)
        self.model.rowsInserted.connect(self._rows_inserted)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # Qt measures 1,000 rows by default: 55 ms of the window's time at each filter and its clearing
        self.view.horizontalHeader().setResizeContentsPrecision(FIT_ROWS)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # ids differ at their ends
        self.view.setWordWrap(False)
        for col, width in enumerate(COLUMN_WIDTHS):
            self.view.setColumnWidth(col, width)
        self._fit_ids()
        self.columns = ColumnChooser(self.view, "fleet")
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setWordWrap(False)  # one line per device, however long its state or result
        self.view.setColumnWidth(2, self.view.fontMetrics().horizontalAdvance(WAITING) + STATE_PADDING)
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
        self.stop_button = QPushButton("Stop session")
        self.stop_button.setToolTip("End the selected devices' sessions (and the pages and alerts they wait on)")
        self.stop_button.clicked.connect(lambda: self.stop_sessions(self.selected_ids()))

        # what servers wait for from the user (see attach)
        self.pending: PendingRequests | None = None
        self.ui: WindowUi | None = None
        self._waiting_rows: set[str] = set()
        self.waiting_box = QGroupBox("Waiting for you")
        self.waiting_list = QListWidget()
        self.waiting_list.setToolTip("Click one to open its page (or its question) and select its device")
        self.waiting_list.setMaximumHeight(WAITING_LIST_HEIGHT)
        self.waiting_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.waiting_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.waiting_list.itemClicked.connect(self._open_waiting)
        self.waiting_list.itemActivated.connect(self._open_waiting)
        self.defaults_button = QPushButton("Answer with defaults")
        self.defaults_button.setToolTip("Let the headless answerer fill in the pages and answer the questions "
                                        "with their defaults, as `dm-emulator run` does")
        defaults_menu = QMenu(self.defaults_button)
        self.defaults_selected = defaults_menu.addAction("Selected devices")
        self.defaults_selected.triggered.connect(lambda: self.answer_with_defaults(self.selected_ids()))
        self.defaults_all = defaults_menu.addAction("All waiting devices")
        self.defaults_all.triggered.connect(lambda: self.answer_with_defaults(None))
        self.defaults_button.setMenu(defaults_menu)
        waiting_buttons = QHBoxLayout()
        waiting_buttons.addStretch(1)
        waiting_buttons.addWidget(self.defaults_button)
        waiting_layout = QVBoxLayout(self.waiting_box)
        waiting_layout.setContentsMargins(4, 4, 4, 4)
        waiting_layout.addWidget(self.waiting_list)
        waiting_layout.addLayout(waiting_buttons)
        self.waiting_box.hide()

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
        actions.addWidget(self.stop_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.waiting_box)
        layout.addLayout(adder)
        layout.addLayout(actions)

    def _rows_inserted(self, _parent: QModelIndex, first: int, _last: int) -> None:
        if first == 0:  # the first devices: fit their ids (later ones are numbered alike)
            self._fit_ids()

    def _keep_selection(self) -> None:
        self._kept = self.selected_ids()

    def _restore_selection(self) -> None:
        """The devices selected before a reset that are still shown stay selected, the first in view."""
        kept, self._kept = self._kept, []
        rows = sorted(r for r in map(self.model.row_of, kept) if r >= 0)
        if not rows:
            return
        model = self.view.model()
        last = model.columnCount() - 1
        selection = QItemSelection()
        for row in rows:
            index = self.model.index(row, 0)
            if model is self.proxy:
                index = self.proxy.mapFromSource(index)
            selection.select(index, index.siblingAtColumn(last))
        self.view.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        first = self.model.index(rows[0], 0)
        self.view.doItemsLayout()  # the scroll bars' new range (Qt would lay out later: scrollTo would clamp)
        self.view.scrollTo(self.proxy.mapFromSource(first) if model is self.proxy else first)

    def _fit_ids(self) -> None:
        """Device ids as wide as they are, up to MAX_ID_WIDTH (longer ones are cut in the middle),
        so Profile, State and Bearer stay in view in a narrow dock."""
        self.view.resizeColumnToContents(0)
        self.view.setColumnWidth(0, max(COLUMN_WIDTHS[0], min(self.view.columnWidth(0), MAX_ID_WIDTH)))

    def _sort(self, column: int, order: Qt.SortOrder) -> None:
        """Rows sorted by a column: the sorting proxy comes between the model and the view then, for
        good. Until then the view reads the model itself: through the proxy each role of each painted
        cell cost three calls into Python instead of one (a repaint took about a third longer)."""
        header = self.view.horizontalHeader()
        if self.view.model() is not self.proxy:
            ids, state = self.selected_ids(), header.saveState()  # widths, hidden columns, the indicator
            self.view.setModel(self.proxy)
            header.blockSignals(True)
            header.restoreState(state)
            header.blockSignals(False)
            self.view.selectionModel().selectionChanged.connect(self._selection_changed)
            self.proxy.sort(column, order)
            for dev_id in ids:
                self.select(dev_id, keep=True)
            return
        self.proxy.sort(column, order)

    def _id_at(self, view_index: QModelIndex) -> str:
        index = self.proxy.mapToSource(view_index) if view_index.model() is self.proxy else view_index
        return self.model.device_id(index.row())

    def selected_ids(self) -> list[str]:
        rows = {i.row() for i in self.view.selectionModel().selectedRows()}
        model = self.view.model()
        return [self._id_at(model.index(r, 0)) for r in sorted(rows)]

    def select(self, device_id: str, *, keep: bool = False) -> None:
        """Select the device's row (``keep``: besides those selected) and scroll to it."""
        row = self.model.row_of(device_id)
        if row < 0:
            return
        index = self.model.index(row, 0)
        if self.view.model() is self.proxy:
            index = self.proxy.mapFromSource(index)
        if not keep:
            self.view.selectRow(index.row())
            return
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        self.view.selectionModel().select(index, flags)
        self.view.scrollTo(index)

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

    # ------------------------------------------------------------------ sessions

    def start_sessions(self, ids: list[str]) -> list[asyncio.Task]:
        """One session per device; a device already in a session with that account keeps it (a DM
        client runs one session per server at a time) and the user is told."""
        chosen = self.protocol_box.currentText()
        protocol = chosen if is_protocol(chosen) else None  # "profile default": each device's own
        tasks = []
        busy: list[tuple[str, str]] = []
        no_server: list[str] = []
        for dev_id in ids:
            dev = self.fleet.devices.get(dev_id)
            if dev is None:
                continue
            if protocol and protocol not in dev.profile.protocols:
                emit(self.error, f"{dev_id} does not speak {protocol} (has {', '.join(dev.profile.protocols)})")
                continue
            if not self._has_server(dev, protocol):
                no_server.append(dev_id)
                continue
            server = self.fleet.busy_with(dev_id, protocol)
            if server:
                busy.append((dev_id, server))
                continue
            task = self.fleet.start_session(dev_id, protocol)
            task.add_done_callback(functools.partial(self._session_done, dev_id))
            tasks.append(task)
        if no_server:
            more = f" (and {len(no_server) - 1} more device(s))" if len(no_server) > 1 else ""
            emit(self.error, f"{no_server[0]}{more}: no server chosen yet: choose one in Session › Server "
                             "connection…")
        if busy:
            dev_id, server = busy[0]
            more = f" (and {len(busy) - 1} more device(s))" if len(busy) > 1 else ""
            emit(self.error, f"{dev_id} is already in a session with {server}{more}: one session per account "
                             "at a time; no second one started (Stop session ends the running one)")
        if not ids:
            emit(self.error, "select one or more devices first")
        return tasks

    @staticmethod
    def _has_server(dev: VirtualDevice, protocol: str | None) -> bool:
        """False when the account a session would use has no http(s) server URL (a window without a
        server, ``--no-demo``); a missing account is for the session to report."""
        try:
            uri = dev.account(None, protocol or dev.profile.protocols[0]).server_uri
        except EmulatorError:
            return True
        return uri.startswith(("http://", "https://"))

    def stop_sessions(self, ids: list[str]) -> int:
        """End the devices' sessions and answer what they wait for "cancelled"; how many ended."""
        if not ids:
            emit(self.error, "select one or more devices first")
            return 0
        stopped = 0
        for dev_id in ids:
            stopped += self.fleet.stop_sessions(dev_id)
            if self.pending is not None:  # a page its session does not wait for (DM 2.0 SHOW) ends too
                stopped += self.pending.cancel(dev_id)
        if stopped:
            emit(self.info, f"stopped the sessions of {len(ids)} device(s)" if len(ids) > 1
                 else f"{ids[0]}: session stopped")
        else:
            emit(self.error, f"{ids[0]} has no session running" if len(ids) == 1
                 else "none of the selected devices has a session running")
        return stopped

    # ------------------------------------------------------------------ waiting for the user

    def attach(self, ui: WindowUi) -> None:
        """Show what the window's UiHandler waits for: states, the waiting list, defaults, following."""
        self.ui = ui
        self.pending = self.model.pending = ui.pending
        ui.pending.changed.connect(self._pending_changed)
        self.device_selected.connect(ui.follow)
        self.device_selected.connect(self._mark_waiting)

    def _pending_changed(self) -> None:
        pending = self.pending
        if pending is None:
            return
        items = [p for p in pending.items if not p.done()]
        self.waiting_list.clear()
        for p in items:
            when = time.strftime("%H:%M:%S", time.localtime(p.since))
            item = QListWidgetItem(f"{when}  {p.device_id} — {p.short}")
            item.setData(Qt.ItemDataRole.UserRole, p.device_id)
            item.setToolTip(f"{p.device_id}, session {p.session_id}\n{p.what}\n{p.url}".rstrip())
            self.waiting_list.addItem(item)
        sessions = pending.count()
        self.waiting_box.setTitle(f"Waiting for you: {sessions} session(s)")
        self.waiting_box.setVisible(bool(items))
        ids = self.selected_ids()
        self._mark_waiting(ids[0] if ids else None)
        now = set(pending.devices())
        self.model.refresh(now ^ self._waiting_rows)  # rows that start or stop waiting
        self._waiting_rows = now

    def _mark_waiting(self, device_id: str | None) -> None:
        """The selected device's entry is the list's current one (no entry: none)."""
        for row in range(self.waiting_list.count()):
            if self.waiting_list.item(row).data(Qt.ItemDataRole.UserRole) == device_id:
                self.waiting_list.setCurrentRow(row)
                return
        self.waiting_list.setCurrentRow(-1)

    def _open_waiting(self, item: QListWidgetItem) -> None:
        dev_id = item.data(Qt.ItemDataRole.UserRole)
        if self.search.text() and dev_id in self.fleet.devices and self.model.row_of(dev_id) < 0:
            self.search.clear()  # filtered out: show it
        self.select(dev_id)
        if self.ui is not None:
            self.ui.follow(dev_id)  # also when it was selected already

    def answer_with_defaults(self, ids: list[str] | None) -> int:
        """The headless answerer answers what the devices (None: all) wait for; how many requests."""
        if self.pending is None:
            return 0
        if ids is not None and not ids:
            emit(self.error, "select one or more waiting devices first")
            return 0
        n = self.pending.answer_with_defaults(ids)
        if n:
            emit(self.info, f"answering {n} page(s) and question(s) with their defaults")
        else:
            emit(self.error, "none of the selected devices waits for an answer" if ids is not None
                 else "no device waits for an answer")
        return n

    def _session_done(self, dev_id: str, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            what = "the session engines are not available yet" if isinstance(exc, ImportError) else str(exc)
            emit(self.error, f"{dev_id}: session could not run: {what}")
            emit(self.not_run, dev_id, what)
            dev = self.fleet.devices.get(dev_id)
            if dev is not None:  # the row says so too (state, last result, tooltip)
                dev.last_result = f"could not run: {what}"
                dev.set_state("error", f"session could not run: {what}")
        self.model.refresh({dev_id})
