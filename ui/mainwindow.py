"""The main window: fleet on the left, the selected device's tree and the traffic on the right, the
server's web page in a dock; a status bar with live counts.

The window only watches the fleet through the event bus (batched, see :mod:`ui.batcher`) and acts
through the fleet's and the tree's public operations.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QSplitter, QTabWidget, QWidget

from emulator.events import DeviceStateChanged, Event, SessionEnded, UiFinished, UiRequested
from emulator.fleet.fleet import Fleet
from ui.batcher import EventBatcher
from ui.device_panel import DevicePanel
from ui.fleet_panel import FleetPanel
from ui.progress import SessionProgress
from ui.server_dialog import ServerActions
from ui.settings import remember_servers, settings
from ui.traffic_panel import TrafficPanel
from ui.tree_panel import TreePanel
from ui.webview import WebDock, WindowUi


class MainWindow(QMainWindow):
    def __init__(self, fleet: Fleet, parent: QWidget | None = None, *, remember: bool = True) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self.remember = remember  # False: default layout, nothing saved (screenshots look the same)
        self.setWindowTitle(f"dm-emulator — {fleet.server}")
        self.on_close: Callable[[], object] | None = None

        self.fleet_panel = FleetPanel(fleet)
        self.tree_panel = TreePanel()
        self.traffic_panel = TrafficPanel()
        self.web_dock = WebDock(self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.web_dock)
        self.web_dock.hide()
        self.ui_handler = WindowUi(self.web_dock, self)

        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.setObjectName("right-splitter")
        self.device_panel = DevicePanel()
        self.device_tabs = QTabWidget()
        self.device_tabs.addTab(self.tree_panel, "Tree")
        self.device_tabs.addTab(self.device_panel, "Apps && authorities")
        self.right.addWidget(self.device_tabs)
        self.right.addWidget(self.traffic_panel)
        self.right.setSizes([420, 300])
        self.main = QSplitter(Qt.Orientation.Horizontal)
        self.main.setObjectName("main-splitter")
        self.main.addWidget(self.fleet_panel)
        self.main.addWidget(self.right)
        self.main.setSizes([430, 850])
        self.setCentralWidget(self.main)

        self.counts = QLabel("")
        self.server_label = QLabel("")
        self.session_progress = SessionProgress(fleet)
        self.statusBar().addPermanentWidget(self.session_progress)
        self.statusBar().addPermanentWidget(self.server_label)
        self.statusBar().addPermanentWidget(self.counts)
        self.set_server_status(True, fleet.server)

        self.batcher = EventBatcher(fleet.bus, parent=self)
        self.batcher.flushed.connect(self._on_events)
        self.fleet_panel.device_selected.connect(self.select_device)
        self.fleet_panel.error.connect(self.show_error)
        self.fleet_panel.info.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.device_panel.error.connect(self.show_error)
        self.device_panel.info.connect(lambda text: self.statusBar().showMessage(text, 5000))

        self._count_timer = QTimer(self)
        self._count_timer.setInterval(500)
        self._count_timer.timeout.connect(self.update_counts)
        self._count_timer.start()
        self._build_menu()
        if remember:
            self.restore_settings()
        else:
            self.resize(1280, 780)
        self.update_counts()

    # ------------------------------------------------------------------ menus and settings

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_traffic = QAction("Open traffic log…", self)
        open_traffic.triggered.connect(self.traffic_panel._open_dialog)
        save_traffic = QAction("Save traffic log…", self)
        save_traffic.triggered.connect(self.traffic_panel._save_dialog)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for a in (open_traffic, save_traffic, quit_action):
            file_menu.addAction(a)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.web_dock.toggleViewAction())
        session_menu = self.menuBar().addMenu("&Session")
        start = QAction("Start session on selection", self)
        start.setShortcut(QKeySequence("Ctrl+R"))
        start.triggered.connect(lambda: self.fleet_panel.start_sessions(self.fleet_panel.selected_ids()))
        session_menu.addAction(start)
        self.server_actions = ServerActions(self, session_menu)  # server connection, notify

    def restore_settings(self) -> None:
        s = settings()
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 780)
        for splitter in (self.main, self.right, self.traffic_panel.splitter):
            state = s.value(f"splitter/{splitter.objectName() or 'traffic'}")
            if state is not None:
                splitter.restoreState(state)

    def save_settings(self) -> None:
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        for splitter in (self.main, self.right, self.traffic_panel.splitter):
            s.setValue(f"splitter/{splitter.objectName() or 'traffic'}", splitter.saveState())
        remember_servers([], self.fleet.server, s)

    # ------------------------------------------------------------------ events

    def _on_events(self, events: list[Event]) -> None:
        self.fleet_panel.model.apply_events(events)
        self.tree_panel.model.apply_events(events)
        self.device_panel.apply_events(events)
        self.traffic_panel.apply_events(events)
        for e in events:
            if isinstance(e, SessionEnded) and e.outcome not in ("completed",):
                self.statusBar().showMessage(f"{e.device_id}: session {e.session_id} {e.outcome}: {e.detail}", 8000)
            elif isinstance(e, UiRequested):
                what = "a web page" if e.kind == "web" else "an answer"
                self.statusBar().showMessage(f"{e.device_id}: server {e.server_id} asks for {what}", 8000)
            elif isinstance(e, UiFinished):
                self.statusBar().showMessage(f"{e.device_id}: user interaction {e.outcome}", 5000)
            elif isinstance(e, DeviceStateChanged) and e.state == "error" and e.detail:
                self.statusBar().showMessage(f"{e.device_id}: {e.detail}", 8000)

    def select_device(self, device_id: str | None) -> None:
        dev = self.fleet.devices.get(device_id) if device_id else None
        if dev is None:
            self.tree_panel.show_device(None, None)
        else:
            self.tree_panel.show_device(dev.id, dev.tree, dev.profile.title)
        self.traffic_panel.set_device(dev.id if dev else None)
        self.device_panel.show_device(dev)

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
        self.counts.setText(
            f"{len(self.fleet.devices)} devices · {st.running} sessions running · "
            f"{st.sessions_completed} done · {st.sessions_failed} failed · "
            f"{self.fleet.messages_per_second():.1f} msg/s"
        )

    # ------------------------------------------------------------------ closing

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.remember:
            self.save_settings()
        self._count_timer.stop()
        self.batcher.close()
        self.web_dock._resolve("cancelled")
        super().closeEvent(event)
        if self.on_close is not None:
            self.on_close()

    def dispose(self) -> None:
        """Release the web engine parts before the QApplication goes."""
        self.web_dock.dispose()
