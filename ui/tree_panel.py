"""The selected device's tree: browse lazily, edit a leaf, add/delete nodes, Exec, export TNDS.

Every edit goes through the tree's own operations (as the device itself), so the change is checked
and reported like any other; refusals show the DM status and message next to the tree.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from emulator.errors import EmulatorError
from emulator.tree import Tree
from emulator.tree.tree import NodeInfo
from ui.tree_model import NodeRole, TreeModel

FORMATS = ("chr", "int", "bool", "node", "b64", "bin", "float", "date", "time", "xml", "null")


class TreePanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = TreeModel(self)
        self.title = QLabel("No device selected")
        self.title.setStyleSheet("font-weight: bold")
        self.view = QTreeView()
        self.view.setModel(self.model)
        self.view.setUniformRowHeights(True)  # keeps huge expanded lists fast
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.doubleClicked.connect(self._double_clicked)
        self.view.header().resizeSection(0, 220)
        self.view.header().resizeSection(1, 220)
        self.view.selectionModel().currentChanged.connect(lambda *_: self._show_path())

        self.path_label = QLabel("")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.value_edit = QLineEdit(placeholderText="value of the selected leaf")
        self.value_edit.returnPressed.connect(self.edit_selected)
        set_btn = QPushButton("Set")
        set_btn.setToolTip("Replace the selected leaf's value (as the device itself)")
        set_btn.clicked.connect(self.edit_selected)
        add_btn = QPushButton("Add…")
        add_btn.clicked.connect(self._add_dialog)
        del_btn = QPushButton("Delete")
        del_btn.clicked.connect(self.delete_selected)
        exec_btn = QPushButton("Exec…")
        exec_btn.clicked.connect(self._exec_dialog)
        export_btn = QPushButton("Export TNDS…")
        export_btn.clicked.connect(self._export_dialog)
        self.message = QLabel("")
        self.message.setWordWrap(True)

        edit_row = QHBoxLayout()
        edit_row.addWidget(self.value_edit, 1)
        edit_row.addWidget(set_btn)
        buttons = QHBoxLayout()
        for b in (add_btn, del_btn, exec_btn, export_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.path_label)
        layout.addLayout(edit_row)
        layout.addLayout(buttons)
        layout.addWidget(self.message)

    # ------------------------------------------------------------------ which device

    def show_device(self, device_id: str | None, tree: Tree | None, title: str = "") -> None:
        if device_id == self.model.device_id and tree is self.model.tree:
            return
        self.model.set_tree(device_id, tree)
        self.title.setText(f"{device_id} — {title}" if device_id else "No device selected")
        self.set_message("")
        if tree is not None:
            self.model.fetchMore(QModelIndex())
            self.view.expand(self.model.index(0, 0))

    @property
    def tree(self) -> Tree | None:
        return self.model.tree

    # ------------------------------------------------------------------ selection and messages

    def selected_info(self) -> NodeInfo | None:
        idx = self.view.currentIndex()
        return idx.siblingAtColumn(0).data(NodeRole) if idx.isValid() else None

    def select_path(self, path: str) -> bool:
        idx = self.model.ensure_path(path)
        if not idx.isValid():
            return False
        self.view.setCurrentIndex(idx)
        self.view.scrollTo(idx)
        return True

    def _show_path(self) -> None:
        info = self.selected_info()
        if info is None:
            self.path_label.setText("")
            return
        self.path_label.setText(info.path)
        if info.children is None:
            v = info.value
            self.value_edit.setText(v.decode("utf-8", "replace") if isinstance(v, bytes) else (v or ""))

    def set_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #b00020" if error else "")
        self.message.setText(text)

    def _double_clicked(self, index: QModelIndex) -> None:
        self.value_edit.setFocus()
        self.value_edit.selectAll()

    # ------------------------------------------------------------------ operations

    def _run(self, what: str, op) -> bool:
        try:
            op()
        except EmulatorError as exc:
            status = f"{exc.status} " if getattr(exc, "status", None) else ""
            self.set_message(f"{what} refused: {status}{exc}", error=True)
            return False
        self.set_message(f"{what}: done")
        return True

    def edit_selected(self) -> bool:
        info = self.selected_info()
        if info is None or self.tree is None:
            self.set_message("select a leaf to edit", error=True)
            return False
        tree, text = self.tree, self.value_edit.text()
        return self._run(f"Replace {info.path}", lambda: tree.replace(info.path, text))

    def add_node(self, path: str, value: str | None, fmt: str) -> bool:
        if self.tree is None:
            return False
        tree = self.tree
        return self._run(f"Add {path}", lambda: tree.add(path, None if fmt == "node" else value, format=fmt))

    def delete_selected(self) -> bool:
        info = self.selected_info()
        if info is None or self.tree is None:
            self.set_message("select a node to delete", error=True)
            return False
        tree = self.tree
        return self._run(f"Delete {info.path}", lambda: tree.delete(info.path))

    def exec_selected(self, data: str | None) -> bool:
        info = self.selected_info()
        if info is None or self.tree is None:
            self.set_message("select a node to Exec", error=True)
            return False
        tree = self.tree
        return self._run(f"Exec {info.path}", lambda: tree.exec(info.path, data))

    def export_selected(self, file: str | Path) -> bool:
        if self.tree is None:
            return False
        info = self.selected_info()
        uri = info.path if info else "."
        try:
            from emulator.tree.tnds import export_tnds

            data = export_tnds(self.tree, uri, pretty=True)
            Path(file).write_bytes(data)
        except (EmulatorError, OSError) as exc:
            self.set_message(f"export of {uri} failed: {exc}", error=True)
            return False
        self.set_message(f"exported {uri} to {file}")
        return True

    # ------------------------------------------------------------------ dialogs (thin)

    def _add_dialog(self) -> None:
        info = self.selected_info()
        base = (info.path if info.children is not None else info.path.rsplit("/", 1)[0]) if info else "."
        path, ok = QInputDialog.getText(self, "Add node", "Full path of the new node:", text=base + "/")
        if not ok or not path:
            return
        fmt, ok = QInputDialog.getItem(self, "Add node", "Format:", list(FORMATS), 0, False)
        if not ok:
            return
        value = ""
        if fmt != "node":
            value, ok = QInputDialog.getText(self, "Add node", f"Value of {path}:")
            if not ok:
                return
        self.add_node(path, value, fmt)

    def _exec_dialog(self) -> None:
        data, ok = QInputDialog.getText(self, "Exec", "Data to pass (may be empty):")
        if ok:
            self.exec_selected(data or None)

    def _export_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export subtree as TNDS", "subtree.xml", "TNDS XML (*.xml)")
        if name:
            self.export_selected(name)
