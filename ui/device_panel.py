"""Apps & authorities: the converged side of the selected device, in one tab next to its tree.

Shows the device's management authorities (server, protocol, priority, delegation state) with the
delegations in force (revoke one, or delegate from here), its bearers (switch to one with a button;
the session in flight follows, see :mod:`emulator.transport.link`), its operating environments side
by side (identity, accounts, subtree) and its local applications (grants, the notifications they
received, refusals). It reads the device and acts through its public operations only; it redraws
when a batch of events concerns the device it shows and it is visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from emulator.events import AlertRaised, DeviceStateChanged, Event, SessionEnded, TreeChanged
from emulator.mo.delegation import KINDS, DelegationRequest
from ui.signals import emit

ACCOUNT_COLUMNS = ("Server", "Protocol", "Priority", "Delegation")
DELEGATION_COLUMNS = ("#", "Kind", "From", "To", "Scope", "Depth", "Prohibited")
BEARER_COLUMNS = ("", "Bearer", "Type", "State", "NAT", "Address", "Latency", "Bandwidth", "")
APP_COLUMNS = ("App", "Grants", "Notifications")
MAX_LISTED = 200  # notifications and refusals shown per app (the newest)
_WATCHED = (TreeChanged, AlertRaised, SessionEnded, DeviceStateChanged)


def _table(columns: Iterable[str]) -> QTableWidget:
    cols = list(columns)
    table = QTableWidget(0, len(cols))
    table.setHorizontalHeaderLabels(cols)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            table.setItem(r, c, item)
    _fit(table)


def _fit(table: QTableWidget) -> None:
    """As tall as its rows (the tab scrolls as a whole; a table scrolling inside it hides rows)."""
    table.resizeRowsToContents()
    height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
    rows = table.rowCount()
    height += sum(table.rowHeight(r) for r in range(rows)) if rows else table.verticalHeader().defaultSectionSize()
    table.setFixedHeight(height + 2)


class DevicePanel(QWidget):
    """The "Apps & authorities" tab (see the module doc)."""

    error = Signal(str)
    info = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device: VirtualDevice | None = None
        self.title = QLabel("No device selected")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.accounts = _table(ACCOUNT_COLUMNS)
        self.delegations = _table(DELEGATION_COLUMNS)
        self.revoke_button = QPushButton("Revoke selected")
        self.revoke_button.clicked.connect(self._revoke_selected)
        self.delegator = QComboBox()
        self.delegate_to = QComboBox()
        self.scope = QLineEdit()
        self.scope.setPlaceholderText("./Vendor/App or urn:oma:mo:<name>:<ver>/<MIID>")
        self.kind = QComboBox()
        self.kind.addItems(KINDS)
        self.depth_box = QSpinBox()
        self.depth_box.setRange(0, 16)
        self.prohibited = QLineEdit()
        self.prohibited.setPlaceholderText("prohibited ServerIDs, comma separated")
        self.delegate_button = QPushButton("Delegate")
        self.delegate_button.clicked.connect(self._delegate)
        authorities = QGroupBox("Management authorities")
        form = QHBoxLayout()
        for w in (self.delegator, QLabel("→"), self.delegate_to, self.scope, self.kind, QLabel("depth"), self.depth_box,
                  self.prohibited, self.delegate_button):
            form.addWidget(w)
        box = QVBoxLayout(authorities)
        box.addWidget(self.accounts)
        box.addWidget(QLabel("Delegations in force"))
        box.addWidget(self.delegations)
        row = QHBoxLayout()
        row.addWidget(self.revoke_button)
        row.addStretch(1)
        box.addLayout(row)
        box.addLayout(form)

        self.bearers = _table(BEARER_COLUMNS)
        self.bearers.horizontalHeader().setStretchLastSection(False)
        bearers = QGroupBox("Bearers")
        QVBoxLayout(bearers).addWidget(self.bearers)

        self.environments = QWidget()
        self.env_row = QHBoxLayout(self.environments)
        self.env_row.setContentsMargins(0, 0, 0, 0)
        environments = QGroupBox("Operating environments")
        QVBoxLayout(environments).addWidget(self.environments)

        self.apps = _table(APP_COLUMNS)
        self.apps.itemSelectionChanged.connect(self._show_app)
        self.notifications = QListWidget()
        self.refusals = QListWidget()
        apps = QGroupBox("Local applications")
        app_box = QVBoxLayout(apps)
        app_box.addWidget(self.apps)
        lists = QHBoxLayout()
        for label, widget in (("Notifications received", self.notifications), ("Refusals", self.refusals)):
            col = QVBoxLayout()
            col.addWidget(QLabel(label))
            col.addWidget(widget)
            lists.addLayout(col)
        app_box.addLayout(lists)

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addWidget(self.title)
        for group in (authorities, bearers, environments, apps):
            layout.addWidget(group)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._stale = False

    # ------------------------------------------------------------------ showing

    def show_device(self, device: VirtualDevice | None) -> None:
        self.device = device
        self.refresh()

    def apply_events(self, events: list[Event]) -> None:
        """Redraw once for a batch that concerns the shown device (later, if the tab is hidden)."""
        dev = self.device
        if dev is None or not any(isinstance(e, _WATCHED) and e.device_id == dev.id for e in events):
            return
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        self._stale = False
        dev = self.device
        if dev is None:
            self.title.setText("No device selected")
            for table in (self.accounts, self.delegations, self.bearers, self.apps):
                table.setRowCount(0)
            self._environments([])
            self.notifications.clear()
            self.refusals.clear()
            return
        self.title.setText(f"<b>{dev.id}</b> — {dev.profile.title}")
        self._authorities(dev)
        self._bearers(dev)
        self._environments(dev.environments if dev.profile.environments else [])
        self._apps(dev)

    def _authorities(self, dev: VirtualDevice) -> None:
        delegations = dev.delegations
        accounts = dev.accounts()
        _fill(self.accounts, [[a.server_id, a.protocol, str(a.priority), delegations.state_of(a.server_id) or "—"]
                              for a in accounts])
        _fill(self.delegations, [[str(r.id), r.kind, r.delegator, r.delegate, r.scope, str(r.depth),
                                  ", ".join(sorted(r.prohibited))] for r in delegations.active()])
        self.revoke_button.setEnabled(bool(delegations.records))
        ids = [a.server_id for a in accounts]
        for combo in (self.delegator, self.delegate_to):
            current = combo.currentText()
            if [combo.itemText(i) for i in range(combo.count())] != ids:
                combo.clear()
                combo.addItems(ids)
                if current in ids:
                    combo.setCurrentText(current)

    def _bearers(self, dev: VirtualDevice) -> None:
        table = self.bearers
        bearers = list(dev.bearers.values())
        _fill(table, [["●" if b.name == dev.bearer else "", b.name, b.spec.type, "up" if b.up else "down",
                       "NAT" if b.nat else "reachable", b.spec.address, f"{b.spec.latency_ms} ms",
                       f"{b.spec.bandwidth_kbps} kbit/s" if b.spec.bandwidth_kbps else "unlimited", ""]
                      for b in bearers])
        for row, b in enumerate(bearers):
            button = QPushButton("Current" if b.name == dev.bearer else "Switch to")
            button.setEnabled(b.name != dev.bearer)
            button.clicked.connect(self._switcher(b.name))
            table.setCellWidget(row, len(BEARER_COLUMNS) - 1, button)
        _fit(table)

    def _switcher(self, name: str) -> Callable[[], None]:
        return lambda: self.switch_bearer(name)

    def _environments(self, environments: list) -> None:
        while self.env_row.count():
            item = self.env_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        if not environments:
            self.env_row.addWidget(QLabel("One environment (the device itself)"))
            return
        for env in environments:
            box = QGroupBox(f"{env.name} ({env.kind})")
            box.setObjectName(f"env-{env.name}")
            col = QVBoxLayout(box)
            identity = env.id if env.own_identity else f"{env.id} (the device's)"
            accounts = ", ".join(env.spec.accounts) or "none"
            col.addWidget(QLabel(f"Identity: {identity}"))
            col.addWidget(QLabel(f"Accounts: {accounts}"))
            values = QListWidget()
            values.addItems([f"{k} = {v}" for k, v in env.values().items()])
            col.addWidget(values)
            self.env_row.addWidget(box)

    def _apps(self, dev: VirtualDevice) -> None:
        registry = dev.apps
        apps = list(registry.apps.values())
        selected = self.selected_app()
        _fill(self.apps, [[a.name, ", ".join(g.target + (" (rw)" if g.write else "") for g in a.grants),
                           str(len(a.notifications))] for a in apps])
        if selected is not None:
            for row, a in enumerate(apps):
                if a.name == selected:
                    self.apps.selectRow(row)
        self._show_app()

    def selected_app(self) -> str | None:
        rows = self.apps.selectionModel().selectedRows() if self.apps.selectionModel() else []
        if not rows:
            return None
        item = self.apps.item(rows[0].row(), 0)
        return item.text() if item is not None else None

    def _show_app(self) -> None:
        self.notifications.clear()
        self.refusals.clear()
        dev = self.device
        name = self.selected_app()
        if dev is None:
            return
        app = dev.apps.apps.get(name) if name else None
        if app is not None:
            self.notifications.addItems([f"{n.kind} {n.path} by {n.by}: {n.old!r} → {n.new!r}"
                                         for n in app.notifications[-MAX_LISTED:]])
        refusals = [r for r in dev.apps.refusals if app is None or r.app == app.name]
        self.refusals.addItems([f"{r.app}: {r.operation} {r.target}: {r.reason}" for r in refusals[-MAX_LISTED:]])

    # ------------------------------------------------------------------ acting

    def switch_bearer(self, name: str) -> None:
        dev = self.device
        if dev is None:
            return
        try:
            dev.set_bearer(name, up=True, make_current=True)
        except EmulatorError as exc:
            emit(self.error, str(exc))
            return
        emit(self.info, f"{dev.id}: now on {name}")
        self.refresh()

    def _delegate(self) -> None:
        dev = self.device
        if dev is None:
            return
        prohibited = frozenset(p.strip() for p in self.prohibited.text().split(",") if p.strip())
        request = DelegationRequest(self.delegate_to.currentText(), self.scope.text().strip(),
                                    self.kind.currentText(), self.depth_box.value(), prohibited)
        try:
            record = dev.delegations.delegate(self.delegator.currentText(), request)
        except EmulatorError as exc:
            emit(self.error, f"delegation refused ({exc.status}): {exc}")
        else:
            emit(self.info, f"{dev.id}: {record.describe()}")
        self.refresh()

    def _revoke_selected(self) -> None:
        dev = self.device
        rows = self.delegations.selectionModel().selectedRows()
        if dev is None or not rows:
            return
        cell = self.delegations.item(rows[0].row(), 0)
        if cell is None:
            return
        record_id = int(cell.text())
        try:
            revoked = dev.delegations.revoke(None, record_id)
        except EmulatorError as exc:
            emit(self.error, str(exc))
        else:
            emit(self.info, f"{dev.id}: revoked {', '.join('#' + str(r.id) for r in revoked)}")
        self.refresh()
