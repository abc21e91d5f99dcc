"""Package 0 notification: bit layout, digest formula, nonce resynchronisation, hostile input."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import DecodeError
from emulator.protocol.syncml.notification import (
    RESYNC_NONCE,
    UI_USER_INTERACTION,
    Notification,
    build_notification,
    format_session_id,
    parse_notification,
    verify_digest,
    verify_with_resync,
)


def _b64md5(data: bytes) -> bytes:
    return base64.b64encode(hashlib.md5(data).digest())


def test_layout_and_digest_follow_the_specification():
    raw = build_notification(
        "srv", "pw", b"N0nce", session_id=0x00A1, version=11, ui_mode=UI_USER_INTERACTION, initiator=1, vendor=b"\xca\xfe"
    )
    # version 0000001011, ui-mode 11, initiator 1, 27 zero bits, session 0x00A1, id length 3
    trigger = bytes.fromhex("02F8000000 00A103") + b"srv" + b"\xca\xfe"
    assert raw[16:] == trigger
    expected = hashlib.md5(_b64md5(b"srv:pw") + b":N0nce:" + _b64md5(trigger)).digest()
    assert raw[:16] == expected
    n = parse_notification(raw)
    assert n == Notification(
        version=11, ui_mode=3, initiator=1, session_id=0xA1, server_id="srv", vendor=b"\xca\xfe", digest=expected
    )
    assert n.syncml_session_id == "A1" and n.version_supported


def test_verify_and_resync():
    raw = build_notification("com.example.dm", "server-secret", b"stored", session_id=7)
    n = parse_notification(raw)
    assert verify_digest(n, raw, "com.example.dm", "server-secret", b"stored")
    assert not verify_digest(n, raw, "com.example.dm", "other-secret", b"stored")
    assert verify_with_resync(n, raw, "com.example.dm", "server-secret", b"stored") == "ok"
    assert verify_with_resync(n, raw, "com.example.dm", "server-secret", b"other") == "bad"
    tampered = raw[:-1] + bytes([raw[-1] ^ 1])
    assert verify_with_resync(parse_notification(tampered), tampered, "com.example.dm", "server-secret", b"stored") == "bad"
    resync = build_notification("com.example.dm", "server-secret", b"\x00\x00\x00\x00", session_id=7)
    rn = parse_notification(resync)
    assert RESYNC_NONCE == b"\x00" * 4
    assert verify_with_resync(rn, resync, "com.example.dm", "server-secret", b"stale") == "resync"


@pytest.mark.parametrize(("sid", "text"), [(0x00A1, "A1"), (0, "0"), (0xFFFF, "FFFF"), (0x0F00, "F00")])
def test_session_id_formatting(sid, text):
    assert format_session_id(sid) == text


@pytest.mark.parametrize("version", [0, 10, 11, 12, 13, 14, 1023])
def test_any_version_parses_and_the_caller_decides(version):
    n = parse_notification(build_notification("s", "p", b"n", session_id=1, version=version))
    assert n.version == version
    assert n.version_supported == (11 <= version <= 13)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "shorter"),
        (b"\x00" * 23, "shorter"),
        (b"\x00" * 23 + b"\x05" + b"abcd", "runs past"),
        (b"\x00" * 23 + b"\x02" + b"\xff\xfe", "not text"),
    ],
)
def test_garbled_notifications(data, fragment):
    with pytest.raises(DecodeError) as err:
        parse_notification(data)
    assert fragment in str(err.value) and err.value.status == 400


def test_empty_server_id_and_vendor_part():
    n = parse_notification(b"\x11" * 16 + bytes.fromhex("02C0000000123400") + b"vendor")
    assert (n.version, n.ui_mode, n.initiator, n.session_id) == (11, 0, 0, 0x1234)
    assert n.server_id == "" and n.vendor == b"vendor" and n.digest == b"\x11" * 16


@pytest.mark.parametrize(
    "kwargs",
    [{"version": 1024}, {"ui_mode": 4}, {"initiator": 2}, {"session_id": 65536}, {"session_id": -1}],
)
def test_out_of_range_fields_are_caller_errors(kwargs):
    args = {"session_id": 1, **kwargs}
    with pytest.raises(ValueError):
        build_notification("s", "p", b"n", **args)
    with pytest.raises(ValueError):
        build_notification("x" * 256, "p", b"n", session_id=1)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_raise_decode_error(data):
    try:
        n = parse_notification(data)
    except DecodeError:
        return
    assert len(n.digest) == 16 and 0 <= n.session_id <= 0xFFFF


@settings(max_examples=100, deadline=None)
@given(
    st.text(max_size=40).filter(lambda s: len(s.encode()) < 256),
    st.text(max_size=10),
    st.binary(max_size=8),
    st.integers(0, 0xFFFF),
    st.integers(0, 1023),
    st.integers(0, 3),
    st.integers(0, 1),
    st.binary(max_size=10),
)
def test_build_parse_round_trip(server_id, password, nonce, session_id, version, ui_mode, initiator, vendor):
    try:
        server_id.encode("utf-8")
    except UnicodeEncodeError:
        return
    raw = build_notification(
        server_id, password, nonce, session_id=session_id, version=version, ui_mode=ui_mode, initiator=initiator, vendor=vendor
    )
    n = parse_notification(raw)
    assert (n.server_id, n.session_id, n.version, n.ui_mode, n.initiator, n.vendor) == (
        server_id, session_id, version, ui_mode, initiator, vendor,
    )  # fmt: skip
    assert verify_with_resync(n, raw, server_id, password, nonce) == "ok"
