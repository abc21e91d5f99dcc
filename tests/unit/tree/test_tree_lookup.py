"""The device's own reads without ACL: ``descend``/``Tree.lookup`` (one walk per subtree for readers of
many leaves) and ``Tree.value``; a tree with all-zero URI limits checks none."""

from __future__ import annotations

import pytest

from emulator.tree import Tree, TreeError
from emulator.tree import uri as uris
from emulator.tree.node import descend


@pytest.fixture
def tree() -> Tree:
    t = Tree()
    t.set_node("./A", format="node")
    t.set_node("./A/B", "leaf")
    t.set_node("./A/C%2FD", "quoted")  # a segment holding '/', as a URI spells it
    return t


def test_descend_finds_below_a_node_and_stops_at_leaves(tree):
    a = tree.lookup("./A")
    assert a is not None and a.children is not None
    leaf = descend(a, ("B",))
    assert leaf is not None and leaf.value == "leaf"
    assert descend(a, ("B", "X")) is None  # through a leaf
    assert descend(a, ("Missing",)) is None
    assert descend(a, ()) is a
    quoted = descend(a, ("C/D",))
    assert quoted is not None and quoted.value == "quoted"


def test_lookup_reads_as_value_does(tree):
    found = tree.lookup("./A/B")
    assert found is not None and found.value == tree.value("./A/B") == "leaf"
    assert tree.lookup(("A", "B")) is found
    assert tree.lookup("./A/Nope") is None
    assert tree.value("./A/Nope", "dflt") == "dflt"
    assert tree.value("./A/B/Deeper", "dflt") == "dflt"  # past a leaf: missing, not an error
    assert tree.value("./A", "dflt") is None  # an interior node has no value
    with pytest.raises(TreeError):
        tree.lookup("./A//B")  # malformed: 400, as every lookup by URI


def test_value_past_the_uri_limits_is_the_default():
    t = Tree(limits=uris.UriLimits(max_depth=2))
    t.set_node("./A", format="node")
    t.set_node("./A/B", "x")
    assert t.value("./A/B") == "x"
    assert t.value("./A/B/C", "dflt") == "dflt"
    with pytest.raises(TreeError) as e:
        t.lookup("./A/B/C")
    assert e.value.status == 414


def test_zero_limits_are_no_limits():
    """A profile's ``MaxDepth = 0`` etc. (no limit): the tree holds NO_LIMITS itself, so a lookup
    skips the check (before, each lookup ran the check and found nothing to enforce)."""
    assert Tree(limits=uris.UriLimits(0, 0, 0)).limits is uris.NO_LIMITS
    limited = uris.UriLimits(0, 0, 8)
    t = Tree(limits=limited)
    assert t.limits is limited
    assert t.fork().limits is limited
    assert t.value("./ABCDEFGHI", "dflt") == "dflt"
    with pytest.raises(TreeError) as e:
        t.lookup("./ABCDEFGHI")
    assert e.value.status == 414
