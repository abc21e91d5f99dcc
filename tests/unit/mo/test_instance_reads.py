"""The DM 2.0 read path's tree reads (one walk per question, no NodeInfo per step): the instance index,
the effective ACL, the views ClientURI resolution reads through, and the one-field Account copy a
device makes after each DM 1.2 session. Each answer must be the one the slower reads gave."""

from __future__ import annotations

import dataclasses

import pytest

from emulator.mo import instances as inst
from emulator.mo.accounts import Account, with_field
from emulator.mo.authorities import Conflicts, ManagedTree
from emulator.tree import Acl, Tree, TreeError
from emulator.tree.clienturi import MISSING

MOID = "urn:oma:mo:moid:1.0"


def test_find_instances_pre_order_first_name_wins_nested_included():
    t = Tree()
    t.set_node("./DM2", format="node")
    t.set_node("./DM2/a/x", format="node", type=MOID)
    t.set_node("./DM2/a/x/y", format="node", type=MOID)  # nested in an instance of the same MO
    t.set_node("./DM2/b/x", format="node", type=MOID)  # the same MIID again: the first in tree order wins
    t.set_node("./DM2/c", "a leaf", type=MOID)  # a leaf is never an instance
    assert inst.find_instances(t, MOID) == {"x": ("DM2", "a", "x"), "y": ("DM2", "a", "x", "y")}
    t.set_node("./DM2", format="node", type=MOID)  # the base itself counts, by its own name
    assert list(inst.find_instances(t, MOID)) == ["DM2", "x", "y"]
    t.delete("./DM2")
    t.set_node("./DM2", "now a leaf")
    assert inst.find_instances(t, MOID) == {}


def test_effective_acl_is_the_nearest_own_acl():
    t = Tree()
    t.set_node("./A", format="node", acl="Get=s1")
    t.set_node("./A/B", format="node")
    t.set_node("./A/B/C", "v", acl="Replace=s2")
    assert t.effective_acl(()) == Acl.parse("Add=*&Get=*")  # the root's default
    assert t.effective_acl("./A/B") == Acl.parse("Get=s1")
    assert t.effective_acl(("A", "B", "C")) == Acl.parse("Replace=s2")
    assert inst.effective_acl(t, ("A", "B")) == Acl.parse("Get=s1")
    with pytest.raises(TreeError) as e:
        t.effective_acl("./A/Nope")
    assert e.value.status == 404


def test_a_view_reads_the_value_as_it_was_before_the_servers_read():
    """A server's read may make the device measure first (DiagMon, through the session's tree): the
    value a ClientURI constraint compares is the one the view found, then the read is checked."""
    t = Tree()
    t.set_node("./DM2", format="node", acl="Get=srv")
    t.set_node("./DM2/I", format="node", type=MOID)
    t.set_node("./DM2/I/Level", b"41", format="bin")
    t.set_node("./DM2/I/Secret", "x")
    reads: list[object] = []

    def measure(uri: object) -> None:
        reads.append(uri)
        t.replace("./DM2/I/Level", b"42")

    managed = ManagedTree(t, server_id="srv", priority=0, session="s1", conflicts=Conflicts(), on_read=measure)
    view = inst.TreeInstanceView(managed, ("DM2", "I"), "srv")  # type: ignore[arg-type]
    assert view.value(("Level",)) == "41" and reads == [("DM2", "I", "Level")]
    assert view.value(("Secret",)) is None  # a secret never leaves the device, not even to nv
    assert view.value(("Nope",)) is MISSING and view.child_names(("Nope",)) is None
    assert view.value(()) is None and view.child_names(()) == ["Level", "Secret"]
    assert inst.TreeInstanceView(t, ("DM2", "I")).value(("Secret",)) == "x"  # the device itself


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Account)])
def test_with_field_is_replace_of_one_field(name):
    acc = Account("srv", "dm12", "http://s", name="n", client_nonce=b"c", perms=("m",), extra={"k": "v"},
                  priority=3, verify=False)
    value = {"priority": 9, "verify": True, "strict": True, "perms": ("p", "q"), "extra": {"x": "y"}}.get(
        name, b"new" if name.endswith("nonce") or name.startswith("noti_") else "new")
    assert with_field(acc, name, value) == dataclasses.replace(acc, **{name: value})
    assert getattr(with_field(acc, name, value), name) == value
