"""The server-initiated bootstrap message (DM Security 1.2 5.1.7.2, README "DM 1.3"): WBXML only,
HMAC-SHA1 in the Content-Type, exactly one Add of one TNDS item, nothing decoded before the MAC
verifies, and a size limit taken at its exact value."""

from __future__ import annotations

import pytest

from emulator.protocol.syncml import bootstrap as boot
from emulator.protocol.syncml.codes import MEDIA_DM_WBXML, MEDIA_DM_XML
from emulator.protocol.syncml.commands import Add, Get, Item, Message, Meta, SyncHdr
from emulator.protocol.syncml.message import build_message

TNDS = (b'<MgmtTree xmlns="syncml:dmddf1.2"><VerDTD>1.2</VerDTD><Node><NodeName>DMAcc</NodeName>'
        b'<Node><NodeName>x</NodeName></Node></Node></MgmtTree>')
PIN = "factory-IMEI:1"


def _message(tnds: bytes = TNDS, key: str = PIN) -> tuple[bytes, str]:
    return boot.build_bootstrap(tnds, dev_id="IMEI:1", server_uri="https://dm.example/bootstrap", key=key)


def _sized(size: int) -> tuple[bytes, str]:
    """A valid bootstrap message of exactly ``size`` bytes (a comment in the TNDS pads it)."""
    pad = 0
    for _ in range(6):
        tnds = TNDS.replace(b"<VerDTD>", b"<!--" + b"p" * pad + b"--><VerDTD>")
        body, ctype = _message(tnds)
        if len(body) == size:
            return body, ctype
        pad += size - len(body)
    raise AssertionError("could not size the message")


def test_a_bootstrap_round_trips_with_its_mac_in_the_content_type():
    body, ctype = _message()
    assert body[:1] == b"\x02" and ctype.startswith(MEDIA_DM_WBXML + "; SEC=USERPIN; MAC=")
    assert boot.security(ctype) == ("USERPIN", boot.mac(PIN, body))
    assert boot.open_bootstrap(body, ctype, pin=PIN) == TNDS


def test_the_size_limit_is_taken_at_its_exact_value_and_refused_one_byte_over():
    body, ctype = _sized(boot.MAX_BOOTSTRAP_MESSAGE)
    assert b"<VerDTD>" in boot.open_bootstrap(body, ctype, pin=PIN)
    over, over_type = _sized(boot.MAX_BOOTSTRAP_MESSAGE + 1)
    with pytest.raises(boot.BootstrapRefused, match="exceeds the limit"):
        boot.open_bootstrap(over, over_type, pin=PIN)


@pytest.mark.parametrize("ctype, why", [
    (MEDIA_DM_XML + "; SEC=USERPIN; MAC=" + "0" * 40, "never XML"),
    (MEDIA_DM_WBXML, "SEC and MAC"),
    (MEDIA_DM_WBXML + "; SEC=USERPIN", "SEC and MAC"),
    (MEDIA_DM_WBXML + "; SEC=USERPIN; MAC=zz", "40 hex digits"),
    (MEDIA_DM_WBXML + "; SEC=USERPIN; MAC=" + "0" * 41, "40 hex digits"),
    (MEDIA_DM_WBXML + "; SEC=NETWORKID; MAC=" + "0" * 40, "network shared secret"),
    (MEDIA_DM_WBXML + "; SEC=USERPIN_NETWORKID; MAC=" + "0" * 40, "network shared secret"),
    (MEDIA_DM_WBXML + "; SEC=USERPINMAC; MAC=" + "0" * 40, "unknown bootstrap security"),
    (MEDIA_DM_WBXML + "; SEC=USERPIN; MAC=" + "0" * 40, "does not verify"),
    ("", "never XML"),
])
def test_a_bad_content_type_or_mac_is_refused(ctype, why):
    body, _ = _message()
    with pytest.raises(boot.BootstrapRefused, match=why):
        boot.open_bootstrap(body, ctype, pin=PIN)


def test_a_wrong_pin_and_an_empty_pin_do_not_verify():
    body, ctype = _message()
    for pin in ("0000", ""):
        with pytest.raises(boot.BootstrapRefused, match="does not verify"):
            boot.open_bootstrap(body, ctype, pin=pin)


def _signed(msg: Message) -> tuple[bytes, str]:
    body = build_message(msg, wbxml=True)
    return body, boot.content_type("USERPIN", boot.mac(PIN, body))


HDR = SyncHdr(session_id="0", msg_id="1", target="IMEI:1", source="https://dm.example")
TNDS_META = Meta(type="application/vnd.syncml.dmtnds+xml")


@pytest.mark.parametrize("msg", [
    Message(header=HDR, commands=[], final=True),
    Message(header=HDR, commands=[Add(cmd_id="1", items=[Item(target=".", meta=TNDS_META, data="<a/>")]),
                                  Add(cmd_id="2", items=[Item(target=".", meta=TNDS_META, data="<a/>")])]),
    Message(header=HDR, commands=[Get(cmd_id="1", items=[Item(target="./DevInfo")])]),
    Message(header=HDR, commands=[Add(cmd_id="1", items=[Item(target=".", meta=TNDS_META, data="<a/>"),
                                                          Item(target=".", meta=TNDS_META, data="<a/>")])]),
    Message(header=HDR, commands=[Add(cmd_id="1", items=[Item(target=".", meta=Meta(type="text/plain"), data="x")])]),
    Message(header=HDR, commands=[Add(cmd_id="1", items=[Item(target=".", meta=TNDS_META, data="")])]),
], ids=["empty", "two adds", "a get", "two items", "not tnds", "no data"])
def test_a_signed_message_that_is_not_one_add_of_one_tnds_item_is_refused(msg):
    body, ctype = _signed(msg)
    with pytest.raises(boot.BootstrapRefused, match="exactly one Add|must carry"):
        boot.open_bootstrap(body, ctype, pin=PIN)


@pytest.mark.parametrize("body", [b"", b"\x02", b"\x02\x00\x00\x6a\x00garbage", b"<SyncML/>", b"\xff" * 100])
def test_signed_garbage_is_refused_as_malformed(body):
    with pytest.raises(boot.BootstrapRefused, match="malformed"):
        boot.open_bootstrap(body, boot.content_type("USERPIN", boot.mac(PIN, body)), pin=PIN)


def test_an_unknown_method_is_refused_when_building():
    with pytest.raises(Exception, match="unknown bootstrap security"):
        boot.build_bootstrap(TNDS, dev_id="IMEI:1", server_uri="x", key=PIN, method="NONE")
