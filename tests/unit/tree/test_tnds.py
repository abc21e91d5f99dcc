"""TNDS export/import (PROTOCOL.md 3.10, 2.4): document shape, round trips, ACLs, Add/Replace semantics,
hostile and malformed input."""

from __future__ import annotations

import base64
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from emulator.errors import DecodeError, EmulatorError, FileFormatError, UnsupportedError
from emulator.tree import Tree, TreeError, TreeEvent
from emulator.tree import uri as uris
from emulator.tree.tnds import TNDS_XML, export_tnds, import_tnds

NS = "{syncml:dmddf1.2}"


def status_of(fn, *args, **kwargs) -> int:
    try:
        fn(*args, **kwargs)
    except EmulatorError as e:
        return e.status
    return 200


def snapshot(t: Tree) -> list:
    return [
        (i.path, i.value, i.format, i.type, i.acl, i.title, i.children, i.tstamp, i.verno, i.permanent)
        for i in t.walk()
    ]


def counting_clock():
    ticks = itertools.count(1_000_000_000)
    return lambda: float(next(ticks))


@pytest.fixture
def tree() -> Tree:
    t = Tree(clock=counting_clock())
    t.set_node("./DevInfo", format="node", type="urn:oma:mo:oma-dm-devinfo:1.0", acl="Get=*")
    t.set_node("./DevInfo/DevId", "IMEI:490154203237518")
    t.set_node("./DevInfo/Man", "Acme & <Sons>")
    t.set_node("./Vendor", format="node", acl="Add=srv1&Get=srv1+srv2&Replace=srv1&Delete=srv1")
    t.set_node("./Vendor/ISP", format="node", type="com.companyx/1.2/ISP")
    t.set_node("./Vendor/ISP/GWName", "gw.yyy.se")
    t.set_node("./Vendor/ISP/Cert", b"\x00\xff\x10binary", format="bin", type="application/pkix-cert")
    t.set_node("./Vendor/ISP/Empty", "")
    t.set_node("./Vendor/ISP/Nothing", None, format="null")
    t.set_node("./Vendor/ISP/Lines", "a\r\nb\tc ", type="text/plain")
    t.replace_prop("./Vendor/ISP/GWName", "Title", "Gateway \u00e9\u20ac")  # stamps TStamp and VerNo
    t.replace("./Vendor/ISP/GWName", "gw2.yyy.se")
    return t


def parse(doc: bytes) -> etree._Element:
    return etree.fromstring(doc)


def nodes_by_name(root: etree._Element) -> dict[str, etree._Element]:
    return {n.findtext(f"{NS}NodeName"): n for n in root.iter(f"{NS}Node")}


# ------------------------------------------------------------------------------------------ document shape


def test_document_shape_follows_tnds_and_the_dtd(tree: Tree):
    root = parse(export_tnds(tree))
    assert root.tag == f"{NS}MgmtTree"
    assert root[0].tag == f"{NS}VerDTD" and root[0].text == "1.2"
    nodes = nodes_by_name(root)
    assert set(nodes) == {"DevInfo", "DevId", "Man", "Vendor", "ISP", "GWName", "Cert", "Empty", "Nothing", "Lines"}
    # top-level nodes are the root's children, without Path when the whole tree is exported
    assert [n.findtext(f"{NS}NodeName") for n in root.findall(f"{NS}Node")] == ["DevInfo", "Vendor"]
    assert root.find(f"{NS}Node/{NS}Path") is None
    order = ["ACL", "Format", "Name", "Size", "Title", "TStamp", "Type", "VerNo"]  # DTD RTProperties order
    for name, node in nodes.items():
        rt = node.find(f"{NS}RTProperties")
        assert rt is not None, f"RTProperties is mandatory on {name}"
        tags = [etree.QName(e).localname for e in rt]
        assert tags == sorted(tags, key=order.index)
        fmt = rt.find(f"{NS}Format")
        assert len(fmt) == 1 and fmt.text is None and len(fmt[0]) == 0  # <Format><chr/></Format>
        type_child = rt.find(f"{NS}Type")[0]
        if etree.QName(fmt[0]).localname == "node":
            assert etree.QName(type_child).localname == "DDFName"
            assert node.find(f"{NS}Value") is None and rt.find(f"{NS}Size") is None
        else:
            assert etree.QName(type_child).localname == "MIME"
    isp = nodes["ISP"].find(f"{NS}RTProperties")
    assert isp.findtext(f"{NS}Type/{NS}DDFName") == "com.companyx/1.2/ISP"
    assert nodes["DevInfo"].findtext(f"{NS}RTProperties/{NS}ACL") == "Get=*"
    gw = nodes["GWName"]
    assert gw.findtext(f"{NS}Value") == "gw2.yyy.se"
    assert gw.findtext(f"{NS}RTProperties/{NS}Title") == "Gateway \u00e9\u20ac"
    assert gw.findtext(f"{NS}RTProperties/{NS}VerNo") == "2"
    assert gw.findtext(f"{NS}RTProperties/{NS}TStamp") == "20010909T014641Z"  # second tick, ISO 8601 basic
    assert gw.findtext(f"{NS}RTProperties/{NS}Size") == str(len("gw2.yyy.se"))
    # special characters survive an independent XML parser exactly
    assert nodes["Man"].findtext(f"{NS}Value") == "Acme & <Sons>"
    assert nodes["Lines"].findtext(f"{NS}Value") == "a\r\nb\tc "
    # bin: Format bin and the value base64; Size counts decoded bytes (PROTOCOL 3.3)
    cert = nodes["Cert"]
    assert etree.QName(cert.find(f"{NS}RTProperties/{NS}Format")[0]).localname == "bin"
    assert base64.b64decode(cert.findtext(f"{NS}Value")) == b"\x00\xff\x10binary"
    assert cert.findtext(f"{NS}RTProperties/{NS}Size") == "9"
    # empty string -> empty Value; null -> no Value
    assert nodes["Empty"].find(f"{NS}Value") is not None and not nodes["Empty"].findtext(f"{NS}Value")
    assert nodes["Nothing"].find(f"{NS}Value") is None


def test_compact_document_written_by_hand_from_the_spec():
    t = Tree()
    t.set_node("./Vendor", format="node", type="org.example/1.0/V", acl="Get=*")
    t.set_node("./Vendor/GWName", "gw.yyy.se")
    doc = export_tnds(t, "./Vendor", props=frozenset({"ACL", "Format", "Type", "Value"}))
    # written from PROTOCOL 3.10 / the DTD, not copied from the output
    assert doc == (
        b'<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD>'
        b"<Node><NodeName>Vendor</NodeName><Path>.</Path><RTProperties><ACL>Get=*</ACL>"
        b"<Format><node/></Format><Type><DDFName>org.example/1.0/V</DDFName></Type></RTProperties>"
        b"<Node><NodeName>GWName</NodeName><RTProperties><ACL/><Format><chr/></Format>"
        b"<Type><MIME>text/plain</MIME></Type></RTProperties><Value>gw.yyy.se</Value></Node>"
        b"</Node></MgmtTree>"
    )
    assert TNDS_XML == "application/vnd.syncml.dmtnds+xml"


def test_subtree_export_carries_path_of_parent(tree: Tree):
    root = parse(export_tnds(tree, "./Vendor/ISP"))
    tops = root.findall(f"{NS}Node")
    assert len(tops) == 1
    assert tops[0].findtext(f"{NS}NodeName") == "ISP" and tops[0].findtext(f"{NS}Path") == "./Vendor"
    leaf = parse(export_tnds(tree, "./Vendor/ISP/GWName")).find(f"{NS}Node")
    assert leaf.findtext(f"{NS}Path") == "./Vendor/ISP" and leaf.findtext(f"{NS}Value") == "gw2.yyy.se"
    assert status_of(export_tnds, tree, "./Vendor/Missing") == 404


def test_path_of_names_with_uri_specials_round_trips():
    t = Tree()
    t.set_node(("50% & <up>", "in ner"), format="node", type="urn:x")
    t.set_node(("50% & <up>", "in ner", "leaf"), "v")
    doc = export_tnds(t, "./50%25 & <up>/in ner")
    top = parse(doc).find(f"{NS}Node")
    path = top.findtext(f"{NS}Path")
    assert path.startswith("./50%25") and uris.split(path) == ("50% & <up>",)  # '%' URI-escaped (PROTOCOL 3.1)
    fresh = Tree()
    assert import_tnds(fresh, doc) == [uris.join(("50% & <up>", "in ner")), uris.join(("50% & <up>", "in ner", "leaf"))]
    assert fresh.value(("50% & <up>", "in ner", "leaf")) == "v"


def test_property_selection(tree: Tree):
    root = parse(export_tnds(tree, "./Vendor", props=frozenset({"Value", "ACL"})))
    for node in root.iter(f"{NS}Node"):
        rt = node.find(f"{NS}RTProperties")
        assert {etree.QName(e).localname for e in rt} == {"ACL"}
    assert nodes_by_name(root)["GWName"].findtext(f"{NS}Value") == "gw2.yyy.se"
    bare = parse(export_tnds(tree, "./Vendor", props=frozenset()))
    assert all(len(n.find(f"{NS}RTProperties")) == 0 for n in bare.iter(f"{NS}Node"))
    assert bare.find(f".//{NS}Value") is None
    assert status_of(export_tnds, tree, props=frozenset({"Colour"})) == 406


def test_pretty_output_imports_the_same(tree: Tree):
    pretty = export_tnds(tree, pretty=True)
    assert pretty.count(b"\n") > 50
    t2 = Tree()
    import_tnds(t2, pretty)
    assert export_tnds(t2) == export_tnds(tree)


def test_characters_xml_cannot_carry_are_refused_on_export():
    t = Tree()
    t.set_node("./Bad", "nul\x00byte")
    with pytest.raises(UnsupportedError) as e:
        export_tnds(t)
    assert "./Bad" in str(e.value) and "U+0000" in str(e.value)
    t2 = Tree()
    t2.set_node("./Raw", b"\xff\xfe", format="chr")
    assert status_of(export_tnds, t2) == 406


# ------------------------------------------------------------------------------------------ server view


def test_only_readable_nodes_exported_with_continuations():
    t = Tree()
    t.set_node("./A", format="node", acl="Get=s1+s2")
    t.set_node("./A/Open", "o")
    t.set_node("./A/Hidden", format="node", acl="Get=s2")
    t.set_node("./A/Hidden/Secret", "x")
    t.set_node("./A/Hidden/Shared", "y", acl="Get=s1")
    root = parse(export_tnds(t, "./A", by="s1"))
    names = [n.findtext(f"{NS}NodeName") for n in root.iter(f"{NS}Node")]
    assert names == ["A", "Open", "Shared"]
    shared = root.findall(f"{NS}Node")[1]  # a top-level continuation under the hidden node
    assert shared.findtext(f"{NS}NodeName") == "Shared" and shared.findtext(f"{NS}Path") == "./A/Hidden"
    # importing what the server saw puts Shared back at its place
    t2 = Tree()
    import_tnds(t2, export_tnds(t, "./A", by="s1"))
    assert t2.value("./A/Hidden/Shared") == "y" and not t2.exists("./A/Hidden/Secret")
    assert status_of(export_tnds, t, "./A/Hidden", by="s1") == 425
    assert status_of(export_tnds, t, "./A", by="s3") == 425


# ------------------------------------------------------------------------------------------ round trips


def test_round_trip_hand_built_tree(tree: Tree):
    doc = export_tnds(tree)
    fresh = Tree()
    created = import_tnds(fresh, doc)
    assert created[:3] == ["./DevInfo", "./DevInfo/DevId", "./DevInfo/Man"] and len(created) == 10
    assert export_tnds(fresh) == doc
    assert snapshot(fresh)[1:] == [s[:-1] + (False,) for s in snapshot(tree)[1:]]
    assert fresh.value("./Vendor/ISP/Cert") == b"\x00\xff\x10binary"
    assert fresh.value("./Vendor/ISP/Nothing") is None and fresh.value("./Vendor/ISP/Empty") == ""


_SPECIAL = st.sampled_from(list("&<>%;'\" \t\r\n\u00e9\u20ac\U0001f600]]"))
_PLAIN = st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="/?")
_TEXT = st.text(st.one_of(_SPECIAL, _PLAIN), max_size=12)
_NAMES = st.text(st.one_of(_SPECIAL, _PLAIN), min_size=1, max_size=8).filter(lambda s: s not in (".", "..", "*"))
_ACLS = st.sampled_from(["", "Get=*", "Add=a+b&Replace=a", "Get=<srv>&Exec=x"])
_LEAF = st.one_of(
    st.tuples(st.just("chr"), st.none() | _TEXT),
    st.tuples(st.just("int"), st.none() | st.integers(-(2**31), 2**31 - 1).map(str)),
    st.tuples(st.just("bin"), st.none() | st.binary(max_size=16)),
    st.tuples(st.just("null"), st.none()),
)
_LEAVES = st.tuples(st.just("leaf"), _LEAF, st.sampled_from(["text/plain", "", "a/b+c&d"]), _ACLS, _TEXT)
_TREES = st.recursive(
    st.dictionaries(_NAMES, _LEAVES, max_size=3),
    lambda kids: st.dictionaries(
        _NAMES,
        st.one_of(_LEAVES, st.tuples(st.just("node"), kids, st.sampled_from(["", "urn:oma:mo:x:1.0"]), _ACLS, _TEXT)),
        max_size=4,
    ),
    max_leaves=20,
)


def build(t: Tree, parent: tuple[str, ...], spec: dict) -> None:
    for name, entry in spec.items():
        segs = parent + (name,)
        if entry[0] == "leaf":
            _, (fmt, value), typ, acl, title = entry
            t.set_node(segs, value, format=fmt, type=typ, acl=acl)
        else:
            _, kids, typ, acl, title = entry
            t.set_node(segs, format="node", type=typ, acl=acl)
            build(t, segs, kids)
        if title:
            t.replace_prop(segs, "Title", title)  # also stamps TStamp/VerNo from the clock


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TREES, st.booleans())
def test_round_trip_random_trees(spec, pretty):
    t = Tree(clock=counting_clock())
    build(t, (), spec)
    doc = export_tnds(t, pretty=pretty, mask_secrets=False)
    fresh = Tree()
    import_tnds(fresh, doc)
    assert snapshot(fresh) == snapshot(t)
    assert export_tnds(fresh, pretty=pretty, mask_secrets=False) == doc
    # and through a Replace by the device itself: nothing changes
    import_tnds(fresh, doc, replace=True)
    assert snapshot(fresh) == snapshot(t)


# ------------------------------------------------------------------------------------------ Add / Replace


def leaf_doc(name: str, value: str, *, path: str | None = None, acl: str | None = None) -> bytes:
    p = f"<Path>{path}</Path>" if path is not None else ""
    a = f"<ACL>{acl}</ACL>" if acl is not None else ""
    return (
        f'<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><NodeName>{name}</NodeName>{p}'
        f"<RTProperties>{a}<Format><chr/></Format><Type><MIME>text/plain</MIME></Type></RTProperties>"
        f"<Value>{value}</Value></Node></MgmtTree>"
    ).encode()


SPEC_EXAMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<MgmtTree xmlns='syncml:dmddf1.2'>
  <VerDTD>1.2</VerDTD>
  <Node>
    <NodeName>ISP</NodeName>
    <RTProperties><Format><node/></Format><Type><DDFName></DDFName></Type></RTProperties>
    <Node>
      <NodeName>GWInfo</NodeName>
      <RTProperties><Format><node/></Format><Type><DDFName/></Type></RTProperties>
      <Node>
        <NodeName>GWName</NodeName>
        <RTProperties><Format><Chr/></Format><Type><MIME>text/plain</MIME></Type></RTProperties>
        <Value>gw.yyy.se</Value>
      </Node>
    </Node>
  </Node>
  <Node>
    <NodeName>Port</NodeName>
    <Path>ISP/GWInfo</Path>
    <RTProperties><Format><int/></Format><Type><MIME>text/plain</MIME></Type></RTProperties>
    <Value>8080</Value>
  </Node>
</MgmtTree>"""


def test_add_relative_to_target_with_continuation(tree: Tree):
    created = import_tnds(tree, SPEC_EXAMPLE, base_uri="./Vendor/Net", by="srv1")
    base = "./Vendor/Net/ISP"
    assert created == [base, f"{base}/GWInfo", f"{base}/GWInfo/GWName", f"{base}/GWInfo/Port"]
    assert tree.value(f"{base}/GWInfo/GWName") == "gw.yyy.se"
    assert tree.get(f"{base}/GWInfo/GWName").format == "chr"  # <Chr/> accepted case-insensitively
    assert tree.get(f"{base}/GWInfo/Port").format == "int"
    assert tree.get(f"{base}/GWInfo").format == "node"
    assert tree.get("./Vendor/Net").format == "node"  # implicit add of the target


def test_add_of_existing_node_is_418_and_nothing_changes(tree: Tree):
    before = snapshot(tree)
    seen: list[TreeEvent] = []
    tree.subscribe(seen.append)
    doc = SPEC_EXAMPLE.replace(b"<NodeName>GWInfo</NodeName>", b"<NodeName>New</NodeName>").replace(
        b"ISP/GWInfo", b"ISP/New"
    )
    # ./Vendor/ISP exists: an Add with TNDS must not touch it, and the new parts roll back too
    assert status_of(import_tnds, tree, doc, base_uri="./Vendor", by="srv1") == 418
    assert status_of(import_tnds, tree, doc, base_uri="./Vendor") == 418
    assert snapshot(tree) == before and seen == []


def test_server_import_is_acl_checked_and_all_or_nothing(tree: Tree):
    before = snapshot(tree)
    assert status_of(import_tnds, tree, SPEC_EXAMPLE, base_uri="./Vendor/X", by="srv2") == 425  # no Add
    assert status_of(import_tnds, tree, SPEC_EXAMPLE, base_uri="./DevInfo", by="srv1") == 425
    assert snapshot(tree) == before
    # root Add=* lets anyone add at the top, and an interior node added without Replace on the
    # parent becomes the adder's own (PROTOCOL 2.4)
    import_tnds(tree, SPEC_EXAMPLE, by="newcomer")
    assert tree.get_prop("./ISP", "ACL") == "Add=newcomer&Delete=newcomer&Replace=newcomer"
    assert tree.get_prop("./ISP/GWInfo/GWName", "ACL") == ""


def test_server_import_applies_acl_and_title(tree: Tree):
    doc = (
        b'<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><NodeName>Note</NodeName>'
        b"<RTProperties><ACL>Get=srv1&amp;Replace=srv1</ACL><Format><chr/></Format><Title>A note</Title>"
        b"<TStamp>19990101T000000Z</TStamp><Type><MIME>text/plain</MIME></Type><VerNo>77</VerNo>"
        b"</RTProperties><Value>hello</Value></Node></MgmtTree>"
    )
    import_tnds(tree, doc, base_uri="./Vendor", by="srv1")
    assert tree.get_prop("./Vendor/Note", "ACL") == "Get=srv1&Replace=srv1"
    assert tree.get_prop("./Vendor/Note", "Title") == "A note"
    assert status_of(tree.get, "./Vendor/Note", by="srv2") == 425
    # TStamp and VerNo belong to the device: a server's import stamps like any command
    info = tree.info("./Vendor/Note")
    assert info.verno != 77 and info.tstamp > 1_000_000_000


def test_replace_creates_updates_and_deletes(tree: Tree):
    doc = export_tnds(tree, "./Vendor/ISP")
    t2 = Tree(clock=counting_clock())
    t2.set_node("./Vendor", format="node", acl="Add=srv1&Get=srv1&Replace=srv1&Delete=srv1")
    t2.set_node("./Vendor/ISP", format="node", type="com.companyx/1.2/ISP")
    t2.set_node("./Vendor/ISP/GWName", "old")
    t2.set_node("./Vendor/ISP/Stale", "gone soon")
    t2.set_node("./Vendor/Sibling", "stays")  # a sibling of the described node is not touched
    changed = import_tnds(t2, doc, by="srv1", replace=True)
    assert "./Vendor/ISP/GWName" in changed and "./Vendor/ISP/Cert" in changed
    assert "./Vendor/ISP" not in changed  # nothing differed on it
    assert t2.value("./Vendor/ISP/GWName") == "gw2.yyy.se"
    assert not t2.exists("./Vendor/ISP/Stale")
    assert t2.value("./Vendor/Sibling") == "stays"
    assert t2.children("./Vendor/ISP") == ["GWName", "Cert", "Empty", "Nothing", "Lines"]


def test_replace_needs_rights_and_respects_permanent_nodes(tree: Tree):
    doc = export_tnds(tree, "./Vendor/ISP")
    before = snapshot(tree)
    tree2 = Tree()
    import_tnds(tree2, export_tnds(tree))
    tree2.set_node("./Vendor/ISP/Fixed", "f", permanent=True)
    assert status_of(import_tnds, tree2, doc, by="srv1", replace=True) == 405  # can't delete permanent
    assert tree2.value("./Vendor/ISP/Fixed") == "f"
    assert status_of(import_tnds, tree, doc.replace(b"gw2.yyy.se", b"evil"), by="srv2", replace=True) == 425
    assert snapshot(tree) == before
    # the device itself may restore over permanent nodes, which keep their Scope
    tree2.set_node("./Vendor/ISP/GWName", "x", permanent=True)
    import_tnds(tree2, doc, replace=True)
    assert tree2.value("./Vendor/ISP/GWName") == "gw2.yyy.se"
    assert tree2.info("./Vendor/ISP/GWName").permanent
    assert not tree2.exists("./Vendor/ISP/Fixed")


def test_replace_turning_a_leaf_into_an_interior_node(tree: Tree):
    doc = (
        b'<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><NodeName>GWName</NodeName>'
        b"<Path>./Vendor/ISP</Path><RTProperties><Format><node/></Format><Type><DDFName/></Type>"
        b"</RTProperties><Node><NodeName>Primary</NodeName><RTProperties><Format><chr/></Format>"
        b"<Type><MIME>text/plain</MIME></Type></RTProperties><Value>p</Value></Node></Node></MgmtTree>"
    )
    import_tnds(tree, doc, by="srv1", replace=True)
    assert tree.children("./Vendor/ISP/GWName") == ["Primary"]
    assert tree.value("./Vendor/ISP/GWName/Primary") == "p"


def test_local_import_restores_tstamp_verno_and_keeps_events_in_one_batch(tree: Tree):
    doc = export_tnds(tree)
    fresh = Tree()
    seen: list[TreeEvent] = []
    fresh.subscribe(seen.append)
    import_tnds(fresh, doc)
    info = fresh.info("./Vendor/ISP/GWName")
    assert (info.verno, info.tstamp, info.title) == (2, 1_000_000_001.0, "Gateway \u00e9\u20ac")
    assert len([e for e in seen if e.kind == "add"]) == 10


# ------------------------------------------------------------------------------------------ bad input


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE MgmtTree [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><NodeName>&b;</NodeName>
<RTProperties><Format><chr/></Format><Type><MIME>t</MIME></Type></RTProperties></Node></MgmtTree>"""


@pytest.mark.parametrize(
    ("doc", "status", "line"),
    [
        (BOMB, 400, 2),
        (b"<MgmtTree><VerDTD>1.2</VerDTD>\n<Node>", 400, 2),
        (b"\x02\x00\x00\x6a\x00", 415, None),  # WBXML TNDS
        (b'<SyncML xmlns="SYNCML:SYNCML1.2"/>', 415, None),
        (b"<MgmtTree><VerDTD>2.0</VerDTD></MgmtTree>", 415, None),
        (b"<MgmtTree><Node/></MgmtTree>", 415, None),  # no NodeName: placement by Type unsupported
        (leaf_doc("A", "x").replace(b"<chr/>", b"<node/>"), 400, 1),  # interior with a Value
        (leaf_doc("A", "x").replace(b"<chr/>", b"<bin/>").replace(b">x<", b">!!<"), 400, 1),
        (leaf_doc("A", "x").replace(b"<chr/>", b"<colour/>"), 400, 1),
        (leaf_doc("A", "x").replace(b"<chr/>", b""), 400, 1),
        (leaf_doc("A", "x", acl="Get"), 400, 1),
        (leaf_doc("..", "x"), 400, 1),
        (leaf_doc("A", "x", path="./B/"), 200, None),
        (leaf_doc("A", "x", path="./B//C"), 400, 1),
        (b"<MgmtTree><VerDTD>1.2</VerDTD>\n<Node><NodeName>A</NodeName></Node></MgmtTree>", 400, 2),
        (leaf_doc("A", "x").replace(b"<Node>", b"<Node><NodeName>A</NodeName><RTProperties/></Node><Node>"),
         400, 1),  # described twice
        (leaf_doc("A", "<b>bold</b>"), 400, 1),
        (leaf_doc("A", "x").replace(b"<Value>", b"<RTProperties/><Value>"), 200, None),
        (b"<MgmtTree><VerDTD>1.2</VerDTD><Bogus/></MgmtTree>", 400, 1),
        (b"<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>A</NodeName><RTProperties><VerNo>x</VerNo>"
         b"</RTProperties></Node></MgmtTree>", 400, 1),
        (b"<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>A</NodeName><RTProperties><TStamp>today</TStamp>"
         b"</RTProperties></Node></MgmtTree>", 400, 1),
    ],
)
def test_bad_documents_are_typed_errors_with_lines(doc, status, line):
    t = Tree()
    before = snapshot(t)
    try:
        import_tnds(t, doc, source="in.xml")
    except (FileFormatError, DecodeError, UnsupportedError, TreeError) as e:
        assert e.status == status, str(e)
        if line is not None:
            assert isinstance(e, FileFormatError) and e.line == line and e.path == "in.xml", str(e)
        assert snapshot(t) == before
    else:
        assert status == 200


def test_entity_bomb_is_refused_before_expansion():
    with pytest.raises(EmulatorError) as e:
        import_tnds(Tree(), BOMB)
    assert e.value.status == 400 and "entit" in str(e.value).lower()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_garbled_documents_never_escape_as_bare_errors(data):
    good = export_tnds(_small_tree())
    pos = data.draw(st.integers(0, len(good)))
    cut = data.draw(st.integers(0, 12))
    junk = data.draw(st.binary(max_size=6) | st.sampled_from([b"<", b"&", b"]]>", b"<Node>", b"</Value>"]))
    doc = good[:pos] + junk + good[pos + cut :]
    t = _small_tree()
    before = snapshot(t)
    try:
        import_tnds(t, doc, base_uri="./In", by=data.draw(st.sampled_from([None, "s"])), replace=True)
    except EmulatorError as e:
        assert 400 <= e.status < 600
        assert snapshot(t) == before


def _small_tree() -> Tree:
    t = Tree(clock=lambda: 1e9)
    t.set_node("./In", format="node", acl="Add=s&Get=s&Replace=s&Delete=s")
    t.set_node("./In/A", format="node", type="urn:x")
    t.set_node("./In/A/v", "1", format="int")
    t.set_node("./In/A/b", b"\x01", format="bin")
    return t


def test_a_masked_export_imported_back_keeps_the_real_secrets():
    t = Tree()
    t.set_node("./Acc/AAuthSecret", "real-secret")
    t.set_node("./Acc/Name", "shown")
    doc = export_tnds(t)  # for people: secrets masked
    assert b"real-secret" not in doc
    edited = doc.replace(b"<Value>shown</Value>", b"<Value>edited</Value>")
    import_tnds(t, edited, replace=True)
    assert t.value("./Acc/AAuthSecret") == "real-secret"
    assert t.value("./Acc/Name") == "edited"
