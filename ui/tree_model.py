"""A lazy item model over one device's management tree, with change flashes and value history.

Why lazy: a device tree may hold 100,000 nodes; only the rows of expanded nodes are ever built
(``canFetchMore``/``fetchMore``), so selecting any device shows its tree at once. Changes arrive in
batches (see :mod:`ui.batcher`); the affected rows update and flash, the way MQTT Explorer shows
live topics, and each node keeps a short history of its values for the tooltip. While a leaf flashes,
:data:`TrailRole` gives the values it passed through just before (a FUMO ``State`` going 30, 40, 50,
60 within one batch would otherwise show 60 only; :mod:`ui.value_trail` paints them). Secret leaves
(passwords, keys: :mod:`emulator.util.masking` decides) show as the mask, values and history alike,
until ``reveal`` is set.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QColor, QFont

from emulator.events import TreeChanged
from emulator.tree import Tree
from emulator.tree.errors import TreeError
from emulator.tree.tree import NodeInfo, TreeEvent, format_tstamp
from emulator.util.masking import MASK, is_secret_name, is_secret_value
from ui.signals import emit

COLUMNS = ("Name", "Value", "Format", "ACL")
FLASH_SECONDS = 1.5
FLASH_TICK_MS = 60
FLASH_COLOR = QColor(255, 196, 64)
HISTORY = 64  # values kept per changed leaf (the value-history chart draws them)
TOOLTIP_CHANGES = 8
VALUE_CHARS = 200
# A batch with more structural changes than this rebuilds the visible rows instead of patching them.
RESET_THRESHOLD = 2000

TRAIL = 4  # earlier values a flashing leaf shows beside its value
NodeRole = Qt.ItemDataRole.UserRole + 1
TrailRole = Qt.ItemDataRole.UserRole + 2


@dataclass(eq=False, slots=True)
class _Item:
    path: str
    parent: _Item | None
    info: NodeInfo | None
    row: int = 0
    children: list[_Item] | None = None  # None: not fetched yet
    flash_at: float = 0.0

    @property
    def interior(self) -> bool:
        return self.info is None or self.info.children is not None


@dataclass(slots=True)
class Change:
    ts: float
    kind: str
    old: object
    new: object
    by: str | None


def show_value(value: object, limit: int = VALUE_CHARS) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes> {value[:24].hex(' ')}"
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(slots=True)
class _DeviceHistory:
    by_path: dict[str, deque[Change]] = field(default_factory=dict)


class TreeModel(QAbstractItemModel):
    """Columns name, value, format, ACL; ``NodeRole`` gives a row's :class:`NodeInfo`."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tree: Tree | None = None
        self.device_id: str | None = None
        self._root: _Item | None = None
        self._items: dict[str, _Item] = {}
        self._history: dict[str, _DeviceHistory] = {}
        self._flashing: set[_Item] = set()
        self.created_items = 0  # rows ever built: how tests see the laziness
        self.reveal = False  # secret leaves in clear
        self._flash_timer = QTimer(self)
        self._flash_timer.setInterval(FLASH_TICK_MS)
        self._flash_timer.timeout.connect(self._fade)

    # ------------------------------------------------------------------ which tree

    def set_tree(self, device_id: str | None, tree: Tree | None) -> None:
        self.beginResetModel()
        self.device_id, self.tree = device_id, tree
        self._items.clear()
        self._flashing.clear()
        self._root = None
        if tree is not None:
            self._root = self._make(".", None)
        self.endResetModel()

    def set_reveal(self, reveal: bool) -> None:
        """Show secret leaves in clear (True) or masked; the visible rows repaint."""
        if reveal == self.reveal:
            return
        self.reveal = reveal
        for item in list(self._items.values()):
            info = item.info
            if info is not None and info.children is None and (is_secret_name(info.name) or is_secret_value(info.value)):
                idx = self._index_of(item, 1)
                if idx.isValid():
                    emit(self.dataChanged, idx, idx)

    def shown(self, name: str, value: object, limit: int = VALUE_CHARS) -> str:
        """A value as the rows and tooltips show it: masked when the leaf is secret and not revealed."""
        if not self.reveal and value is not None and (is_secret_name(name) or is_secret_value(value)):
            return MASK
        return show_value(value, limit)

    def fetched_paths(self) -> list[str]:
        """Paths of the interior nodes whose rows are built (the only ones a view can have expanded)."""
        return [p for p, item in self._items.items() if item.children]

    def _make(self, path: str, parent: _Item | None) -> _Item:
        assert self.tree is not None
        try:
            info = self.tree.info(path)
        except TreeError:
            info = None
        item = _Item(path, parent, info)
        self._items[path] = item
        self.created_items += 1
        return item

    def index_for(self, path: str) -> QModelIndex:
        """The index of a node already built (expanded to), or an invalid index."""
        item = self._items.get(path)
        if item is None or item.parent is None or item.parent.children is None:
            return QModelIndex()
        return self.createIndex(item.row, 0, item)

    def ensure_path(self, path: str) -> QModelIndex:
        """Builds the rows down to ``path`` (for "reveal this node"); invalid index if it is not there."""
        if self._root is None:
            return QModelIndex()
        segs = [s for s in path.removeprefix("./").split("/") if s and s != "."]
        item = self._root
        for i in range(len(segs)):
            if item.children is None:
                self.fetchMore(self._index_of(item))
            want = "./" + "/".join(segs[: i + 1])
            nxt = next((c for c in item.children or () if c.path == want), None)
            if nxt is None:
                return QModelIndex()
            item = nxt
        return self._index_of(item)

    def _index_of(self, item: _Item, column: int = 0) -> QModelIndex:
        if item.parent is None or item.parent.children is None:
            return QModelIndex()
        return self.createIndex(item.row, column, item)

    def _item(self, index: QModelIndex | QPersistentModelIndex) -> _Item | None:
        return index.internalPointer() if index.isValid() else self._root

    # ------------------------------------------------------------------ the model interface

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.column() > 0:
            return 0
        item = self._item(parent)
        return len(item.children) if item is not None and item.children is not None else 0

    def hasChildren(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: B008
        item = self._item(parent)
        if item is None:
            return False
        if item.children is not None:
            return bool(item.children)
        return bool(item.info and item.info.children)

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> bool:
        item = self._item(parent)
        return item is not None and item.children is None and item.interior

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> None:
        item = self._item(parent)
        if item is None or item.children is not None or self.tree is None:
            return
        try:
            names = self.tree.children(item.path)
        except TreeError:
            names = []
        base = "." if item.path == "." else item.path
        if not names:
            item.children = []
            return
        self.beginInsertRows(parent, 0, len(names) - 1)
        item.children = [self._make(f"{base}/{name}", item) for name in names]
        for row, child in enumerate(item.children):
            child.row = row
        self.endInsertRows()

    def index(self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        item = self._item(parent)
        if item is None or item.children is None or not 0 <= row < len(item.children):
            return QModelIndex()
        return self.createIndex(row, column, item.children[row])

    @overload
    def parent(self) -> QObject | None: ...

    @overload
    def parent(self, child: QModelIndex | QPersistentModelIndex) -> QModelIndex: ...

    def parent(self, child: QModelIndex | QPersistentModelIndex | None = None) -> QObject | QModelIndex | None:
        """The item model's parent of ``child``; with no argument, QObject's parent (the overload Qt has)."""
        if child is None:
            return super().parent()
        index = child
        if not index.isValid():
            return QModelIndex()
        item: _Item = index.internalPointer()
        if item.parent is None or item.parent is self._root:
            return QModelIndex()
        return self._index_of(item.parent)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        item: _Item = index.internalPointer()
        info = item.info
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if info is None:
                return item.path.rsplit("/", 1)[-1] if col == 0 else ""
            if col == 0:
                return info.name
            if col == 1:
                return "" if info.children is not None else self.shown(info.name, info.value)
            if col == 2:
                return info.format
            return info.acl
        if role == Qt.ItemDataRole.BackgroundRole and item.flash_at:
            left = 1.0 - (time.monotonic() - item.flash_at) / FLASH_SECONDS
            if left > 0:
                color = QColor(FLASH_COLOR)
                color.setAlphaF(max(0.0, min(1.0, left)))
                return color
            return None
        if role == Qt.ItemDataRole.FontRole and col == 0 and info is not None and info.children is not None:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(item.path)
        if role == TrailRole:
            flashing = item.flash_at and time.monotonic() - item.flash_at < FLASH_SECONDS
            return self.trail(item.path) if flashing and col == 1 and info is not None and info.children is None \
                else []
        if role == NodeRole:
            return info
        return None

    # ------------------------------------------------------------------ history and tooltips

    def history(self, path: str, device_id: str | None = None) -> list[Change]:
        dev = self._history.get(device_id or self.device_id or "")
        return list(dev.by_path.get(path, ())) if dev else []

    def changed_paths(self, device_id: str | None = None) -> list[str]:
        """Paths with recorded changes for a device (the current one by default)."""
        dev = self._history.get(device_id or self.device_id or "")
        return list(dev.by_path) if dev else []

    def trail(self, path: str) -> list[str]:
        """The values a leaf had just before its latest change (oldest first, at most :data:`TRAIL`):
        the changes that came within :data:`FLASH_SECONDS` of the latest one, as shown (masked)."""
        changes = [c for c in self.history(path) if c.kind == "replace"]
        if not changes:
            return []
        since = changes[-1].ts - FLASH_SECONDS
        name = path.rsplit("/", 1)[-1]
        return [self.shown(name, c.old, 40) for c in changes if c.ts >= since][-TRAIL:]

    def tooltip(self, path: str) -> str:
        item = self._items.get(path)
        info = item.info if item else None
        lines = [path]
        if info is not None:
            lines.append(f"Format {info.format}  Type {info.type or '-'}  VerNo {info.verno}")
            if info.title:
                lines.append(f"Title: {info.title}")
            if info.tstamp:
                lines.append(f"TStamp {format_tstamp(info.tstamp)}")
            lines.append(f"ACL {info.acl or '(inherited)'}")
        changes = self.history(path)
        name = path.rsplit("/", 1)[-1]
        if changes:
            lines.append("Recent changes:")
            for c in reversed(changes[-TOOLTIP_CHANGES:]):
                stamp = time.strftime("%H:%M:%S", time.localtime(c.ts))
                who = c.by or "device"
                if c.kind == "replace":
                    lines.append(f"  {stamp} {self.shown(name, c.old, 40)!r} → {self.shown(name, c.new, 40)!r} by {who}")
                else:
                    lines.append(f"  {stamp} {c.kind} by {who}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ live changes

    def apply_events(self, events: Sequence[object]) -> None:
        """Take a batch from the batcher: record history for every device, patch rows for ours."""
        now = time.time()
        mine: list[TreeEvent] = []
        for ev in events:
            if not isinstance(ev, TreeChanged):
                continue
            ch = ev.change
            hist = self._history.setdefault(ev.device_id, _DeviceHistory())
            dq = hist.by_path.get(ch.path)
            if dq is None:
                dq = hist.by_path[ch.path] = deque(maxlen=HISTORY)
            dq.append(Change(now, ch.kind, ch.old, ch.new, ch.by))
            if ev.device_id == self.device_id:
                mine.append(ch)
        if not mine or self.tree is None:
            return
        structural = [c for c in mine if c.kind in ("add", "delete", "rename")]
        if len(structural) > RESET_THRESHOLD:
            self._rebuild_keep_expanded()
            return
        flash = time.monotonic()
        pending: dict[str, None] = {}  # value changes, once per path per batch
        for ch in mine:
            if ch.kind in ("add", "delete", "rename"):
                for path in pending:
                    self._changed(path, flash)
                pending.clear()
            if ch.kind == "add":
                self._added(ch.path, flash)
            elif ch.kind in ("delete", "rename"):
                self._deleted(ch.path)
                if ch.kind == "rename":
                    self._refresh_parent_children(ch.path)
            else:
                pending[ch.path] = None
        for path in pending:
            self._changed(path, flash)

    def _changed(self, path: str, flash: float) -> None:
        item = self._items.get(path)
        if item is None or self.tree is None:
            return
        try:
            item.info = self.tree.info(path)
        except TreeError:
            return
        self._flash(item, flash)

    def _flash(self, item: _Item, at: float) -> None:
        item.flash_at = at
        self._flashing.add(item)
        if not self._flash_timer.isActive():
            self._flash_timer.start()
        first = self._index_of(item, 0)
        if first.isValid():
            emit(self.dataChanged, first, self._index_of(item, len(COLUMNS) - 1))

    def _added(self, path: str, flash: float) -> None:
        if path in self._items:
            self._changed(path, flash)
            return
        parent_path = path.rsplit("/", 1)[0] if path.count("/") > 1 else "."
        parent = self._items.get(parent_path)
        if parent is None or self.tree is None:
            return
        if parent.children is None:
            # not expanded: only the expander may need to appear
            try:
                parent.info = self.tree.info(parent_path)
            except TreeError:
                return
            idx = self._index_of(parent)
            if idx.isValid():
                emit(self.dataChanged, idx, idx)
            return
        if not self.tree.exists(path):
            return
        siblings = parent.children
        row = len(siblings)
        names = self.tree.children(parent_path)
        name = path.rsplit("/", 1)[-1]
        if names and names[-1] != name:  # put back among its siblings (an undone Delete): the tree's order
            built = {c.path.rsplit("/", 1)[-1] for c in siblings}
            before = names[: names.index(name)] if name in names else names
            row = sum(1 for n in before if n in built)
        self.beginInsertRows(self._index_of(parent), row, row)
        item = self._make(path, parent)
        siblings.insert(row, item)
        for r in range(row, len(siblings)):
            siblings[r].row = r
        self.endInsertRows()
        self._flash(item, flash)

    def _deleted(self, path: str) -> None:
        item = self._items.get(path)
        if item is None or item.parent is None or item.parent.children is None:
            return
        parent = item.parent
        siblings = item.parent.children
        row = item.row
        self.beginRemoveRows(self._index_of(parent), row, row)
        del siblings[row]
        for later in siblings[row:]:
            later.row -= 1
        self.endRemoveRows()
        prefix = path + "/"
        for p in [p for p in self._items if p == path or p.startswith(prefix)]:
            gone = self._items.pop(p)
            self._flashing.discard(gone)

    def _refresh_parent_children(self, path: str) -> None:
        parent_path = path.rsplit("/", 1)[0] if path.count("/") > 1 else "."
        parent = self._items.get(parent_path)
        if parent is None or parent.children is None or self.tree is None:
            return
        known = {c.path for c in parent.children}
        for name in self.tree.children(parent_path):
            p = f"{'.' if parent_path == '.' else parent_path}/{name}"
            if p not in known:
                self._added(p, time.monotonic())

    def _rebuild_keep_expanded(self) -> None:
        expanded = [p for p, it in self._items.items() if it.children is not None]
        self.set_tree(self.device_id, self.tree)
        for p in sorted(expanded, key=lambda s: s.count("/")):
            idx = self.ensure_path(p)
            if idx.isValid() or p == ".":
                self.fetchMore(idx)

    def _fade(self) -> None:
        now = time.monotonic()
        for item in list(self._flashing):
            if now - item.flash_at >= FLASH_SECONDS:
                item.flash_at = 0.0
                self._flashing.discard(item)
            idx = self._index_of(item, 0)
            if idx.isValid():
                emit(self.dataChanged, idx, self._index_of(item, len(COLUMNS) - 1),
                                      [Qt.ItemDataRole.BackgroundRole])
        if not self._flashing:
            self._flash_timer.stop()
