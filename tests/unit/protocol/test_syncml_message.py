"""SyncML DM message model: real server vectors, tolerance, safety, round trips, sizes."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from shared_vectors import AOSP_DM12, aosp_dm12, needs_aosp_dm12

from emulator.errors import DecodeError, EmulatorError, TooLargeError, UnsupportedError
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import (
    Add,
    Alert,
    Atomic,
    Chal,
    Copy,
    Cred,
    Delete,
    Exec,
    Get,
    Item,
    Message,
    Meta,
    Replace,
    Results,
    Sequence,
    Status,
    SyncHdr,
    Unknown,
)
from emulator.protocol.syncml.message import (
    build_message,
    command_size,
    content_type,
    fits,
    message_size,
    parse_message,
    walk,
)

VECTORS = AOSP_DM12
EXAMPLES = Path(__file__).resolve().parents[3] / "assets" / "examples" / "dm12"
XML = codes.MEDIA_DM_XML
WBXML = codes.MEDIA_DM_WBXML
HAVE_WBXML = importlib.util.find_spec("emulator.protocol.syncml.wbxml") is not None
needs_wbxml = pytest.mark.skipif(not HAVE_WBXML, reason="emulator/protocol/syncml/wbxml.py not there yet")


def vector(name: str) -> Message:
    path = VECTORS / name
    return parse_message(path.read_bytes(), WBXML if name.endswith(".wbxml") else XML)


def wrap(body: str, header_extra: str = "", ns: str = ' xmlns="SYNCML:SYNCML1.2"') -> bytes:
    return (
        f"<SyncML{ns}><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>5</SessionID>"
        f"<MsgID>3</MsgID><Target><LocURI>IMEI:1</LocURI></Target><Source><LocURI>srv</LocURI></Source>"
        f"{header_extra}</SyncHdr><SyncBody>{body}<Final/></SyncBody></SyncML>"
    ).encode()


# ------------------------------------------------------------------------------ real vectors


@needs_aosp_dm12
def test_every_vector_parses_and_survives_a_round_trip():
    files = sorted(p.name for p in VECTORS.iterdir() if p.suffix in (".xml", ".wbxml"))
    assert len(files) == 14
    for name in files:
        if name.endswith(".wbxml") and not HAVE_WBXML:
            continue
        msg = vector(name)
        assert msg.final, name
        assert msg.header.ver_dtd == "1.2" and msg.header.ver_proto == "DM/1.2", name
        assert parse_message(build_message(msg), XML) == msg, name
        if HAVE_WBXML:
            assert parse_message(build_message(msg, wbxml=True), WBXML) == msg, name


@needs_aosp_dm12
@pytest.mark.parametrize(
    ("name", "code", "options", "texts"),
    [
        ("testalertdisplay.xml", codes.ALERT_DISPLAY, "MINDT=15", ["Testing Display Alert"]),
        ("testalertconfirm.xml", codes.ALERT_CONFIRM_OR_REJECT, "MAXDT=15&DR=1", ["Testing Confirmation Alert"]),
        (
            "testalerttextinput.xml",
            codes.ALERT_TEXT_INPUT,
            "MAXDT=20&DR=hello+andy!&MAXLEN=30&IT=I&ET=P",
            ["Testing Text Input Alert"],
        ),
        (
            "testalertsinglechoice.xml",
            codes.ALERT_SINGLE_CHOICE,
            "MAXDT=20&DR=2",
            ["Testing Single Choice Alert"] + [f"choice {n}" for n in ("one", "two", "three", "four", "five", "six")],
        ),
        (
            "testalertmultiplechoice.xml",
            codes.ALERT_MULTIPLE_CHOICE,
            "MAXDT=20&DR=1-3,6",
            ["Testing Multiple Choice Alert"]
            + [f"choice {n}" for n in ("one", "two", "three", "four", "five", "six")],
        ),
    ],
)
def test_ui_alert_vectors(name, code, options, texts):
    msg = vector(name)
    hdr = msg.header
    assert (hdr.session_id, hdr.msg_id, hdr.target, hdr.source) == ("11", "1", "SampleClient", "mot.manage")
    assert hdr.resp_uri == "http://199.1.88.66/Scts?4Eq5AA=="
    assert hdr.max_msg_size == 20000 and hdr.cred is None
    [alert] = msg.commands
    assert isinstance(alert, Alert) and alert.code == code
    # The option string travels with a bare '&' in these files: repaired, not lost.
    assert [item.data for item in alert.items] == [options, *texts]


@needs_aosp_dm12
def test_confirm_alert_inside_atomic_vector():
    [atomic] = vector("testalertconfirmatomic.xml").commands
    assert isinstance(atomic, Atomic) and atomic.cmd_id == "1"
    alert, replace = atomic.commands
    assert isinstance(alert, Alert) and alert.cmd_id == "2" and alert.code == 1101
    assert alert.items[0].data == "MAXDT=15DR=1"  # malformed on purpose in the vector
    assert isinstance(replace, Replace) and replace.cmd_id == "3"
    assert replace.meta == Meta(format="chr", type="text/plain")  # command-level Meta
    [item] = replace.items
    assert (item.target, item.data, item.meta) == ("./DevDetail/Bearer/GSM", "test", None)


@needs_aosp_dm12
@pytest.mark.parametrize(("name", "script"), [("testexecscript.xml", "uname"), ("testexecscript2.xml", "ls")])
def test_exec_vectors(name, script):
    [exe] = vector(name).commands
    assert isinstance(exe, Exec) and exe.cmd_id == "1" and exe.correlator is None
    assert [(i.target, i.data) for i in exe.items] == [(".", script)]


@needs_aosp_dm12
def test_get_script_vector():
    [get] = vector("testgetscript.xml").commands
    assert isinstance(get, Get)
    assert [(i.target, i.data) for i in get.items] == [("./DevInfo/DevId", None)]


@needs_aosp_dm12
def test_new_data_type_vector():
    msg = vector("testnewdatatype.xml")
    assert msg.header.session_id == "18629" and msg.header.target == "000000011234564"
    assert msg.header.cred == Cred(type=codes.AUTH_BASIC, format="b64", data="U2N0czpTYW1wbGVDbGllbnQ=")
    assert base64.b64decode(msg.header.cred.data) == b"Scts:SampleClient"
    kinds = [type(c).__name__ for c in msg.commands]
    assert kinds == ["Add"] * 4 + ["Replace"] * 3 + ["Get"] * 3 + ["Delete"] * 4
    assert [c.cmd_id for c in msg.commands] == [str(n) for n in range(1, 15)]
    first, floaty = msg.commands[0].items[0], msg.commands[1].items[0]
    assert first.target == "./Test/MyApp" and first.meta.format == "node" and first.data is None
    assert (floaty.meta.format, floaty.meta.type, floaty.data) == ("float", "text/plain", "+1.23e+01")
    assert msg.commands[6].items[0].data == "11:20:35+01:20"
    assert msg.commands[-1].items[0].target == "./Test/MyApp"


@needs_aosp_dm12
@needs_wbxml
def test_wbxml_add_vector_declares_syncml_11_but_parses():
    msg = vector("testadd.wbxml")
    hdr = msg.header
    assert (hdr.session_id, hdr.target, hdr.source) == ("30483", "000000011234564", "http://10.72.34.217:80/Manage")
    assert hdr.resp_uri == "http://10.72.34.217/Scts?4ELIAA==" and hdr.max_msg_size == 3500
    assert hdr.cred == Cred(type=codes.AUTH_BASIC, format="b64", data="U2N0czpTYW1wbGVDbGllbnQ=")
    hdr_status, alert_status, replace_status, add = msg.commands
    assert hdr_status == Status(
        cmd_id="1",
        msg_ref="1",
        cmd_ref="0",
        cmd="SyncHdr",
        code=212,
        target_refs=["http://10.72.34.217:80/Manage"],
        source_refs=["000000011234564"],
    )
    assert (alert_status.cmd, alert_status.cmd_ref, alert_status.code) == ("Alert", "1", 200)
    assert (replace_status.cmd, replace_status.cmd_ref, replace_status.code) == ("Replace", "2", 200)
    assert add == Add(cmd_id="4", items=[Item(target="./TestLeafNode", meta=Meta(format="node"), data="")])


@needs_aosp_dm12
@needs_wbxml
def test_wbxml_get_and_delete_vectors():
    get = vector("testget.wbxml").commands[-1]
    assert isinstance(get, Get) and get.items[0].target == "./DevDetail/URI/MaxDepth"
    deletes = vector("testdelete.wbxml").commands[3:]
    assert [(type(d), d.cmd_id, d.items[0].target) for d in deletes] == [
        (Delete, "4", "./TestLeafNode"),
        (Delete, "5", "./TestLeaf"),
    ]


@needs_aosp_dm12
@needs_wbxml
def test_wbxml_replace_vector_is_a_client_package_1():
    msg = vector("testreplace.wbxml")
    hdr = msg.header
    assert (hdr.target, hdr.target_name, hdr.source, hdr.source_name) == (
        "http://10.72.41.182:80/Manage",
        "Scts",
        "000000011234564",
        "SampleServer",
    )
    assert hdr.resp_uri is None
    alert, replace = msg.commands
    assert isinstance(alert, Alert) and alert.code == codes.ALERT_CLIENT_INITIATED_MGMT
    assert isinstance(replace, Replace) and len(replace.items) == 9
    leaves = {i.source.rsplit("/", 1)[1]: i.data for i in replace.items}
    assert leaves["DevId"] == "000000011234564" and leaves["Man"] == "Motorola, Copyright 2005"
    assert leaves["GSM"] == "" and leaves["LangAuto"] == "false"


# ------------------------------------------------------------------------------ tolerance


@pytest.mark.parametrize(
    "ns",
    ["", ' xmlns="SYNCML:SYNCML1.1"', ' xmlns="SYNCML:SYNCML1.2"'],
)
@pytest.mark.parametrize(
    "meta",
    [
        '<Meta><Type xmlns="syncml:metinf">text/plain</Type><Size xmlns="syncml:metinf">4</Size></Meta>',
        "<Meta><Type>text/plain</Type><Size>4</Size></Meta>",
        '<Meta><MetInf xmlns="syncml:metinf"><Type>text/plain</Type><Size>4</Size></MetInf></Meta>',
    ],
)
def test_namespaces_are_optional(ns, meta):
    body = f"<Replace><CmdID>1</CmdID><Item><Target><LocURI>./A</LocURI></Target>{meta}<Data>abcd</Data></Item></Replace>"
    [cmd] = parse_message(wrap(body, ns=ns), XML).commands
    assert cmd == Replace(cmd_id="1", items=[Item(target="./A", meta=Meta(type="text/plain", size=4), data="abcd")])


def test_prefixed_namespace_and_whitespace_around_values():
    data = b"""<s:SyncML xmlns:s="SYNCML:SYNCML1.2" xmlns:m="syncml:metinf"><s:SyncHdr>
      <s:VerDTD> 1.2 </s:VerDTD><s:VerProto>DM/1.2</s:VerProto><s:SessionID> A1 </s:SessionID>
      <s:MsgID>
        2
      </s:MsgID><s:Meta><m:MaxMsgSize> 8000 </m:MaxMsgSize></s:Meta></s:SyncHdr>
      <s:SyncBody><s:Alert><s:CmdID>1</s:CmdID><s:Data>
         1223
      </s:Data></s:Alert></s:SyncBody></s:SyncML>"""
    msg = parse_message(data, "Application/VND.SyncML.DM+XML ; charset=utf-8")
    assert (msg.header.session_id, msg.header.msg_id, msg.header.max_msg_size) == ("A1", "2", 8000)
    assert msg.commands == [Alert(cmd_id="1", code=codes.ALERT_SESSION_ABORT)]
    assert msg.final is False


def test_public_doctype_is_accepted_without_fetching():
    doctype = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.2//EN"'
        b' "http://www.openmobilealliance.org/tech/DTD/OMA-TS-SyncML_RepPro_DTD-V1_2.dtd">\n'
    )
    msg = parse_message(doctype + wrap("<!-- c --><Get><CmdID>1</CmdID><Item><Target><LocURI>./X</LocURI></Target></Item></Get>"), XML)
    assert [type(c) for c in msg.commands] == [Get]


def test_charset_parameter_applies_to_undeclared_documents():
    data = wrap("<Replace><CmdID>1</CmdID><Item><Data>caf\u00e9</Data></Item></Replace>").decode().encode("latin-1")
    msg = parse_message(data, f"{XML}; charset=ISO-8859-1")
    assert msg.commands[0].items[0].data == "caf\u00e9"
    with pytest.raises(UnsupportedError) as err:
        parse_message(data, f"{XML}; charset=no-such-charset")
    assert err.value.status == 415


TNDS = (
    '<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><NodeName>App</NodeName>'
    "<Node><NodeName>Name</NodeName><Value>a &amp; b</Value></Node></Node></MgmtTree>"
)


def test_embedded_tnds_in_cdata_comes_out_as_text():
    body = (
        "<Add><CmdID>7</CmdID><Item><Target><LocURI>./Inbox</LocURI></Target><Meta>"
        f'<Type xmlns="syncml:metinf">{codes.MEDIA_TNDS_XML}</Type></Meta><Data><![CDATA[{TNDS}]]></Data></Item></Add>'
    )
    [add] = parse_message(wrap(body), XML).commands
    assert add.items[0].data == TNDS
    assert add.items[0].meta.type == codes.MEDIA_TNDS_XML


def test_embedded_tnds_as_child_elements_comes_out_as_xml_text():
    body = f"<Add><CmdID>7</CmdID><Item><Data>\n  {TNDS}\n</Data></Item></Add>"
    [add] = parse_message(wrap(body), XML).commands
    tree = etree.fromstring(add.items[0].data.encode())
    assert tree.tag == "{syncml:dmddf1.2}MgmtTree"
    assert tree.findtext(".//{syncml:dmddf1.2}Value") == "a & b"
    # Without its own namespace the embedded element must not inherit SyncML's.
    [add] = parse_message(wrap("<Add><CmdID>7</CmdID><Item><Data><MgmtTree><Node/></MgmtTree></Data></Item></Add>"), XML).commands
    assert add.items[0].data == "<MgmtTree><Node/></MgmtTree>"


@needs_wbxml
def test_wbxml_inline_tnds_in_data_comes_out_as_xml_text():
    from emulator.protocol.syncml import wbxml

    root = etree.fromstring(wrap(f"<Add><CmdID>7</CmdID><Item><Data>{TNDS}</Data></Item></Add>"))
    raw = wbxml.encode(root)
    assert b"\x00\x02" in raw  # the TNDS really travels on the DM DDF code page
    [add] = parse_message(raw, WBXML).commands
    tree = etree.fromstring(add.items[0].data.encode())
    assert tree.tag == "{syncml:dmddf1.2}MgmtTree" and [e.text for e in tree.iter("{syncml:dmddf1.2}NodeName")] == ["App", "Name"]
    assert "urn:dm-emulator" not in add.items[0].data


def test_built_data_escapes_embedded_xml_and_reads_back():
    msg = Message(
        header=SyncHdr(session_id="1", msg_id="1"),
        commands=[Results(cmd_id="2", msg_ref="1", cmd_ref="3", items=[Item(source="./A", data=TNDS)])],
        final=True,
    )
    raw = build_message(msg)
    assert b"&lt;MgmtTree" in raw and b"<MgmtTree" not in raw
    assert parse_message(raw, XML) == msg


# ------------------------------------------------------------------------------ errors


ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE SyncML [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<SyncML><SyncHdr><SessionID>1</SessionID><MsgID>1</MsgID></SyncHdr><SyncBody><Alert><CmdID>1</CmdID>
<Data>1201</Data><Item><Data>&d;</Data></Item></Alert></SyncBody></SyncML>"""

EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<SyncML><SyncHdr><SessionID>1</SessionID><MsgID>1</MsgID></SyncHdr><SyncBody><Alert><CmdID>1</CmdID>
<Data>1201</Data><Item><Data>&x;</Data></Item></Alert></SyncBody></SyncML>"""


@pytest.mark.parametrize("data", [ENTITY_BOMB, EXTERNAL, ENTITY_BOMB.decode().encode("utf-16")])
def test_entity_declarations_are_refused(data):
    with pytest.raises(DecodeError) as err:
        parse_message(data, XML)
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"<SyncML><SyncHdr>", "malformed"),
        (b"<Foo/>", "not SyncML"),
        (b"<SyncML><SyncBody/></SyncML>", "SyncHdr"),
        (b"<SyncML><SyncHdr><SessionID>1</SessionID><MsgID>1</MsgID></SyncHdr></SyncML>", "SyncBody"),
        (b"<SyncML><SyncHdr><SessionID>1</SessionID></SyncHdr><SyncBody/></SyncML>", "MsgID"),
        (wrap("", header_extra="<Meta><MaxMsgSize>big</MaxMsgSize></Meta>"), "MaxMsgSize"),
        (b"<SyncML>&undefined;</SyncML>", ""),
    ],
)
def test_broken_messages_raise_decode_error(data, fragment):
    with pytest.raises(DecodeError) as err:
        parse_message(data, XML)
    assert type(err.value) is DecodeError and err.value.status == 400
    assert fragment.lower() in str(err.value).lower()


def test_size_limit_and_content_type():
    data = wrap("")
    assert parse_message(data, XML, max_size=len(data)).final
    with pytest.raises(TooLargeError) as too_big:
        parse_message(data, XML, max_size=len(data) - 1)
    assert too_big.value.status == 413
    for ctype in ("application/json", "text/plain", codes.MEDIA_NOTIFICATION, ""):
        with pytest.raises(UnsupportedError) as err:
            parse_message(data, ctype)
        assert err.value.status == 415
    assert parse_message(data, codes.MEDIA_DS_XML).header.msg_id == "3"  # sloppy DS label accepted


def test_broken_commands_become_unknown_in_place():
    body = (
        "<Replace><Item><Target><LocURI>./A</LocURI></Target></Item></Replace>"  # no CmdID
        "<Sync><CmdID>2</CmdID></Sync>"  # SyncML, not DM
        "<Frobnicate><CmdID>3</CmdID></Frobnicate>"  # nothing at all
        "<Alert><CmdID>4</CmdID><Data>twelve</Data></Alert>"
        "<Alert><CmdID>5</CmdID></Alert>"
        "<Status><CmdID>6</CmdID><MsgRef>1</MsgRef><Cmd>Get</Cmd><Data>200</Data></Status>"
        "<Add><CmdID>7</CmdID><Item><Meta><Size>-1</Size></Meta></Item></Add>"
        "<Sequence><CmdID>8</CmdID><Get><CmdID>9</CmdID></Get><Put><CmdID>10</CmdID></Put></Sequence>"
        "<Delete><CmdID>11</CmdID><Item><Target><LocURI>./B</LocURI></Target></Item></Delete>"
    )
    cmds = parse_message(wrap(body), XML).commands
    got = [(c.name, c.cmd_id, c.status) for c in cmds if isinstance(c, Unknown)]
    assert got == [
        ("Replace", None, 400),
        ("Sync", "2", 501),
        ("Frobnicate", "3", 400),
        ("Alert", "4", 400),
        ("Alert", "5", 412),
        ("Status", "6", 412),
        ("Add", "7", 400),
    ]
    seq, delete = cmds[-2:]
    assert isinstance(seq, Sequence) and seq.commands == [Get(cmd_id="9"), Unknown(name="Put", cmd_id="10", status=501, reason=seq.commands[1].reason)]
    assert delete == Delete(cmd_id="11", items=[Item(target="./B")])
    assert [c.name for c in walk(cmds)][-4:] == ["Sequence", "Get", "Put", "Delete"]


def test_the_first_child_of_a_name_counts_and_the_last_metinf_value():
    """The reader reads each element's children once; what it keeps of repeated or stray children is
    what looking each name up answered before: the first one of a name (text before a stray child),
    every TargetRef and Item in order, any namespace, and the last of a MetInf value."""
    body = (
        "<Status><CmdID>1</CmdID><CmdID>9</CmdID><MsgRef>1</MsgRef><CmdRef>0<X/></CmdRef><Cmd>SyncHdr</Cmd>"
        "<Cmd>Get</Cmd><TargetRef>a</TargetRef><SourceRef>b</SourceRef><TargetRef>c</TargetRef>"
        "<Data>200</Data><Data>500</Data></Status>"
        "<Replace><CmdID>2</CmdID><Meta><Format xmlns='syncml:metinf'>chr</Format>"
        "<MetInf xmlns='syncml:metinf'><Format>int</Format></MetInf></Meta>"
        "<Item><Target><LocURI>./A</LocURI><LocURI>./B</LocURI></Target><Target><LocURI>./C</LocURI></Target>"
        "<Data>1</Data><Data>2</Data></Item>"
        "<Item><x:Target xmlns:x='urn:other'><LocURI> ./D </LocURI></x:Target><Data>3<Sub/>tail</Data></Item>"
        "</Replace>"
    )
    msg = parse_message(wrap(body, header_extra="<MsgID>99</MsgID><Source><LocURI>other</LocURI></Source>"), XML)
    assert (msg.header.msg_id, msg.header.source) == ("3", "srv")
    status, replace = msg.commands
    assert status == Status(cmd_id="1", msg_ref="1", cmd_ref="0", cmd="SyncHdr", code=200,
                            target_refs=["a", "c"], source_refs=["b"])
    assert replace == Replace(cmd_id="2", meta=Meta(format="int"),
                              items=[Item(target="./A", data="1"), Item(target="./D", data="3<Sub/>tail")])
    assert [kind for kind, _ in msg.deviations] == ["header-order", "status-order"]
    assert msg.deviations[0][1] == ("SyncHdr children out of DTD order: VerDTD, VerProto, SessionID, MsgID, "
                                    "Target, Source, MsgID, Source")
    assert "(CmdID, CmdID, MsgRef, CmdRef, Cmd, Cmd, TargetRef, SourceRef, TargetRef, Data, Data;" in msg.deviations[1][1]


# ------------------------------------------------------------------------------ building


def test_build_uses_syncml_and_metinf_namespaces():
    msg = Message(
        header=SyncHdr(
            session_id="A1",
            msg_id="1",
            target="https://dm.example/omadm",
            source="IMEI:490154203237518",
            source_name="dev-user",
            cred=Cred(type=codes.AUTH_MD5, format="b64", data="Zz6EivR3yeaaENcRN6lpAQ=="),
            max_msg_size=10000,
            max_obj_size=1048576,
        ),
        commands=[
            Alert(cmd_id="1", code=codes.ALERT_SERVER_INITIATED_MGMT),
            Replace(
                cmd_id="2",
                items=[Item(source="./DevInfo/DevId", meta=Meta(format="chr", type="text/plain"), data="IMEI:1")],
            ),
        ],
        final=True,
    )
    raw = build_message(msg)
    assert raw.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(raw)
    syncml, metinf = "{SYNCML:SYNCML1.2}", "{syncml:metinf}"
    assert root.tag == f"{syncml}SyncML"
    hdr = root.find(f"{syncml}SyncHdr")
    assert [etree.QName(e).localname for e in hdr] == [
        "VerDTD", "VerProto", "SessionID", "MsgID", "Target", "Source", "Cred", "Meta",
    ]  # fmt: skip
    assert hdr.findtext(f"{syncml}Source/{syncml}LocName") == "dev-user"
    assert hdr.findtext(f"{syncml}Meta/{metinf}MaxMsgSize") == "10000"
    assert hdr.findtext(f"{syncml}Cred/{syncml}Meta/{metinf}Type") == codes.AUTH_MD5
    item = root.find(f"{syncml}SyncBody/{syncml}Replace/{syncml}Item")
    assert [etree.QName(e).localname for e in item] == ["Source", "Meta", "Data"]
    assert [e.tag for e in item.find(f"{syncml}Meta")] == [f"{metinf}Format", f"{metinf}Type"]
    assert root.find(f"{syncml}SyncBody")[-1].tag == f"{syncml}Final"
    assert parse_message(raw, content_type()) == msg


def test_build_syncml_11_namespace_and_binary_data_over_xml():
    msg = Message(
        header=SyncHdr(session_id="1", msg_id="1", ver_dtd="1.1", ver_proto="DM/1.1"),
        commands=[Results(cmd_id="1", msg_ref="1", cmd_ref="2", items=[Item(source="./B", data=b"\x00\xff")])],
    )
    raw = build_message(msg)
    assert etree.fromstring(raw).tag == "{SYNCML:SYNCML1.1}SyncML"
    assert parse_message(raw, XML).commands[0].items[0].data == base64.b64encode(b"\x00\xff").decode()


def test_unwritable_values_raise_emulator_errors():
    hdr = SyncHdr(session_id="1", msg_id="1")
    with pytest.raises(EmulatorError):
        build_message(Message(header=hdr, commands=[Unknown(name="X", cmd_id="1")]))
    with pytest.raises(EmulatorError):
        build_message(Message(header=hdr, commands=[Get(cmd_id="1", items=[Item(data="bell\x07")])]))


@needs_wbxml
def test_wbxml_carries_bytes_as_opaque():
    msg = Message(
        header=SyncHdr(session_id="1", msg_id="1"),
        commands=[Replace(cmd_id="1", items=[Item(target="./Bin", meta=Meta(format="bin"), data=b"\x00\x01\xfe")])],
        final=True,
    )
    raw = build_message(msg, wbxml=True)
    assert b"\xc3\x03\x00\x01\xfe" in raw  # OPAQUE, length 3, the bytes
    assert parse_message(raw, content_type(wbxml=True)) == msg


# ------------------------------------------------------------------------------ sizes


@needs_aosp_dm12
def test_sizes_add_up_for_xml():
    base = vector("testnewdatatype.xml")
    extra = Status(cmd_id="99", msg_ref="1", cmd_ref="4", cmd="Add", code=200, target_refs=["./Test/MyApp/TimeLeaf"])
    grown = Message(header=base.header, commands=[*base.commands, extra], final=True)
    assert message_size(base) == len(build_message(base))
    assert message_size(grown) == message_size(base) + command_size(extra)
    assert fits(base, extra, message_size(grown)) and not fits(base, extra, message_size(grown) - 1)


# ------------------------------------------------------------------------------ hypothesis

_XML_CHARS = st.characters(
    codec="utf-8",
    exclude_categories=("Cs", "Cc"),
    include_characters="\t\n\r",
    exclude_characters="\ufffe\uffff",
)
text = st.text(_XML_CHARS, max_size=12)
token = st.text(st.characters(codec="ascii", min_codepoint=33, max_codepoint=126), min_size=1, max_size=8)
value = st.builds(lambda s: s.strip(), text)  # element values that parsing strips
opt_value = st.none() | value
number = st.integers(min_value=0, max_value=10**12)
metas = st.none() | st.builds(
    Meta,
    format=opt_value,
    type=opt_value,
    mark=opt_value,
    size=st.none() | number,
    version=opt_value,
    next_nonce=opt_value,
    max_msg_size=st.none() | number,
    max_obj_size=st.none() | number,
)


def items(data):
    return st.lists(
        st.builds(Item, target=opt_value, source=opt_value, meta=metas, data=data, more_data=st.booleans()),
        max_size=3,
    )


def commands(data):
    item_cmds = [
        st.builds(cls, cmd_id=token, no_resp=st.booleans(), meta=metas, items=items(data))
        for cls in (Add, Replace, Delete, Get, Copy)
    ]
    leaf = st.one_of(
        *item_cmds,
        st.builds(Exec, cmd_id=token, meta=metas, correlator=opt_value, items=items(data)),
        st.builds(Alert, cmd_id=token, code=number, no_resp=st.booleans(), correlator=opt_value, items=items(data)),
        st.builds(
            Status,
            cmd_id=token,
            msg_ref=st.none() | token,
            cmd_ref=token,
            cmd=token,
            code=number,
            target_refs=st.lists(value, max_size=2),
            source_refs=st.lists(value, max_size=2),
            chal=st.none() | st.builds(Chal, type=opt_value, format=opt_value, next_nonce=opt_value),
            items=items(data),
        ),
        st.builds(
            Results,
            cmd_id=token,
            msg_ref=st.none() | token,
            cmd_ref=token,
            meta=metas,
            target_refs=st.lists(value, max_size=2),
            source_refs=st.lists(value, max_size=2),
            items=items(data),
        ),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(Atomic, cmd_id=token, no_resp=st.booleans(), meta=metas, commands=st.lists(inner, max_size=3)),
            st.builds(Sequence, cmd_id=token, no_resp=st.booleans(), meta=metas, commands=st.lists(inner, max_size=3)),
        ),
        max_leaves=6,
    )


def messages(data):
    header = st.builds(
        SyncHdr,
        session_id=token,
        msg_id=token,
        target=value,
        source=value,
        ver_dtd=st.sampled_from(["1.2", "1.1"]),
        ver_proto=st.sampled_from(["DM/1.2", "DM/1.3", "DM/1.1"]),
        target_name=opt_value,
        source_name=opt_value,
        resp_uri=opt_value,
        no_resp=st.booleans(),
        cred=st.none() | st.builds(Cred, type=opt_value, format=opt_value, data=value),
        max_msg_size=st.none() | number,
        max_obj_size=st.none() | number,
    )
    return st.builds(Message, header=header, commands=st.lists(commands(data), max_size=4), final=st.booleans())


FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(messages(st.none() | text))
def test_xml_round_trip(msg):
    assert parse_message(build_message(msg), XML) == msg


@needs_wbxml
@FAST
@given(messages(st.none() | text | st.binary(max_size=8)))
def test_wbxml_round_trip(msg):
    assert parse_message(build_message(msg, wbxml=True), WBXML) == msg


@FEWER
@given(messages(st.none() | text))
def test_command_size_is_exact_for_xml_once_the_body_has_a_final(msg):
    msg.final = True
    for cmd in msg.commands:
        grown = Message(header=msg.header, commands=[*msg.commands, cmd], final=True)
        assert message_size(grown) == message_size(msg) + command_size(cmd, ver_dtd=msg.header.ver_dtd)


@needs_wbxml
@FEWER
@given(messages(st.none() | text))
def test_command_size_is_close_for_wbxml(msg):
    for cmd in msg.commands:
        grown = Message(header=msg.header, commands=[*msg.commands, cmd], final=msg.final)
        delta = message_size(grown, wbxml=True) - message_size(msg, wbxml=True)
        assert abs(delta - command_size(cmd, wbxml=True)) <= 4


def _parse_or_emulator_error(data: bytes, ctype: str) -> None:
    with contextlib.suppress(EmulatorError):
        parse_message(data, ctype, max_size=1 << 16)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([XML, WBXML]))
def test_random_bytes_only_raise_emulator_errors(data, ctype):
    if ctype == WBXML and not HAVE_WBXML:
        return
    _parse_or_emulator_error(data, ctype)


# The AOSP vectors when they are beside the repository, and always the project's own examples.
_SEEDS = aosp_dm12(".xml", ".wbxml") + sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".xml", ".wbxml"))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_SEEDS), st.randoms(use_true_random=False), st.integers(1, 6))
def test_mutated_vectors_only_raise_emulator_errors(path, rnd: random.Random, edits):
    if path.suffix == ".wbxml" and not HAVE_WBXML:
        return
    data = bytearray(path.read_bytes())
    for _ in range(edits):
        pos = rnd.randrange(len(data))
        action = rnd.randrange(3)
        if action == 0:
            data[pos] = rnd.randrange(256)
        elif action == 1:
            del data[pos]
        else:
            data.insert(pos, rnd.choice(b"<>&/;\x00\x01\x03\xc3 AZ0"))
    _parse_or_emulator_error(bytes(data), WBXML if path.suffix == ".wbxml" else XML)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([p for p in _SEEDS if p.suffix == ".xml"]), st.data())
def test_mutated_xml_text_only_raises_emulator_errors(path, data):
    source = path.read_text()
    start = data.draw(st.integers(0, len(source) - 1))
    end = data.draw(st.integers(start, min(len(source), start + 40)))
    patch = data.draw(st.sampled_from(["", "<Data>", "</Item>", "<CmdID>x</CmdID>", "&amp;", "<Foo/>", "]]>", "1"]))
    _parse_or_emulator_error((source[:start] + patch + source[end:]).encode(), XML)


def test_status_and_alert_names():
    assert codes.status_name(404) == "Not found" and codes.status_name(304) == "Not modified"
    assert codes.status_name(499) == "Originator error"
    assert codes.alert_name(codes.ALERT_GENERIC) == "GENERIC ALERT" and codes.alert_name(1999) == "ALERT 1999"
    assert sorted(codes.UI_ALERTS) == [1100, 1101, 1102, 1103, 1104]
    assert (codes.ALERT_NEXT_MESSAGE, codes.ALERT_SESSION_ABORT, codes.ALERT_NO_END_OF_DATA) == (1222, 1223, 1225)
