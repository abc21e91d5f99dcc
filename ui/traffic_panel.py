"""The traffic log: every message of every session, searchable, with a decoded detail pane.

Saved logs are JSON lines (one message per line, body in base64) so they open again here and are
easy to read with any tool.
"""

from __future__ import annotations

import enum
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QFontDatabase, QTextOption
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from emulator.errors import FileFormatError
from emulator.events import MessageLogged, SessionEnded
from emulator.protocol.traffic import describe, pair_statuses, summarise_commands
from emulator.store.traffic_files import read_json_lines, to_json_line
from ui.columns import ColumnChooser
from ui.highlight import MessageHighlighter
from ui.traffic_failures import FAILED_MARK, FailedExchange, FailureTracker, Row

MAX_WARNED_SESSIONS = 10_000
"""Sessions whose server warnings the detail pane keeps (the oldest are forgotten first)."""
COLUMNS = ("", "Time", "Device", "Session", "Size", "RTT ms", "Summary")
MAX_ROWS = 100_000
ALL_SESSIONS = "all sessions"
MessageRole = Qt.ItemDataRole.UserRole + 1
DETAIL_WRAP = 56  # columns of a failure's reason in the detail pane
FAILED_BACKGROUND = QColor(253, 226, 228)
FAILED_FOREGROUND = QColor(150, 0, 24)
DEVICE_COLUMN = 2
SUMMARY_COLUMN = 6


def row_summary(m: Row) -> str:
    """What the list says of a message: a server's message names its commands ("GET ×2, HGET" /
    "Get, Replace, Atomic"), as the device's own messages name their statuses; an HTTP error, a
    failed exchange or a body that is no DM message keeps the summary it was logged with."""
    if m.direction == "in" and m.summary in ("", "HTTP 200"):
        commands = summarise_commands(m.content_type, m.body)
        if commands:
            return commands
    return m.summary or m.content_type


class ElideRight(QStyledItemDelegate):
    """Cut a cell's text at its end (the view cuts ids in the middle)."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


def _wrapped(text: str) -> str:
    """A reason as indented lines short enough for the detail pane (URLs and errors are long)."""
    return textwrap.fill(text, DETAIL_WRAP, initial_indent="  ", subsequent_indent="  ",
                         break_long_words=True, break_on_hyphens=False)


class TrafficModel(QAbstractTableModel):
    """The rows: messages, and failed exchanges (:mod:`ui.traffic_failures`) in red with their reason."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.messages: list[Row] = []
        self.reasons: list[str] = []  # in step with messages: why that exchange failed ("" when it did not)
        self._summaries: list[str | None] = []  # in step with messages: row_summary, made when first shown

    def summary(self, row: int) -> str:
        text = self._summaries[row]
        if text is None:
            text = self._summaries[row] = row_summary(self.messages[row])
        return text

    def append(self, messages: Sequence[Row], reasons: Sequence[str] | None = None) -> None:
        if not messages:
            return
        reasons = list(reasons) if reasons is not None else [""] * len(messages)
        overflow = len(self.messages) + len(messages) - MAX_ROWS
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, min(overflow, len(self.messages)) - 1)
            del self.messages[:overflow]
            del self.reasons[:overflow]
            del self._summaries[:overflow]
            self.endRemoveRows()
            messages, reasons = messages[-MAX_ROWS:], reasons[-MAX_ROWS:]
        first = len(self.messages)
        self.beginInsertRows(QModelIndex(), first, first + len(messages) - 1)
        self.messages.extend(messages)
        self.reasons.extend(reasons)
        self._summaries.extend([None] * len(messages))
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.messages.clear()
        self.reasons.clear()
        self._summaries.clear()
        self.endResetModel()

    def failures(self) -> list[tuple[Row, str]]:
        """The failed rows and their reasons."""
        return [(m, r) for m, r in zip(self.messages, self.reasons, strict=True) if r]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.messages)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        m = self.messages[index.row()]
        col = index.column()
        failed = self.reasons[index.row()]
        if failed and role == Qt.ItemDataRole.BackgroundRole:
            return FAILED_BACKGROUND
        if failed and role == Qt.ItemDataRole.ForegroundRole:
            return FAILED_FOREGROUND
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return FAILED_MARK if isinstance(m, FailedExchange) else "→" if m.direction == "out" else "←"
            if col == 1:
                return time.strftime("%H:%M:%S", time.localtime(m.ts)) + f".{int(m.ts * 1000) % 1000:03d}"
            if col == 2:
                return m.device_id
            if col == 3:
                return m.session_id
            if col == 4:
                return "" if isinstance(m, FailedExchange) else len(m.body)
            if col == 5:
                return "" if m.rtt_ms is None else f"{m.rtt_ms:.1f}"
            return self.summary(index.row())
        if role == Qt.ItemDataRole.ForegroundRole and col == 0:
            return QColor(30, 110, 200) if m.direction == "out" else QColor(20, 140, 60)
        if role == Qt.ItemDataRole.ToolTipRole:
            if isinstance(m, FailedExchange):
                return f"failed: {failed}\n{m.url}".rstrip()
            tip = f"{'device → server' if m.direction == 'out' else 'server → device'}\n{m.url}\n{m.content_type}"
            return f"failed: {failed}\n{tip}" if failed else tip
        if role == MessageRole:
            return m
        return None


class _Keep(enum.Enum):
    """The default of :meth:`TrafficFilter.set`: leave this filter as it is (None means "all")."""

    KEEP = enum.auto()


class TrafficFilter(QSortFilterProxyModel):
    """Device (the selected one, or all), session and free text."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.device_id: str | None = None
        self.session_id: str | None = None
        self.text = ""

    def set(self, *, device_id: str | None | _Keep = _Keep.KEEP, session_id: str | None | _Keep = _Keep.KEEP,
            text: str | _Keep = _Keep.KEEP) -> None:
        """Change the filters given; the others stay as they are."""
        begin = getattr(self, "beginFilterChange", None)  # Qt >= 6.9; invalidateFilter is deprecated
        if begin is not None:
            begin()
        if not isinstance(device_id, _Keep):
            self.device_id = device_id
        if not isinstance(session_id, _Keep):
            self.session_id = session_id
        if not isinstance(text, _Keep):
            self.text = text.lower()
        if begin is not None:
            self.endFilterChange()
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:
        source = self.sourceModel()
        if not isinstance(source, TrafficModel):
            return True
        m = source.messages[row]
        if self.device_id and m.device_id != self.device_id:
            return False
        if self.session_id and m.session_id != self.session_id:
            return False
        if self.text:
            hay = f"{source.summary(row)} {m.url} {m.content_type} {m.device_id} {m.session_id}".lower()
            if self.text not in hay and self.text.encode("utf-8", "ignore") not in m.body.lower():
                return False
        return True


class TrafficPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = TrafficModel(self)
        self.proxy = TrafficFilter(self)
        self.proxy.setSourceModel(self.model)
        self._sessions: set[str] = set()
        self._warnings: dict[tuple[str, str], tuple[str, ...]] = {}  # (device, session) -> server warnings
        self.failures = FailureTracker()  # failed exchanges become rows (ui.traffic_failures)
        self._wrap_before: QPlainTextEdit.LineWrapMode | None = None  # the pane's wrapping while a failure shows

        self.search = QLineEdit(placeholderText="Search messages (summary, URL, body text)")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(120)
        self.search.textChanged.connect(lambda t: self.proxy.set(text=t))
        self.only_selected = QCheckBox("This device")
        self.only_selected.setToolTip("Only the messages of the device selected in the fleet")
        self.only_selected.setChecked(True)
        self.only_selected.toggled.connect(lambda _: self._apply_device())
        self.session_box = QComboBox()
        self.session_box.addItem(ALL_SESSIONS)
        self.session_box.currentTextChanged.connect(
            lambda t: self.proxy.set(session_id=None if t == ALL_SESSIONS else t))
        save_btn = QPushButton("Save…")
        save_btn.clicked.connect(self._save_dialog)
        open_btn = QPushButton("Open…")
        open_btn.clicked.connect(self._open_dialog)
        self.reveal_box = QCheckBox("Save secrets")
        self.reveal_box.setToolTip("Save credentials and secret values in clear; by default a saved log "
                                   "shows them as ********")
        clear_btn = QPushButton("Clear")
        clear_btn.clicked.connect(self.clear)
        self.clear_button = clear_btn  # the window routes it through its undo stack (ui.safety)

        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(20)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # ids differ at their ends
        self.view.setWordWrap(False)
        for col, width in enumerate((22, 90, 100, 54, 44, 52)):
            self.view.setColumnWidth(col, width)
        self.view.setItemDelegateForColumn(SUMMARY_COLUMN, ElideRight(self.view))  # a summary reads from the left
        self.columns = ColumnChooser(self.view, "traffic")
        self.view.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.show_detail(cur))

        self.detail = QPlainTextEdit(readOnly=True)
        self.detail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.detail.setPlaceholderText("Select a message to see it decoded")
        self.detail.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.detail.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)  # long URIs too
        self.highlighter = MessageHighlighter(self.detail.document())
        self.message = QLabel("")

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.only_selected)
        top.addWidget(self.session_box)
        bottom = QHBoxLayout()
        bottom.addWidget(self.message, 1)
        bottom.addWidget(open_btn)
        bottom.addWidget(self.reveal_box)
        bottom.addWidget(save_btn)
        bottom.addWidget(clear_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)
        self._device: str | None = None
        self._apply_device()

    # ------------------------------------------------------------------ feeding and filtering

    def apply_events(self, events: Sequence[object]) -> None:
        rows = self.failures.feed(events)
        self.add_messages([m for m, _ in rows], [r for _, r in rows])
        for e in events:
            if isinstance(e, SessionEnded) and e.warnings:
                self._warnings[(e.device_id, e.session_id)] = e.warnings
                while len(self._warnings) > MAX_WARNED_SESSIONS:
                    self._warnings.pop(next(iter(self._warnings)))

    def add_not_run(self, device_id: str, why: str) -> None:
        """A session that could not run: a red row too (it has no exchange of its own)."""
        row, reason = self.failures.not_run(device_id, why)
        self.add_messages([row], [reason])

    def add_messages(self, msgs: Sequence[Row], reasons: Sequence[str] | None = None) -> None:
        follow = self.view.verticalScrollBar().value() == self.view.verticalScrollBar().maximum()
        self.model.append(msgs, reasons)
        for m in msgs:
            if m.session_id not in self._sessions:
                self._sessions.add(m.session_id)
                self.session_box.addItem(m.session_id)
        if follow and msgs:
            self.view.scrollToBottom()

    def set_device(self, device_id: str | None) -> None:
        self._device = device_id
        self._apply_device()

    def _apply_device(self) -> None:
        only = self.only_selected.isChecked()
        self.proxy.set(device_id=self._device if only else None)
        self.columns.set_auto_hidden(DEVICE_COLUMN, only)  # one device: its id on every row says nothing

    def clear(self) -> None:
        self.model.clear()
        self.failures.clear()
        self._sessions.clear()
        self.session_box.clear()
        self.session_box.addItem(ALL_SESSIONS)
        self.detail.clear()

    def show_detail(self, proxy_index: QModelIndex) -> None:
        if not proxy_index.isValid():
            self.detail.clear()
            return
        m: Row = proxy_index.siblingAtColumn(0).data(MessageRole)
        reason = self.model.reasons[self.proxy.mapToSource(proxy_index).row()]
        ended = self.failures.outcomes.get((m.device_id, m.session_id), "")
        if isinstance(m, FailedExchange):  # a few lines of words: wrapped to the pane, whatever its width
            if self._wrap_before is None:
                self._wrap_before = self.detail.lineWrapMode()
            self.detail.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
            lines = [f"{FAILED_MARK} FAILED   {m.device_id}   session {m.session_id}",
                     f"{m.method} {m.url}".strip(), "", "Reason:", f"  {reason}"]
            if m.rtt_ms is not None:
                lines.append(f"  (after {m.rtt_ms:.1f} ms)")
            if ended and not reason.startswith(f"session {m.session_id} "):
                lines += ["", f"Session {m.session_id} ended:", f"  {ended}"]
            self.detail.setPlainText("\n".join(lines))
            return
        if self._wrap_before is not None:  # a message again: as the pane shows messages
            self.detail.setLineWrapMode(self._wrap_before)
            self._wrap_before = None
        arrow = "device → server" if m.direction == "out" else "server → device"
        head = [f"{arrow}   {m.device_id}   session {m.session_id}", f"{m.url}", f"{m.content_type}, "
                f"{len(m.body)} bytes" + ("" if m.rtt_ms is None else f", RTT {m.rtt_ms:.1f} ms")]
        if reason:
            head = [f"{FAILED_MARK} FAILED:", _wrapped(reason)] + (
                [f"Session {m.session_id} ended:", _wrapped(ended)] if ended else []) + [""] + head
        session = [x for x in self.model.messages if isinstance(x, MessageLogged)
                   and x.session_id == m.session_id and x.device_id == m.device_id]
        pairs = pair_statuses(session, session.index(m)) if m in session else []
        if pairs:
            head += ["", "Statuses and the commands they answer:", *(f"  {line}" for line in pairs)]
        warnings = self._warnings.get((m.device_id, m.session_id), ())
        if warnings:
            head += ["", "Server warnings of this session (tolerated; run --strict fails on them):",
                     *(f"  {w}" for w in warnings)]
        self.detail.setPlainText("\n".join(head) + "\n\n" + describe(m.content_type, m.body))

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path, *, reveal: bool | None = None) -> int:
        """Write the log; secrets masked unless ``reveal`` (None: the "Save secrets" box, off by default)."""
        if reveal is None:
            reveal = self.reveal_box.isChecked()
        with open(path, "w", encoding="utf-8") as f:
            messages = [m for m in self.model.messages if isinstance(m, MessageLogged)]  # not failure rows
            for m in messages:
                f.write(to_json_line(m, reveal=reveal) + "\n")
        return len(messages)

    def load(self, path: str | Path) -> int:
        msgs = read_json_lines(path)
        self.add_messages(msgs)
        return len(msgs)

    def _save_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save traffic", "traffic.jsonl", "JSON lines (*.jsonl)")
        if name:
            try:
                n = self.save(name)
            except OSError as exc:
                self.message.setText(f"could not save {name}: {exc}")
                return
            self.message.setText(f"saved {n} messages to {name}")

    def _open_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open traffic", "", "JSON lines (*.jsonl);;All files (*)")
        if name:
            try:
                n = self.load(name)
            except (OSError, FileFormatError) as exc:
                self.message.setText(f"could not open {name}: {exc}")
                return
            self.message.setText(f"opened {n} messages from {name}")
