"""Which columns a table or tree shows: the user picks them from the header's context menu (kept
in QSettings per view), and a panel may hide one for a while (the traffic list drops Device while it
shows one device only). Both together decide; neither forgets the other's choice."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHeaderView, QMenu, QTableView, QTreeView

from ui.settings import settings


class ColumnChooser:
    """Header context menu with one checkable entry per column (at least one stays shown)."""

    def __init__(self, view: QTableView | QTreeView, name: str, *, remember: bool = True) -> None:
        self.view = view
        self.name = name  # QSettings key: columns/<name>
        self.remember = remember
        self.user_hidden: set[int] = set()
        self.auto_hidden: set[int] = set()
        if remember:
            stored = settings().value(f"columns/{name}") or []
            stored = [stored] if isinstance(stored, str) else stored
            self.user_hidden = {int(c) for c in stored if str(c).isdigit()}
        header = self.header
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._menu_at)
        self.apply()

    @property
    def header(self) -> QHeaderView:
        return self.view.header() if isinstance(self.view, QTreeView) else self.view.horizontalHeader()

    def titles(self) -> list[str]:
        model = self.view.model()
        return [str(model.headerData(c, Qt.Orientation.Horizontal)) for c in range(model.columnCount())]

    def menu(self) -> QMenu:
        """The menu the header shows (built fresh: columns a panel hides for now are greyed)."""
        menu = QMenu(self.view)
        menu.setTitle("Columns")
        shown = [c for c in range(len(self.titles())) if c not in self.user_hidden]
        for col, title in enumerate(self.titles()):
            action = QAction(title or "(direction)", menu)
            action.setCheckable(True)
            action.setChecked(col not in self.user_hidden)
            action.setEnabled(col not in self.auto_hidden and not (len(shown) == 1 and col in shown))
            action.toggled.connect(lambda on, c=col: self.set_shown(c, on))
            menu.addAction(action)
        return menu

    def _menu_at(self, pos: QPoint) -> None:
        self.menu().exec(self.header.mapToGlobal(pos))

    def set_shown(self, column: int, shown: bool) -> None:
        """The user's choice for ``column``, kept between runs."""
        (self.user_hidden.discard if shown else self.user_hidden.add)(column)
        if self.remember:
            settings().setValue(f"columns/{self.name}", [str(c) for c in sorted(self.user_hidden)])
        self.apply()

    def set_auto_hidden(self, column: int, hidden: bool) -> None:
        """A panel's own choice for now (not remembered)."""
        (self.auto_hidden.add if hidden else self.auto_hidden.discard)(column)
        self.apply()

    def apply(self) -> None:
        for col in range(self.view.model().columnCount()):
            self.view.setColumnHidden(col, col in self.user_hidden or col in self.auto_hidden)
