"""Get with ?list= and ?prop= (PROTOCOL.md 3.6, 3.3): what each query returns, ACL filtering, 406s."""

from __future__ import annotations

import pytest
from lxml import etree

from emulator.tree import Tree, TreeError
from emulator.tree.query import QueryResult, ResultItem, parse_list, run_query
from emulator.tree.tnds import SELECTABLE, TNDS_XML

NS = "{syncml:dmddf1.2}"


def status_of(fn, *args, **kwargs) -> int:
    try:
        fn(*args, **kwargs)
    except TreeError as e:
        return e.status
    return 200


@pytest.fixture
def tree() -> Tree:
    t = Tree(clock=lambda: 1_000_000_000.0)
    t.set_node("./App", format="node", type="urn:oma:mo:app:1.0", acl="Get=s1+s2&Replace=s1")
    t.set_node("./App/Name", "demo")
    t.set_node("./App/Port", "8080", format="int")
    t.set_node("./App/Key", b"\x01\x02", format="bin", type="application/octet-stream")
    t.set_node("./App/Private", format="node", acl="Get=s1")
    t.set_node("./App/Private/Token", "t0k3n")
    t.set_node("./App/Private/Public", "pub", acl="Get=s2")
    return t


def test_plain_get_leaf_and_interior(tree: Tree):
    assert run_query(tree, "./App/Port", by="s1") == QueryResult((ResultItem("./App/Port", "8080", "int", "text/plain"),))
    (item,) = run_query(tree, "./App", by="s1").items
    assert item == ("./App", "Name/Port/Key/Private", "node", "urn:oma:mo:app:1.0")  # PROTOCOL 3.2
    assert status_of(run_query, tree, "./App/Nope", by="s1") == 404
    assert status_of(run_query, tree, "./App/Name", by="s3") == 425


def test_prop(tree: Tree):
    (item,) = run_query(tree, "./App?prop=Type", by="s2").items
    assert item.path == "./App?prop=Type" and item.value == "urn:oma:mo:app:1.0"
    assert run_query(tree, "./App/Key?prop=Size", by="s1").items[0].value == "2"
    assert run_query(tree, "./App/Name?prop=ACL", by="s1").items[0].value == ""  # empty, not inherited
    assert status_of(run_query, tree, "./App?prop=Colour", by="s1") == 406
    assert status_of(run_query, tree, "./App/Private?prop=ACL", by="s2") == 425


def test_struct_lists_readable_nodes_without_data(tree: Tree):
    result = run_query(tree, "./App?list=Struct", by="s2")
    assert not result.is_document
    assert [i.path for i in result.items] == ["./App", "./App/Name", "./App/Port", "./App/Key", "./App/Private/Public"]
    assert all(i.value is None for i in result.items)
    assert result.items[2] == ("./App/Port", None, "int", "text/plain")
    everything = run_query(tree, "./App?list=Struct", by="s1")
    assert "./App/Private/Token" in [i.path for i in everything.items]
    assert "./App/Private/Public" not in [i.path for i in everything.items]  # its own ACL excludes s1


def test_structdata_carries_leaf_values(tree: Tree):
    items = {i.path: i for i in run_query(tree, "./App?list=StructData", by="s1").items}
    assert items["./App/Name"].value == "demo"
    assert items["./App/Key"].value == b"\x01\x02" and items["./App/Key"].format == "bin"
    assert items["./App"].value is None and items["./App/Private"].value is None
    assert items["./App/Private/Token"].value == "t0k3n"


def test_tnds_document(tree: Tree):
    result = run_query(tree, "./App?list=TNDS", by="s2")
    assert result.is_document and result.mime == TNDS_XML == "application/vnd.syncml.dmtnds+xml"
    root = etree.fromstring(result.document)
    names = [n.findtext(f"{NS}NodeName") for n in root.iter(f"{NS}Node")]
    assert names == ["App", "Name", "Port", "Key", "Public"]  # Private and Token hidden from s2


def test_tnds_property_selection(tree: Tree):
    only = etree.fromstring(run_query(tree, "./App?list=TNDS+Value+ACL", by="s1").document)
    for rt in only.iter(f"{NS}RTProperties"):
        assert {etree.QName(e).localname for e in rt} == {"ACL"}
    assert [v.text for v in only.iter(f"{NS}Value")] == ["demo", "8080", "AQI=", "t0k3n"]
    allbut = etree.fromstring(run_query(tree, "./App?list=TNDS-Format-Value", by="s1").document)
    assert allbut.find(f".//{NS}Format") is None and allbut.find(f".//{NS}Value") is None
    assert allbut.find(f".//{NS}ACL") is not None and allbut.find(f".//{NS}VerNo") is not None


@pytest.mark.parametrize(
    "query",
    ["TNDS+Value-ACL", "TNDS-ACL+Value", "TNDS+Colour", "TNDS+", "TNDS-", "TNDS+value", "Structure", "struct",
     "TNDSX", "StructData+Value"],
)
def test_bad_list_queries_are_406(tree: Tree, query: str):
    assert status_of(run_query, tree, f"./App?list={query}", by="s1") == 406


def test_unknown_query_field_and_unreadable_target(tree: Tree):
    assert status_of(run_query, tree, "./App?depth=2", by="s1") == 406
    assert status_of(run_query, tree, "./App/Private?list=Struct", by="s2") == 425
    assert status_of(run_query, tree, "./App/Private?list=TNDS", by="s2") == 425
    assert status_of(run_query, tree, "./Missing?list=StructData", by="s2") == 404


def test_parse_list():
    assert parse_list("TNDS") == ("TNDS", None)
    assert parse_list("TNDS+Value+ACL") == ("TNDS", frozenset({"Value", "ACL"}))
    assert parse_list("TNDS-Format") == ("TNDS", SELECTABLE - {"Format"})
    assert {"ACL", "Format", "Name", "Size", "Title", "TStamp", "Type", "VerNo", "Value"} == SELECTABLE


def test_device_itself_sees_everything(tree: Tree):
    paths = [i.path for i in run_query(tree, "./App?list=Struct", by=None).items]
    assert "./App/Private/Token" in paths and "./App/Private/Public" in paths
