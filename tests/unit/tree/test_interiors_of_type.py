"""``Tree.interiors_of_type`` answers shared subtrees from a per-process memo (by node): every answer
must equal a full walk (``interior_types``), whatever changed since the memo was made: a fork's own
change, a change in a transaction and its rollback or commit, a rename, a delete, a full memo."""

from __future__ import annotations

import pytest

import emulator.tree.tree as tree_module
from emulator.tree import Tree

MOID = "urn:oma:mo:test:1.0"


def _walk(tree: Tree, base: str = "./DM2") -> list[tuple[str, ...]]:
    return [path for path, typ in tree.interior_types(base) if typ == MOID]


def _check(tree: Tree) -> list[tuple[str, ...]]:
    found = tree.interiors_of_type("./DM2", MOID)
    assert found == _walk(tree)
    return found


@pytest.fixture
def template() -> Tree:
    t = Tree()
    for name in ("a", "b", "c"):
        t.set_node(f"./DM2/{name}/inst", format="node", type=MOID)
        t.set_node(f"./DM2/{name}/inst/Leaf", "v")
        t.set_node(f"./DM2/{name}/other", format="node", type="urn:oma:mo:other:1.0")
    return t


def test_forks_share_the_memo_but_not_each_others_changes(template):
    one, two = template.fork(), template.fork()
    assert _check(one) == _check(two) == [("DM2", "a", "inst"), ("DM2", "b", "inst"), ("DM2", "c", "inst")]
    one.set_node("./DM2/b/inst/nested", format="node", type=MOID)  # inside a subtree the memo answered
    assert ("DM2", "b", "inst", "nested") in _check(one)
    assert ("DM2", "b", "inst", "nested") not in _check(two)
    two.delete("./DM2/a")
    assert _check(two) == [("DM2", "b", "inst"), ("DM2", "c", "inst")]
    assert len(_check(one)) == 4 and len(_check(template)) == 3


def test_a_rollback_leaves_no_stale_answer(template):
    t = template.fork()
    t.set_node("./DM2/own", format="node")  # nodes this tree owns (they may change in place)
    t.set_node("./DM2/own/x", format="node")
    t.begin()
    assert ("DM2", "own", "x") not in _check(t)  # asked while its nodes belong to the saved state
    t.set_node("./DM2/own/x/in-tx", format="node", type=MOID)
    assert ("DM2", "own", "x", "in-tx") in _check(t)
    t.rollback()
    assert ("DM2", "own", "x", "in-tx") not in _check(t)
    t.set_node("./DM2/own/x", format="node", type=MOID)  # changed in place now: the tree owns it again
    assert ("DM2", "own", "x") in _check(t)
    t.begin()  # its nodes belong to the saved state again: an answer kept from the first tx would be stale
    assert ("DM2", "own", "x") in _check(t)
    t.commit()


def test_a_commit_then_later_changes(template):
    t = template.fork()
    with t.transaction():
        t.set_node("./DM2/new/inst", format="node", type=MOID)
    assert ("DM2", "new", "inst") in _check(t)  # its nodes are frozen now: the memo may answer them
    t.replace_prop("./DM2/new/inst", "Name", "renamed")
    t.set_node("./DM2/new/inst2", format="node", type=MOID)
    found = _check(t)
    assert ("DM2", "new", "renamed") in found and ("DM2", "new", "inst2") in found
    assert ("DM2", "new", "inst") not in found
    t.set_node("./DM2/new/inst2", format="node", type="urn:oma:mo:other:1.0")  # its Type changed
    assert ("DM2", "new", "inst2") not in _check(t)


def test_a_full_memo_is_emptied_and_answers_stay_right(template, monkeypatch):
    monkeypatch.setattr(tree_module, "TYPED_MAX", 2)
    monkeypatch.setattr(tree_module, "_TYPED", {})
    forks = [template.fork() for _ in range(5)]
    for i, t in enumerate(forks):
        t.set_node(f"./DM2/c/inst/n{i}", format="node", type=MOID)
        assert ("DM2", "c", "inst", f"n{i}") in _check(t)
        assert len(tree_module._TYPED) <= 2
    assert _check(template) == [("DM2", "a", "inst"), ("DM2", "b", "inst"), ("DM2", "c", "inst")]


def test_missing_or_leaf_base_and_the_base_itself():
    t = Tree()
    assert t.interiors_of_type("./DM2", MOID) == []
    t.set_node("./DM2", "a leaf")
    assert t.interiors_of_type("./DM2", MOID) == []
    t.delete("./DM2")
    t.set_node("./DM2", format="node", type=MOID)
    assert t.fork().interiors_of_type("./DM2", MOID) == [("DM2",)]
