"""The window's undo stack: tree edits (Set, Add, Delete) and Clear of the traffic list.

One :class:`QUndoStack` for the window (Edit > Undo / Redo, Ctrl+Z / Ctrl+Shift+Z). A command is
pushed only after its change was made and accepted (see :mod:`ui.tree_edits`), so the first
``redo()`` Qt calls on push does nothing. An undo or redo that the tree refuses now (the node was
changed or removed by a session meanwhile) is reported through ``problem`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand, QUndoStack

from emulator.errors import EmulatorError
from ui.traffic_failures import Row
from ui.traffic_panel import TrafficPanel
from ui.tree_edits import Edit

Report = Callable[[str, bool], None]  # (text, is_error)


class EditCommand(QUndoCommand):
    """A tree edit already made: undo reverts it, redo makes it again."""

    def __init__(self, edit: Edit, report: Report) -> None:
        super().__init__(f"{edit.text} on {edit.device_id}")
        self.edit = edit
        self.report = report
        self._fresh = True

    def redo(self) -> None:
        if self._fresh:  # push() calls redo(): the edit is already made
            self._fresh = False
            return
        self._run("Redo", self.edit.apply)

    def undo(self) -> None:
        self._run("Undo", self.edit.revert)

    def _run(self, what: str, step: Callable[[], None]) -> None:
        try:
            step()
        except EmulatorError as exc:
            status = f"{exc.status} " if getattr(exc, "status", None) else ""
            self.report(f"{what} of “{self.text()}” refused: {status}{exc}", True)
            return
        self.report(f"{what}: {self.text()}", False)


class ClearTrafficCommand(QUndoCommand):
    """Clear of the traffic list; undo puts the cleared rows (and why the failed ones failed) back
    before any that came since."""

    def __init__(self, panel: TrafficPanel, report: Report) -> None:
        self.panel = panel
        self.report = report
        self.cleared: list[Row] = list(panel.model.messages)
        self.reasons: list[str] = list(panel.model.reasons)
        super().__init__(f"Clear traffic ({len(self.cleared)} messages)")

    def redo(self) -> None:
        self.cleared, self.reasons = list(self.panel.model.messages), list(self.panel.model.reasons)
        self.panel.clear()

    def undo(self) -> None:
        since, since_reasons = list(self.panel.model.messages), list(self.panel.model.reasons)
        self.panel.clear()
        self.panel.add_messages(self.cleared + since, self.reasons + since_reasons)
        self.report(f"Undo: {len(self.cleared)} traffic messages back", False)


def new_stack(parent) -> QUndoStack:
    stack = QUndoStack(parent)
    stack.setUndoLimit(200)
    return stack
