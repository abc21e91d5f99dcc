"""The management tree: status codes, ACL rules of PROTOCOL.md 3.4, transactions, forks, events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.tree import Acl, Tree, TreeError, TreeEvent
from emulator.tree import uri as uris


def status_of(fn, *args, **kwargs) -> int:
    try:
        return fn(*args, **kwargs)
    except TreeError as e:
        return e.status


@pytest.fixture
def tree() -> Tree:
    t = Tree(clock=lambda: 1_000_000_000.0)
    t.set_node("./DevInfo", format="node", type="urn:oma:mo:oma-dm-devinfo:1.0", permanent=True,
               acl="Get=*")
    t.set_node("./DevInfo/DevId", "IMEI:490154203237518", permanent=True)
    t.set_node("./DevInfo/Man", "Acme", permanent=True)
    t.set_node("./App", format="node", acl="Add=srv1&Get=srv1+srv2&Replace=srv1&Delete=srv1")
    t.set_node("./App/Setting", "on")
    return t


def test_uri_split_and_join_round_trip():
    assert uris.split(".") == ()
    assert uris.split("./A/B") == ("A", "B") == uris.split("A/B")
    assert uris.join(("A", "B")) == "./A/B"
    assert uris.split("./A%2FB/C") == ("A/B", "C")
    assert uris.split(uris.join(("A/B", "C"))) == ("A/B", "C")
    for bad in ("./A/", "/A", "./A//B", "./A/../B", ""):
        with pytest.raises(TreeError) as e:
            uris.split(bad)
        assert e.value.status == 400


def test_uri_limits_answer_414():
    t = Tree(limits=uris.UriLimits(max_depth=2, max_seg_len=4))
    assert status_of(t.add, "./A/B/C") == 414
    assert status_of(t.add, "./ABCDE") == 414
    assert t.add("./A/B") == 200


def test_query_parsing():
    assert uris.parse_query("./A?prop=ACL") == uris.Query("./A", prop="ACL")
    assert uris.parse_query("./A?list=TNDS+Value").list == "TNDS+Value"
    assert status_of(uris.parse_query, "./A?foo=1") == 406


def test_get_leaf_and_interior(tree: Tree):
    assert tree.get("./DevInfo/DevId", by="srv2").value == "IMEI:490154203237518"
    assert tree.get("./DevInfo", by="srv2").children == ("DevId", "Man")
    assert status_of(tree.get, "./DevInfo/Nope", by="srv2") == 404


def test_acl_inheritance_and_denial(tree: Tree):
    # ./App/Setting has an empty ACL: it inherits ./App's ACL, not the root's
    assert tree.get("./App/Setting", by="srv2").value == "on"
    assert status_of(tree.get, "./App/Setting", by="srv3") == 425
    assert status_of(tree.replace, "./App/Setting", "off", by="srv2") == 425
    assert tree.replace("./App/Setting", "off", by="srv1") == 200
    assert tree.value("./App/Setting") == "off"
    # Get on an empty ACL returns empty, not the inherited value
    assert tree.get_prop("./App/Setting", "ACL", by="srv1") == ""


def test_star_grants_everyone_and_root_default(tree: Tree):
    assert tree.add("./Anything", "x", by="anyone") == 200  # root Add=*
    assert tree.get("./DevInfo/Man", by="someone").value == "Acme"


def test_add_statuses(tree: Tree):
    assert status_of(tree.add, "./App/Setting", "x", by="srv1") == 418
    assert status_of(tree.add, "./App/Setting/Child", "x", by="srv1") == 405  # under a leaf
    assert status_of(tree.add, "./App/New", "x", by="srv2") == 425
    assert status_of(tree.add, ".", by="srv1") == 418
    assert tree.add("./App/Deep/Er/Leaf", "v", by="srv1") == 200  # implicit interior adds
    assert tree.get("./App/Deep/Er", by="srv1").children == ("Leaf",)
    assert tree.get("./App/Deep", by="srv1").format == "node"


def test_interior_add_without_parent_replace_owns_new_node():
    t = Tree()
    t.set_node("./Box", format="node", acl="Add=a+b&Get=a+b&Replace=a")
    t.add("./Box/Mine", format="node", by="b")
    assert Acl.parse(t.get_prop("./Box/Mine", "ACL")) == Acl.parse("Add=b&Delete=b&Replace=b")
    t.add("./Box/Theirs", format="node", by="a")  # a has Replace on the parent: ACL stays empty
    assert t.get_prop("./Box/Theirs", "ACL") == ""


def test_replace_statuses(tree: Tree):
    assert status_of(tree.replace, "./App/Missing", "x", by="srv1") == 404
    assert status_of(tree.replace, "./App", "x", by="srv1") == 405
    assert status_of(tree.replace, "./DevInfo/Man", "x", format="int") == 405  # permanent format


def test_delete_statuses(tree: Tree):
    assert status_of(tree.delete, ".", by="srv1") == 405
    assert status_of(tree.delete, "./DevInfo/Man", by="srv1") == 405  # permanent
    assert status_of(tree.delete, "./App/Setting", by="srv2") == 425
    assert status_of(tree.delete, "./App/Missing", by="srv1") == 404
    tree.add("./App/Sub/Leaf", "v", by="srv1")
    assert tree.delete("./App/Sub", by="srv1") == 200
    assert not tree.exists("./App/Sub/Leaf")


def test_acl_replace_rules_leaf_vs_interior():
    t = Tree()
    t.set_node("./P", format="node", acl="Get=a+b&Replace=a")
    t.set_node("./P/I", format="node", acl="Get=b&Replace=b")
    t.set_node("./P/L", "v", acl="Get=b&Replace=b")
    # interior: own Replace covers its ACL
    assert t.replace_prop("./P/I", "ACL", "Get=b&Replace=b&Add=b", by="b") == 200
    # leaf: own Replace does NOT cover its ACL; the parent's Replace does
    assert status_of(t.replace_prop, "./P/L", "ACL", "Get=b", by="b") == 425
    assert t.replace_prop("./P/L", "ACL", "Get=a&Replace=a", by="a") == 200
    # parent rights alone give no direct access to the child's value
    assert status_of(t.get, "./P/I", by="a") == 425
    assert status_of(t.replace_prop, "./P/L", "ACL", "Get=&x", by="a") == 400


def test_properties(tree: Tree):
    assert tree.get_prop("./DevInfo/DevId", "Size") == str(len("IMEI:490154203237518"))
    assert tree.get_prop("./DevInfo", "Type") == "urn:oma:mo:oma-dm-devinfo:1.0"
    assert status_of(tree.get_prop, "./DevInfo", "Bogus") == 406
    assert status_of(tree.get_prop, "./DevInfo", "Size") == 406
    assert status_of(tree.replace_prop, "./App/Setting", "Format", "int", by="srv1") == 405
    verno = int(tree.get_prop("./App/Setting", "VerNo"))
    tree.replace("./App/Setting", "x", by="srv1")
    assert int(tree.get_prop("./App/Setting", "VerNo")) == verno + 1
    assert tree.get_prop("./App/Setting", "TStamp") == "20010909T014640Z"
    assert tree.replace_prop("./App/Setting", "Title", "The setting", by="srv1") == 200
    assert tree.get_prop("./App/Setting", "Title") == "The setting"


def test_rename(tree: Tree):
    tree.add("./App/Other", "o", by="srv1")
    assert status_of(tree.replace_prop, "./App/Setting", "Name", "Other", by="srv1") == 418
    assert status_of(tree.replace_prop, "./DevInfo/Man", "Name", "X") == 405
    assert tree.replace_prop("./App/Setting", "Name", "Renamed", by="srv1") == 200
    assert tree.children("./App") == ["Renamed", "Other"]


def test_copy(tree: Tree):
    assert tree.copy("./App/Setting", "./App/Copy", by="srv1") == 200
    assert tree.value("./App/Copy") == "on"
    assert status_of(tree.copy, "./App", "./App/X", by="srv1") == 405
    assert status_of(tree.copy, "./App/Setting", "./App/Y", by="srv3") == 425


def test_exec_handler_and_statuses(tree: Tree):
    calls = []
    tree.set_node("./App/Reboot", None, format="null")
    tree.on_exec("./App/Reboot", lambda t, req: calls.append((req.data, req.by)) or 202)
    tree.replace_prop("./App", "ACL", "Add=srv1&Get=srv1&Replace=srv1&Exec=srv1")
    assert tree.exec("./App/Reboot", "now", by="srv1") == 202
    assert calls == [("now", "srv1")]
    assert status_of(tree.exec, "./App/Reboot", by="srv2") == 425
    assert status_of(tree.exec, "./App/Setting", by="srv1") == 405  # no behaviour behind it
    tree.set_node("./Ops/a/Run", None, format="null")
    tree.on_exec("./Ops/*/Run", lambda t, req: 200)
    assert tree.exec("./Ops/a/Run") == 200


def test_events_carry_path_kind_old_new_and_actor(tree: Tree):
    seen: list[TreeEvent] = []
    tree.subscribe(seen.append)
    tree.replace("./App/Setting", "off", by="srv1")
    tree.add("./App/N", "1", by="srv1")
    tree.delete("./App/N", by="srv1")
    assert [(e.kind, e.path, e.old, e.new, e.by) for e in seen] == [
        ("replace", "./App/Setting", "on", "off", "srv1"),
        ("add", "./App/N", None, "1", "srv1"),
        ("delete", "./App/N", "1", None, "srv1"),
    ]


def snapshot(t: Tree) -> list:
    return [(i.path, i.value, i.format, i.type, i.acl, i.children, i.title, i.verno) for i in t.walk()]


def test_transaction_rollback_restores_exactly(tree: Tree):
    before = snapshot(tree)
    seen: list[TreeEvent] = []
    tree.subscribe(seen.append)
    with pytest.raises(TreeError), tree.transaction():
        tree.replace("./App/Setting", "changed", by="srv1")
        tree.add("./App/New/Deep", "x", by="srv1")
        tree.replace_prop("./App", "ACL", "Get=*", by="srv1")
        tree.delete("./App/Missing", by="srv1")  # 404 -> whole transaction rolls back
    assert snapshot(tree) == before
    assert seen == []  # no event for what did not apply


def test_transaction_commit_emits_events_once(tree: Tree):
    seen: list[TreeEvent] = []
    tree.subscribe(seen.append)
    with tree.transaction():
        tree.replace("./App/Setting", "a", by="srv1")
        with pytest.raises(TreeError), tree.transaction():  # nested: inner rolls back alone
            tree.replace("./App/Setting", "b", by="srv1")
            tree.get("./Nope")
        assert seen == []
    assert [e.new for e in seen] == ["a"]
    assert tree.value("./App/Setting") == "a"


def test_fork_shares_until_changed(tree: Tree):
    twin = tree.fork()
    twin.replace("./App/Setting", "twin")
    tree.replace("./DevInfo/Man", "Template")
    assert tree.value("./App/Setting") == "on"
    assert twin.value("./App/Setting") == "twin"
    assert twin.value("./DevInfo/Man") == "Acme"
    # untouched subtrees are the very same objects
    assert twin.root.children["DevInfo"].children["DevId"] is tree.root.children["DevInfo"].children["DevId"]


def test_acl_grammar():
    acl = Acl.parse("Replace=b+a&Get=*")
    assert acl.text == "Get=*&Replace=a+b"
    assert acl.allows("Get", "zzz") and acl.allows("Replace", "a") and not acl.allows("Delete", "a")
    assert acl.without_server("a").text == "Get=*&Replace=b"
    assert acl.without_server("a").without_server("b").text == "Get=*"
    for bad in ("Get", "Fly=a", "Get=a b", "Get=", "Get=a&&Add=b"):
        assert status_of(Acl.parse, bad) == 400


names = st.sampled_from(["a", "b", "c"])
servers = st.sampled_from(["s1", "s2", None])
ops = st.lists(
    st.tuples(st.sampled_from(["add", "addnode", "replace", "delete", "acl"]),
              st.lists(names, min_size=1, max_size=3), servers, st.sampled_from(["Get=s1", "Replace=s2&Get=*", ""])),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_random_operations_keep_tree_consistent_and_rollback_exact(seq):
    t = Tree()
    t.set_node("./X", format="node", acl="Add=*&Get=*&Replace=s1&Delete=s1")
    before = snapshot(t)
    t.begin()
    for kind, segs, by, acl in seq:
        path = "./X/" + "/".join(segs)
        try:
            if kind == "add":
                t.add(path, "v", by=by)
            elif kind == "addnode":
                t.add(path, format="node", by=by)
            elif kind == "replace":
                t.replace(path, "w", by=by)
            elif kind == "delete":
                t.delete(path, by=by)
            else:
                t.replace_prop(path, "ACL", acl, by=by)
        except TreeError as e:
            assert e.status in (400, 404, 405, 418, 425)
    for info in t.walk():  # leaves have no children, interior nodes no value
        assert (info.children is None) or info.value is None
    t.rollback()
    assert snapshot(t) == before


def test_interior_types_lists_interior_nodes_in_tree_order(tree: Tree):
    tree.set_node("./App/Sub", format="node", type="urn:x:1.0")
    assert list(tree.interior_types()) == [
        ((), ""), (("DevInfo",), "urn:oma:mo:oma-dm-devinfo:1.0"), (("App",), ""), (("App", "Sub"), "urn:x:1.0"),
    ]
    assert list(tree.interior_types("./Missing")) == []
