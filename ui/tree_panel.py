"""The selected device's tree: browse lazily, edit a leaf, add/delete nodes, Exec, export TNDS.

Every edit says as whom it is made ("Edit as": the device itself, or one of its servers, whose ACL
then applies with the DM status that server would get; see :mod:`ui.tree_edits`), is checked against
the node's Format and DDF, and goes on the window's undo stack (Ctrl+Z). Delete asks first, naming
the subtree and how many nodes go, and leaves nothing selected afterwards so a second click cannot
delete the next node. Secret leaves (see :mod:`emulator.util.masking`) show masked until "Show
secrets" is ticked; the editor shows them as a password field. Expanded nodes and the selection
survive the structural changes sessions make (a subtree replaced, a batch rebuilt).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from emulator.events import TreeChanged
from emulator.tree import Tree
from emulator.tree.tree import NodeInfo
from emulator.util.masking import MASK, is_secret_name, is_secret_value
from ui.add_node_dialog import AddNodeDialog
from ui.columns import ColumnChooser
from ui.tree_edits import (
    DEVICE,
    Actor,
    AddEdit,
    DeleteEdit,
    Edit,
    ReplaceEdit,
    acting,
    actors,
    count_nodes,
    leaf_value,
)
from ui.tree_model import NodeRole, TreeModel
from ui.undo import EditCommand, new_stack
from ui.value_trail import ValueTrailDelegate

STRUCTURAL = ("add", "delete", "rename")
TREE_WIDTHS = (170, 0, 56, 140)  # Name, (Value stretches), Format, ACL


class TreePanel(QWidget):
    def __init__(self, parent: QWidget | None = None, *, undo_stack: QUndoStack | None = None) -> None:
        super().__init__(parent)
        self.device: VirtualDevice | None = None
        self.undo_stack = undo_stack if undo_stack is not None else new_stack(self)
        self.model = TreeModel(self)
        self.title = QLabel("No device selected")
        self.title.setWordWrap(True)  # a long profile title takes a second line, not the tree's width
        self.title.setStyleSheet("font-weight: bold")
        self.view = QTreeView()
        self.view.setModel(self.model)
        self.view.setItemDelegateForColumn(1, ValueTrailDelegate(self.view))  # a flashing leaf's earlier values
        self.view.setUniformRowHeights(True)  # keeps huge expanded lists fast
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.doubleClicked.connect(self._double_clicked)
        header = self.view.header()
        header.setStretchLastSection(False)  # Value takes the spare width, so ACL stays in view
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        for col, width in enumerate(TREE_WIDTHS):
            if col != 1:
                header.resizeSection(col, width)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)  # values and ACLs read from the left
        self.columns = ColumnChooser(self.view, "tree")
        self.view.selectionModel().currentChanged.connect(self._current_changed)

        self.path_label = QLabel("")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.value_edit = QLineEdit(placeholderText="value of the selected leaf")
        self.value_edit.returnPressed.connect(self.edit_selected)
        self.actor_box = QComboBox()
        self.actor_box.setToolTip("Who the edits are made as: the device itself (a local change, checked "
                                  "against the node's Format and DDF), or one of its servers (checked as "
                                  "that server's command would be: ACL, AccessType; refused with its DM status)")
        self.actor_box.currentIndexChanged.connect(lambda _: self._actor_changed())
        self.actor_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.set_button = QPushButton("Set")
        self.set_button.clicked.connect(self.edit_selected)
        self.reveal_box = QCheckBox("Show secrets")
        self.reveal_box.setToolTip("Show passwords, keys and other secret leaves in clear (masked by default)")
        self.reveal_box.toggled.connect(self.set_reveal)
        add_btn = self.add_button = QPushButton("Add…")
        add_btn.setToolTip("Add a leaf or an interior node under the selected node")
        add_btn.clicked.connect(self._add_dialog)
        del_btn = self.delete_button = QPushButton("Delete…")
        del_btn.setToolTip("Delete the selected node and its subtree (asks first; Ctrl+Z undoes it)")
        del_btn.clicked.connect(self._delete_clicked)
        exec_btn = QPushButton("Exec…")
        exec_btn.clicked.connect(self._exec_dialog)
        export_btn = QPushButton("Export TNDS…")
        export_btn.clicked.connect(self._export_dialog)
        self.message = QLabel("")
        self.message.setWordWrap(True)

        edit_row = QHBoxLayout()
        edit_row.addWidget(self.value_edit, 1)
        edit_row.addWidget(QLabel("as"))
        edit_row.addWidget(self.actor_box)
        edit_row.addWidget(self.set_button)
        buttons = QHBoxLayout()
        for b in (add_btn, del_btn, exec_btn, export_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        path_row = QHBoxLayout()  # the check box beside the path: the button row has no room left at 1280 px
        path_row.addWidget(self.path_label, 1)
        path_row.addWidget(self.reveal_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)
        layout.addLayout(path_row)
        layout.addLayout(edit_row)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        self._fill_actors()

    # ------------------------------------------------------------------ which device

    def show_device(self, device_id: str | None, tree: Tree | None, title: str = "",
                    device: VirtualDevice | None = None) -> None:
        if device_id == self.model.device_id and tree is self.model.tree:
            return
        self.device = device if device is not None and device.id == device_id else None
        self.model.set_tree(device_id, tree)
        self.title.setText(f"{device_id} — {title}" if device_id else "No device selected")
        self.set_message("")
        self._fill_actors()
        if tree is not None:
            self.model.fetchMore(QModelIndex())
            self.view.expand(self.model.index(0, 0))
        self._show_path()  # nothing selected in the new tree: the editor must not keep the old node

    @property
    def tree(self) -> Tree | None:
        return self.model.tree

    # ------------------------------------------------------------------ as whom

    def _fill_actors(self) -> None:
        current = self.actor
        choices = actors(self.device) if self.device is not None else [DEVICE]
        box = self.actor_box
        if [box.itemData(i) for i in range(box.count())] != choices:
            box.blockSignals(True)
            box.clear()
            for a in choices:
                box.addItem(a.label, a)
            box.setCurrentIndex(choices.index(current) if current in choices else 0)
            box.blockSignals(False)
        box.setEnabled(self.device is not None)
        self._actor_changed()

    @property
    def actor(self) -> Actor:
        data = self.actor_box.currentData()
        return data if isinstance(data, Actor) else DEVICE

    def set_actor(self, server_id: str | None) -> bool:
        """Choose who edits are made as (None: the device); False if the device has no such server."""
        for i in range(self.actor_box.count()):
            if self.actor_box.itemData(i).server_id == server_id:
                self.actor_box.setCurrentIndex(i)
                return True
        return False

    def _actor_changed(self) -> None:
        actor = self.actor
        self.set_button.setText("Set" if actor.server_id is None else f"Set as {actor.server_id}")
        self.set_button.setToolTip(f"Replace the selected leaf's value as {actor.label}")

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

    def reveal_path(self, path: str) -> bool:
        """Bring a node into view (its parents expanded) without selecting it: the State leaf of an
        operation that starts on the shown device, so its flashes are seen. False: not there."""
        idx = self.model.ensure_path(path)
        if not idx.isValid():
            return False
        self.view.scrollTo(idx)  # expands its parents
        if not self.view.viewport().rect().contains(self.view.visualRect(idx)):
            self.view.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if current.internalPointer() is not previous.internalPointer():
            self.set_message("")  # a refusal about another node would read as about this one
        self._show_path()

    def _show_path(self) -> None:
        info = self.selected_info()
        if info is None:
            self.path_label.setText("")
            self.value_edit.clear()
            self.value_edit.setEchoMode(QLineEdit.EchoMode.Normal)
            self.value_edit.setPlaceholderText("value of the selected leaf")
            return
        self.path_label.setText(info.path)
        if info.children is None:
            v = info.value
            if self._masked(info):  # not even its length shows: the editor starts empty, typing is hidden
                self.value_edit.setEchoMode(QLineEdit.EchoMode.Password)
                self.value_edit.clear()
                self.value_edit.setPlaceholderText(f"{MASK} secret: type a new value, or tick Show secrets")
                return
            self.value_edit.setEchoMode(QLineEdit.EchoMode.Normal)
            self.value_edit.setText(v.decode("utf-8", "replace") if isinstance(v, bytes) else (v or ""))
            self.value_edit.setPlaceholderText("value of the selected leaf")
        else:
            self.value_edit.clear()
            self.value_edit.setEchoMode(QLineEdit.EchoMode.Normal)
            self.value_edit.setPlaceholderText(f"{info.name} is an interior node: select a leaf to edit")

    def _masked(self, info: NodeInfo) -> bool:
        """A secret leaf shown masked (Show secrets is off)."""
        return (not self.model.reveal and info.children is None and info.value is not None
                and (is_secret_name(info.name) or is_secret_value(info.value)))

    def set_reveal(self, reveal: bool) -> None:
        """Show secret leaves in clear (True) or masked; the tree and the editor follow."""
        if self.reveal_box.isChecked() != reveal:
            self.reveal_box.setChecked(reveal)  # comes back here through toggled
            return
        self.model.set_reveal(reveal)
        self._show_path()

    def set_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #b00020" if error else "")
        self.message.setText(text)

    def report(self, text: str, error: bool) -> None:
        self.set_message(text, error)

    def _double_clicked(self, index: QModelIndex) -> None:
        self.value_edit.setFocus()
        self.value_edit.selectAll()

    # ------------------------------------------------------------------ live changes

    def apply_events(self, events: Sequence[object]) -> None:
        """Take a batch from the batcher; when it changes the shape of the shown tree, the nodes that
        were expanded and the selected node are expanded and selected again afterwards (a subtree a
        session replaced comes back as new rows, a big batch rebuilds them all)."""
        dev_id = self.model.device_id
        structural = dev_id is not None and any(
            isinstance(e, TreeChanged) and e.device_id == dev_id and e.change.kind in STRUCTURAL for e in events)
        if not structural:
            self.model.apply_events(events)
            if any(isinstance(e, TreeChanged) and e.device_id == dev_id for e in events):
                self._fill_actors()
            return
        expanded = [p for p in self.model.fetched_paths() if self.view.isExpanded(self.model.index_for(p))]
        info = self.selected_info()
        selected = info.path if info is not None else None
        self.model.apply_events(events)
        for path in expanded:
            idx = self.model.index_for(path)
            if idx.isValid() and not self.view.isExpanded(idx):
                self.view.expand(idx)
        current = self.selected_info()
        if selected is not None and (current is None or current.path != selected):
            idx = self.model.index_for(selected)
            if idx.isValid():
                self.view.setCurrentIndex(idx)
        self._fill_actors()

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

    def _make(self, edit: Edit) -> bool:
        """Make an edit; on success it goes on the undo stack and the message says as whom."""
        try:
            edit.apply()
        except EmulatorError as exc:
            status = f"{exc.status} " if getattr(exc, "status", None) else ""
            self.set_message(f"{edit.text} refused: {status}{exc}", error=True)
            return False
        self.undo_stack.push(EditCommand(edit, self.report))
        self.set_message(f"{edit.text}: done (Ctrl+Z undoes it)")
        return True

    def edit_selected(self) -> bool:
        info = self.selected_info()
        if info is None or self.tree is None or self.device is None:
            self.set_message("select a leaf to edit", error=True)
            return False
        if info.children is not None:
            self.set_message(f"Replace {info.path} refused: 405 {info.path} is an interior node: "
                             "Replace needs TNDS", error=True)
            return False
        if self._masked(info) and not self.value_edit.text():
            self.set_message(f"{info.path} is a secret shown masked: type its new value first "
                             "(or tick Show secrets to edit the one it holds)", error=True)
            return False
        value = leaf_value(self.tree, info.path, self.value_edit.text())
        return self._make(ReplaceEdit(self.device, self.actor, info.path, value))

    def add_node(self, path: str, value: str | None, fmt: str) -> bool:
        if self.device is None:
            return False
        return self._make(AddEdit(self.device, self.actor, path, fmt, value))

    def delete_selected(self, *, confirm: bool = True) -> bool:
        """Delete the selected node and its subtree, after asking (``confirm``); nothing stays selected."""
        info = self.selected_info()
        if info is None or self.tree is None or self.device is None:
            self.set_message("select a node to delete", error=True)
            return False
        if confirm and not self._confirm_delete(info):
            self.set_message(f"Delete {info.path}: cancelled")
            return False
        done = self._make(DeleteEdit(self.device, self.actor, info.path))
        if done:  # the view would move to the next node: a second click must not delete it
            said = self.message.text()
            self.view.selectionModel().clearSelection()
            self.view.setCurrentIndex(QModelIndex())
            self._show_path()
            self.set_message(said)
        return done

    def delete_question(self, info: NodeInfo) -> str:
        assert self.tree is not None
        n = count_nodes(self.tree, info.path)
        if info.children is None:
            what = f"the leaf {info.path}"
        else:
            what = f"{info.path} and everything below it ({n} nodes in all)"
        return (f"Delete {what} from {self.model.device_id}?\n\nMade as {self.actor.label}. "
                "Edit > Undo (Ctrl+Z) brings it back.")

    def _confirm_delete(self, info: NodeInfo) -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete node", self.delete_question(info),
                          QMessageBox.StandardButton.Cancel, self)
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is delete

    def _delete_clicked(self) -> None:
        self.delete_selected()

    def exec_selected(self, data: str | None) -> bool:
        info = self.selected_info()
        if info is None or self.tree is None:
            self.set_message("select a node to Exec", error=True)
            return False
        dev, actor = self.device, self.actor
        if dev is None:
            tree = self.tree
            return self._run(f"Exec {info.path}", lambda: tree.exec(info.path, data))

        def run() -> None:  # as the chosen actor, like every edit (not undoable: Exec acts on the device)
            with acting(dev, actor) as acting_tree:
                acting_tree.exec(info.path, data, by=actor.by)

        return self._run(f"Exec {info.path} as {actor.label}", run)

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

    def add_dialog(self) -> AddNodeDialog | None:
        """The Add node dialog, its parent taken from the selection (None when no device is shown)."""
        if self.device is None:
            self.set_message("select a device first", error=True)
            return None
        info = self.selected_info()
        if info is None:
            parent = "."
        else:
            parent = info.path if info.children is not None else (info.path.rsplit("/", 1)[0] or ".")
        return AddNodeDialog(self.device, parent, actors(self.device), self.actor, self)

    def _add_dialog(self) -> None:
        dialog = self.add_dialog()
        if dialog is None or not dialog.exec() or dialog.edit is None:
            return
        edit = dialog.edit
        self.undo_stack.push(EditCommand(edit, self.report))
        self.select_path(edit.path)
        self.set_message(f"{edit.text}: done (Ctrl+Z undoes it)")

    def _exec_dialog(self) -> None:
        data, ok = QInputDialog.getText(self, "Exec", "Data to pass (may be empty):")
        if ok:
            self.exec_selected(data or None)

    def _export_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export subtree as TNDS", "subtree.xml", "TNDS XML (*.xml)")
        if name:
            self.export_selected(name)
