"""DDF loading (PROTOCOL.md 3.9), the shipped descriptions (1.13, 3.7) and validation against a tree view."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import FileFormatError, UnsupportedError
from emulator.tree.ddf import (
    ASSET_DIR,
    MODescription,
    NodeDesc,
    Occurrence,
    builtin_moids,
    describe,
    load_builtin,
    load_ddf,
    validate,
)

SHIPPED = {
    "urn:oma:mo:oma-dm-devinfo:1.0",
    "urn:oma:mo:oma-dm-devdetail:1.0",
    "urn:oma:mo:oma-dm-dmacc:1.0",
    "urn:oma:mo:oma-dm-inbox:1.0",
    "urn:oma:mo:oma-dm-devinfo:1.2",
    "urn:oma:mo:oma-dm-dmacc:1.2",
    "urn:oma:mo:oma-sessioninfomo:1.0",
    "com.dmemulator/1.0/Bearer",
    "com.dmemulator/1.0/OpEnv",
    "urn:oma:mo:oma-fumo:1.0",
    "urn:oma:mo:oma-lawmo:1.0",
    "urn:oma:mo:oma-scomo:1.0",
    "urn:oma:mo:oma-diagmon:1.0",
    "urn:oma:mo:ext-dmemulator-connmo:1.0",
}


def leaf(name: str, fmt: str = "chr", occ: str = "One", n: int | None = None) -> str:
    occ_xml = f"<{occ}>{n}</{occ}>" if n else f"<{occ}/>"
    return (
        f"<Node><NodeName>{name}</NodeName><DFProperties><AccessType><Get/></AccessType>"
        f"<DFFormat><{fmt}/></DFFormat><Occurrence>{occ_xml}</Occurrence>"
        f"<DFType><MIME>text/plain</MIME></DFType></DFProperties></Node>"
    )


def ddf(body: str, *, ns: str = "") -> bytes:
    xmlns = f' xmlns="{ns}"' if ns else ""
    return f'<?xml version="1.0"?>\n<MgmtTree{xmlns}>\n<VerDTD>1.2</VerDTD>\n{body}\n</MgmtTree>\n'.encode()


SMALL = """<Node><NodeName>Demo</NodeName><Path>.</Path>
<DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat>
<Scope><Permanent/></Scope><DFType><DDFName>com.example/1.0/Demo</DDFName></DFType></DFProperties>
""" + leaf("A") + leaf("Flag", "bool", "ZeroOrOne") + """
<Node><NodeName/><DFProperties><AccessType><Add/><Get/></AccessType><DFFormat><node/></DFFormat>
<Occurrence><ZeroOrN>2</ZeroOrN></Occurrence><DFType><DDFName/></DFType></DFProperties>
""" + leaf("Val", "int") + """</Node>
<Node><NodeName>Ext</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat>
<Occurrence><ZeroOrOne/></Occurrence><DFType><DDFName/></DFType></DFProperties></Node>
</Node>"""


# --------------------------------------------------------------------------- loading


def test_small_ddf_model() -> None:
    d = load_ddf(ddf(SMALL), name="small.xml")
    assert d.moid == "com.example/1.0/Demo"
    assert d.path == "."
    assert d.source == "small.xml"
    root = d.root
    assert root.name == "Demo" and root.format == "node" and root.scope == "Permanent"
    assert [c.name for c in root.children] == ["A", "Flag", None, "Ext"]
    a = root.children[0]
    assert a.format == "chr" and a.access == frozenset({"Get"}) and a.mime == ("text/plain",)
    assert a.scope == "Dynamic"  # Scope absent -> Dynamic (TND 8.5)
    placeholder = root.children[2]
    assert placeholder.occurrence == Occurrence("ZeroOrN", 2)
    assert placeholder.access == frozenset({"Add", "Get"})
    assert root.children[3].is_open


def test_namespaced_ddf_reads_the_same() -> None:
    plain = load_ddf(ddf(SMALL))
    spaced = load_ddf(ddf(SMALL, ns="syncml:dmddf1.2"))
    assert spaced.root == plain.root


def test_windows_style_doctype_and_foreign_elements() -> None:
    # Shape of Microsoft's published CSP DDFs: DOCTYPE whose internal subset holds only a PI,
    # an MSFT namespace for vendor elements, the MO id in DFType/MIME and Path with a trailing slash.
    doc = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE MgmtTree PUBLIC "-//OMA//DTD-DM-DDF 1.2//EN"
  "http://www.openmobilealliance.org/tech/DTD/DM_DDF-V1_2.dtd"
  [<?oma-dm-ddf-ver supported-versions="1.2"?>]>
<MgmtTree xmlns:MSFT="http://schemas.microsoft.com/MobileDevice/DM">
  <VerDTD>1.2</VerDTD>
  <Node>
    <NodeName>DMClient</NodeName>
    <Path>./Vendor/MSFT/</Path>
    <DFProperties>
      <AccessType><Get /></AccessType>
      <DFFormat><node /></DFFormat>
      <Occurrence><One /></Occurrence>
      <Scope><Permanent /></Scope>
      <DFType><MIME>com.microsoft/1.6/MDM/DMClient</MIME></DFType>
      <MSFT:Applicability><MSFT:OsBuildVersion>10.0.10240</MSFT:OsBuildVersion></MSFT:Applicability>
    </DFProperties>
    <Node>
      <NodeName>Unenroll</NodeName>
      <DFProperties>
        <AccessType><Replace /></AccessType>
        <DFFormat><Chr /></DFFormat>
        <DFType><MIME>text/plain</MIME></DFType>
        <CaseSense><CIS /></CaseSense>
      </DFProperties>
    </Node>
  </Node>
</MgmtTree>
"""
    d = load_ddf(doc)
    assert d.moid == "com.microsoft/1.6/MDM/DMClient"
    assert d.path == "./Vendor/MSFT"
    unenroll = d.root.children[0]
    assert unenroll.format == "chr"  # <Chr/> accepted case-insensitively
    assert unenroll.case_sense == "CIS"
    assert describe(d, ("unenroll",)) is unenroll  # CIS name matches whatever the case


def test_flat_ddf_with_path_is_grafted() -> None:
    body = SMALL + """
<Node><NodeName>Vendor1</NodeName><Path>./Demo/Ext</Path>
<DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat><DFType><DDFName/></DFType></DFProperties>
""" + leaf("Knob", "int") + "</Node>" + """
<Node><NodeName>Extra</NodeName><Path>./Demo/&lt;x&gt;</Path>
<DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat><DFType><MIME>text/plain</MIME></DFType></DFProperties>
</Node>"""
    d = load_ddf(ddf(body))
    knob = describe(d, ("Ext", "Vendor1", "Knob"))
    assert knob is not None and knob.format == "int"
    extra = describe(d, ("inst1", "Extra"))
    assert extra is not None and extra.format == "chr"
    assert d.others == ()


def test_unrelated_top_level_nodes_are_kept_as_others() -> None:
    body = SMALL.replace("<Path>.</Path>", "<Path>./Device/Vendor</Path>") + SMALL.replace(
        "<Path>.</Path>", "<Path>./User/Vendor</Path>"
    )
    d = load_ddf(ddf(body))
    assert d.path == "./Device/Vendor"
    assert len(d.others) == 1
    assert d.others[0][0] == "./User/Vendor"
    assert d.others[0][1] == d.root


def test_value_becomes_default() -> None:
    body = """<Node><NodeName>R</NodeName><DFProperties><AccessType><Get/></AccessType>
<DFFormat><node/></DFFormat><DFType><DDFName>x.y/1.0/R</DDFName></DFType></DFProperties>
<Node><NodeName>V</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat>
<DFType><MIME>text/plain</MIME></DFType></DFProperties><Value>hello</Value></Node>
<Node><NodeName>W</NodeName><DFProperties><AccessType><Get/></AccessType><DefaultValue>dv</DefaultValue>
<DFFormat><chr/></DFFormat><DFType><MIME>text/plain</MIME></DFType></DFProperties><Value>v</Value></Node>
</Node>"""
    d = load_ddf(ddf(body))
    assert describe(d, ("V",)).default == "hello"  # type: ignore[union-attr]
    assert describe(d, ("W",)).default == "dv"  # type: ignore[union-attr]


BROKEN = [
    # (body lines after the MgmtTree header, line number of the problem, words in the reason)
    ("<Node><NodeName>A</NodeName>\n<DFProperties>\n<Bogus/></DFProperties></Node>", 6, "unexpected <Bogus>"),
    ("<Node><NodeName>A</NodeName><DFProperties><AccessType><Get/></AccessType>\n<DFFormat><string/></DFFormat>"
     "<DFType><MIME>t</MIME></DFType></DFProperties></Node>", 5, "unknown DFFormat"),
    ("<Node><NodeName>A</NodeName><DFProperties><AccessType>\n<Fetch/></AccessType><DFFormat><chr/></DFFormat>"
     "</DFProperties></Node>", 5, "unknown access type"),
    ("<Node><NodeName>A</NodeName><DFProperties><AccessType/><DFFormat><node/></DFFormat>\n"
     "<Occurrence><ZeroOrN>many</ZeroOrN></Occurrence></DFProperties></Node>", 5, "ZeroOrN"),
    ("<Node><NodeName>A</NodeName><DFProperties><AccessType/><DFFormat><node/></DFFormat></DFProperties>\n"
     + leaf("B") + "\n" + leaf("B") + "</Node>", 6, "appears twice"),
    ("<Node><NodeName>A</NodeName><DFProperties><AccessType/><DFFormat><node/></DFFormat></DFProperties>\n"
     + leaf("") + "\n" + leaf("") + "</Node>", 6, "two unnamed"),
    ("<Node><NodeName>A</NodeName><DFProperties><AccessType/><DFFormat><chr/></DFFormat></DFProperties>\n"
     + leaf("B") + "</Node>", 4, "has child nodes"),
    ("<Node><NodeName>A</NodeName><DFProperties><AccessType/><DFFormat><node/></DFFormat></DFProperties>"
     "<Value>x</Value></Node>", 4, "has a <Value>"),
    ("<Node>\n<DFProperties><AccessType/><DFFormat><node/></DFFormat></DFProperties></Node>", 4, "without <NodeName>"),
    ("<Node><NodeName>A</NodeName><DFProperties><AccessType/></DFProperties></Node>", 4, "without <DFFormat>"),
    ("<Node><NodeName>A</NodeName><Path>./A//B</Path><DFProperties><AccessType/><DFFormat><node/></DFFormat>"
     "</DFProperties></Node>", 4, "bad <Path>"),
    ("<Node><NodeName>A</NodeName><Path>.</Path><DFProperties><AccessType/><DFFormat><node/></DFFormat>"
     "<DFType><DDFName>a.b/1.0/A</DDFName></DFType></DFProperties></Node>\n"
     "<Node><NodeName>C</NodeName><Path>./A/Missing</Path><DFProperties><AccessType/><DFFormat><chr/></DFFormat>"
     "</DFProperties></Node>", 5, "names no node"),
    ("<Node><NodeName>A</NodeName>\n<DFProperties><AccessType/><DFFormat><chr/></DFFormat></DFProperties>", 6, "not well-formed"),
    ("", 2, "no <Node>"),  # reported at <MgmtTree>
]  # fmt: skip


@pytest.mark.parametrize(("body", "line", "words"), BROKEN)
def test_broken_ddf_names_file_and_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    f = tmp_path / "broken.xml"
    f.write_bytes(ddf(body))
    with pytest.raises(FileFormatError) as info:
        load_ddf(f)
    assert info.value.path == str(f)
    assert info.value.line == line
    assert words in info.value.reason


def test_wrong_root_element() -> None:
    with pytest.raises(FileFormatError, match="expected <MgmtTree>"):
        load_ddf(b"<?xml version='1.0'?>\n<SyncML/>")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError) as info:
        load_ddf(tmp_path / "nope.xml")
    assert info.value.path.endswith("nope.xml")


def test_entity_declarations_are_refused() -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE MgmtTree [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>&c;</NodeName></Node></MgmtTree>"""
    with pytest.raises(FileFormatError) as info:
        load_ddf(bomb)
    assert info.value.line == 3
    assert "entity" in info.value.reason


def test_entity_declarations_in_utf16_are_refused() -> None:
    doc = (
        '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE MgmtTree [<!ENTITY a "x">]>\n'
        "<MgmtTree><VerDTD>1.2</VerDTD>" + leaf("A") + "</MgmtTree>"
    ).encode("utf-16")
    with pytest.raises(FileFormatError, match="entity"):
        load_ddf(doc)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.integers(0, 2000).map(lambda n: ddf(SMALL)[:n]))
def test_any_input_gives_a_description_or_file_format_error(data: bytes) -> None:
    try:
        result = load_ddf(data)
    except FileFormatError:
        return
    assert isinstance(result, MODescription)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(ddf(SMALL)) - 1), st.sampled_from(["<", ">", "/", "x", "", "&", "\n"]))
def test_mutated_ddf_never_escapes_as_another_error(pos: int, insert: str) -> None:
    data = ddf(SMALL)
    mutated = data[:pos] + insert.encode() + data[pos + 1 :]
    try:
        load_ddf(mutated)
    except FileFormatError as exc:
        assert exc.line is None or exc.line >= 1


# --------------------------------------------------------------------------- shipped DDFs


def test_all_shipped_moids() -> None:
    assert set(builtin_moids()) == SHIPPED
    assert len(list(ASSET_DIR.glob("*.xml"))) == len(SHIPPED)


def _walk(node: NodeDesc, depth: int = 0):  # type: ignore[no-untyped-def]
    yield node, depth
    for c in node.children:
        yield from _walk(c, depth + 1)


@pytest.mark.parametrize("moid", sorted(SHIPPED))
def test_shipped_ddf_properties_are_complete(moid: str) -> None:
    d = load_builtin(moid)
    assert d.moid == moid and d.root.ddf_name == moid
    raw = Path(d.source).read_text()
    assert "<!DOCTYPE" not in raw  # our own parser policy: no DOCTYPE in shipped files
    for node, depth in _walk(d.root):
        assert node.access, f"{node.name} has no AccessType"
        assert node.description, f"{node.name} has no Description"
        if node.is_leaf:
            assert node.mime, f"leaf {node.name} has no MIME type"
        if depth > 0:
            assert node.ddf_name is None


def test_dm12_devinfo_and_devdetail() -> None:
    devinfo = load_builtin("urn:oma:mo:oma-dm-devinfo:1.0")
    assert devinfo.path == "." and devinfo.root.name == "DevInfo"
    assert [c.name for c in devinfo.root.children] == ["DevId", "Man", "Mod", "DmV", "Lang", "Bearer", "Ext"]
    assert all(n.scope == "Permanent" for n, _ in _walk(devinfo.root))
    assert all(n.access == {"Get"} for n, _ in _walk(devinfo.root))
    assert describe(devinfo, ("Bearer",)).occurrence.kind == "ZeroOrOne"  # type: ignore[union-attr]

    detail = load_builtin("urn:oma:mo:oma-dm-devdetail:1.0")
    for name in ("MaxDepth", "MaxTotLen", "MaxSegLen"):
        n = describe(detail, ("URI", name))
        assert n is not None and n.format == "chr"  # 16-bit numbers written as strings
    assert describe(detail, ("LrgObj",)).format == "bool"  # type: ignore[union-attr]
    assert {c.name for c in detail.root.children} >= {"DevTyp", "OEM", "FwV", "SwV", "HwV", "Bearer", "Ext"}


def test_dm12_dmacc_layout() -> None:
    d = load_builtin("urn:oma:mo:oma-dm-dmacc:1.0")
    acc = describe(d, ("demo",))
    assert acc is not None and acc.name is None and acc.occurrence.kind == "OneOrMore"
    assert describe(d, ("demo", "AppID")).default == "w7"  # type: ignore[union-attr]
    port = describe(d, ("demo", "AppAddr", "a1", "Port", "p1", "PortNbr"))
    assert port is not None and port.format == "chr"
    assert describe(d, ("demo", "AppAddr", "a1", "AddrType")).default == "URI"  # type: ignore[union-attr]
    assert describe(d, ("demo", "ToConRef", "c1", "ConRef")) is not None
    for name in ("AAuthLevel", "AAuthType", "AAuthName"):
        assert "Get" in describe(d, ("demo", "AppAuth", "CLCRED", name)).access  # type: ignore[union-attr]
    secret = describe(d, ("demo", "AppAuth", "CLCRED", "AAuthSecret"))
    data = describe(d, ("demo", "AppAuth", "CLCRED", "AAuthData"))
    assert secret is not None and "Get" not in secret.access
    assert data is not None and "Get" not in data.access and data.format == "bin"
    for name in ("Name", "PrefConRef", "AAuthPref", "Ext"):
        assert describe(d, ("demo", name)) is not None


def test_dm2_devinfo_and_dmacc() -> None:
    info = load_builtin("urn:oma:mo:oma-dm-devinfo:1.2")
    assert info.path is None  # DM 2.0 MOs are addressed by MOID
    names = [c.name for c in info.root.children]
    assert "DevID" in names and "DevType" in names and "DevId" not in names

    acc = load_builtin("urn:oma:mo:oma-dm-dmacc:1.2")
    assert acc.root.name is None and acc.root.occurrence.kind == "ZeroOrMore"
    moid = describe(acc, ("Perm", "p1", "MOID"))
    assert moid is not None and "Get" not in moid.access
    assert "Get" not in describe(acc, ("Perm",)).access  # type: ignore[union-attr]
    assert describe(acc, ("Auth", "Noti", "Type")).format == "int"  # type: ignore[union-attr]
    assert describe(acc, ("Auth", "Noti", "Secret")).format == "bin"  # type: ignore[union-attr]
    assert "Get" not in describe(acc, ("Auth", "Trsp", "Secret")).access  # type: ignore[union-attr]
    assert "Get" not in describe(acc, ("Auth", "Bootstrap", "ClientSecretKey")).access  # type: ignore[union-attr]
    for name in ("SenderID", "RegURI", "UnRegURI", "RegParams", "Ext"):
        assert describe(acc, ("Push", "GCM", name)) is not None
    for name in ("SrvID", "SrvURI", "Name", "Ext"):
        assert describe(acc, (name,)) is not None


def test_sessioninfo_inbox_and_vendor_mos() -> None:
    s = load_builtin("urn:oma:mo:oma-sessioninfomo:1.0")
    assert {c.name for c in s.root.children} >= {"CBT", "ROAMING"}
    inbox = load_builtin("urn:oma:mo:oma-dm-inbox:1.0")
    assert inbox.root.access == {"Add"} and inbox.root.is_open
    bearer = load_builtin("com.dmemulator/1.0/Bearer")
    assert describe(bearer, ("lte0", "NAT")).format == "bool"  # type: ignore[union-attr]
    assert describe(bearer, ("lte0", "Loss")).format == "float"  # type: ignore[union-attr]
    assert {c.name for c in describe(bearer, ("x",)).children} >= {"Type", "State", "Address", "Latency"}  # type: ignore[union-attr]
    env = load_builtin("com.dmemulator/1.0/OpEnv")
    assert {c.name for c in describe(env, ("host",)).children} >= {"Name", "Kind", "ClientID"}  # type: ignore[union-attr]


def test_unknown_builtin() -> None:
    with pytest.raises(UnsupportedError) as info:
        load_builtin("urn:oma:mo:ext-nobody-knows:1.0")
    assert "urn:oma:mo:oma-dm-devinfo:1.0" in str(info.value)


# --------------------------------------------------------------------------- occurrence, describe


@pytest.mark.parametrize(
    ("occ", "ok", "bad", "marker"),
    [
        (Occurrence("One"), [1], [0, 2], ""),
        (Occurrence("ZeroOrOne"), [0, 1], [2], "?"),
        (Occurrence("ZeroOrMore"), [0, 1, 500], [], "*"),
        (Occurrence("OneOrMore"), [1, 500], [0], "+"),
        (Occurrence("ZeroOrN", 3), [0, 3], [4], "*3"),
        (Occurrence("OneOrN", 2), [1, 2], [0, 3], "+2"),
    ],
)
def test_occurrence(occ: Occurrence, ok: list[int], bad: list[int], marker: str) -> None:
    assert all(occ.allows(n) for n in ok)
    assert not any(occ.allows(n) for n in bad)
    assert occ.marker == marker


def test_describe_prefers_named_nodes_and_stops_outside() -> None:
    d = load_ddf(ddf(SMALL))
    assert describe(d, ()) is d.root
    assert describe(d, ("A",)).name == "A"  # type: ignore[union-attr]
    assert describe(d, ("anything",)).name is None  # type: ignore[union-attr]
    assert describe(d, ("anything", "Val")).format == "int"  # type: ignore[union-attr]
    assert describe(d, ("anything", "Nope")) is None
    assert describe(d, ("A", "deeper")) is None
    assert describe(d, ("a",)).name is None  # case-sensitive by default: 'a' falls to the placeholder  # type: ignore[union-attr]


# --------------------------------------------------------------------------- validation


class DictView:
    """Plain dicts as a tree: dict = interior node, str = chr leaf, (format, value) = typed leaf."""

    def __init__(self, root: dict[str, object]) -> None:
        self.root = root

    def _get(self, path: tuple[str, ...]) -> object:
        node: object = self.root
        for seg in path:
            node = node[seg]  # type: ignore[index]
        return node

    def children(self, path: tuple[str, ...]) -> list[str] | None:
        node = self._get(path)
        return list(node) if isinstance(node, dict) else None

    def format(self, path: tuple[str, ...]) -> str:
        node = self._get(path)
        if isinstance(node, dict):
            return "node"
        return node[0] if isinstance(node, tuple) else "chr"  # type: ignore[index,return-value]


def good_account() -> dict[str, object]:
    return {
        "AppID": "w7",
        "ServerID": "demo",
        "Name": "Demo",
        "AppAddr": {"srv": {"Addr": "http://127.0.0.1/dm12", "AddrType": "URI", "Port": {"p": {"PortNbr": "80"}}}},
        "AAuthPref": "DIGEST",
        "AppAuth": {
            "CLCRED": {"AAuthLevel": "CLCRED", "AAuthType": "DIGEST", "AAuthName": "u", "AAuthSecret": "s",
                       "AAuthData": ("bin", "AAAA")},
            "SRVCRED": {"AAuthLevel": "SRVCRED", "AAuthType": "DIGEST"},
        },
        "Ext": {"com.vendor": {"Anything": ("int", "1"), "Deep": {"x": "y"}}},
    }  # fmt: skip


def test_valid_dmacc_instance() -> None:
    d = load_builtin("urn:oma:mo:oma-dm-dmacc:1.0")
    assert validate(d, DictView({"demo": good_account(), "other": good_account()})) == []


def test_each_kind_of_violation() -> None:
    d = load_builtin("urn:oma:mo:oma-dm-dmacc:1.0")
    acc = good_account()
    del acc["ServerID"]  # missing required
    acc["Colour"] = "blue"  # unknown
    acc["AppID"] = ("int", "7")  # wrong leaf format
    acc["Name"] = {"x": "y"}  # interior where a leaf belongs
    acc["AppAddr"] = "http://x"  # leaf where an interior belongs
    got = {(v.path, v.kind) for v in validate(d, DictView({"demo": acc}))}
    assert got == {
        (("demo", "ServerID"), "missing"),
        (("demo", "Colour"), "unknown"),
        (("demo", "AppID"), "format"),
        (("demo", "Name"), "format"),
        (("demo", "AppAddr"), "format"),
    }


def test_one_or_more_needs_one() -> None:
    d = load_builtin("urn:oma:mo:oma-dm-dmacc:1.0")
    violations = validate(d, DictView({}))
    assert [(v.path, v.kind) for v in violations] == [(("<x>",), "missing")]


def test_zero_or_n_upper_bound_and_messages() -> None:
    d = load_ddf(ddf(SMALL))
    tree = {"A": "a", "i1": {"Val": ("int", "1")}, "i2": {"Val": ("int", "2")}}
    assert validate(d, DictView(tree)) == []
    tree["i3"] = {"Val": ("int", "3")}
    (v,) = validate(d, DictView(tree))
    assert v.kind == "occurrence" and "3 instances" in v.message and "ZeroOrN(2)" in v.message


def test_format_comparison_ignores_case() -> None:
    d = load_ddf(ddf(SMALL))
    assert validate(d, DictView({"A": ("Chr", "a"), "Flag": ("bool", "true")})) == []
    (v,) = validate(d, DictView({"A": "a", "Flag": ("chr", "true")}))
    assert v.path == ("Flag",) and v.kind == "format"


def test_validate_dm2_devinfo_instance() -> None:
    d = load_builtin("urn:oma:mo:oma-dm-devinfo:1.2")
    inst = {k: "x" for k in ("DevID", "Man", "Mod", "DmV", "Lang", "DevType", "OEM", "FwV", "SwV", "HwV")}
    assert validate(d, DictView(dict(inst))) == []
    del inst["DevType"]
    assert [(v.path, v.kind) for v in validate(d, DictView(inst))] == [(("DevType",), "missing")]
