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


def _live(leaves: dict[str, str]) -> tuple[Tree, TreeModel, EventBatcher]:
    """A tree of ``leaves`` whose changes reach a model through a batcher, as in the window."""
    bus = EventBus()
    tree = Tree()
    tree.subscribe(lambda ch: bus.publish(TreeChanged("d1", ch)))
    for path, value in leaves.items():
        tree.add(path, value)
    model = TreeModel()
    batcher = EventBatcher(bus)
    batcher.flushed.connect(model.apply_events)
    model.set_tree("d1", tree)
    return tree, model, batcher


def test_batched_changes_add_delete_and_update_rows(qtbot):
    tree, model, batcher = _live({"./A/x": "1", "./A/y": "2"})
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


def test_a_leaf_changed_several_times_in_one_batch_shows_the_values_it_went_through(qtbot):
    """A FUMO State going 30, 40, 50, 60 between two flushes: the row shows 60, flashing, and the
    values before it beside it (painted by ui.value_trail); secrets stay masked there too."""
    from PySide6.QtCore import Qt

    from ui.tree_model import FLASH_SECONDS, TRAIL, TrailRole
    from ui.value_trail import ValueTrailDelegate, trail_text

    tree, model, batcher = _live({"./F/State": "10", "./F/Password": "old-secret"})
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setItemDelegateForColumn(1, ValueTrailDelegate(view))
    model.fetchMore(model.ensure_path("./F"))
    for value in ("30", "40", "50", "60"):
        tree.replace("./F/State", value)
    tree.replace("./F/Password", "new-secret")
    batcher.flush()
    state = model.index_for("./F/State").siblingAtColumn(1)
    assert state.data() == "60" and state.data(Qt.ItemDataRole.BackgroundRole) is not None
    assert state.data(TrailRole) == ["10", "30", "40", "50"][-TRAIL:]
    assert trail_text(state.data(TrailRole)) == "was 10 → 30 → 40 → 50"
    assert model.index_for("./F/State").data(TrailRole) == []  # the Name column has none
    assert "old-secret" not in model.index_for("./F/Password").siblingAtColumn(1).data(TrailRole)[0]
    view.show()
    qtbot.waitExposed(view)
    view.grab()  # the delegate paints the trail without raising
    for item in model._flashing:  # the flash is over: the trail goes with it
        item.flash_at -= FLASH_SECONDS
    assert state.data(TrailRole) == []
    batcher.close()
