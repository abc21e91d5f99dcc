"""WBXML codec: token tables, real Android DM vectors, hand-built documents, bad input, round trips.

Hand-built byte strings follow WAP-192 (header: version, mb_u_int32 public id [, index], charset,
string table; tag token = identity | 0x40 content flag) and the token values of libwbxml /
the SyncML toolkit, not the codec's own output.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from shared_vectors import AOSP_DM12, aosp_dm12, needs_aosp_dm12

from emulator.errors import DecodeError, TooLargeError, UnsupportedError
from emulator.protocol.syncml import wbxml
from emulator.protocol.syncml.wbxml import (
    DMDDF_TAGS,
    METINF_TAGS,
    NS_DMDDF_12,
    OPAQUE_ATTR,
    SYNCML_TAGS,
    decode,
    encode,
    opaque_bytes,
    set_opaque,
    to_xml_text,
)

VECTORS = AOSP_DM12
WBXML_VECTORS = aosp_dm12(".wbxml")
XML_VECTORS = aosp_dm12(".xml")
EXAMPLES = Path(__file__).resolve().parents[3] / "assets" / "examples" / "dm12"
S11 = "SYNCML:SYNCML1.1"
S12 = "SYNCML:SYNCML1.2"
MI = "syncml:metinf"
# WBXML 1.3, public id 0x1201 (mb_u_int32 A4 01), charset 106, empty string table
HDR12 = b"\x03\xa4\x01\x6a\x00"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def canon(el: etree._Element, *, layout: bool = True) -> tuple:
    """Comparable form: tag, text, attributes, children, tails. layout=False ignores
    whitespace-only text between elements (XML indentation), which WBXML does not carry."""
    text = el.text or ""
    children = list(el)
    if not layout and children and text.isspace() and el.get(OPAQUE_ATTR) is None:
        text = ""
    out = []
    for child in children:
        tail = child.tail or ""
        if not layout and tail.isspace():
            tail = ""
        out.append((canon(child, layout=layout), tail))
    return (el.tag, text, dict(el.attrib), out)


def load(name: str) -> etree._Element:
    return decode((VECTORS / name).read_bytes())


def safe_xml(path: Path) -> etree._Element:
    # recover: four Android vectors carry a bare '&' in Alert option strings ("MAXDT=15&DR=1")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, recover=True
    )
    return etree.fromstring(path.read_bytes(), parser)


# --- tables --------------------------------------------------------------------------------------
def test_tables_match_published_tokens():
    # values from libwbxml sv_syncml_syncml12_tag_table / SyncML toolkit xlttags.c
    assert SYNCML_TAGS[0x05] == "Add" and SYNCML_TAGS[0x2D] == "SyncML"
    assert SYNCML_TAGS[0x0F] == "Data" and SYNCML_TAGS[0x29] == "Status"
    assert SYNCML_TAGS[0x31] == "VerDTD" and SYNCML_TAGS[0x3C] == "Correlator"
    assert 0x30 not in SYNCML_TAGS  # reserved
    assert sorted(SYNCML_TAGS) == [t for t in range(0x05, 0x3D) if t != 0x30]
    assert METINF_TAGS[0x0C] == "MaxMsgSize" and METINF_TAGS[0x15] == "MaxObjSize"
    assert METINF_TAGS[0x10] == "NextNonce" and METINF_TAGS[0x16] == "FieldLevel"
    assert sorted(METINF_TAGS) == list(range(0x05, 0x17))
    assert DMDDF_TAGS[0x20] == "MgmtTree" and DMDDF_TAGS[0x24] == "Node" and DMDDF_TAGS[0x25] == "node"
    assert DMDDF_TAGS[0x2F] == "RTProperties" and DMDDF_TAGS[0x3C] == "ZeroOrOne"
    assert sorted(DMDDF_TAGS) == list(range(0x05, 0x3D))
    for table in (SYNCML_TAGS, METINF_TAGS, DMDDF_TAGS):
        assert len(set(table.values())) == len(table)


# --- real vectors --------------------------------------------------------------------------------
@needs_aosp_dm12
def test_vectors_present():
    assert [p.name for p in WBXML_VECTORS] == [
        "testadd.wbxml",
        "testdelete.wbxml",
        "testget.wbxml",
        "testreplace.wbxml",
    ]


@needs_aosp_dm12
def test_testget_vector():
    root = load("testget.wbxml")
    # declares the SyncML 1.1 public identifier (string table) while carrying VerDTD 1.2
    assert root.tag == q(S11, "SyncML")
    ns = {"s": S11, "m": MI}
    hdr = root.find("s:SyncHdr", ns)
    assert hdr.findtext("s:VerDTD", namespaces=ns) == "1.2"
    assert hdr.findtext("s:VerProto", namespaces=ns) == "DM/1.2"
    assert hdr.findtext("s:SessionID", namespaces=ns) == "22100"
    assert hdr.findtext("s:MsgID", namespaces=ns) == "1"
    assert hdr.findtext("s:Target/s:LocURI", namespaces=ns) == "000000011234564"
    assert hdr.findtext("s:Source/s:LocURI", namespaces=ns) == "http://10.72.34.217:80/Manage"
    assert hdr.findtext("s:RespURI", namespaces=ns) == "http://10.72.34.217/Scts?0JTIAA=="
    assert hdr.findtext("s:Cred/s:Meta/m:Format", namespaces=ns) == "b64"
    assert hdr.findtext("s:Cred/s:Meta/m:Type", namespaces=ns) == "syncml:auth-basic"
    cred = hdr.findtext("s:Cred/s:Data", namespaces=ns)
    assert base64.b64decode(cred) == b"Scts:SampleClient"
    assert hdr.findtext("s:Meta/m:MaxMsgSize", namespaces=ns) == "3500"
    body = root.find("s:SyncBody", ns)
    assert [etree.QName(c).localname for c in body] == ["Status", "Status", "Status", "Get", "Final"]
    statuses = body.findall("s:Status", ns)
    assert [s.findtext("s:Cmd", namespaces=ns) for s in statuses] == ["SyncHdr", "Alert", "Replace"]
    assert [s.findtext("s:Data", namespaces=ns) for s in statuses] == ["212", "200", "200"]
    get = body.find("s:Get", ns)
    assert get.findtext("s:CmdID", namespaces=ns) == "4"
    assert get.findtext("s:Item/s:Target/s:LocURI", namespaces=ns) == "./DevDetail/URI/MaxDepth"
    assert len(body.find("s:Final", ns)) == 0


@needs_aosp_dm12
def test_testadd_vector():
    root = load("testadd.wbxml")
    ns = {"s": S11, "m": MI}
    add = root.find("s:SyncBody/s:Add", ns)
    assert add.findtext("s:CmdID", namespaces=ns) == "4"
    item = add.find("s:Item", ns)
    assert item.findtext("s:Target/s:LocURI", namespaces=ns) == "./TestLeafNode"
    assert item.findtext("s:Meta/m:Format", namespaces=ns) == "node"
    assert (item.findtext("s:Data", namespaces=ns) or "") == ""  # STR_I "" in the vector


@needs_aosp_dm12
def test_testdelete_vector():
    root = load("testdelete.wbxml")
    ns = {"s": S11}
    deletes = root.findall("s:SyncBody/s:Delete", ns)
    assert [d.findtext("s:CmdID", namespaces=ns) for d in deletes] == ["4", "5"]
    uris = [d.findtext("s:Item/s:Target/s:LocURI", namespaces=ns) for d in deletes]
    assert uris == ["./TestLeafNode", "./TestLeaf"]


@needs_aosp_dm12
def test_testreplace_vector():
    root = load("testreplace.wbxml")
    assert root.tag == q(S12, "SyncML")
    ns = {"s": S12, "m": MI}
    assert root.findtext("s:SyncHdr/s:Target/s:LocName", namespaces=ns) == "Scts"
    assert root.findtext("s:SyncBody/s:Alert/s:Data", namespaces=ns) == "1201"
    items = root.findall("s:SyncBody/s:Replace/s:Item", ns)
    values = {i.findtext("s:Source/s:LocURI", namespaces=ns): i.findtext("s:Data", namespaces=ns) for i in items}
    assert len(items) == 9
    assert values["./DevInfo/Man"] == "Motorola, Copyright 2005"
    assert values["./DevInfo/DmV"] == "1.2"
    assert values["./DevInfo/LangAuto"] == "false"


@pytest.mark.parametrize("path", WBXML_VECTORS, ids=lambda p: p.name)
def test_vector_reencode_is_stable(path: Path):
    first = decode(path.read_bytes())
    again = decode(encode(first))
    assert canon(again) == canon(first)
    # the public id follows the namespace: 1.1 vectors get 0x0FD3 (9F 53), 1.2 gets 0x1201 (A4 01)
    expected = b"\x02\x9f\x53" if first.tag == q(S11, "SyncML") else b"\x02\xa4\x01"
    assert encode(first)[:3] == expected


@pytest.mark.parametrize("path", XML_VECTORS, ids=lambda p: p.name)
def test_xml_vectors_go_through_wbxml(path: Path):
    tree = safe_xml(path)
    back = decode(encode(tree))
    assert canon(back, layout=False) == canon(tree, layout=False)


# --- hand-built documents ------------------------------------------------------------------------
def test_minimal_document_unknown_public_id():
    root = decode(b"\x03\x01\x6a\x00\x2d")  # WBXML 1.3, public id 1, empty <SyncML/>
    assert root.tag == q(S12, "SyncML") and len(root) == 0 and root.text is None


def test_header_bytes_of_encoder():
    root = etree.Element(q(S12, "SyncML"), nsmap={None: S12})
    assert encode(root) == b"\x02\xa4\x01\x6a\x00\x2d"
    assert encode(root, version=0x03)[0] == 0x03
    with pytest.raises(ValueError):
        encode(root, version=4)


def test_metinf_switch_and_namespaces():
    # <SyncML><Meta> SWITCH_PAGE 1 <MaxMsgSize>"20000"</MaxMsgSize> </Meta></SyncML>
    data = HDR12 + b"\x6d\x5a\x00\x01\x4c\x0320000\x00\x01\x01\x01"
    root = decode(data)
    (meta,) = root
    (size,) = meta
    assert size.tag == q(MI, "MaxMsgSize") and size.text == "20000"
    assert size.nsmap[None] == MI and root.nsmap[None] == S12
    xml = to_xml_text(root)
    assert '<MaxMsgSize xmlns="syncml:metinf">20000</MaxMsgSize>' in xml
    assert xml.count("\n") >= 4  # indented, one element per line


def test_code_page_persists_across_end():
    # page 1 stays selected after END: second tag 0x53 is MetInf Type, not SyncML Put(0x1F|0x40=0x5F)
    data = HDR12 + b"\x5a\x00\x01\x47\x03b64\x00\x01\x53\x03text/plain\x00\x01\x01"
    root = decode(data)
    assert [c.tag for c in root] == [q(MI, "Format"), q(MI, "Type")]


def test_string_table_references():
    # string table "abc\0def\0"; STR_T 4 -> "def", STR_T 5 -> "ef" (mid-string index is legal)
    data = b"\x03\xa4\x01\x6a\x08abc\x00def\x00" + b"\x6d\x4f\x83\x04\x01\x4f\x83\x05\x03!\x00\x01\x01"
    root = decode(data)
    assert [c.text for c in root] == ["def", "ef!"]


def test_fpi_in_string_table_and_ddf_document():
    fpi = b"-//OMA//DTD-DM-DDF 1.2//EN\x00"
    # public id 0 + index 0, charset, table, SWITCH_PAGE 2, <MgmtTree><VerDTD>1.2</VerDTD><Node>
    # <NodeName>DevInfo</NodeName><RTProperties><Format><node/></Format></RTProperties></Node>
    body = b"\x00\x02\x60\x77\x031.2\x00\x01\x64\x66\x03DevInfo\x00\x01\x6f\x5c\x25\x01\x01\x01\x01"
    data = b"\x02\x00\x00\x6a" + bytes([len(fpi)]) + fpi + body
    root = decode(data)
    assert root.tag == q(NS_DMDDF_12, "MgmtTree")
    ns = {"d": NS_DMDDF_12}
    assert root.findtext("d:VerDTD", namespaces=ns) == "1.2"
    assert root.findtext("d:Node/d:NodeName", namespaces=ns) == "DevInfo"
    assert root.find("d:Node/d:RTProperties/d:Format/d:node", ns) is not None
    out = encode(root)
    assert out.startswith(b"\x02\x00\x00\x6a" + bytes([len(fpi)]) + fpi)
    assert canon(decode(out)) == canon(root)


def test_inline_tnds_inside_data():
    # <SyncML><Data> SWITCH_PAGE 2 <MgmtTree><VerDTD>1.2</VerDTD></MgmtTree></Data></SyncML>
    data = HDR12 + b"\x6d\x4f\x00\x02\x60\x77\x031.2\x00\x01\x01\x01\x01"
    root = decode(data)
    tnds = root[0][0]
    assert tnds.tag == q(NS_DMDDF_12, "MgmtTree") and tnds.nsmap[None] == NS_DMDDF_12
    assert tnds[0].tag == q(NS_DMDDF_12, "VerDTD") and tnds[0].text == "1.2"
    assert canon(decode(encode(root))) == canon(root)


def test_entity_and_mixed_content():
    # <Data>"a" ENTITY(0x263A) <CmdID/> "b"</Data>; 0x263A as mb_u_int32 = CC 3A
    data = HDR12 + b"\x4f\x03a\x00\x02\xcc\x3a\x0b\x03b\x00\x01"
    root = decode(data)
    assert root.text == "a\u263a"
    assert root[0].tag == q(S12, "CmdID") and root[0].tail == "b"
    assert canon(decode(encode(root))) == canon(root)


def test_opaque_text_stays_text():
    data = HDR12 + b"\x4f\xc3\x05hello\x01"
    root = decode(data)
    assert root.text == "hello" and root.get(OPAQUE_ATTR) == "text"
    assert opaque_bytes(root) == b"hello"
    assert encode(root).endswith(b"\x4f\xc3\x05hello\x01")  # written back as OPAQUE


def test_opaque_binary_is_base64_and_round_trips():
    raw = bytes([0x00, 0x01, 0xFF, 0x80, 0x0B])
    data = HDR12 + b"\x4f\xc3\x05" + raw + b"\x01"
    root = decode(data)
    assert root.get(OPAQUE_ATTR) == "base64"
    assert base64.b64decode(root.text) == raw
    assert opaque_bytes(root) == raw
    assert encode(root) == data.replace(b"\x03\xa4", b"\x02\xa4", 1)  # same body, default version 1.2


def test_embedded_wbxml_tnds_as_opaque():
    tnds = etree.Element(q(NS_DMDDF_12, "MgmtTree"), nsmap={None: NS_DMDDF_12})
    etree.SubElement(tnds, q(NS_DMDDF_12, "VerDTD")).text = "1.2"
    msg = etree.Element(q(S12, "SyncML"), nsmap={None: S12})
    data_el = etree.SubElement(etree.SubElement(msg, q(S12, "Item")), q(S12, "Data"))
    set_opaque(data_el, encode(tnds))
    decoded = decode(encode(msg))
    inner = opaque_bytes(decoded[0][0])
    assert inner == encode(tnds)
    assert canon(decode(inner)) == canon(tnds)
    assert opaque_bytes(decoded[0]) is None


def test_latin1_and_ascii_charsets():
    assert decode(b"\x03\xa4\x01\x04\x00\x4f\x03caf\xe9\x00\x01").text == "caf\u00e9"
    assert decode(b"\x03\xa4\x01\x03\x00\x4f\x03cafe\x00\x01").text == "cafe"
    with pytest.raises(DecodeError, match="not valid ascii at byte 10"):
        decode(b"\x03\xa4\x01\x03\x00\x4f\x03caf\xe9\x00\x01")


def test_encoder_conventions():
    # no namespace: SyncML 1.2; whitespace between elements dropped; sloppy <Type> without the
    # metinf namespace goes to the MetInf page
    tree = etree.fromstring("<SyncML>\n  <Meta>\n    <Type>text/plain</Type>\n  </Meta>\n</SyncML>")
    root = decode(encode(tree))
    assert root.tag == q(S12, "SyncML")
    assert root[0][0].tag == q(MI, "Type") and root[0][0].text == "text/plain"
    assert root.text is None and root[0].tail is None
    # leaf whitespace is data and is kept
    leaf = etree.Element(q(S12, "Data"))
    leaf.text = "  "
    assert decode(encode(leaf)).text == "  "
    # comments are dropped, their tails kept
    commented = etree.fromstring(f'<Data xmlns="{S12}">a<!-- c -->b</Data>')
    assert decode(encode(commented)).text == "ab"


def test_encoder_rejects_what_wbxml_cannot_carry():
    with pytest.raises(UnsupportedError, match="<Bogus>"):
        encode(etree.fromstring(f'<SyncML xmlns="{S12}"><Bogus/></SyncML>'))
    with pytest.raises(UnsupportedError, match="attributes"):
        encode(etree.fromstring(f'<SyncML xmlns="{S12}"><Data x="1"/></SyncML>'))
    with pytest.raises(UnsupportedError, match="namespace"):
        encode(etree.fromstring('<html xmlns="http://www.w3.org/1999/xhtml"/>'))


def test_opaque_bytes_rejects_broken_mark():
    el = etree.Element("Data")
    el.text = "not base64!"
    el.set(OPAQUE_ATTR, "base64")
    with pytest.raises(DecodeError):
        opaque_bytes(el)


# --- bad input -----------------------------------------------------------------------------------
GET = (EXAMPLES / "get.wbxml").read_bytes()  # the project's own example: no outside file needed

BAD = [
    pytest.param(b"", "version missing at byte 0", id="empty"),
    pytest.param(GET[:-1], rf"truncated input: END for <SyncML> missing at byte {len(GET) - 1}", id="truncated-end"),
    pytest.param(GET[:200], "truncated", id="truncated-middle"),
    pytest.param(HDR12, "root element missing at byte 5", id="no-root"),
    pytest.param(b"\x00\x01\x6a\x00\x2d", "unsupported WBXML version 0x00", id="wbxml-1.0"),
    pytest.param(b"\x04\x01\x6a\x00\x2d", "unsupported WBXML version 0x04", id="wbxml-1.4"),
    pytest.param(b"\x03\x04\x6a\x00\x2d", "public identifier 0x0004 is not SyncML", id="wml-public-id"),
    pytest.param(b"\x03\x00\x00\x6a\x04abc\x00\x2d", "public identifier 'abc' is not SyncML", id="bad-fpi"),
    pytest.param(b"\x03\x01\x00\x00\x2d", "unsupported charset MIBenum 0 .* at byte 2", id="charset-0"),
    pytest.param(b"\x03\x01\x11\x00\x2d", "unsupported charset MIBenum 17", id="shift-jis"),
    pytest.param(b"\x03\x80\x80\x80\x80\x80\x01\x6a\x00\x2d", "longer than 5 bytes at byte 1", id="mb-6-bytes"),
    pytest.param(b"\x03\x90\x80\x80\x80\x00\x6a\x00\x2d", "does not fit in 32 bits at byte 1", id="mb-33-bits"),
    pytest.param(b"\x03\x01\x6a\x10abc", "string table of 16 bytes at byte 3", id="strtbl-truncated"),
    pytest.param(HDR12 + b"\x30", "unknown tag 0x30 on code page 0 at byte 5", id="reserved-tag"),
    pytest.param(HDR12 + b"\x00\x01\x04", "LITERAL token", id="literal"),
    pytest.param(HDR12 + b"\x00\x01\x3f", "unknown tag 0x3F on code page 1 at byte 7", id="unknown-metinf"),
    pytest.param(HDR12 + b"\x00\x07\x2d", "unknown code page 7 at byte 5", id="unknown-page"),
    pytest.param(HDR12 + b"\x6d\x4f\x83\x00\x01\x01", "index 0 out of range .* at byte 7", id="strtbl-index"),
    pytest.param(HDR12 + b"\x01", "END without an open element at byte 5", id="lone-end"),
    pytest.param(HDR12 + b"\x2d\x01", "1 bytes of trailing data after the root element at byte 6", id="extra-end"),
    pytest.param(GET + b"\x00", f"1 bytes of trailing data .* at byte {len(GET)}", id="trailing-garbage"),
    pytest.param(HDR12 + b"\xad", "has attributes", id="attributes"),
    pytest.param(HDR12 + b"\x6d\x43\x01", "PI token .* at byte 6", id="pi"),
    pytest.param(HDR12 + b"\x6d\xc0\x01", "EXT_0 token", id="ext"),
    pytest.param(HDR12 + b"\x03a\x00\x2d", "content outside the root element at byte 5", id="text-before-root"),
    pytest.param(HDR12 + b"\x4f\x03abc", "inline string without terminator at byte 7", id="unterminated"),
    pytest.param(HDR12 + b"\x4f\x03\xff\x00\x01", "not valid utf-8 at byte 7", id="bad-utf8"),
    pytest.param(HDR12 + b"\x4f\xc3\x09abc\x01", "opaque data of 9 bytes at byte 6", id="opaque-short"),
    pytest.param(HDR12 + b"\x4f\x02\x00\x01", "characters that XML cannot hold", id="entity-nul"),
    pytest.param(HDR12 + b"\x4f\x03a\x01b\x00\x01", "characters that XML cannot hold at byte 6", id="ctrl-char"),
    pytest.param(HDR12 + b"\x4f\x02\x83\xb0\x00\x01", "entity 55296 is not a Unicode character", id="surrogate"),
    pytest.param(HDR12 + b"\x6d\x0b\xc3\x01\xff\x0b\x01", "binary opaque data between elements", id="bin-tail"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_input_is_a_decode_error(data: bytes, message: str):
    with pytest.raises(DecodeError, match=message):
        decode(data)


def test_depth_limit():
    nested = HDR12 + b"\x45" * 64 + b"\x01" * 64
    assert decode(nested).tag == q(S12, "Add")  # 64 levels are fine
    with pytest.raises(DecodeError, match="nested deeper than 64 at byte 69"):
        decode(HDR12 + b"\x45" * 65 + b"\x01" * 65)
    deep = root = etree.Element(q(S12, "Add"))
    for _ in range(64):
        deep = etree.SubElement(deep, q(S12, "Add"))
    with pytest.raises(UnsupportedError, match="deeper"):
        encode(root)


def test_max_size():
    assert decode(GET, max_size=len(GET)).tag == q(S12, "SyncML")
    with pytest.raises(TooLargeError, match=f"{len(GET)} bytes is over the limit of {len(GET) - 1}"):
        decode(GET, max_size=len(GET) - 1)


def test_string_table_expansion_is_bounded():
    big = b"x" * 60000 + b"\x00"
    refs = b"\x83\x00" * 40  # 2.4 M characters from a 60 kB document
    data = b"\x03\xa4\x01\x6a\x83\xd4\x61" + big + b"\x4f" + refs + b"\x01"
    assert len(big) == (0x03 << 14) | (0x54 << 7) | 0x61  # mb_u_int32 83 D4 61
    with pytest.raises(TooLargeError, match="expand"):
        decode(data)
    small = b"\x03\xa4\x01\x6a\x04abc\x00\x4f" + b"\x83\x00" * 10 + b"\x01"
    assert decode(small).text == "abc" * 10


# --- properties ----------------------------------------------------------------------------------
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).filter(lambda s: not NOT_XML.search(s))
PAGES = [(0, SYNCML_TAGS), (1, METINF_TAGS), (2, DMDDF_TAGS)]
ALL_TAGS = [(page, name) for page, table in PAGES for name in table.values()]


@st.composite
def documents(draw) -> etree._Element:
    syncml_ns = draw(st.sampled_from([S11, S12]))
    namespaces = {0: syncml_ns, 1: MI, 2: NS_DMDDF_12}
    if draw(st.booleans()):
        root = etree.Element(q(syncml_ns, "SyncML"), nsmap={None: syncml_ns})
    else:
        root = etree.Element(q(NS_DMDDF_12, "MgmtTree"), nsmap={None: NS_DMDDF_12})
        syncml_ns = None  # a TNDS document has no SyncML element (kept to pages 1-2 below)
    budget = [40]

    def fill(el: etree._Element, depth: int) -> None:
        count = draw(st.integers(0, 4)) if depth < 6 and budget[0] > 0 else 0
        if count == 0:
            kind = draw(st.sampled_from(["empty", "text", "opaque"]))
            if kind == "text":
                el.text = draw(TEXT)
            elif kind == "opaque":
                set_opaque(el, draw(st.binary(max_size=16)))
            return
        for _ in range(count):
            budget[0] -= 1
            page, name = draw(st.sampled_from(ALL_TAGS if syncml_ns else ALL_TAGS[len(SYNCML_TAGS) :]))
            fill(etree.SubElement(el, q(namespaces[page], name)), depth + 1)

    fill(root, 1)
    return root


@SETTINGS
@given(documents())
def test_round_trip_generated_documents(root: etree._Element):
    data = encode(root)
    back = decode(data)
    assert canon(back) == canon(root)
    assert encode(back) == data


def decode_or_error(data: bytes) -> None:
    """Only DecodeError may come out; a document that decodes must also survive a round trip."""
    try:
        root = decode(data, max_size=4096)
    except DecodeError:
        return
    again = decode(encode(root))
    assert canon(again, layout=False) == canon(root, layout=False)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_only_decode_errors(data: bytes):
    decode_or_error(data)


TOKENS = st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x83, 0xC3, 0x2D, 0x6D, 0x4F, 0x0F, 0x45, 0x60, 0x25, 0x61, 0x80, 0x7F])


@SETTINGS
@given(st.lists(st.one_of(TOKENS, st.integers(0, 255)), max_size=60))
def test_token_soup_after_valid_header_only_decode_errors(body: list[int]):
    decode_or_error(b"\x03\xa4\x01\x6a\x04ab\x00\x00" + bytes(body))


@SETTINGS
@given(
    st.sampled_from(WBXML_VECTORS + sorted(EXAMPLES.glob("*.wbxml"))),
    st.lists(st.tuples(st.integers(0, 600), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 600),
)
def test_mutated_vectors_only_decode_errors(path: Path, edits: list[tuple[int, int]], cut: int):
    data = bytearray(path.read_bytes())
    for index, value in edits:
        data[index % len(data)] = value
    decode_or_error(bytes(data))
    decode_or_error(bytes(data[: cut % (len(data) + 1)]))


def test_module_has_no_io_imports():
    source = Path(wbxml.__file__).read_text()
    for banned in ("asyncio", "httpx", "aiohttp", "socket", "sqlite3", "PySide6", "open("):
        assert banned not in source
