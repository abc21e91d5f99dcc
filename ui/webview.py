"""The embedded browser for server UI flows (DM 2.0 SHOW, DM 1.2 launchBrowserToURI) and the dialogs
for DM 1.2 alerts 1100-1104: together they are the window's UiHandler.

Why so strict: the page comes from a DM server, so only that server's own origin may load in the
view; a link elsewhere is stopped and shown to the user, and pages get no file access, no popups.
The flow ends when the page reaches a path ending in ``/ui/done`` (PROTOCOL.md 1.19): that answers
the session 'ok' (the same word a headless run uses for a finished flow); closing the dock answers
'cancelled'.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import replace

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

from emulator.events import SessionEnded
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.actions import AskUser, OpenBrowser, UserAnswer, is_ui_done
from emulator.protocol.flow import UiFlow, Wait
from emulator.protocol.values import UserOutcome
from ui.pending import Defaults, Pending, PendingRequests
from ui.signals import emit

MIN_PAGE_WIDTH = 420
MIN_ALERT_WIDTH = 360
TITLE_BAR_EXTRA = 140  # a window manager's icon and buttons beside the title
NEXT_PAGE_AFTER_MS = 1500
"""How long a finished page (its "done" page) stays before the next waiting page comes up."""


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
    """The dock that shows one waiting page at a time (:mod:`ui.pending` keeps the others): the
    selected device's when it has one (:meth:`follow`), else the first that asked; when a page flow
    ends the next waiting one comes up."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None, pending: PendingRequests | None = None) -> None:
        super().__init__("Server page", parent)
        self.setObjectName("server-page")
        self.pending = pending if pending is not None else PendingRequests(self)
        self.pending.changed.connect(self._pending_changed)
        self.header = QLabel("No page open")
        self.header.setWordWrap(True)
        self.header.setStyleSheet("font-weight: bold; padding: 2px")
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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
        self.current: Pending | None = None  # the waiting page on show
        self.finished_flow: Pending | None = None  # the last page flow that ended here (its header says how)
        self.loaded_url = ""
        self.flows = 0
        self.device_id = ""  # whose flow is showing
        self.loads = 0  # pages loaded (scripts and tests follow multi-page flows with it)
        self._disposed = False
        self._advance = QTimer(self)
        self._advance.setSingleShot(True)
        self._advance.setInterval(NEXT_PAGE_AFTER_MS)
        self._advance.timeout.connect(self.show_next)

    # ------------------------------------------------------------------ which page shows

    def has_page(self) -> bool:
        """A waiting page is on show."""
        return self.current is not None and not self.current.done()

    def offer(self, p: Pending) -> None:
        """A new page waits: shown at once when the dock shows no waiting page, else it waits in the list."""
        if self.current is None or self.current.done():
            self.show_pending(p)

    def follow(self, device_id: str | None) -> None:
        """The selection moved to ``device_id``: show its waiting page, if it has one."""
        pages = [p for p in self.pending.waiting(device_id or "") if p.kind == "web"]
        if pages and self.current not in pages:
            self.show_pending(pages[0])

    def show_next(self) -> None:
        """After a flow ended: the next waiting page (of the same device first), if any."""
        if self.current is not None and not self.current.done():
            return
        pages = [p for p in self.pending.items if p.kind == "web" and not p.done()]
        if not pages:
            return
        same = [p for p in pages if p.device_id == self.device_id]
        self.show_pending((same or pages)[0])

    def show_pending(self, p: Pending) -> None:
        """Load ``p``'s page (where its user last was) for its device."""
        self._advance.stop()
        self.current = p
        self.finished_flow = None
        qurl = QUrl(p.url)
        self.page.allowed = origin(qurl)
        self.device_id = p.device_id
        self._set_header(f"{p.device_id} — page from {p.server or qurl.host()}", qurl.toString())
        self.notice.hide()
        self.loaded_url = ""
        self.flows += 1
        self.show()
        self.raise_()
        QTimer.singleShot(0, self._make_room)  # once the dock has its first layout
        self.view.load(qurl)

    def _set_header(self, first: str, second: str) -> None:
        self.header.setText(f"{first}\n{second}")
        self.header.setToolTip(f"{first}\n{second}")

    def _pending_changed(self) -> None:
        """A request came or went: the page on show may have been answered elsewhere (defaults, Stop)."""
        p = self.current
        if p is not None and p.done() and self.finished_flow is not p:
            self._ended_elsewhere(p)
        self.refresh_header()

    def _ended_elsewhere(self, p: Pending) -> None:
        answer = p.future.result() if not p.future.cancelled() else UserAnswer("cancelled")
        how = ("answered with defaults" if isinstance(answer, Defaults) else
               f"ended ({answer.outcome})")
        self.finished_flow = p
        self.view.stop()
        self.view.setHtml(f"<p style='font-family:sans-serif;color:#555'>{html.escape(p.device_id)}: "
                          f"the page was {html.escape(how)}.</p>")
        self.page.allowed = None
        self._set_header(f"{p.device_id} — page {how}", self._session_state(p))
        self._advance.start()

    def _session_state(self, p: Pending) -> str:
        end = self.pending.session_end(p.device_id, p.session_id)
        return f"session {p.session_id} {end}" if end else f"the session {p.session_id} goes on"

    def refresh_header(self) -> None:
        """A finished page says how its session went on, and that it ended once it has."""
        p = self.finished_flow
        if p is not None:
            first = self.header.text().split("\n")[0]
            self._set_header(first, self._session_state(p))

    def apply_events(self, events: Sequence[object]) -> None:
        self.pending.apply_events(events)
        if self.finished_flow is not None and any(isinstance(e, SessionEnded) for e in events):
            self.refresh_header()

    def _make_room(self) -> None:
        """A server page needs room to be usable: widen the dock on first show (the user may resize)."""
        window = self.parentWidget()
        if isinstance(window, QMainWindow) and not self.isFloating() and self.width() < MIN_PAGE_WIDTH:
            window.resizeDocks([self], [max(MIN_PAGE_WIDTH, window.width() // 3)], Qt.Orientation.Horizontal)

    def _resolve(self, outcome: UserOutcome) -> None:
        """End the page on show with ``outcome`` (the flow of its session gets it)."""
        p = self.current
        if p is not None and not p.done():
            self.finished_flow = p
            self.pending.resolve(p, UserAnswer(outcome))

    def _on_done(self, url: str) -> None:
        p = self.current
        if p is None or p.done():
            return
        self._resolve("ok")
        self._set_header(f"{p.device_id} — finished", self._session_state(p))
        self._advance.start()

    def _on_blocked(self, url: str) -> None:
        self.notice.setText(f"Blocked: the page tried to open {url}, which is not the DM server's own site.")
        self.notice.show()

    def _on_loaded(self, ok: bool) -> None:
        self.loaded_url = self.view.url().toString() if ok else ""
        self.loads += ok
        p = self.current
        if ok and p is not None and not p.done() and self.finished_flow is not p:
            p.url = self.loaded_url  # where the user is: picked again (or answered with defaults) from here

    def closeEvent(self, event: QCloseEvent) -> None:
        self._resolve("cancelled")
        emit(self.closed)
        super().closeEvent(event)

    def dispose(self) -> None:
        """Drop the page and view now: a web page alive when QApplication goes crashes (STACK.md)."""
        self.pending.cancel_all()
        self._advance.stop()
        if self._disposed:
            return
        self._disposed = True
        self.view.stop()
        self.page.deleteLater()
        self.view.deleteLater()


class WindowUi:
    """The window's answer to servers asking for the user: web pages in the dock, alerts as dialogs,
    each waiting in :class:`PendingRequests` until answered; "answer with defaults" hands the request
    to the headless answerer (:class:`HeadlessUi`), which goes on with it as a ``run`` would."""

    def __init__(self, dock: WebDock, parent: QWidget) -> None:
        self.dock = dock
        self.parent = parent
        self.pending = dock.pending
        self.dialogs: dict[Pending, AlertDialog] = {}
        self.pending.changed.connect(self._close_answered)

    def browse(self, session, action: OpenBrowser) -> UiFlow:
        """Wait (on the Qt loop) until the page flow ends in the dock, or the defaults answer it."""
        p = self.pending.add(session, action)
        self.dock.offer(p)
        answer = (yield Wait(lambda: self.pending.wait(p))).value
        if isinstance(answer, Defaults):  # on from the page the user last saw
            return (yield from HeadlessUi().browse(session, replace(action, url=p.url or action.url)))
        return answer

    def ask(self, session, action: AskUser) -> UiFlow:
        p = self.pending.add(session, action)
        maxdt = action.options.get("MAXDT", "")
        if maxdt.isdigit() and int(maxdt) > 0:  # the device's own display timeout runs from the request
            QTimer.singleShot(int(maxdt) * 1000, self.dock, lambda: self.pending.resolve(p, UserAnswer("timeout")))
        self.offer_alert(p)
        answer = (yield Wait(lambda: self.pending.wait(p))).value
        if isinstance(answer, Defaults):
            return HeadlessUi().answer(action)
        return answer

    # ------------------------------------------------------------------ alert dialogs, one at a time

    def offer_alert(self, p: Pending) -> None:
        if not any(d.isVisible() for d in self.dialogs.values()):
            self.open_dialog(p)

    def follow(self, device_id: str | None) -> None:
        """The selection moved: the device's waiting page in the dock, its waiting alert as a dialog."""
        self.dock.follow(device_id)
        alerts = [p for p in self.pending.waiting(device_id or "") if p.kind == "alert"]
        if alerts:
            self.open_dialog(alerts[0])

    def open_dialog(self, p: Pending) -> AlertDialog:
        dialog = self.dialogs.get(p)
        if dialog is None:
            assert isinstance(p.action, AskUser)
            dialog = self.dialogs[p] = AlertDialog(p.action, p.device_id, p.server, self.parent)
            dialog.answered.connect(lambda answer, p=p: self.pending.resolve(p, answer))
            dialog.open()  # not exec(): a nested event loop would stall the sessions
        dialog.raise_()
        return dialog

    def _close_answered(self) -> None:
        """Dialogs of requests answered elsewhere (defaults, Stop session) go; the next alert comes up."""
        for p, dialog in list(self.dialogs.items()):
            if p.done():
                del self.dialogs[p]
                dialog.answered_already = True
                dialog.close()
                dialog.deleteLater()
        if not self.dialogs:
            alerts = [p for p in self.pending.items if p.kind == "alert" and not p.done()]
            if alerts:
                QTimer.singleShot(0, self.dock, lambda p=alerts[0]: self._offer_if_waiting(p))

    def _offer_if_waiting(self, p: Pending) -> None:
        if not p.done():
            self.offer_alert(p)

    def apply_events(self, events: Sequence[object]) -> None:
        self.dock.apply_events(events)


class AlertDialog(QDialog):
    """One DM 1.2 user-interaction alert (1100 display … 1104 multiple choice), non-modal to the loop.

    The title names the device (short enough for a title bar); the first line inside says it in full
    with the server, and the dialog is at least as wide as its title so a window manager need not cut it.
    """

    answered = Signal(object)  # the UserAnswer, once

    KIND_TITLES = {"display": "Message", "confirm": "Confirm", "text": "Input", "single": "Choose one",
                   "multiple": "Choose"}

    def __init__(self, action: AskUser, device_id: str, server: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.action = action
        self.answered_already = False
        title = f"{device_id}: {self.KIND_TITLES.get(action.kind, 'Alert')}"
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        layout = QVBoxLayout(self)
        self.who = QLabel(f"<b>{html.escape(device_id)}</b> — server {html.escape(server or '?')} asks:")
        self.who.setTextFormat(Qt.TextFormat.RichText)
        self.who.setWordWrap(True)
        layout.addWidget(self.who)
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
        self.finished.connect(lambda _r: self._resolve(UserAnswer("cancelled")))
        # title bars show about as much as the text is wide, plus room for the buttons of the frame
        self.setMinimumWidth(max(MIN_ALERT_WIDTH, self.fontMetrics().horizontalAdvance(title) + TITLE_BAR_EXTRA))

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

    def _resolve(self, answer: UserAnswer) -> None:
        if not self.answered_already:
            self.answered_already = True
            emit(self.answered, answer)
