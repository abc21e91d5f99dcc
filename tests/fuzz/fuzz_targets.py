"""Every decoder of outside input, as a fuzz target: bytes in, a value or an EmulatorError out.

Shared by the bounded suite test (``test_decoders_fuzz.py``) and the long campaign
(``run_campaign.py``). A target may raise only :class:`~emulator.errors.EmulatorError` subclasses;
anything else (KeyError, IndexError, RecursionError, an lxml error ...) is a crash: a decoder that
lets a server, a file or a user take the emulator down.

Each target has seeds (real documents: the AOSP vectors, the shipped DDFs and profiles, messages our
encoders write) that the inputs are mutated from, so most inputs get past the first byte.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
# The outside AOSP vectors sit beside the repository when a checkout has them (../shared); the
# project's own examples always seed too, so a clone without ../shared still fuzzes from real messages.
VECTORS = Path(os.environ.get("DM_VECTORS", ROOT.parent / "shared" / "vectors" / "aosp-dm12"))
EXAMPLES = ROOT / "assets" / "examples"
XML = "application/vnd.syncml.dm+xml"
WBXML = "application/vnd.syncml.dm+wbxml"


@dataclass(frozen=True)
class Target:
    name: str
    decode: Callable[[bytes], object]
    seeds: Callable[[], list[bytes]]
    tokens: tuple[bytes, ...] = field(default=())  # pieces worth splicing in (syntax of the format)
    kind: str = "bytes"  # xml, wbxml, json, toml, bytes: how inputs keep their structure when mutated


# ---------------------------------------------------------------------------------------------- decoders


def _syncml_xml(data: bytes) -> object:
    from emulator.protocol.syncml.message import parse_message

    return parse_message(data, XML)


def _syncml_wbxml(data: bytes) -> object:
    from emulator.protocol.syncml.message import parse_message

    return parse_message(data, WBXML)


def _wbxml(data: bytes) -> object:
    from emulator.protocol.syncml import wbxml

    return wbxml.decode(data, max_size=1 << 20)


def _dm2(kind: str) -> Callable[[bytes], object]:
    def decode(data: bytes) -> object:
        from emulator.protocol.dm2 import messages

        return getattr(messages, f"decode_{kind}")(data)

    return decode


def _dm2_mos(data: bytes) -> object:
    from emulator.protocol.dm2.moser import decode_mos

    return decode_mos(data)


def _pkg0_dm12(data: bytes) -> object:
    from emulator.protocol.syncml.notification import parse_notification

    return parse_notification(data)


def _pkg0_dm2(data: bytes) -> object:
    from emulator.protocol.dm2.notification import parse_notification

    return parse_notification(data)


def _client_uri(data: bytes) -> object:
    from emulator.tree.clienturi import parse_client_uri

    return parse_client_uri(data.decode("utf-8", "replace"))


def _dm_uri(data: bytes) -> object:
    from emulator.tree import uri

    text = data.decode("utf-8", "replace")
    return uri.parse_query(text), uri.split(text.split("?", 1)[0])


def _tnds(data: bytes) -> object:
    from emulator.tree import Tree
    from emulator.tree.tnds import export_tnds, import_tnds

    tree = Tree()
    done = import_tnds(tree, data, replace=True)
    export_tnds(tree)  # what was accepted must also be writable again
    return done


def _tnds_by_server(data: bytes) -> object:
    """An Add with a TNDS payload from a server, into a real device tree (ACL checks on every node)."""
    from emulator.tree.tnds import import_tnds

    tree = _device_tree().fork()  # copy-on-write: each input starts from the same device
    return import_tnds(tree, data, base_uri="./Vendor", by="demo-dm12")


def _ddf(data: bytes) -> object:
    from emulator.tree.ddf import load_ddf

    return load_ddf(data, name="fuzz.xml")


def _profile(data: bytes) -> object:
    from emulator.device.profile import load_profile

    with tempfile.NamedTemporaryFile(suffix=".toml", delete=False) as f:
        f.write(data)
    try:
        return load_profile(f.name)
    finally:
        os.unlink(f.name)


class EngineCrash(AssertionError):
    """An engine let an error out: it must end the session (SessionDone) instead, whatever arrives."""


def _drive(client: Any, data: bytes, content_type: str,
           vary: Callable[[bytes, int], bytes] | None = None) -> object:
    """Start a session, answer every message the client sends with ``data`` (changed by ``vary``
    for the n-th answer), answer the user with "cancelled", for at most 12 steps. Any exception out
    of the engine is a crash."""
    from emulator.errors import EmulatorError
    from emulator.protocol.actions import (
        AskUser,
        HttpRequest,
        HttpResult,
        OpenBrowser,
        SendMessage,
        SessionDone,
        UserAnswer,
    )

    reply = HttpResult(200, data, {"content-type": content_type})
    action = None
    answers = 0
    try:
        for _ in range(12):
            action = client.next_action()
            if action is None or isinstance(action, SessionDone):
                break
            if isinstance(action, SendMessage):
                answers += 1
                body = vary(data, answers) if vary else data
                client.receive_message(HttpResult(200, body, {"content-type": content_type}))
            elif isinstance(action, HttpRequest):
                client.receive_http(action.request_id, reply)
            elif isinstance(action, AskUser | OpenBrowser):
                client.answer_user(action.request_id, UserAnswer("cancelled"))
    except EmulatorError as exc:
        raise EngineCrash(f"{type(exc).__name__} escaped the engine: {exc}") from exc
    return action


def _dm12_engine(data: bytes) -> object:
    """The DM 1.2 client receiving a server package (trusted, so its commands are executed)."""
    import re

    from emulator.protocol.syncml.client import SyncMLClient

    tree, account = _engine_setup("dm12")
    found = re.search(rb"<SessionID>([0-9A-Fa-f]{1,8})</SessionID>", data)  # as if the server answered our session
    session_id = found.group(1).decode() if found else "1"
    client = SyncMLClient(tree, account, dev_id="IMEI:1", session_id=session_id, trust_server=True)
    return _drive(client, data, XML, _next_msg_id)


def _next_msg_id(data: bytes, n: int) -> bytes:
    """The n-th server message of a session carries a new MsgID (a repeated one ends the session)."""
    import re

    return re.sub(rb"<MsgID>[^<]*</MsgID>", f"<MsgID>{n}</MsgID>".encode(), data, count=1)


def _dm2_engine(data: bytes) -> object:
    """The DM 2.0 client receiving a Package#2 (and, for its HGETs, data) from a server."""
    from emulator.protocol.dm2.client import DM2Client

    tree, account = _engine_setup("dm2")
    return _drive(DM2Client(tree, account, dev_id="IMEI:1"), data, "application/vnd.oma.dm.request+json")


def _engine_setup(protocol: str) -> tuple[Any, Any]:
    from emulator.mo.accounts import read_accounts

    tree = _device_tree().fork()
    account = next(a for a in read_accounts(tree) if a.protocol == protocol)
    return tree, account


@cache
def _device_tree():
    return _fresh_device_tree()


def _fresh_device_tree():
    from emulator.device.build import device_tree
    from emulator.device.profile import find_profile

    tree = device_tree(find_profile("smartphone"), 0, server="http://127.0.0.1:1")[1]
    tree.set_node("./Vendor", format="node", acl="Add=*&Get=*&Replace=*&Delete=*")
    return tree


# ---------------------------------------------------------------------------------------------- seeds


def _files(folder: Path, *suffixes: str) -> list[bytes]:
    if not folder.is_dir():
        return []
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in suffixes]


def _xml_seeds() -> list[bytes]:
    return _files(VECTORS, ".xml") + _files(EXAMPLES / "dm12", ".xml") or [b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr/><SyncBody><Final/></SyncBody></SyncML>']


def _wbxml_seeds() -> list[bytes]:
    from emulator.protocol.syncml import wbxml
    from emulator.protocol.syncml.message import parse_xml_safely

    own = [wbxml.encode(parse_xml_safely(x)) for x in _xml_seeds()[:6]]
    return _files(VECTORS, ".wbxml") + _files(EXAMPLES / "dm12", ".wbxml") + own


def _dm2_seeds(kind: str) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        from emulator.protocol.dm2 import messages as m
        from emulator.protocol.dm2.moser import MOSerialization, encode_mos

        if kind == "initiation":
            return [
                m.encode_initiation(m.Initiation(
                    [m.MOInfo("urn:oma:mo:oma-dm-devinfo:1.2", "urn:oma:mo:oma-dm-devinfo:1.2", ["i1"])],
                    [m.Alert(m.ALERT_CLIENT_INITIATED), m.server_initiated_alert(7)])),
                b'{"Alert":[{"AlertType":"urn:oma:at:dm:2.0:Generic","Mark":"warning","DataType":"x",'
                b'"Data":{"k":[1,2.5,null,true]},"SourceURI":"urn:x:1.0/i/"}]}',
            ]
        if kind == "request":
            return [
                b'{"CMD":[["HPOST","https://DMcontent.DMserver.operator.com/[DevID]","urn:oma:mo:oma-mo:1.0/a/",'
                b'"urn:oma:mo:oma-mo:1.0/b/"],["HGET","https://dm.example/repo/apn-profile"],'
                b'["GET","urn:oma:mo:oma-sessioninfomo:1.0//CBT"],["END"]]}',
                b'{"CMD":[["SHOW","https://dm.example/ui"],["SUB","urn:x:1.0/*/A?f=1","https://s/n"],'
                b'["DELETE","urn:x:1.0/i/B"],["EXEC","urn:x:1.0/i/Reboot","arg"],["CONT"],["DEFAULT","m","u"]]}',
                *_files(EXAMPLES / "dm2", ".json"),
            ]
        if kind == "response":
            return [
                m.encode_response(m.Response(
                    [m.StatusEntry(200), m.StatusEntry(404, uri=["urn:x:1.0/i/"]),
                     m.StatusEntry(200, mos=[MOSerialization("urn:x:1.0/i/", {"A": {"B": 1}})])],
                    [m.Alert(m.ALERT_CLIENT_INITIATED)])),
            ]
        return [
            encode_mos([MOSerialization("urn:oma:mo:oma-dm-devinfo:1.2//FwV", {"FwV": "1.0.3"}),
                        MOSerialization("urn:x:1.0/i/", {"R": {"N": 1, "B": True, "Z": None}}, ddf="d", cv="c")]),
        ]

    return seeds


def _pkg0_dm12_seeds() -> list[bytes]:
    from emulator.protocol.syncml.notification import build_notification

    return [build_notification("demo-dm12", "pw", b"\x00" * 4, session_id=s, vendor=v)
            for s, v in ((1, b""), (0xBEEF, b"vendor-data"))]


def _pkg0_dm2_seeds() -> list[bytes]:
    from emulator.protocol.dm2.notification import build_notification

    return [
        build_notification("demo-dm2", secret=b"k", auth_data=b"n", notification_id=9, timestamp=1_700_000_000,
                           req_mos=True),
        build_notification("s", secret=None, notification_id=None, timestamp=None),
    ]


def _client_uri_seeds() -> list[bytes]:
    return [s.encode() for s in (
        "urn:oma:mo:oma-dm-devinfo:1.2//DevID", "urn:oma:mo:oma-mo:1.0/i1/Apps/*/Name",
        "urn:oma:mo:x:1.0/[Name=a b&Ver=2]/Setting?list=Struct", "com.vendor/1.0/*/A/B",
        "urn:oma:mo:oma-dm-dmacc:1.2/*/Perm/[MOID=urn:x:1.0]/",
    )]


def _dm_uri_seeds() -> list[bytes]:
    return [s.encode() for s in ("./DevInfo/DevId", "./DMAcc/x/AppAuth?list=Struct", "./A?prop=ACL",
                                 "./Vendor/a%2Fb", "./A?list=TNDS+ACL+Value")]


def _tnds_seeds() -> list[bytes]:
    from emulator.tree.tnds import export_tnds

    tree = _device_tree()
    doc = export_tnds(tree, "./DevInfo")
    return [doc, export_tnds(tree, "./DMAcc", mask_secrets=False)[:6000],
            b'<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><NodeName>X</NodeName>'
            b'<Path>./Vendor</Path><RTProperties><Format><bin/></Format><Type><MIME>a/b</MIME></Type>'
            b'<ACL>Get=*</ACL><TStamp>20010711T163817Z</TStamp><VerNo>3</VerNo></RTProperties>'
            b'<Value>AAEC</Value></Node></MgmtTree>']


def _server_tnds_seeds() -> list[bytes]:
    """Subtrees a server may Add under ./Vendor: no ACLs of their own, so ./Vendor's grant applies."""
    from emulator.tree.tnds import export_tnds

    tree = _device_tree()
    props = frozenset({"Format", "Type", "Value", "Title"})
    return [export_tnds(tree, uri, props=props, mask_secrets=False) for uri in ("./DevInfo", "./DevDetail")]


def _ddf_seeds() -> list[bytes]:
    files = sorted((ROOT / "assets" / "ddf").glob("*.xml"), key=lambda p: p.stat().st_size)
    return [p.read_bytes() for p in files[:4]]


def _profile_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted((ROOT / "profiles").glob("*.toml"))]


XML_TOKENS = (b"<", b">", b"</", b"/>", b"&amp;", b"&#0;", b"<![CDATA[", b"]]>", b"<!DOCTYPE a [<!ENTITY x 'y'>]>",
              b"<Data>", b"</Item>", b"<Meta>", b"<Format xmlns='syncml:metinf'>bin</Format>", b"\x00", b"\xff")
JSON_TOKENS = (b"{", b"}", b"[", b"]", b'"', b",", b":", b"null", b"1e999", b"-0", b'"\\ud800"', b"[[[[[[",
               b'{"a":', b"NaN", b"\xc3", b"true")
TOML_TOKENS = (b"\n[", b"]]\n", b" = ", b'"', b"'''", b"{x=1}", b"[[accounts]]\n", b"1979-05-27", b"inf",
               b"\n[bearers.x]\n", b'"{dev_id}{bad}"', b"0x7fffffffffffffff")

_TNDS_TOKENS = XML_TOKENS + (b"<Node>", b"</Node>", b"<Path>../</Path>", b"<Format><node/></Format>", b"<ACL/>")
TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("syncml-xml", _syncml_xml, _xml_seeds, XML_TOKENS, "xml"),
    Target("syncml-wbxml", _syncml_wbxml, _wbxml_seeds, (b"\x00", b"\x01", b"\x03", b"\xc3\x05", b"\x83\x00", b"\x40"),
           "wbxml"),
    Target("wbxml-decode", _wbxml, _wbxml_seeds, (b"\x00", b"\x01", b"\x02", b"\x03", b"\x04", b"\x80\x80\x80\x80"),
           "wbxml"),
    Target("dm2-initiation", _dm2("initiation"), _dm2_seeds("initiation"), JSON_TOKENS, "json"),
    Target("dm2-request", _dm2("request"), _dm2_seeds("request"), JSON_TOKENS, "json"),
    Target("dm2-response", _dm2("response"), _dm2_seeds("response"), JSON_TOKENS, "json"),
    Target("dm2-mo-serialization", _dm2_mos, _dm2_seeds("mos"), JSON_TOKENS, "json"),
    Target("pkg0-dm12", _pkg0_dm12, _pkg0_dm12_seeds, (b"\x00", b"\xff", b"\x80")),
    Target("pkg0-dm2", _pkg0_dm2, _pkg0_dm2_seeds, (b"\x00", b"\xff", b"\x0d", b"\x0e", b"\xf0")),
    Target("clienturi", _client_uri, _client_uri_seeds, (b"/", b"//", b"*", b"[", b"]", b"=", b"&", b"?", b"%")),
    Target("dm-uri", _dm_uri, _dm_uri_seeds, (b"/", b"?", b"+", b"%", b"..", b"=", b"list=", b"prop=")),
    Target("tnds", _tnds, _tnds_seeds, _TNDS_TOKENS, "xml"),
    Target("tnds-server-add", _tnds_by_server, _server_tnds_seeds, _TNDS_TOKENS, "xml"),
    Target("ddf", _ddf, _ddf_seeds, XML_TOKENS + (b"<Node>", b"</Node>", b"<ZeroOrMore/>", b"<DFFormat>"), "xml"),
    Target("profile", _profile, _profile_seeds, TOML_TOKENS, "toml"),
    Target("dm12-client-engine", _dm12_engine, _xml_seeds, XML_TOKENS, "xml"),
    Target("dm2-client-engine", _dm2_engine, _dm2_seeds("request"), JSON_TOKENS, "json"),
)}


# ---------------------------------------------------------------------------------------------- inputs


def mutate(data: bytes, rnd: random.Random, tokens: tuple[bytes, ...], edits: int) -> bytes:
    """A seed with a few random edits: byte flips, deletions, insertions, splices of format tokens,
    repeats of a chunk (deep nesting, long values) and truncation."""
    buf = bytearray(data)
    for _ in range(edits):
        pos = rnd.randrange(len(buf) + 1)
        op = rnd.randrange(7)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rnd.randrange(256)
        elif op == 1:
            del buf[pos : pos + rnd.randrange(1, 16)]
        elif op == 2 and tokens:
            buf[pos:pos] = rnd.choice(tokens)
        elif op == 3:
            buf[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 8)))
        elif op == 4 and buf:
            start = rnd.randrange(len(buf))
            chunk = bytes(buf[start : start + rnd.randrange(1, 24)])
            buf[pos:pos] = chunk * rnd.randrange(2, 64)
        elif op == 5:
            del buf[pos:]
        elif op == 6 and buf:
            a, b = sorted((rnd.randrange(len(buf)), rnd.randrange(len(buf))))
            buf[a:b] = bytes(reversed(buf[a:b]))
    return bytes(buf)


INTERESTING = (
    "", " ", "0", "-1", "1", "65535", "65536", "4294967296", "-9223372036854775809", "1e309", "NaN", "null",
    "true", "bin", "node", "chr", "b64", ".", "./", "..", "../..", "/", "*", "?", "%", "%zz", "a/b", "&",
    "urn:oma:mo:x:1.0", "urn:oma:mo:x:1.0/*/", "Get=*", "Get=a+b&Replace=*", "20010711T163817Z", "AAAA", "!!!",
    "A" * 3000, "\u00e9\u202e\ufeff", "\U0001f600", "syncml:auth-basic", "syncml:auth-md5", "text/plain",
)
TOML_VALUES = ('""', "0", "-1", "99999999999999999999", "1.5", "nan", "inf", "true", "[]", "[1, \"a\"]", "{}",
               "{ a = 1 }", '"{dev_id}"', '"{nope}"', '"{index:x}"', '"{"', "1979-05-27T07:32:00Z", '"\\u0000"',
               '"' + "x" * 300 + '"', '["urn:x:1.0"]')


def structured(target: Target, seed: bytes, rnd: random.Random, edits: int) -> bytes:
    """A seed changed in ways that keep it well-formed (XML stays XML, JSON stays JSON), so the
    input reaches the checks after parsing: values, nesting, repeats, missing and unknown parts."""
    try:
        if target.kind in ("xml", "wbxml"):
            return _mutate_xml(seed, rnd, edits, wbxml=target.kind == "wbxml")
        if target.kind == "json":
            return _mutate_json(seed, rnd, edits)
        if target.kind == "toml":
            return _mutate_toml(seed, rnd, edits)
    except Exception:  # noqa: BLE001 - a mutation that cannot be written: fall back to bytes
        pass
    return mutate(seed, rnd, target.tokens, edits)


def _mutate_xml(seed: bytes, rnd: random.Random, edits: int, *, wbxml: bool) -> bytes:
    import copy

    from lxml import etree

    from emulator.protocol.syncml import wbxml as codec
    from emulator.protocol.syncml.message import parse_xml_safely

    root = codec.decode(seed) if wbxml else parse_xml_safely(seed)
    for _ in range(edits):
        elements = [el for el in root.iter() if isinstance(el.tag, str)]
        el = rnd.choice(elements)
        parent = el.getparent()
        op = rnd.randrange(7)
        if op == 0 or parent is None:
            with contextlib.suppress(ValueError):  # lxml refuses some characters as text
                el.text = rnd.choice(INTERESTING)
        elif op == 1:
            parent.remove(el)
        elif op == 2:
            parent.insert(parent.index(el), copy.deepcopy(el))
        elif op == 3:
            other = rnd.choice(elements)
            if other is not el and el not in other.iterancestors() and other not in el.iter():
                other.append(el)
        elif op == 4:
            name = etree.QName(rnd.choice(elements)).localname
            el.tag = etree.QName(etree.QName(el).namespace, name).text if etree.QName(el).namespace else name
        elif op == 5:
            for child in list(el):
                el.remove(child)
        else:
            el.text = (el.text or "") * rnd.randrange(2, 50)
    return codec.encode(root) if wbxml else etree.tostring(root)


def _mutate_json(seed: bytes, rnd: random.Random, edits: int) -> bytes:
    import json

    doc = json.loads(seed)
    values = [None, -1, 0, 2**63, 1.5, True, "", [], {}, [[[[]]]], {"": None}] + list(INTERESTING[:20])
    for _ in range(edits):
        holders: list[tuple[Any, Any]] = []  # (container, key)
        stack = [doc]
        while stack:
            node = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, value in items:
                holders.append((node, key))
                stack.append(value)
        if not holders:
            doc = rnd.choice(values)
            continue
        container, key = rnd.choice(holders)
        op = rnd.randrange(5)
        if op == 0:
            container[key] = rnd.choice(values)
        elif op == 1:
            del container[key]
        elif op == 2 and isinstance(container, list):
            container.insert(key, container[key])
        elif op == 3 and isinstance(container, dict):
            container[rnd.choice(INTERESTING[:12]) or "K"] = container[key]
        else:
            container[key] = [container[key]] if rnd.random() < 0.5 else {"x": container[key]}
    return json.dumps(doc, ensure_ascii=rnd.random() < 0.5).encode("utf-8")


def _mutate_toml(seed: bytes, rnd: random.Random, edits: int) -> bytes:
    lines = seed.decode("utf-8").split("\n")
    keys = [ln.split("=", 1)[0].strip() for ln in lines if "=" in ln and not ln.lstrip().startswith("#")]
    for _ in range(edits):
        i = rnd.randrange(len(lines))
        line = lines[i]
        op = rnd.randrange(6)
        if op == 0 and "=" in line:
            lines[i] = line.split("=", 1)[0] + "= " + rnd.choice(TOML_VALUES)
        elif op == 1:
            del lines[i]
        elif op == 2:
            lines.insert(i, line)
        elif op == 3 and keys:
            lines.insert(i, f"{rnd.choice(keys)} = {rnd.choice(TOML_VALUES)}")
        elif op == 4:
            lines.insert(i, rnd.choice(["[[accounts]]", "[[bearers]]", "[ui]", "[devinfo.Ext]", "[identity]",
                                        "[[environments]]", "[[extra_mos]]", "[devdetail.URI]"]))
        elif "=" in line and keys:
            lines[i] = rnd.choice(keys) + " =" + line.split("=", 1)[1]
        if not lines:
            lines = [""]
    return "\n".join(lines).encode("utf-8")


def inputs(target: Target) -> st.SearchStrategy[bytes]:
    """Well-formed mutations of the seeds mostly, then byte-level mutations, raw bytes and token soups."""
    seeds = target.seeds()
    if not seeds:
        return st.binary(max_size=300)
    seed_rnd_edits = (st.sampled_from(seeds), st.randoms(use_true_random=False), st.integers(1, 6))
    kept = st.builds(lambda seed, rnd, edits: structured(target, seed, rnd, edits), *seed_rnd_edits)
    mutated = st.builds(lambda seed, rnd, edits: mutate(seed, rnd, target.tokens, edits), *seed_rnd_edits)
    soup = st.lists(st.sampled_from(target.tokens or (b"\x00",)) | st.binary(max_size=4), max_size=40).map(b"".join)
    strategies = [kept, kept, kept, mutated, mutated] if target.kind != "bytes" else [mutated, mutated, mutated]
    return st.one_of(*strategies, st.binary(max_size=300), soup)


def run_one(target: Target, data: bytes) -> BaseException | None:
    """Decode; None when the outcome is allowed (a value or an EmulatorError), else the crash."""
    from emulator.errors import EmulatorError

    try:
        target.decode(data)
    except EmulatorError:
        return None
    except Exception as exc:  # noqa: BLE001 - reporting every non-typed error is the point
        return exc
    return None
