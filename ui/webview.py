"""The embedded browser for server UI flows (DM 2.0 SHOW, DM 1.2 launchBrowserToURI) and the dialogs
for DM 1.2 alerts 1100-1104: together they are the window's UiHandler.

Why so strict: the page comes from a DM server, so only that server's own origin may load in the
view; a link elsewhere is stopped and shown to the user, and pages get no file access, no popups.
The flow ends when the page reaches a path ending in ``/ui/done`` (PROTOCOL.md 1.19): that answers
the session 'ok' (the same word a headless run uses for a finished flow); closing the dock answers
'cancelled'.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWebEngineCore import QWebEnginePage, QWebEngineSettings
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from emulator.protocol.actions import AskUser, OpenBrowser, UserAnswer, is_ui_done
from emulator.protocol.flow import UiFlow, Wait
from emulator.protocol.values import UserOutcome
from ui.signals import emit

MIN_PAGE_WIDTH = 420


def origin(url: QUrl) -> tuple[str, str, int]:
    default = 443 if url.scheme() == "https" else 80
    return (url.scheme().lower(), url.host().lower(), url.port(default))


class GuardedPage(QWebEnginePage):
    """A page that only navigates within one origin and reports the end of the flow."""

    finished = Signal(str)  # the /ui/done URL
    blocked = Signal(str)  # a URL outside the allowed origin

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.allowed: tuple[str, str, int] | None = None
        s = self.settings()
        s.setAttribute(QWebEngineSettings.WebAttribute.LocalContentCanAccessFileUrls, False)
        s.setAttribute(QWebEngineSettings.WebAttribute.LocalContentCanAccessRemoteUrls, False)
        s.setAttribute(QWebEngineSettings.WebAttribute.JavascriptCanOpenWindows, False)
        s.setAttribute(QWebEngineSettings.WebAttribute.JavascriptCanAccessClipboard, False)
        s.setAttribute(QWebEngineSettings.WebAttribute.PluginsEnabled, False)
        s.setAttribute(QWebEngineSettings.WebAttribute.AllowRunningInsecureContent, False)
        s.setAttribute(QWebEngineSettings.WebAttribute.AllowGeolocationOnInsecureOrigins, False)

    def acceptNavigationRequest(self, url: QUrl | str, nav_type, is_main_frame: bool) -> bool:
        url = QUrl(url)
        if url.scheme() in ("about", "data") and url.toString() in ("about:blank",):
            return True
        if self.allowed is None or origin(url) != self.allowed:
            emit(self.blocked, url.toString())
            return False
        if is_ui_done(url.toString()):
            emit(self.finished, url.toString())
        return True

    # Qt takes a null page as "refused"; PySide6's stub leaves out the None
    def createWindow(self, _type: QWebEnginePage.WebWindowType) -> QWebEnginePage | None:  # type: ignore[override]
        return None  # popups are refused


class WebDock(QDockWidget):
    """The dock that shows one UI flow at a time; flows from several devices wait in turn."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Server page", parent)
        self.setObjectName("server-page")
        self.header = QLabel("No page open")
        self.header.setWordWrap(True)
        self.header.setStyleSheet("font-weight: bold; padding: 2px")
        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: #b00020")
        self.notice.hide()
        self.view = QWebEngineView()
        self.page = GuardedPage(self.view)
        self.view.setPage(self.page)
        self.page.profile().downloadRequested.connect(lambda item: item.cancel())  # pages never write files
        self.page.finished.connect(self._on_done)
        self.page.blocked.connect(self._on_blocked)
        self.view.loadFinished.connect(self._on_loaded)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.header)
        layout.addWidget(self.notice)
        layout.addWidget(self.view, 1)
        self.setWidget(body)
        self._future: asyncio.Future[UserOutcome] | None = None
        self._lock = asyncio.Lock()
        self.loaded_url = ""
        self.flows = 0
        self.device_id = ""  # whose flow is showing
        self.loads = 0  # pages loaded (scripts and tests follow multi-page flows with it)
        self._disposed = False

    # ------------------------------------------------------------------ one flow

    async def run_flow(self, url: str, device_id: str, server: str) -> UserOutcome:
        """Show ``url`` for ``device_id`` and wait: 'ok' at /ui/done, 'cancelled' if closed."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            self._future = fut = loop.create_future()
            qurl = QUrl(url)
            self.page.allowed = origin(qurl)
            self.device_id = device_id
            self.header.setText(f"{device_id} — page from {server or qurl.host()}\n{qurl.toString()}")
            self.notice.hide()
            self.loaded_url = ""
            self.flows += 1
            self.show()
            self.raise_()
            QTimer.singleShot(0, self._make_room)  # once the dock has its first layout
            self.view.load(qurl)
            try:
                return await fut
            except asyncio.CancelledError:
                self.header.setText(self.header.text().split("\n")[0] + "\nthe session ended")
                raise
            finally:
                self._future = None

    def _make_room(self) -> None:
        """A server page needs room to be usable: widen the dock on first show (the user may resize)."""
        window = self.parentWidget()
        if isinstance(window, QMainWindow) and not self.isFloating() and self.width() < MIN_PAGE_WIDTH:
            window.resizeDocks([self], [max(MIN_PAGE_WIDTH, window.width() // 3)], Qt.Orientation.Horizontal)

    def _resolve(self, outcome: UserOutcome) -> None:
        fut = self._future
        if fut is not None and not fut.done():
            fut.set_result(outcome)

    def _on_done(self, url: str) -> None:
        self.header.setText(self.header.text().split("\n")[0] + "\nfinished: the session goes on")
        self._resolve("ok")

    def _on_blocked(self, url: str) -> None:
        self.notice.setText(f"Blocked: the page tried to open {url}, which is not the DM server's own site.")
        self.notice.show()

    def _on_loaded(self, ok: bool) -> None:
        self.loaded_url = self.view.url().toString() if ok else ""
        self.loads += ok

    def closeEvent(self, event: QCloseEvent) -> None:
        self._resolve("cancelled")
        emit(self.closed)
        super().closeEvent(event)

    def dispose(self) -> None:
        """Drop the page and view now: a web page alive when QApplication goes crashes (STACK.md)."""
        self._resolve("cancelled")
        if self._disposed:
            return
        self._disposed = True
        self.view.stop()
        self.page.deleteLater()
        self.view.deleteLater()


class WindowUi:
    """The window's answer to servers asking for the user: web pages in the dock, alerts as dialogs."""

    def __init__(self, dock: WebDock, parent: QWidget) -> None:
        self.dock = dock
        self.parent = parent

    def browse(self, session, action: OpenBrowser) -> UiFlow:
        """A flow of one step: wait (on the Qt loop) for the dock to end the page flow."""
        reply = yield Wait(lambda: self.dock.run_flow(action.url, session.device_id, session.server))
        return UserAnswer(reply.value)

    def ask(self, session, action: AskUser) -> UiFlow:
        dialog = AlertDialog(action, f"{session.device_id} — {session.server}", self.parent)
        return (yield Wait(dialog.answer)).value


class AlertDialog(QDialog):
    """One DM 1.2 user-interaction alert (1100 display … 1104 multiple choice), non-modal to the loop."""

    def __init__(self, action: AskUser, who: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.action = action
        self.setWindowTitle(f"Server asks — {who}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        layout = QVBoxLayout(self)
        text = QLabel(action.text or "(no text)")
        text.setWordWrap(True)
        layout.addWidget(text)
        self.line: QLineEdit | None = None
        self.choices: QListWidget | None = None
        kind = action.kind
        buttons = QDialogButtonBox.StandardButton
        if kind == "text":
            self.line = QLineEdit(text=action.options.get("DR", ""))
            if action.options.get("ET", "").upper() == "P":
                self.line.setEchoMode(QLineEdit.EchoMode.Password)
            if action.options.get("MAXLEN", "").isdigit():
                self.line.setMaxLength(int(action.options["MAXLEN"]))
            layout.addWidget(self.line)
        elif kind in ("single", "multiple"):
            self.choices = QListWidget()
            for i, label in enumerate(action.choices, 1):
                item = QListWidgetItem(label)
                if kind == "multiple":
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setCheckState(Qt.CheckState.Unchecked)
                item.setData(Qt.ItemDataRole.UserRole, i)
                self.choices.addItem(item)
            if kind == "single" and action.choices:
                self.choices.setCurrentRow(0)
            layout.addWidget(self.choices)
        if kind == "display":
            box = QDialogButtonBox(buttons.Ok)
        elif kind == "confirm":
            box = QDialogButtonBox(buttons.Yes | buttons.No | buttons.Cancel)
        else:
            box = QDialogButtonBox(buttons.Ok | buttons.Cancel)
        box.clicked.connect(lambda b: self._clicked(box.standardButton(b)))
        layout.addWidget(box)
        self._future: asyncio.Future[UserAnswer] | None = None
        self.finished.connect(lambda _r: self._resolve(UserAnswer("cancelled")))
        maxdt = action.options.get("MAXDT", "")
        if maxdt.isdigit() and int(maxdt) > 0:
            QTimer.singleShot(int(maxdt) * 1000, self._timeout)

    def _clicked(self, which: QDialogButtonBox.StandardButton) -> None:
        b = QDialogButtonBox.StandardButton
        if which == b.Cancel:
            self._resolve(UserAnswer("cancelled"))
        elif which == b.No:
            self._resolve(UserAnswer("no"))
        else:
            self._resolve(self.current_answer())
        self.close()

    def current_answer(self) -> UserAnswer:
        if self.line is not None:
            return UserAnswer("ok", text=self.line.text())
        if self.choices is not None:
            if self.action.kind == "single":
                item = self.choices.currentItem()
                return UserAnswer("ok", selected=(item.data(Qt.ItemDataRole.UserRole),) if item else ())
            picked = tuple(
                self.choices.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.choices.count())
                if self.choices.item(i).checkState() == Qt.CheckState.Checked
            )
            return UserAnswer("ok", selected=picked)
        return UserAnswer("ok")

    def _timeout(self) -> None:
        self._resolve(UserAnswer("timeout"))
        self.close()

    def _resolve(self, answer: UserAnswer) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(answer)

    async def answer(self) -> UserAnswer:
        self._future = asyncio.get_running_loop().create_future()
        self.open()  # not exec(): a nested event loop would stall the sessions
        try:
            return await self._future
        finally:
            self.deleteLater()

