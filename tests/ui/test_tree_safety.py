"""Safe edits in the window (issue 17, "Safety"): Delete asks and can be undone, edits say as whom they
are made and are checked (Format and DDF as the device, ACL as a server), one Add node dialog, the
editor follows the device, the tree keeps its expansion, secrets are masked until revealed."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QLineEdit, QMessageBox

from emulator.util.masking import MASK, is_secret_name
from ui.tree_model import NodeRole


def answer_box(button: str, seen: list[str]) -> None:
    """Click ``button`` in the next message box that opens, noting its text (what the user reads)."""

    def look() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(10, look)
            return
        seen.append(box.text())
        for b in box.buttons():
            if b.text().replace("&", "") == button:
                b.click()
                return
        raise AssertionError(f"no {button!r} button in {[b.text() for b in box.buttons()]}")

    QTimer.singleShot(0, look)


def snapshot(tree, path):
    return [(i.path, i.value, i.format, i.type, i.acl, i.title, i.tstamp, i.verno, i.permanent, i.access)
            for i in tree.walk(path)]


def phone(window):
    dev = next(d for d in window.fleet.devices.values() if d.profile.name == "smartphone")
    window.select_device(dev.id)
    return dev, window.tree_panel


def test_delete_asks_naming_the_subtree_and_a_second_click_deletes_nothing(window, qtbot):
    dev, panel = phone(window)
    tree = dev.tree
    top = tree.children(".")
    assert panel.select_path("./DM2")
    count = sum(1 for _ in tree.walk("./DM2"))
    assert count > 5
    seen: list[str] = []
    answer_box("Cancel", seen)
    panel.delete_button.click()
    assert "./DM2" in seen[0] and f"{count} nodes" in seen[0] and "Undo" in seen[0]
    assert tree.exists("./DM2")
    assert "cancelled" in panel.message.text()

    answer_box("Delete", seen)
    panel.delete_button.click()
    assert not tree.exists("./DM2")
    assert panel.selected_info() is None  # the view did not move on to the next node
    assert "Delete ./DM2 as the device: done" in panel.message.text()
    assert panel.value_edit.text() == ""

    panel.delete_button.click()  # a second click: nothing selected, nothing asked, nothing deleted
    assert len(seen) == 2
    assert "select a node to delete" in panel.message.text()
    assert tree.children(".") == [n for n in top if n != "DM2"]


def test_undo_puts_a_deleted_subtree_back_exactly_and_redo_deletes_it_again(window, qtbot):
    dev, panel = phone(window)
    tree = dev.tree
    tree.replace_prop("./DM2/DevInfo", "ACL", "Get=*&Replace=demo-dm2")  # an ACL of its own to restore
    before = snapshot(tree, "./DM2")
    order = tree.children(".")
    assert panel.select_path("./DM2")
    row = panel.view.currentIndex().row()
    assert panel.delete_selected(confirm=False)
    assert not tree.exists("./DM2")
    undo = window.safety.undo
    assert undo.shortcut() == QKeySequence(QKeySequence.StandardKey.Undo)
    assert undo.isEnabled() and "Delete ./DM2" in undo.text()
    edit_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Edit")
    assert undo in edit_menu.actions() and window.safety.redo in edit_menu.actions()

    undo.trigger()
    assert snapshot(tree, "./DM2") == before  # values, Formats, Types, ACLs, interior nodes, VerNo
    assert tree.children(".") == order  # back in its place among its siblings
    qtbot.waitUntil(lambda: panel.model.index(0, 0).isValid() and panel.model.index_for("./DM2").isValid(),
                    timeout=2000)
    assert panel.model.index_for("./DM2").row() == row  # and so is its row

    window.safety.redo.trigger()
    assert not tree.exists("./DM2")
    undo.trigger()
    assert snapshot(tree, "./DM2") == before


def test_undo_of_replace_and_of_add_with_its_implicit_parents(window):
    dev, panel = phone(window)
    tree = dev.tree
    assert panel.select_path("./DevInfo/Lang")
    old = tree.value("./DevInfo/Lang")
    panel.value_edit.setText("fr-FR")
    assert panel.edit_selected()
    assert tree.value("./DevInfo/Lang") == "fr-FR"
    top = tree.children(".")
    assert panel.add_node("./Acme/Box/Level", "7", "int")
    assert tree.info("./Acme/Box/Level").format == "int"
    window.safety.undo.trigger()
    assert tree.children(".") == top  # the interior parents the Add made go too
    window.safety.undo.trigger()
    assert tree.value("./DevInfo/Lang") == old


def test_edits_as_the_device_are_checked_against_format_and_ddf(window):
    dev, panel = phone(window)
    tree = dev.tree
    assert panel.actor.server_id is None and panel.set_button.text() == "Set"
    assert panel.select_path("./DevDetail/LrgObj")
    old = tree.value("./DevDetail/LrgObj")
    panel.value_edit.setText("banana")
    assert not panel.edit_selected()
    text = panel.message.text()
    assert "refused" in text and "bool" in text and "'banana'" in text and "true or false" in text
    assert tree.value("./DevDetail/LrgObj") == old
    panel.value_edit.setText("true")
    assert panel.edit_selected()
    assert "as the device" in panel.message.text()
    # the DDF: ./DevInfo/Lang is a chr leaf in the DevInfo MO, never an interior node
    tree.delete("./DevInfo/Lang")
    assert not panel.add_node("./DevInfo/Lang", None, "node")
    assert "DDF of urn:oma:mo:oma-dm-devinfo:1.0" in panel.message.text()
    assert not tree.exists("./DevInfo/Lang")


def test_edits_as_a_server_get_that_servers_status(window, qtbot):
    dev, panel = phone(window)
    tree = dev.tree
    labels = [panel.actor_box.itemText(i) for i in range(panel.actor_box.count())]
    assert labels[0] == "the device" and "server demo-dm12 (DM 1.2)" in labels
    assert panel.set_actor("demo-dm12")
    assert panel.set_button.text() == "Set as demo-dm12"
    assert panel.select_path("./DevInfo/Man")
    man = tree.value("./DevInfo/Man")
    panel.value_edit.setText("Other")
    assert not panel.edit_selected()
    assert "as server demo-dm12 (DM 1.2) refused: 405" in panel.message.text()  # AccessType Get only
    latency = "./DM2/DevInfo/Bearer/lte0/Latency"  # Replace allowed by AccessType, not by the ACL
    before = tree.value(latency)
    assert panel.select_path(latency)
    panel.value_edit.setText("banana")  # not an int either: the server's own status comes first
    assert not panel.edit_selected()
    assert f"refused: 425 demo-dm12 may not Replace {latency}" in panel.message.text()
    assert tree.value("./DevInfo/Man") == man and tree.value(latency) == before
    assert dev.conflicts.holds == {}  # the window's "session" holds nothing afterwards
    own = "./DMAcc/demo-dm12/Name"
    assert panel.select_path(own)
    panel.value_edit.setText("renamed by hand")
    assert panel.edit_selected(), panel.message.text()
    assert tree.value(own) == "renamed by hand"
    assert tree.info(own).verno  # made through the tree, as a server command


def test_add_node_is_one_dialog_under_the_selection_that_shows_its_errors(window, qtbot):
    dev, panel = phone(window)
    tree = dev.tree
    assert panel.select_path("./DevInfo/Lang")  # a leaf: its parent is where the node goes
    dialog = panel.add_dialog()
    assert dialog.parent_edit.text() == "./DevInfo"
    tree.add("./Vendor", format="node")
    qtbot.waitUntil(lambda: panel.select_path("./Vendor"), timeout=2000)
    dialog = panel.add_dialog()
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.parent_edit.text() == "./Vendor" and dialog.name_edit.text() == ""
    assert dialog.focusWidget() is dialog.name_edit
    qtbot.keyClicks(dialog.name_edit, "Acme")
    assert dialog.target.text() == "./Vendor/Acme"
    dialog.interior.setChecked(True)
    assert not dialog.value_edit.isEnabled()
    dialog.name_edit.setText("a/b")
    assert not dialog.try_add() and "one path segment" in dialog.error.text() and dialog.isVisible()
    dialog.name_edit.setText("Flag")
    dialog.leaf.setChecked(True)
    dialog.format_box.setCurrentText("bool")
    dialog.value_edit.setText("banana")
    assert not dialog.try_add()
    assert "not a valid bool" in dialog.error.text() and dialog.isVisible()
    assert not tree.exists("./Vendor/Flag")
    dialog.value_edit.setText("true")
    assert dialog.try_add()
    assert tree.info("./Vendor/Flag").format == "bool" and tree.value("./Vendor/Flag") == "true"

    dialog = panel.add_dialog()
    qtbot.addWidget(dialog)
    dialog.name_edit.setText("Acme")
    dialog.interior.setChecked(True)
    dialog.actor_box.setCurrentIndex(dialog.actor_box.findText("server demo-dm12 (DM 1.2)"))
    assert dialog.try_add(), dialog.error.text()
    assert tree.info("./Vendor/Acme").children == ()
    dialog = panel.add_dialog()
    qtbot.addWidget(dialog)
    dialog.parent_edit.setText("./DevInfo")
    dialog.name_edit.setText("Extra")
    dialog.actor_box.setCurrentIndex(dialog.actor_box.findText("server demo-dm12 (DM 1.2)"))
    assert not dialog.try_add()
    assert "Refused: 405 Add is not allowed under ./DevInfo" in dialog.error.text()  # what demo-dm12 gets
    assert not tree.exists("./DevInfo/Extra") and dialog.result() == 0


def test_switching_device_clears_the_editor(window):
    dev, panel = phone(window)
    assert panel.select_path("./DevInfo/Man")
    assert panel.value_edit.text() == dev.tree.value("./DevInfo/Man")
    other = next(d for d in window.fleet.devices.values() if d is not dev)
    window.select_device(other.id)
    assert panel.selected_info() is None
    assert panel.path_label.text() == "" and panel.value_edit.text() == ""
    assert not panel.edit_selected()  # nothing to write into the other device


def test_expansion_and_selection_survive_structural_changes(window, qtbot):
    dev, panel = phone(window)
    tree, model, view = dev.tree, panel.model, panel.view
    assert panel.select_path("./DevInfo/Man")
    view.expand(model.index_for("./DevInfo"))
    view.expand(model.index_for("./DevDetail"))
    # a session replaces ./DevInfo as a whole (TNDS Replace: the rows are new ones)
    saved = tree.snapshot("./DevInfo")
    tree.delete("./DevInfo")
    tree.graft("./DevInfo", saved, position=0)
    qtbot.waitUntil(lambda: model.index_for("./DevInfo/Man").isValid(), timeout=2000)
    assert view.isExpanded(model.index_for("./DevInfo"))
    assert panel.selected_info() is not None and panel.selected_info().path == "./DevInfo/Man"
    # a batch big enough to rebuild all rows
    for i in range(2100):
        tree.set_node(f"./Vendor/Bulk/n{i}", "x")
    qtbot.waitUntil(lambda: model.index_for("./Vendor").isValid(), timeout=5000)
    assert view.isExpanded(model.index_for("./DevInfo")) and view.isExpanded(model.index_for("./DevDetail"))
    assert panel.selected_info().path == "./DevInfo/Man"


def test_secret_leaves_are_masked_until_revealed(window, qtbot):
    dev, panel = phone(window)
    tree = dev.tree
    secret = next(i.path for i in tree.walk(".") if i.children is None and i.value
                  and is_secret_name(i.name))
    value = tree.value(secret)
    assert panel.select_path(secret)
    idx = panel.model.index_for(secret).siblingAtColumn(1)
    assert idx.data() == MASK
    assert panel.value_edit.echoMode() == QLineEdit.EchoMode.Password
    assert panel.value_edit.text() == ""  # not even the secret's length shows
    assert not panel.edit_selected()  # an empty editor does not wipe the secret
    assert "type its new value first" in panel.message.text() and tree.value(secret) == value
    tree.replace(secret, "new-secret-1")
    qtbot.waitUntil(lambda: bool(panel.model.history(secret)), timeout=2000)
    tip = panel.model.tooltip(secret)
    assert "new-secret-1" not in tip and str(value) not in tip and MASK in tip
    panel.reveal_box.setChecked(True)
    assert idx.data() == "new-secret-1"
    assert panel.value_edit.echoMode() == QLineEdit.EchoMode.Normal
    assert panel.value_edit.text() == "new-secret-1"
    assert "new-secret-1" in panel.model.tooltip(secret)
    panel.reveal_box.setChecked(False)
    assert idx.data() == MASK
    plain = panel.model.index_for("./DevInfo/Man") if panel.select_path("./DevInfo/Man") else None
    assert plain is not None and plain.siblingAtColumn(1).data() == dev.tree.value("./DevInfo/Man")
    assert plain.data(NodeRole).value == dev.tree.value("./DevInfo/Man")


def test_exec_is_made_as_the_chosen_actor(window):
    dev, panel = phone(window)
    lock = "./DM2/oma-lawmo/LAWMO/Operations/FullyLock"
    assert panel.set_actor("demo-dm12")  # the DM 2.0 LAWMO is not the DM 1.2 server's to run
    assert panel.select_path(lock)
    assert not panel.exec_selected(None)
    assert f"Exec {lock} as server demo-dm12 (DM 1.2) refused: 425" in panel.message.text()
