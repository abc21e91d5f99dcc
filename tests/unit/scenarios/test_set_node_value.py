"""A scenario's set_node writes DM text into the tree, whatever TOML type the value has.

The runner once stored TOML integers and booleans as Python objects: the tree then held ``5`` instead
of ``"5"`` and the next TNDS export (or a Size) failed on it.
"""

from __future__ import annotations

import pytest

from emulator.scenarios.runner import node_value
from emulator.tree import Tree
from emulator.tree.tnds import export_tnds


@pytest.mark.parametrize(("value", "fmt", "text"), [
    (5, "int", "5"), ("7", "int", "7"), (4.0, "int", "4"),
    (1.5, "float", "1.5"), ("2", "float", "2.0"), (3, "float", "3.0"),
    (True, "bool", "true"), (False, "bool", "false"), ("TRUE", "bool", "true"), ("no", "bool", "false"),
    (3, "chr", "3"), (True, "chr", "true"), ("x", "chr", "x"), (None, "int", None),
])
def test_values_become_the_text_of_their_format(value, fmt, text):
    assert node_value(value, fmt) == text


@pytest.mark.parametrize(("value", "fmt"), [(1.5, "int"), ("x", "int"), (True, "int"), ("a", "float"),
                                            (False, "float")])
def test_a_value_that_is_not_of_the_format_is_refused(value, fmt):
    with pytest.raises(ValueError):
        node_value(value, fmt)


def test_the_tree_holds_text_and_exports_after_a_set_node():
    tree = Tree()
    tree.add("./Count", "1", format="int")
    tree.add("./On", "false", format="bool")
    tree.replace("./Count", node_value(5, "int"))
    tree.replace("./On", node_value(True, "bool"))
    assert (tree.value("./Count"), tree.value("./On")) == ("5", "true")
    xml = export_tnds(tree).decode("utf-8")
    assert "<Value>5</Value>" in xml and "<Value>true</Value>" in xml
