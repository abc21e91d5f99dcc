"""WBXML Data sent as OPAQUE with Format chr reads as text, as the same value does in XML (issue: the
server recorded b'test model' where the XML session recorded 'test model')."""

from __future__ import annotations

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.protocol.actions import SendMessage
from emulator.protocol.syncml.client import SyncMLClient
from emulator.protocol.syncml.commands import Add, Item, Message, Meta, Replace, Results, SyncHdr
from emulator.protocol.syncml.message import build_message, chr_text, content_type, parse_message


def _wbxml(cmd) -> bytes:
    return build_message(Message(header=SyncHdr(session_id="1", msg_id="1", target="t", source="s"),
                                 commands=[cmd], final=True), wbxml=True)


def test_chr_text_decodes_only_chr_bytes_that_are_utf8():
    assert chr_text(b"test model", "chr") == "test model"
    assert chr_text("caf\u00e9".encode(), " CHR ") == "caf\u00e9"
    assert chr_text(b"\xff\xfe", "chr") == b"\xff\xfe"  # not UTF-8: kept as it came
    assert chr_text(b"\x00\x01", "bin") == b"\x00\x01"
    assert chr_text(b"abc", None) == b"abc"
    assert chr_text(None, "chr") is None and chr_text("x", "chr") == "x"


def test_opaque_chr_data_parses_as_text_from_item_or_command_meta():
    item_meta = Replace(cmd_id="1", items=[Item(target="./A", meta=Meta(format="chr"), data=b"test model")])
    cmd_meta = Results(cmd_id="1", msg_ref="1", cmd_ref="2", meta=Meta(format="chr"), items=[Item(source="./B", data=b"x\xc3\xa9")])
    binary = Replace(cmd_id="1", items=[Item(target="./C", meta=Meta(format="bin"), data=b"\x00raw")])
    media = content_type(wbxml=True)
    assert parse_message(_wbxml(item_meta), media).commands[0].items[0].data == "test model"
    assert parse_message(_wbxml(cmd_meta), media).commands[0].items[0].data == "x\u00e9"
    assert parse_message(_wbxml(binary), media).commands[0].items[0].data == b"\x00raw"


def test_device_stores_opaque_chr_as_text():
    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://dm.test")
    account = dev.account(protocol="dm12")
    cmd = Add(cmd_id="1", items=[Item(target="./ChrTest", meta=Meta(format="chr"), data=b"test model")])
    engine = SyncMLClient.respond_to(dev.tree, account, _wbxml(cmd), content_type(wbxml=True), dev_id=dev.id,
                                     wbxml=True)
    assert isinstance(engine.next_action(), SendMessage)
    assert dev.tree.value("./ChrTest") == "test model"
