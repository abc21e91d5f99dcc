"""The lazy tree model: rows exist only for expanded nodes, and live changes patch them in place."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QTreeView

from emulator.events import EventBus, TreeChanged
from emulator.tree import Tree
from ui.batcher import EventBatcher
from ui.tree_model import TreeModel


@pytest.fixture(scope="module")
def big_tree() -> Tree:
    tree = Tree()
    for g in range(100):
        for i in range(1000):
            tree.add(f"./Big/G{g}/N{i}", "v", format="chr")
    assert len(tree) > 100_000
    return tree


def test_only_expanded_nodes_get_rows(qtbot, big_tree):
    model = TreeModel()
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(model)
    model.set_tree("big", big_tree)
    view.show()
    qtbot.waitExposed(view)
    assert model.rowCount() == 1  # ./Big
    assert model.created_items <= 2  # the root and ./Big
    view.expand(model.index(0, 0))
    assert model.rowCount(model.index(0, 0)) == 100
    assert model.created_items <= 102
    view.expand(model.index(5, 0, model.index(0, 0)))
    assert model.rowCount(model.index(5, 0, model.index(0, 0))) == 1000
    assert model.created_items <= 1102
    assert model.index(0, 0, model.index(5, 0, model.index(0, 0))).data() == "N0"


def test_batched_changes_add_delete_and_update_rows(qtbot):
    bus = EventBus()
    tree = Tree()
    tree.subscribe(lambda ch: bus.publish(TreeChanged("d1", ch)))
    tree.add("./A/x", "1")
    tree.add("./A/y", "2")
    model = TreeModel()
    batcher = EventBatcher(bus)
    batcher.flushed.connect(model.apply_events)
    model.set_tree("d1", tree)
    a = model.ensure_path("./A")
    model.fetchMore(a)
    assert model.rowCount(a) == 2
    tree.add("./A/z", "3")
    tree.delete("./A/x")
    tree.replace("./A/y", "22")
    for i in range(5000):  # a burst: the batcher hands it over in one go
        tree.replace("./A/z", str(i))
    assert batcher.pending == 5003
    batcher.flush()
    names = [model.index(r, 0, a).data() for r in range(model.rowCount(a))]
    assert names == ["y", "z"]
    assert model.index(0, 1, a).data() == "22"
    assert model.index(1, 1, a).data() == "4999"
    assert [c.new for c in model.history("./A/z")][-1] == "4999"
    assert model.parent(model.index(1, 0, a)) == a
    batcher.close()


def test_changes_of_another_device_do_not_touch_the_rows(qtbot):
    tree = Tree()
    tree.add("./A", "1")
    model = TreeModel()
    model.set_tree("mine", tree)
    model.fetchMore(model.index(-1, 0))
    other = Tree()
    other.add("./A", "x")
    ch = None

    def keep(event):
        nonlocal ch
        ch = event

    other.subscribe(keep)
    other.replace("./A", "changed")
    model.apply_events([TreeChanged("theirs", ch)])
    assert model.index(0, 1).data() == "1"
    assert model.history("./A", "theirs")[-1].new == "changed"
