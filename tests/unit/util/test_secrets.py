"""Secrets are masked in what people see and save: TNDS exports, `tree export`, traffic bodies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from emulator.cli import main
from emulator.protocol.syncml import wbxml
from emulator.protocol.syncml.message import parse_xml_safely
from emulator.protocol.traffic import mask_message
from emulator.tree import Tree
from emulator.tree.tnds import export_tnds, import_tnds
from emulator.util.masking import (
    MASK,
    MASK_BYTES,
    is_secret_name,
    is_secret_uri,
    is_secret_value,
    mask,
    mask_json,
    masked_value,
)

KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("name", [
    "AAuthSecret", "Secret", "ClientSecretKey", "ServerPW", "ClientPW", "ClientCertPassword", "Password",
    "adminPassword", "PrivateKey", "private_key", "PSK", "PIN",
])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "AAuthName", "AAuthData", "AAuthType", "ServerID", "ClientPubKey", "ServerPubKey", "Addr", "Pinned", "PW2",
])
def test_names_that_are_not_secret(name):
    # AAuthData is a nonce (sent in clear by the protocol); public keys are public
    assert not is_secret_name(name)


def test_uris_values_and_mask():
    assert is_secret_uri("./DMAcc/srv/AppAuth/CLCRED/AAuthSecret")
    assert is_secret_uri("urn:oma:mo:oma-dm-dmacc:1.2/*/Auth/Noti/Secret")
    assert not is_secret_uri("./DMAcc/srv/AppAuth/CLCRED/AAuthName")
    assert is_secret_value(KEY_PEM) and is_secret_value(KEY_PEM.encode())
    assert not is_secret_value("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----")
    assert (mask("x"), mask(b"\x00"), mask(None)) == (MASK, MASK_BYTES, None)
    assert masked_value("Name", "visible") == "visible"
    assert masked_value("Blob", KEY_PEM) == MASK


# ---------------------------------------------------------------------------------------------- TNDS


def _tree() -> Tree:
    t = Tree()
    t.set_node("./DMAcc", format="node")
    t.set_node("./DMAcc/srv/AppAuth/CLCRED/AAuthName", "IMEI:1")
    t.set_node("./DMAcc/srv/AppAuth/CLCRED/AAuthSecret", "hunter2-long-secret")
    t.set_node("./DM2/DMAcc/a/Auth/Noti/Secret", b"\x01\x02\x03secret", format="bin",
               type="application/octet-stream")
    t.set_node("./Vendor/TLS/Key", KEY_PEM)
    return t


def _values(doc: bytes) -> dict[str, tuple[str, str | None]]:
    """NodeName -> (Size, Value) of each leaf of a TNDS document."""
    root = parse_xml_safely(doc)
    out = {}
    for node in root.iter("{*}Node"):
        size = node.find("{*}RTProperties/{*}Size")
        value = node.find("{*}Value")
        if size is not None:
            out[node.findtext("{*}NodeName")] = (size.text, value.text if value is not None else None)
    return out


def test_local_tnds_export_masks_secrets_and_still_imports():
    t = _tree()
    values = _values(export_tnds(t))
    assert values["AAuthName"] == ("6", "IMEI:1")
    assert values["AAuthSecret"] == ("8", MASK)  # the size is the mask's: not even the length leaks
    assert values["Secret"] == ("8", base64.b64encode(MASK_BYTES).decode())  # Format bin stays base64
    assert values["Key"] == ("8", MASK)
    fresh = Tree()
    import_tnds(fresh, export_tnds(t))
    assert fresh.value("./DMAcc/srv/AppAuth/CLCRED/AAuthSecret") == MASK
    assert fresh.value("./DM2/DMAcc/a/Auth/Noti/Secret") == MASK_BYTES


def test_reveal_and_server_answers_keep_secrets():
    t = _tree()
    revealed = _values(export_tnds(t, mask_secrets=False))
    assert revealed["AAuthSecret"] == ("19", "hunter2-long-secret")
    assert base64.b64decode(revealed["Secret"][1]) == b"\x01\x02\x03secret"
    # a server's ?list=TNDS: its ACL decides what it sees, masking would corrupt its copy
    t.set_node("./DMAcc", format="node", acl="Get=srv")
    assert _values(export_tnds(t, "./DMAcc", by="srv"))["AAuthSecret"][1] == "hunter2-long-secret"


def test_tree_export_command_masks_unless_asked(tmp_path: Path):
    masked, revealed = tmp_path / "m.xml", tmp_path / "r.xml"
    assert main(["tree", "export", "--profile", "smartphone", "--out", str(masked)]) == 0
    assert main(["tree", "export", "--profile", "smartphone", "--out", str(revealed), "--reveal-secrets"]) == 0
    m, r = masked.read_bytes(), revealed.read_bytes()
    assert b"demo-client-secret" not in m and MASK.encode() in m
    assert b"demo-client-secret" in r  # the shipped profiles' DM 1.2 client secret
    assert len(_values(m)) == len(_values(r))


# ---------------------------------------------------------------------------------------------- messages

SYNCML = b"""<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>
<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>http://s</LocURI></Target>
<Source><LocURI>IMEI:1</LocURI></Source>
<Cred><Meta><Type xmlns="syncml:metinf">syncml:auth-basic</Type></Meta><Data>SU1FSToxOmh1bnRlcjI=</Data></Cred>
</SyncHdr><SyncBody>
<Replace><CmdID>2</CmdID>
<Item><Target><LocURI>./DMAcc/srv/AppAuth/CLCRED/AAuthSecret</LocURI></Target><Data>hunter2</Data></Item>
<Item><Target><LocURI>./DMAcc/srv/Name</LocURI></Target><Data>Visible name</Data></Item>
</Replace>
<Results><CmdID>3</CmdID><MsgRef>1</MsgRef><CmdRef>4</CmdRef>
<Item><Source><LocURI>./Vendor</LocURI></Source><Data>&lt;MgmtTree&gt;&lt;Node&gt;&lt;NodeName&gt;PIN&lt;/NodeName&gt;&lt;Value&gt;1234&lt;/Value&gt;&lt;/Node&gt;&lt;/MgmtTree&gt;</Data></Item>
</Results>
<Final/></SyncBody></SyncML>"""


def test_syncml_xml_message_is_masked():
    out = mask_message("application/vnd.syncml.dm+xml", SYNCML)
    root = parse_xml_safely(out)
    texts = [d.text for d in root.iter("{*}Data")]
    assert texts[0] == MASK  # Cred: basic credentials are the password in base64
    assert texts[1] == MASK and texts[2] == "Visible name"
    assert "1234" not in texts[3] and MASK in texts[3] and "<NodeName>PIN</NodeName>" in texts[3]
    assert b"hunter2" not in out and b"SU1FSToxOmh1bnRlcjI=" not in out


def test_wbxml_message_is_masked_and_stays_wbxml():
    data = wbxml.encode(parse_xml_safely(SYNCML))
    out = mask_message("application/vnd.syncml.dm+wbxml", data)
    assert out[:1] == data[:1] and b"hunter2" not in out  # still WBXML (version byte), secret gone
    texts = [d.text for d in wbxml.decode(out).iter("{*}Data")]
    assert texts[1] == MASK and texts[2] == "Visible name"


def test_json_message_is_masked_by_key():
    body = json.dumps([{"MOID": "urn:oma:mo:oma-dm-dmacc:1.2", "MOData": {
        "SrvID": "a", "Auth": {"Noti": {"Secret": "c2VjcmV0", "Data": "bm9uY2U="}},
        "Ext": {"HTTPAuth": {"Name": "dev", "Secret": "pw"}}}}]).encode()
    obj = json.loads(mask_message("application/vnd.oma.dm.mo+json", body))
    data = obj[0]["MOData"]
    assert data["Auth"]["Noti"] == {"Secret": MASK, "Data": "bm9uY2U="}
    assert data["Ext"]["HTTPAuth"] == {"Name": "dev", "Secret": MASK}
    assert mask_json({"Secret": None}) == ({"Secret": None}, 0)


def test_bodies_without_secrets_or_undecodable_come_back_unchanged():
    plain = b'{"MOID": "x", "MOData": {"Name": "n"}}'
    assert mask_message("application/json", plain) is plain
    assert mask_message("application/vnd.syncml.dm+xml", b"<not xml") == b"<not xml"
    assert mask_message("application/vnd.syncml.dm+wbxml", b"\x02\xff") == b"\x02\xff"
    assert mask_message("text/plain", b"") == b""


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["application/vnd.syncml.dm+xml", "application/json",
                                                 "application/vnd.syncml.dm+wbxml", "text/plain"]))
def test_masking_never_raises_on_any_body(body, ctype):
    out = mask_message(ctype, body)
    assert isinstance(out, bytes)


def test_masked_xml_keeps_its_structure():
    out = mask_message("application/vnd.syncml.dm+xml", SYNCML)
    before = [el.tag for el in etree.fromstring(SYNCML).iter()]
    after = [el.tag for el in etree.fromstring(out).iter()]
    assert before == after
