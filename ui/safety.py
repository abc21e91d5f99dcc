"""The window's safety nets: Edit > Undo / Redo, undoable Clear of the traffic, asking before quitting
while sessions run, and File > Save workspace as…

Kept apart from :mod:`ui.mainwindow` (which lays the panels out) so the window only calls
:func:`install` once and asks :func:`confirm_quit` when the user closes it.

Save workspace as… writes every device of the fleet (its tree, delegations, app registrations) into
a workspace folder and keeps the fleet there from then on, so later edits are saved as they happen;
``dm-emulator gui --workspace DIR`` opens it again with the devices added and the edits made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QWidget

from emulator.errors import EmulatorError
from emulator.fleet.fleet import Fleet
from emulator.store import Workspace
from ui.traffic_panel import TrafficPanel
from ui.tree_panel import TreePanel
from ui.undo import ClearTrafficCommand


@dataclass(frozen=True, slots=True)
class SafetyActions:
    undo: QAction
    redo: QAction
    save_workspace: QAction


def install(window: QMainWindow, fleet: Fleet, tree_panel: TreePanel, traffic_panel: TrafficPanel) -> SafetyActions:
    """Add the Edit menu (undo stack) and Save workspace as…; route the traffic's Clear through undo."""
    stack = tree_panel.undo_stack
    undo = stack.createUndoAction(window, "&Undo")
    undo.setShortcuts([QKeySequence(QKeySequence.StandardKey.Undo)])
    redo = stack.createRedoAction(window, "&Redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    edit_menu = QMenu("&Edit", window)
    edit_menu.addAction(undo)
    edit_menu.addAction(redo)
    bar = window.menuBar()
    menus = bar.actions()
    if len(menus) > 1:
        bar.insertMenu(menus[1], edit_menu)  # after File, as desktops have it
    else:
        bar.addMenu(edit_menu)

    save_ws = QAction("Save workspace as…", window)
    save_ws.triggered.connect(lambda: _save_workspace_dialog(window, fleet))
    file_menu = menus[0].menu() if menus else None
    if isinstance(file_menu, QMenu):
        quit_action = next((a for a in file_menu.actions() if a.shortcut() == QKeySequence.StandardKey.Quit
                            or a.text().replace("&", "") == "Quit"), None)
        if quit_action is not None:
            file_menu.insertAction(quit_action, save_ws)
            file_menu.insertSeparator(quit_action)
        else:
            file_menu.addAction(save_ws)

    button = getattr(traffic_panel, "clear_button", None)
    if button is not None:
        button.clicked.disconnect()
        button.clicked.connect(lambda: clear_traffic(window, tree_panel, traffic_panel))
        button.setToolTip("Clear the list (Edit > Undo brings the messages back)")
    return SafetyActions(undo, redo, save_ws)


def clear_traffic(window: QMainWindow, tree_panel: TreePanel, traffic_panel: TrafficPanel) -> None:
    command = ClearTrafficCommand(traffic_panel, tree_panel.report)
    tree_panel.undo_stack.push(command)
    window.statusBar().showMessage(f"cleared {len(command.cleared)} traffic messages (Ctrl+Z brings them back)",
                                   8000)


# ---------------------------------------------------------------------------------------------- quitting


def running_sessions(fleet: Fleet) -> int:
    return max(0, fleet.stats.running)


def quit_question(count: int) -> str:
    return (f"{count} session{'s are' if count != 1 else ' is'} still running. Quit and stop "
            f"{'them' if count != 1 else 'it'}?\n\nDevices added and edits made are kept only in a saved "
            "workspace (File > Save workspace as…).")


def confirm_quit(window: QWidget, fleet: Fleet) -> bool:
    """True to go on closing: nothing runs, or the user said Quit."""
    count = running_sessions(fleet)
    if not count:
        return True
    box = QMessageBox(QMessageBox.Icon.Question, "Quit dm-emulator", quit_question(count),
                      QMessageBox.StandardButton.Cancel, window)
    quit_button = box.addButton("Quit", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is quit_button


# ---------------------------------------------------------------------------------------------- workspace


def save_workspace_as(fleet: Fleet, location: str | Path) -> str:
    """Write the fleet into the workspace at ``location`` and keep it there; the status line to show.

    Refuses (EmulatorError, nothing written) a folder that already holds another workspace's devices.
    """
    current = fleet.workspace
    ws = Workspace.open(location)
    if current is not None and ws.path == current.path:
        ws.close()
        raise EmulatorError(f"{ws.path} is the workspace in use: it is saved as you go")
    try:
        held = ws.list_devices()
        if held:
            raise EmulatorError(f"{ws.path} already holds a workspace with {len(held)} devices: choose an "
                                "empty folder (or open that workspace with dm-emulator gui --workspace)")
        old = fleet.use_workspace(ws)
    except BaseException:
        ws.close()
        raise
    if old is not None:
        old.close()
    folder = ws.path.parent
    return (f"saved {len(fleet.devices)} devices to {folder}; changes are saved there from now on. "
            f"Open it again with: dm-emulator gui --workspace {folder}")


def _save_workspace_dialog(window: QMainWindow, fleet: Fleet) -> None:
    folder = QFileDialog.getExistingDirectory(window, "Save workspace as (an empty folder)")
    if not folder:
        return
    try:
        text = save_workspace_as(fleet, folder)
    except EmulatorError as exc:
        window.statusBar().showMessage(f"⚠ {exc}", 10000)
        QMessageBox.warning(window, "Save workspace as", str(exc))
        return
    window.statusBar().showMessage(text, 15000)
