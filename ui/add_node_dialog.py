"""Add node: one dialog for a leaf or an interior node, under the selected node, checked before it closes.

The parent comes from the tree's selection (the node itself when interior, its parent for a leaf)
and the cursor waits in the Name field, so typing a name cannot turn into a node at the root. The
new node is made as the actor chosen (the device, or one of its servers with that server's ACL, see
:mod:`ui.tree_edits`); a refusal (bad name, node exists, not a bool, 425 for that server) shows in
the dialog in red and the dialog stays open with what was typed.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from ui.tree_edits import Actor, AddEdit

LEAF_FORMATS = ("chr", "int", "bool", "float", "b64", "bin", "date", "time", "xml", "null")
ERROR_STYLE = "color: #b00020"


def child_path(parent: str, name: str) -> str:
    parent = parent.strip().rstrip("/") or "."
    return f"{parent}/{name}"


class AddNodeDialog(QDialog):
    """See the module doc; after ``exec()`` returned Accepted, ``edit`` is the Add that was made."""

    def __init__(self, dev: VirtualDevice, parent_path: str, actors: list[Actor], actor: Actor,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dev = dev
        self.edit: AddEdit | None = None
        self.setWindowTitle(f"Add node — {dev.id}")
        self.setMinimumWidth(460)

        self.parent_edit = QLineEdit(parent_path)
        self.parent_edit.setToolTip("The interior node the new node goes under")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("one path segment, e.g. Wlan2")
        self.leaf = QRadioButton("Leaf")
        self.interior = QRadioButton("Interior node")
        self.leaf.setChecked(True)
        kinds = QButtonGroup(self)
        kinds.addButton(self.leaf)
        kinds.addButton(self.interior)
        kind_row = QHBoxLayout()
        kind_row.addWidget(self.leaf)
        kind_row.addWidget(self.interior)
        kind_row.addStretch(1)
        self.format_box = QComboBox()
        self.format_box.addItems(LEAF_FORMATS)
        self.value_edit = QLineEdit()
        self.value_edit.setPlaceholderText("value of the new leaf")
        self.actor_box = QComboBox()
        for a in actors:
            self.actor_box.addItem(a.label, a)
        self.actor_box.setCurrentIndex(max(0, actors.index(actor) if actor in actors else 0))
        self.actor_box.setToolTip("As the device: a local change. As a server: checked against its ACL, "
                                  "refused with the status that server's Add would get.")
        self.target = QLabel("")
        self.target.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)

        form = QFormLayout()
        form.addRow("Parent", self.parent_edit)
        form.addRow("Name", self.name_edit)
        form.addRow("Kind", kind_row)
        form.addRow("Format", self.format_box)
        form.addRow("Value", self.value_edit)
        form.addRow("Add as", self.actor_box)
        form.addRow("New node", self.target)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Add")
        buttons.accepted.connect(self.try_add)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

        for edit in (self.parent_edit, self.name_edit):
            edit.textChanged.connect(self._update)
        self.interior.toggled.connect(self._update)
        self._update()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.name_edit.setFocus()  # typing goes into the name, never over the parent path

    @property
    def path(self) -> str:
        return child_path(self.parent_edit.text(), self.name_edit.text().strip())

    @property
    def actor(self) -> Actor:
        return self.actor_box.currentData()

    def _update(self) -> None:
        leaf = self.leaf.isChecked()
        self.format_box.setEnabled(leaf)
        self.value_edit.setEnabled(leaf)
        self.target.setText(self.path if self.name_edit.text().strip() else "")
        self.error.setText("")

    def problem(self) -> str:
        """What the form itself gets wrong before the tree is asked (empty when nothing)."""
        name = self.name_edit.text().strip()
        if not name:
            return "Give the new node a name."
        if "/" in name:
            return f"A name is one path segment: {name!r} holds '/'. Put the path in Parent."
        if not self.parent_edit.text().strip().startswith("."):
            return "The parent is a path from the root: it starts with '.' (e.g. ./Vendor)."
        return ""

    def try_add(self) -> bool:
        problem = self.problem()
        if problem:
            self.error.setText(problem)
            return False
        fmt = "node" if self.interior.isChecked() else self.format_box.currentText()
        text = self.value_edit.text()
        value: str | bytes = text.encode("utf-8") if fmt == "bin" else text
        edit = AddEdit(self.dev, self.actor, self.path, fmt, value)
        try:
            edit.apply()
        except EmulatorError as exc:
            status = f"{exc.status} " if getattr(exc, "status", None) else ""
            self.error.setText(f"Refused: {status}{exc}")
            return False
        self.edit = edit
        self.accept()
        return True
