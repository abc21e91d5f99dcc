"""The main window: every part is a dock (fleet, device tree, traffic, message detail, event log,
server page) that the user can move, close and bring back from the View menu; "Reset layout" puts
them back where they start, and the layout is remembered between runs (QSettings); a status bar with
live counts.

The window only watches the fleet through the event bus (batched, see :mod:`ui.batcher`) and acts
through the fleet's and the tree's public operations. Other parts add their own docks with
:meth:`MainWindow.add_dock` (placed next to an existing dock, listed in View, reset with the rest).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QTabWidget, QVBoxLayout, QWidget

from emulator.events import (
    DeviceStateChanged,
    Event,
    OperationChanged,
    SessionEnded,
    TreeChanged,
    UiFinished,
    UiRequested,
)
from emulator.fleet.fleet import Fleet
from ui.actions import WindowActions
from ui.batcher import EventBatcher
from ui.device_ops import state_leaf
from ui.device_panel import DevicePanel
from ui.event_log import EventLogDock
from ui.fleet_panel import FleetPanel
from ui.operation_strip import OperationStrip
from ui.plots import FleetPlots, ValueHistoryChart
from ui.progress import SessionProgress
from ui.safety import confirm_quit
from ui.safety import install as install_safety
from ui.server_dialog import ServerActions
from ui.settings import settings
from ui.traffic_panel import TrafficPanel
from ui.tree_panel import TreePanel
from ui.webview import WebDock, WindowUi


@dataclass
class DockPlace:
    """Where a dock goes in the default layout: an area, or beside / tabbed with another dock."""

    area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    beside: str = ""  # objectName of a dock placed earlier
    orientation: Qt.Orientation = Qt.Orientation.Vertical  # split from ``beside`` this way
    tab: bool = False  # tabbed with ``beside`` instead of split
    visible: bool = True  # shown in the default layout
    size: int = 0  # height when split vertically from ``beside`` (column widths follow the window)


LAYOUT_VERSION = 2  # saved layouts of another version are ignored (docks changed)
DEFAULT_SIZE = (1280, 780)  # fits a 1280x800 screen with a task bar
FLEET_WIDTH = 400
TREE_HEIGHT = 390
LOG_HEIGHT = 150
DETAIL_WIDTH = 420  # the server page shares it (tabbed): a form reads well at this width
MIN_FLEET, MIN_MIDDLE, MIN_PAGE = 300, 340, 300
FLEET_SHARE = 0.28  # of a wider window
DETAIL_SHARE = 0.29
EVENT_LOG_PLACE = DockPlace(Qt.DockWidgetArea.LeftDockWidgetArea, "fleet", Qt.Orientation.Vertical, size=LOG_HEIGHT)
"""Where the event log dock goes: ``window.add_dock("event-log", "Event log", widget, EVENT_LOG_PLACE)``."""


class MainWindow(QMainWindow):
    def __init__(self, fleet: Fleet, parent: QWidget | None = None, *, remember: bool = True) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self.remember = remember  # False: default layout, nothing saved (screenshots look the same)
        self.setWindowTitle(f"dm-emulator — {fleet.server}")
        self.setDockNestingEnabled(True)
        self.setDockOptions(self.dockOptions() | QMainWindow.DockOption.AllowTabbedDocks)
        self.on_close: Callable[[], object] | None = None
        self.docks: dict[str, QDockWidget] = {}
        self._places: dict[str, DockPlace] = {}

        self.fleet_panel = FleetPanel(fleet)
        self.tree_panel = TreePanel()  # holds the window's undo stack (see ui.safety)
        self.traffic_panel = TrafficPanel()
        self.device_panel = DevicePanel()
        self.device_tabs = QTabWidget()
        self.device_tabs.addTab(self.tree_panel, "Tree")
        self.device_tabs.addTab(self.device_panel, "Apps && authorities")
        self.operation_strip = OperationStrip(self.fleet_panel.model.ops)  # above the tabs: seen from both
        self._followed: set[tuple[str, str]] = set()  # (device, node): operations whose State leaf was revealed
        device_column = QWidget()
        column = QVBoxLayout(device_column)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.operation_strip)
        column.addWidget(self.device_tabs, 1)
        self.web_dock = WebDock(self)
        self.ui_handler = WindowUi(self.web_dock, self)
        self.fleet_panel.attach(self.ui_handler)  # waiting states and list, defaults, pages follow the selection
        self.event_log = EventLogDock(self)
        self.event_log.follow(self)  # before the status bar is used: every message it shows is kept

        self.view_menu = self.menuBar().addMenu("&View")
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        # 1280 wide: fleet | tree over traffic | message detail, the server page tabbed with the detail
        self.fleet_dock = self.add_dock("fleet", "Fleet", self.fleet_panel, DockPlace(left))
        self.tree_dock = self.add_dock("tree", "Device", device_column, DockPlace(right))
        self.detail_dock = self.add_dock("detail", "Message detail", self.traffic_panel.detail,
                                         DockPlace(right, "tree", horizontal))
        self.traffic_dock = self.add_dock("traffic", "Traffic", self.traffic_panel,
                                          DockPlace(right, "tree", vertical))
        self.add_dock("server-page", "Server page", self.web_dock, DockPlace(right, "detail", tab=True, visible=False))
        self.add_dock("event-log", "Event log", self.event_log, EVENT_LOG_PLACE)
        self.plots = FleetPlots()
        # hidden at first (View menu, Chart value history): four tabs would not fit beside the detail at 1280
        self.add_dock("plots", "Fleet plots", self.plots, DockPlace(right, "detail", tab=True, visible=False))
        self.value_chart = ValueHistoryChart()
        self.add_dock("value-history", "Value history", self.value_chart,
                      DockPlace(right, "detail", tab=True, visible=False))
        # a 1280 screen holds the three columns only if no part insists on its natural width (buttons
        # in a row, a long page title): below these widths a part is squeezed, not the window widened
        for part, min_width in ((self.fleet_panel, MIN_FLEET), (self.device_tabs, MIN_MIDDLE),
                                (self.traffic_panel, MIN_MIDDLE), (self.web_dock.widget(), MIN_PAGE)):
            part.setMinimumWidth(min_width)
        self.view_menu.addSeparator()
        reset = QAction("Reset layout", self)
        reset.setToolTip("Put every dock back where it starts")
        reset.triggered.connect(self.reset_layout)
        self.view_menu.addAction(reset)
        self.reset_action = reset

        self.counts = QLabel("")
        self.server_label = QLabel("")
        self.session_progress = SessionProgress(fleet, waiting=self.ui_handler.pending.count)
        # the server is a normal widget, on the left: a message covers it for its few seconds, so a
        # message has the room of both (at 1280 px the permanent widgets alone left it 300 px)
        self.statusBar().addWidget(self.server_label, 1)
        self.statusBar().addPermanentWidget(self.session_progress)
        self.statusBar().addPermanentWidget(self.session_progress.caption)
        self.statusBar().addPermanentWidget(self.counts)
        self.set_server_status(True, fleet.server)

        self._told: dict[str, str] = {}  # device -> the failure the status bar just showed
        self.batcher = EventBatcher(fleet.bus, parent=self)
        self.batcher.flushed.connect(self._on_events)
        self.fleet_panel.device_selected.connect(self.select_device)
        self.tree_panel.view.selectionModel().currentChanged.connect(lambda *_: self._chart_selection())
        self.fleet_panel.error.connect(self.show_error)
        self.fleet_panel.not_run.connect(self.traffic_panel.add_not_run)
        self.fleet_panel.info.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.device_panel.error.connect(self.show_error)
        self.device_panel.info.connect(lambda text: self.statusBar().showMessage(text, 5000))

        self._count_timer = QTimer(self)
        self._count_timer.setInterval(500)
        self._count_timer.timeout.connect(self.update_counts)
        self._count_timer.start()
        self._build_menu()
        self.operation_strip.show_state.connect(
            lambda path: self.desktop.show_in_tree(self.tree_panel.model.device_id or "", path))
        self.resize(*DEFAULT_SIZE)
        self.reset_layout()
        # Edit > Undo/Redo, Save workspace as…, undoable traffic Clear
        self.safety = install_safety(self, fleet, self.tree_panel, self.traffic_panel)
        if remember:
            self.restore_settings()
        self.update_counts()

    # ------------------------------------------------------------------ docks

    def add_dock(self, name: str, title: str, widget: QWidget, place: DockPlace | None = None) -> QDockWidget:
        """Put ``widget`` in a dock called ``name`` (its objectName: the saved layout refers to it),
        listed in the View menu, placed by ``place`` now and on "Reset layout". A QDockWidget is
        used as it is (the server page is one already)."""
        place = place or DockPlace()
        if isinstance(widget, QDockWidget):
            dock = widget
            dock.setWindowTitle(title)
        else:
            dock = QDockWidget(title, self)
            dock.setWidget(widget)
        dock.setObjectName(name)
        self.docks[name] = dock
        self._places[name] = place
        action = dock.toggleViewAction()
        action.setText(title)
        actions = self.view_menu.actions()
        separator = next((a for a in actions if a.isSeparator()), None)
        self.view_menu.insertAction(separator, action) if separator else self.view_menu.addAction(action)
        self._place(name)
        return dock

    def _place(self, name: str) -> None:
        dock, place = self.docks[name], self._places[name]
        other = self.docks.get(place.beside) if place.beside else None
        if other is None or other is dock:
            self.addDockWidget(place.area, dock)
        elif place.tab:
            self.tabifyDockWidget(other, dock)
        else:
            self.addDockWidget(self.dockWidgetArea(other), dock)
            self.splitDockWidget(other, dock, place.orientation)
        dock.setFloating(False)
        dock.setVisible(place.visible)

    def reset_layout(self) -> None:
        """Every dock back in its default place and size (the server page stays as it is)."""
        for name, dock in self.docks.items():
            if name != "server-page":
                self.removeDockWidget(dock)
        web_shown = self.web_dock.isVisible()
        self.removeDockWidget(self.web_dock)
        for name in self.docks:
            self._place(name)
        self.web_dock.setVisible(web_shown or self.web_dock.has_page())
        (self.web_dock if self.web_dock.isVisible() else self.detail_dock).raise_()  # the front tab
        self.apply_default_sizes()
        QTimer.singleShot(0, self.apply_default_sizes)  # again once the new layout has its geometry

    def apply_default_sizes(self) -> None:
        """The default widths and heights of the docks. Neighbours are sized together: Qt gives
        the width one dock gives up to whichever neighbour it likes."""
        layout = self.layout()
        if layout is not None:
            layout.activate()
        horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        width = self.width()
        fleet_w = max(FLEET_WIDTH, int(width * FLEET_SHARE))
        detail_w = max(DETAIL_WIDTH, int(width * DETAIL_SHARE))
        columns = [(d, w) for d, w in ((self.fleet_dock, fleet_w), (self.tree_dock, width - fleet_w - detail_w),
                                       (self.detail_dock, detail_w)) if d.isVisible()]
        if columns:
            self.resizeDocks([d for d, _ in columns], [w for _, w in columns], horizontal)
        pairs = [(self.tree_dock, self.traffic_dock, self.tree_dock.height() + self.traffic_dock.height() - TREE_HEIGHT)]
        for name, place in self._places.items():
            other = self.docks.get(place.beside)
            if place.size and other is not None and not place.tab and place.orientation == vertical:
                pairs.append((other, self.docks[name], place.size))
        for first, second, second_h in pairs:
            if first.isVisible() and second.isVisible():
                total = first.height() + second.height()
                self.resizeDocks([first, second], [max(80, total - second_h), second_h], vertical)

    # ------------------------------------------------------------------ menus and settings

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.menuBar().insertMenu(self.view_menu.menuAction(), file_menu)
        open_traffic = QAction("Open traffic log…", self)
        open_traffic.setShortcut(QKeySequence.StandardKey.Open)
        open_traffic.triggered.connect(self.traffic_panel._open_dialog)
        save_traffic = QAction("Save traffic log…", self)
        save_traffic.setShortcut(QKeySequence.StandardKey.Save)
        save_traffic.triggered.connect(self.traffic_panel._save_dialog)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.request_quit)
        for a in (open_traffic, save_traffic, quit_action):
            file_menu.addAction(a)
        session_menu = self.menuBar().addMenu("&Session")
        start = QAction("Start session on selection", self)
        start.setShortcut(QKeySequence("Ctrl+R"))
        start.triggered.connect(lambda: self.fleet_panel.start_sessions(self.fleet_panel.selected_ids()))
        session_menu.addAction(start)
        self.server_actions = ServerActions(self, session_menu)  # server connection, notify
        self.desktop = WindowActions(self)  # Help menu, shortcuts, context menus, exports
        file_menu.insertAction(quit_action, self.desktop.export_har)
        file_menu.insertAction(quit_action, self.desktop.export_bodies)
        file_menu.insertSeparator(quit_action)
        after_start = session_menu.actions()[1:2]
        if after_start:
            session_menu.insertAction(after_start[0], self.desktop.stop)
        else:
            session_menu.addAction(self.desktop.stop)

    def restore_settings(self) -> None:
        s = settings()
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if state is not None and self.restoreState(state, LAYOUT_VERSION):
            self.web_dock.setVisible(self.web_dock.has_page())  # no page open yet at start

    def save_settings(self) -> None:
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(LAYOUT_VERSION))

    # ------------------------------------------------------------------ events

    def _on_events(self, events: list[Event]) -> None:
        self.fleet_panel.model.apply_events(events)
        self._follow_operations(events)  # before the tree takes the batch: a State leaf revealed now flashes
        self.tree_panel.apply_events(events)
        self.device_panel.apply_events(events)
        self.operation_strip.apply_events(events)
        self.traffic_panel.apply_events(events)
        self.plots.apply_events(events)
        charted = self.value_chart.path
        if charted and any(isinstance(e, TreeChanged) and e.device_id == self.tree_panel.model.device_id
                           and e.change.path == charted for e in events):
            self.chart_value(charted, show=False)
        self.ui_handler.apply_events(events)
        for e in events:
            if isinstance(e, SessionEnded) and e.outcome not in ("completed",):
                self._told[e.device_id] = e.detail  # its device's "error" state says the same: once is enough
                self.statusBar().showMessage(f"{e.device_id}: session {e.session_id} {e.outcome}: {e.detail}", 8000)
            elif isinstance(e, UiRequested):
                what = "a web page" if e.kind == "web" else "an answer"
                self.statusBar().showMessage(f"{e.device_id}: server {e.server_id} asks for {what}", 8000)
            elif isinstance(e, UiFinished):
                self.statusBar().showMessage(f"{e.device_id}: user interaction {e.outcome}", 5000)
            elif isinstance(e, DeviceStateChanged) and e.state == "error" and e.detail and \
                    self._told.pop(e.device_id, None) != e.detail:
                self.statusBar().showMessage(f"{e.device_id}: {e.detail}", 8000)

    def _follow_operations(self, events: list[Event]) -> None:
        """An operation that starts (or goes on) on the shown device brings its State leaf into view
        once, so the tree shows it flash through its states; ending it lets the next one do so again."""
        dev_id, tree = self.tree_panel.model.device_id, self.tree_panel.model.tree
        for e in events:
            if not isinstance(e, OperationChanged):
                continue
            key = (e.device_id, e.node)
            if e.state == "ended":
                self._followed.discard(key)
            elif e.device_id == dev_id and tree is not None and key not in self._followed:
                self._followed.add(key)
                leaf = state_leaf(tree, e.node)
                if leaf is not None:
                    self.tree_panel.reveal_path(leaf)

    def select_device(self, device_id: str | None) -> None:
        dev = self.fleet.devices.get(device_id) if device_id else None
        if dev is None:
            self.tree_panel.show_device(None, None)
        else:
            self.tree_panel.show_device(dev.id, dev.tree, dev.profile.title, device=dev)
        self.traffic_panel.set_device(dev.id if dev else None)
        self.device_panel.show_device(dev)
        self.operation_strip.show_device(dev)
        op = self.fleet_panel.model.ops.operation(dev.id) if dev is not None else None
        leaf = state_leaf(dev.tree, op.node) if dev is not None and op is not None else None
        if leaf is not None:  # a device that ran an operation: where its state is, in view
            self.tree_panel.reveal_path(leaf)

    def chart_value(self, path: str, *, show: bool = True) -> int:
        """Chart the value history of ``path`` of the selected device in the Value history dock;
        returns how many numeric values it shows (the leaf's changes since the window opened, and
        its value now)."""
        if show:
            dock = self.docks["value-history"]
            dock.show()
            dock.raise_()
        tree = self.tree_panel.model.tree
        points: list[tuple[float, object]] = [(c.ts, c.new) for c in self.tree_panel.model.history(path)
                                              if c.kind == "replace"]
        if tree is not None and tree.exists(path) and not points:
            points.append((time.time(), tree.value(path)))
        return self.value_chart.show_history(path, points)

    def _chart_selection(self) -> None:
        """The value history follows the tree's selection while its dock is on screen."""
        info = self.tree_panel.selected_info()
        if info is not None and info.children is None and self.docks["value-history"].isVisible():
            self.chart_value(info.path, show=False)

    def show_error(self, text: str) -> None:
        self.statusBar().showMessage(f"⚠ {text}", 10000)

    def set_server_status(self, ok: bool, text: str) -> None:
        self.server_label.setStyleSheet("" if ok else "color: #b00020")
        self._server_text = f"Server: {text}" if ok else text
        self._listener_url: str | None = None  # shown again below
        self.show_listener()

    def show_listener(self) -> None:
        """Adds where servers send notifications; the listener starts after the window, so the count
        timer calls this too (it only touches the label when the URL changed)."""
        url = self.fleet.listener.url if self.fleet.listener is not None else ""
        if url == self._listener_url:
            return
        self._listener_url = url
        self.server_label.setText(f"{self._server_text} · notifications: {url}" if url else self._server_text)

    def update_counts(self) -> None:
        self.show_listener()
        st = self.fleet.stats
        waiting = self.ui_handler.pending.count()
        self.counts.setText(
            f"{len(self.fleet.devices)} devices · {st.running} sessions running · "
            f"{st.sessions_completed} done · {st.sessions_failed + st.sessions_not_run} failed · "
            f"{self.fleet.messages_per_second():.1f} msg/s"
        )
        self.counts.setToolTip(f"{waiting} of the sessions running wait for you (see the fleet's list)\n"
                               f"failed: {st.sessions_failed} session(s) that ended without completing, "
                               f"{st.sessions_not_run} that could not run at all")

    # ------------------------------------------------------------------ closing

    def request_quit(self) -> None:
        """File > Quit: asks first while sessions run (a close from code, as tests do, does not ask)."""
        if confirm_quit(self, self.fleet):
            self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if event.spontaneous() and not confirm_quit(self, self.fleet):  # the window manager's close button
            event.ignore()
            return
        if self.remember:
            self.save_settings()
        self._count_timer.stop()
        self.batcher.close()
        self.ui_handler.pending.cancel_all()  # every waiting page and question: "cancelled"
        super().closeEvent(event)
        if self.on_close is not None:
            self.on_close()

    def dispose(self) -> None:
        """Release the web engine parts before the QApplication goes."""
        self.web_dock.dispose()
