"""Desktop conventions of the window: the Help menu (About with the version and the licences of
Qt, PySide6 and the libraries used; the README), keyboard shortcuts, context menus in the fleet,
the tree and the traffic list, and traffic exports (HAR, raw bodies).

Menus are built by functions that return them, so tests look at and trigger the same actions the
user sees without opening a popup.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QPoint, Qt, QUrl, qVersion
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QMenu,
    QMenuBar,
    QStatusBar,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from emulator import __version__
from emulator.events import MessageLogged
from emulator.store.har import write_har, write_raw_bodies
from ui.fleet_panel import FleetPanel
from ui.traffic_panel import TrafficPanel
from ui.tree_panel import TreePanel

README = Path(__file__).resolve().parents[1] / "README.md"
PROJECT_URL = "https://github.com/dm-emulator/dm-emulator#readme"
LIBRARIES = ("PySide6", "shiboken6", "qasync", "aiohttp", "httpx", "lxml", "cryptography")
PROJECT_LICENCE = "Apache-2.0"


def readme_url() -> QUrl:
    """The README next to the code (a clone or an editable install), else the project's page."""
    return QUrl.fromLocalFile(str(README)) if README.is_file() else QUrl(PROJECT_URL)


def licence_of(dist: str) -> str:
    """The licence a distribution declares (License-Expression, License or its classifiers)."""
    try:
        meta = importlib.metadata.metadata(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""
    text = meta["License-Expression"] or (meta["License"] or "").strip()
    if text and len(text) <= 80 and "\n" not in text:
        return text
    classifiers = [c.rsplit("::", 1)[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License")]
    return ", ".join(classifiers) or "see its distribution"


def components() -> list[tuple[str, str, str]]:
    """(name, version, licence) of what the window is built on, for the About box."""
    rows = [("dm-emulator", __version__, PROJECT_LICENCE),
            ("Qt", qVersion(), "LGPL-3.0-only (the Qt libraries shipped in the PySide6 wheels)"),
            ("Python", platform.python_version(), "PSF-2.0")]
    for dist in LIBRARIES:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        rows.append((dist, version, licence_of(dist)))
    return rows


def about_html() -> str:
    rows = "".join(f"<tr><td><b>{n}</b></td><td>{v}</td><td>{lic}</td></tr>" for n, v, lic in components())
    return (f"<h3>dm-emulator {__version__}</h3>"
            "<p>OMA DM 1.2 / DM 2.0 device fleet emulator, with a reference server.</p>"
            f"<p>Built with PySide6 {pyside_version} (Qt for Python) and Qt {qVersion()}. Qt and PySide6 are "
            "used under the GNU LGPL version 3: you may replace them with your own build "
            "(<a href='https://www.qt.io/licensing/open-source-lgpl-obligations'>Qt's LGPL obligations</a>).</p>"
            f"<table cellspacing='6'><tr><th align='left'>Component</th><th align='left'>Version</th>"
            f"<th align='left'>Licence</th></tr>{rows}</table>"
            f"<p><a href='{readme_url().toString()}'>README</a></p>")


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About dm-emulator")
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(about_html())
        self.text.setMinimumSize(520, 340)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)


def _action(parent: QWidget, text: str, slot: Callable[[], object],
            shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
            tip: str = "") -> QAction:
    action = QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setToolTip(tip)
    action.triggered.connect(lambda _=False: slot())
    return action


class Window(Protocol):
    """What these actions use of the main window (a Protocol: the window module imports this one)."""

    fleet_panel: FleetPanel
    tree_panel: TreePanel
    traffic_panel: TrafficPanel
    tree_dock: QDockWidget
    traffic_dock: QDockWidget
    device_tabs: QTabWidget

    def show_error(self, text: str) -> None: ...

    def chart_value(self, path: str, *, show: bool = True) -> int: ...

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 (Qt's name)

    def menuBar(self) -> QMenuBar: ...  # noqa: N802 (Qt's name)

    def window(self) -> QWidget: ...  # the main window itself, as the parent of actions and dialogs


class WindowActions:
    """The window's shortcuts, Help menu, exports and context menus (one instance per window)."""

    def __init__(self, window: Window) -> None:
        self.w = window
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl  # tests put a recorder here
        self.about: AboutDialog | None = None
        w = window.window()
        self.readme = _action(w, "README", self.show_readme, QKeySequence.StandardKey.HelpContents,
                              "Open the README (F1)")
        self.about_action = _action(w, "About dm-emulator…", self.show_about)
        self.search = _action(w, "Search traffic", self.focus_search, QKeySequence.StandardKey.Find)
        self.stop = _action(w, "Stop session", self.stop_selected, "Esc", "Stop the sessions of the selected devices")
        self.export_har = _action(w, "Export traffic as HAR…", self._har_dialog,
                                  tip="HTTP Archive 1.2: open it in a browser's developer tools (Network, Import)")
        self.export_bodies = _action(w, "Export message bodies…", self._bodies_dialog,
                                     tip="One file per message, in a folder")
        for a in (self.search, self.stop):
            w.addAction(a)  # window-wide shortcuts
        help_menu = window.menuBar().addMenu("&Help")
        help_menu.addAction(self.readme)
        help_menu.addAction(self.about_action)
        self.help_menu = help_menu
        self.delete = _action(window.tree_panel.view, "Delete…", lambda: window.tree_panel.delete_selected(),
                              QKeySequence.StandardKey.Delete)
        self.delete.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        window.tree_panel.view.addAction(self.delete)  # Delete in the tree only (text fields keep the key)
        for view, menu in ((window.fleet_panel.view, self.fleet_menu), (window.tree_panel.view, self.tree_menu),
                           (window.traffic_panel.view, self.traffic_menu)):
            view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            view.customContextMenuRequested.connect(
                lambda pos, v=view, m=menu: self._popup(v, m, pos))

    # ------------------------------------------------------------------ help

    def show_readme(self) -> None:
        self.open_url(readme_url())

    def show_about(self) -> AboutDialog:
        self.about = AboutDialog(self.w.window())
        self.about.show()
        return self.about

    # ------------------------------------------------------------------ shortcuts

    def focus_search(self) -> None:
        dock = self.w.traffic_dock
        dock.show()
        dock.raise_()
        self.w.traffic_panel.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.w.traffic_panel.search.selectAll()

    def stop_selected(self) -> int:
        ids = self.w.fleet_panel.selected_ids()
        return self.w.fleet_panel.stop_sessions(ids) if ids else 0

    # ------------------------------------------------------------------ exports

    def messages(self) -> list[MessageLogged]:
        """The traffic's messages (failed-exchange rows have no message: HAR shows them as status 0)."""
        return [m for m in self.w.traffic_panel.model.messages if isinstance(m, MessageLogged)]

    def export_har_to(self, path: str | Path) -> int:
        return write_har(path, self.messages(), reveal=self.w.traffic_panel.reveal_box.isChecked())

    def export_bodies_to(self, folder: str | Path) -> int:
        return write_raw_bodies(folder, self.messages(), reveal=self.w.traffic_panel.reveal_box.isChecked())

    def _har_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self.w.window(), "Export traffic as HAR", "traffic.har", "HTTP Archive (*.har)")
        if name:
            self._report(lambda: self.export_har_to(name), f"exported {{}} exchanges to {name}", name)

    def _bodies_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.w.window(), "Export message bodies into a folder")
        if folder:
            self._report(lambda: self.export_bodies_to(folder), f"wrote {{}} message bodies into {folder}", folder)

    def _report(self, job: Callable[[], int], done: str, where: str) -> None:
        try:
            n = job()
        except OSError as exc:
            self.w.show_error(f"could not export to {where}: {exc}")
            return
        self.w.traffic_panel.message.setText(done.format(n))
        self.w.statusBar().showMessage(done.format(n), 5000)

    # ------------------------------------------------------------------ context menus

    def _popup(self, view: QAbstractItemView, build: Callable[[], QMenu], pos: QPoint) -> None:
        index = view.indexAt(pos)
        if index.isValid() and not view.selectionModel().isSelected(index):
            view.setCurrentIndex(index)
        build().exec(view.viewport().mapToGlobal(pos))

    def _copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)

    def show_in_tree(self, device_id: str, path: str = "") -> None:
        self.w.fleet_panel.select(device_id)
        self.w.tree_dock.show()
        self.w.tree_dock.raise_()
        self.w.device_tabs.setCurrentWidget(self.w.tree_panel)
        if path:
            self.w.tree_panel.select_path(path)

    def fleet_menu(self) -> QMenu:
        w, ids = self.w, self.w.fleet_panel.selected_ids()
        menu = QMenu(w.fleet_panel.view)
        n = f" ({len(ids)} devices)" if len(ids) > 1 else ""
        menu.addAction(_action(menu, f"Start session{n}", lambda: w.fleet_panel.start_sessions(ids), "Ctrl+R"))
        menu.addAction(_action(menu, f"Stop session{n}", lambda: w.fleet_panel.stop_sessions(ids), "Esc"))
        menu.addSeparator()
        menu.addAction(_action(menu, "Show in tree", lambda: self.show_in_tree(ids[0])))
        menu.addAction(_action(menu, "Show its traffic", lambda: self._traffic_of(ids[0])))
        menu.addAction(_action(menu, "Copy device id", lambda: self._copy("\n".join(ids))))
        for a in menu.actions():
            a.setEnabled(bool(ids))
        return menu

    def _traffic_of(self, device_id: str) -> None:
        self.w.fleet_panel.select(device_id)
        self.w.traffic_panel.only_selected.setChecked(True)
        self.w.traffic_dock.show()
        self.w.traffic_dock.raise_()

    def tree_menu(self) -> QMenu:
        panel = self.w.tree_panel
        info = panel.selected_info()
        menu = QMenu(panel.view)
        uri = info.path if info else ""
        value = "" if info is None or info.children is not None else _text(info.value)
        copy_uri = _action(menu, "Copy URI", lambda: self._copy(uri))
        copy_value = _action(menu, "Copy value", lambda: self._copy(value))
        chart = _action(menu, "Chart value history", lambda: self.w.chart_value(uri))
        for a in (copy_uri, copy_value, chart):
            menu.addAction(a)
        menu.addSeparator()
        menu.addAction(self.delete)
        for a in (copy_uri, copy_value, chart):
            a.setEnabled(info is not None)
        copy_value.setEnabled(info is not None and info.children is None)
        chart.setEnabled(info is not None and info.children is None)
        return menu

    def traffic_menu(self) -> QMenu:
        panel = self.w.traffic_panel
        index = panel.view.currentIndex()
        m = index.siblingAtColumn(0).data(Qt.ItemDataRole.UserRole + 1) if index.isValid() else None
        menu = QMenu(panel.view)
        actions = [
            _action(menu, "Copy message", lambda: self._copy(panel.detail.toPlainText())),
            _action(menu, "Copy body as sent", lambda: self._copy(_text(m.body) if m is not None else "")),
            _action(menu, "Follow session", lambda: self.follow_session(m.session_id) if m is not None else None),
            _action(menu, "Show device in tree", lambda: self.show_in_tree(m.device_id) if m is not None else None),
        ]
        for a in actions:
            a.setEnabled(m is not None)
            menu.addAction(a)
        menu.addSeparator()
        menu.addAction(self.export_har)
        menu.addAction(self.export_bodies)
        return menu

    def follow_session(self, session_id: str) -> None:
        """Only that session's messages, the newest in view as they come."""
        panel = self.w.traffic_panel
        panel.session_box.setCurrentText(session_id)
        panel.view.scrollToBottom()


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
