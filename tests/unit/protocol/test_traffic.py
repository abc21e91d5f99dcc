"""The decoded view of logged messages: Package 0 field by field, secrets masked, statuses paired."""

from __future__ import annotations

import json

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.fleet.engines import make_engine
from emulator.protocol.actions import AskUser, HttpResult, SendMessage, UserAnswer
from emulator.protocol.dm2 import notification as dm2_notification
from emulator.protocol.syncml import notification as dm1_notification
from emulator.protocol.traffic import DM1_NOTIFICATION, DM2_NOTIFICATION, Logged, describe, pair_statuses
from emulator.server.dm12 import Dm12Config, Dm12Server
from emulator.server.state import ServerState


def test_dm1_package0_is_shown_field_by_field():
    raw = dm1_notification.build_notification("demo-dm12", "secret", b"nonce", ui_mode=3, session_id=0xA1)
    text = describe(DM1_NOTIFICATION, raw)
    assert "server id       demo-dm12" in text
    assert "SessionID A1" in text and "user interaction" in text


def test_dm2_package0_is_shown_field_by_field():
    raw = dm2_notification.build_notification("demo-dm2", secret=b"s", auth_data=b"a", notification_id=4711,
                                               timestamp=1_700_000_000, req_mos=True)
    text = describe(DM2_NOTIFICATION, raw)
    assert "SERVER-ID         demo-dm2" in text
    assert "NOTIFICATION-ID   4711" in text and "REQ-MOS           yes" in text


def test_secrets_are_masked_unless_revealed():
    body = json.dumps({"MOS": [{"ClientURI": "x", "MOData": {"AAuthSecret": "hunter2", "Name": "n"}}]}).encode()
    assert "hunter2" not in describe("application/json", body)
    assert "hunter2" in describe("application/json", body, reveal=True)


def test_undecodable_bodies_become_a_hex_dump_with_the_reason():
    text = describe("application/vnd.syncml.dm+wbxml", b"\x03\x01garbage")
    assert text.startswith("(could not decode") and "00000000" in text


def test_dm2_statuses_pair_with_the_commands_at_the_same_position():
    request = Logged("in", "application/vnd.oma.dm.request+json",
                     json.dumps({"CMD": [["GET", "urn:oma:mo:oma-dm-devinfo:1.2//FwV"], ["END"]]}).encode())
    response = Logged("out", "application/vnd.oma.dm.response+json", json.dumps({"Status": [{"sc": 200}]}).encode())
    assert pair_statuses([request, response], 1) == ["Status 200  <-  GET urn:oma:mo:oma-dm-devinfo:1.2//FwV"]


def test_syncml_statuses_pair_by_msgref_and_cmdref_over_a_real_session():
    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:9")
    server = Dm12Server(Dm12Config.shipped(), ServerState(base_url="http://127.0.0.1:9"))
    engine = make_engine(dev, dev.account(protocol="dm12"), "s1")
    log: list[Logged] = []
    while (action := engine.next_action()) is not None:
        if isinstance(action, SendMessage):
            log.append(Logged("out", action.content_type, action.body))
            reply = server.handle(action.body, action.content_type, action.headers, url=action.url)
            log.append(Logged("in", reply.content_type, reply.body))
            engine.receive_message(HttpResult(reply.status, reply.body, {"content-type": reply.content_type,
                                                                          **reply.headers}))
        elif isinstance(action, AskUser):
            engine.answer_user(action.request_id, UserAnswer("ok"))
        else:
            break
    paired = [line for i, m in enumerate(log) if m.direction == "out" for line in pair_statuses(log, i)]
    assert any(line.startswith("Status 200  <-  Get ./DevInfo/Mod") for line in paired), paired
    assert any("<-  SyncHdr" in line for line in paired)
    assert not any("not in this log" in line for line in paired), paired


# ------------------------------------------------------------------------ command summaries

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[3] / "assets" / "examples"


def test_dm2_commands_are_counted_in_order():
    from emulator.protocol.traffic import summarise_commands

    body = json.dumps({"CMD": [["GET", "a"], ["GET", "b"], ["HGET", "u", "c"], ["SHOW", "p"]]}).encode()
    assert summarise_commands("application/vnd.oma.dm.request+json", body) == "GET ×2, HGET, SHOW"
    example = (EXAMPLES / "dm2" / "hget-replace.json").read_bytes()
    assert summarise_commands("application/json", example) == "HGET, DELETE, GET"
    assert summarise_commands("application/json", b'{"CMD": []}') == "no commands"


def test_syncml_commands_are_named_status_left_out():
    from emulator.protocol.traffic import summarise_commands

    xml = (EXAMPLES / "dm12" / "replace.xml").read_bytes()
    wbxml = (EXAMPLES / "dm12" / "replace.wbxml").read_bytes()
    text = summarise_commands("application/vnd.syncml.dm+xml", xml)
    assert text and "Status" not in text
    assert summarise_commands("application/vnd.syncml.dm+wbxml", wbxml) == text


def test_syncml_status_only_message_says_no_commands():
    from emulator.protocol.traffic import summarise_commands

    body = b"""<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>
<SessionID>1</SessionID><MsgID>2</MsgID><Target><LocURI>IMEI:1</LocURI></Target>
<Source><LocURI>srv</LocURI></Source></SyncHdr><SyncBody>
<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data></Status>
<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>1</CmdRef><Cmd>Alert</Cmd><Data>200</Data></Status>
<Final/></SyncBody></SyncML>"""
    assert summarise_commands("application/vnd.syncml.dm+xml", body) == "no commands (Status ×2)"


def test_command_summary_of_junk_is_empty_and_long_ones_are_cut():
    from emulator.protocol.traffic import summarise_commands

    assert summarise_commands("application/vnd.syncml.dm+wbxml", b"\x03\x01garbage") == ""
    assert summarise_commands("application/json", b"not json") == ""
    assert summarise_commands("text/html", b"<html></html>") == ""
    assert summarise_commands("application/json", b'{"Status": []}') == ""
    many = json.dumps({"CMD": [[f"C{i}"] for i in range(40)]}).encode()
    text = summarise_commands("application/json", many, limit=20)
    assert len(text) == 20 and text.endswith("…")
