"""The event log dock: every message the status bar showed, with its time, kept for the session.

Why: a status bar message is cut to the bar's width and goes after a few seconds, and ten failures in
a row show only the last. The window's status bar itself (:class:`LoggedStatusBar`) reports every
message shown, whoever shows it (panels, dialogs, menu actions), so nothing has to remember to log;
the same message shown again counts up (×N). Warnings (messages that start with ⚠) show in red. The
bar's tooltip holds the whole current message too. Menu status tips (hovering) are not logged.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from ui.signals import emit

MAX_ENTRIES = 10_000
"""Entries kept (the oldest go first)."""
WARNING_MARK = "⚠"
WARNING_COLOR = QColor(176, 0, 32)


class EventLog(QWidget):
    """A list of timestamped messages, newest last; a message repeated at once counts up (×N)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(False)
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.count_label = QLabel("")
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        bottom.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list, 1)
        layout.addLayout(bottom)
        self._last = ""
        self._repeats = 1
        self.warnings = 0

    def add(self, text: str, when: float | None = None) -> None:
        """Log ``text`` (empty text is the bar clearing: not logged)."""
        text = text.strip()
        if not text:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(time.time() if when is None else when))
        follow = self.list.verticalScrollBar().value() == self.list.verticalScrollBar().maximum()
        if text == self._last and self.list.count():
            self._repeats += 1
            item = self.list.item(self.list.count() - 1)
            item.setText(f"{stamp}  {text}  (×{self._repeats})")
        else:
            self._last, self._repeats = text, 1
            item = QListWidgetItem(f"{stamp}  {text}")
            item.setToolTip(text)
            if text.startswith(WARNING_MARK):
                item.setForeground(WARNING_COLOR)
                self.warnings += 1
            self.list.addItem(item)
            while self.list.count() > MAX_ENTRIES:
                self.list.takeItem(0)
        self.count_label.setText(f"{self.list.count()} message(s), {self.warnings} warning(s)")
        if follow:
            self.list.scrollToBottom()

    def texts(self) -> list[str]:
        """The entries as shown (time, message, repeats)."""
        return [self.list.item(i).text() for i in range(self.list.count())]

    def clear(self) -> None:
        self.list.clear()
        self._last, self._repeats, self.warnings = "", 1, 0
        self.count_label.setText("")


class LoggedStatusBar(QStatusBar):
    """A status bar that reports every message shown (``shown``), also one equal to the last."""

    shown = Signal(str)

    def showMessage(self, text: str, /, timeout: int | None = 0) -> None:  # noqa: N802 (Qt's name)
        super().showMessage(text, timeout or 0)
        self.setToolTip(text.strip() or IDLE_TIP)
        emit(self.shown, text)


IDLE_TIP = "Earlier messages: View › Event log"


class EventLogDock(QDockWidget):
    """The log as a dock of ``window``, fed by its status bar."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__("Event log", window)
        self.setObjectName("event-log-dock")
        self.log = EventLog()
        self.setWidget(self.log)

    def follow(self, window: QMainWindow) -> None:
        """Give ``window`` a :class:`LoggedStatusBar` (before anything is put in its bar) and log it;
        a window whose bar is in use already is followed by its ``messageChanged`` (repeats not counted)."""
        existing = window.findChild(QStatusBar)
        if isinstance(existing, LoggedStatusBar):
            existing.shown.connect(self.log.add)
        elif existing is None:
            bar = LoggedStatusBar(window)
            bar.setToolTip(IDLE_TIP)
            window.setStatusBar(bar)
            bar.shown.connect(self.log.add)
        else:
            existing.messageChanged.connect(self.log.add)
