"""DM 2.0 Package#0: layout of PROTOCOL 1.4 with the CoAP-style lengths of 1.19 item 7."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import DecodeError, TooLargeError
from emulator.protocol.dm2.notification import (
    CON_WLAN,
    Notification,
    NotificationGuard,
    build_notification,
    parse_notification,
    verify_digest,
)

SECRET = b"server-secret"
AUTH = b"auth-data"


def _hand_built(server_id: bytes = b"srv") -> tuple[bytes, int]:
    """Package#0 assembled byte by byte from the spec tables; returns (zero-digest bytes, digest offset)."""
    header = bytes([0x10 | (6 >> 1), (6 & 1) << 7])  # VER=1, OC=6, reserved 0
    opts = bytes([0x10 | len(server_id)]) + server_id  # delta 1 SERVER-ID (len < 13 here)
    opts += bytes([0x11, 0x02])  # delta 1 PREFERRED-CON-TYPE = WLAN
    opts += bytes([0x12, 0x12, 0x34])  # delta 1 NOTIFICATION-ID = 0x1234
    opts += bytes([0x1D, 32 - 13])  # delta 1 SHA256-DIGEST, length 13 -> extended byte 19
    digest_at = len(header) + len(opts)
    opts += bytes(32)
    opts += bytes([0x14]) + (1_700_000_000).to_bytes(4, "big")  # TIMESTAMP
    opts += bytes([0x10])  # REQ-MOS, no value
    return header + opts, digest_at


def test_build_matches_hand_assembled_bytes_and_digest_formula() -> None:
    zeroed, at = _hand_built()
    expected_digest = hashlib.sha256(SECRET + zeroed + AUTH).digest()
    expected = zeroed[:at] + expected_digest + zeroed[at + 32 :]
    built = build_notification(
        "srv",
        secret=SECRET,
        auth_data=AUTH,
        notification_id=0x1234,
        timestamp=1_700_000_000,
        preferred_con_type=CON_WLAN,
        req_mos=True,
    )
    assert built == expected


def test_parse_hand_assembled_message() -> None:
    zeroed, _ = _hand_built()
    n = parse_notification(zeroed)
    assert n == Notification(
        version=1,
        server_id="srv",
        preferred_con_type=2,
        notification_id=0x1234,
        digest=bytes(32),
        timestamp=1_700_000_000,
        req_mos=True,
    )


def test_two_byte_length_extension_for_long_server_id() -> None:
    server_id = "s" * 300
    raw = build_notification(server_id, secret=None, notification_id=None, timestamp=None)
    # option byte: delta 1, length nibble 14; then two bytes of 300 - 269 = 31
    assert raw[2:5] == bytes([0x1E, 0x00, 31])
    assert raw[5:305] == server_id.encode()
    assert parse_notification(raw).server_id == server_id


def test_odd_option_count_sets_high_bit_of_second_header_byte_and_unknown_options_are_skipped() -> None:
    base = build_notification("a", secret=None, notification_id=7, timestamp=None)  # 3 options
    assert base[0] & 0x0F == 1 and base[1] == 0x80  # OC = 3 = 0b00011 -> low nibble 1, top bit 1
    # append option 9 (unknown): previous option 3, delta 6, 2-byte value; OC becomes 4
    extended = bytes([0x12, 0x00]) + base[2:] + bytes([0x62, 0xAB, 0xCD])
    n = parse_notification(extended)
    assert n.notification_id == 7 and n.server_id == "a"


def test_version_and_reserved_bits() -> None:
    raw = build_notification("a", secret=None, notification_id=None, timestamp=None, version=9)
    assert raw[0] >> 4 == 9
    assert raw[1] & 0x7F == 0
    assert parse_notification(raw).version == 9


def test_defaults_when_optional_options_absent() -> None:
    raw = build_notification("a", secret=None, notification_id=None, timestamp=None)
    n = parse_notification(raw)
    assert (n.notification_id, n.digest, n.timestamp, n.req_mos, n.preferred_con_type) == (
        None,
        None,
        None,
        False,
        0,
    )


def test_eight_byte_timestamp_after_2106() -> None:
    raw = build_notification("a", secret=None, notification_id=None, timestamp=1 << 33)
    assert parse_notification(raw).timestamp == 1 << 33


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "truncated"),
        (b"\x10", "truncated"),
        (bytes([0x10, 0x80]), "OC says 1"),  # one option announced, none present
        (bytes([0x10, 0x80, 0x15, ord("a")]), "truncated"),  # SERVER-ID length 5, one byte
        (bytes([0x10, 0x80, 0x1D]), "extended"),  # length 13 without the extra byte
        (bytes([0x10, 0x80, 0x1F]), "reserved"),  # length nibble 15
        (bytes([0x10, 0x80, 0xF1, 0x00]), "reserved"),  # delta nibble 15
        (bytes([0x11, 0x00, 0x11, ord("a"), 0x01, ord("b")]), "increase"),  # delta 0 repeats option 1
        (bytes([0x10, 0x80, 0x11, ord("a"), 0x00]), "after"),  # trailing byte
        (bytes([0x10, 0x80, 0x21, 0x00]), "SERVER-ID"),  # no SERVER-ID
        (bytes([0x10, 0x80, 0x10]), "empty"),  # empty SERVER-ID
        (bytes([0x10, 0x80, 0x12, 0xC3, 0x28]), "UTF-8"),
        (bytes([0x11, 0x00, 0x11, ord("a"), 0x12, 0x01, 0x00]), "PREFERRED-CON-TYPE"),
        (bytes([0x11, 0x00, 0x11, ord("a"), 0x21, 0x05]), "NOTIFICATION-ID"),
        (bytes([0x11, 0x00, 0x11, ord("a"), 0x3D, 0x12]) + bytes(31), "SHA256-DIGEST"),
        (bytes([0x11, 0x00, 0x11, ord("a"), 0x49]) + bytes(9), "TIMESTAMP"),
        (bytes([0x11, 0x00, 0x11, ord("a"), 0x40]), "TIMESTAMP"),
        (bytes([0x11, 0x00, 0x11, ord("a"), 0x51, 0x00]), "REQ-MOS"),
    ],
)
def test_malformed_notifications_are_decode_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=fragment):
        parse_notification(data)


def test_size_limit() -> None:
    raw = build_notification("a" * 100, secret=None, notification_id=1, timestamp=None)
    with pytest.raises(TooLargeError) as info:
        parse_notification(raw, max_size=50)
    assert info.value.status == 413


def test_verify_digest_accepts_right_credentials_only() -> None:
    raw = build_notification("srv", secret=SECRET, auth_data=AUTH, notification_id=5, timestamp=100)
    assert verify_digest(raw, SECRET, AUTH)
    assert not verify_digest(raw, b"other", AUTH)
    assert not verify_digest(raw, SECRET, b"other")
    tampered = bytearray(raw)
    tampered[-1] ^= 0x01  # last byte of the TIMESTAMP
    assert parse_notification(bytes(tampered)).timestamp == 101
    assert not verify_digest(bytes(tampered), SECRET, AUTH)


def test_verify_digest_false_without_digest_and_decode_error_on_garbage() -> None:
    raw = build_notification("srv", secret=None, notification_id=5, timestamp=100)
    assert not verify_digest(raw, SECRET, AUTH)
    with pytest.raises(DecodeError):
        verify_digest(b"\x10", SECRET, AUTH)


def test_build_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        build_notification("a", secret=None, notification_id=0x10000, timestamp=None)
    with pytest.raises(ValueError):
        build_notification("", secret=None, notification_id=None, timestamp=None)
    with pytest.raises(ValueError):
        build_notification("a", secret=None, notification_id=None, timestamp=None, version=16)


@settings(max_examples=150, deadline=None)
@given(
    server_id=st.text(min_size=1, max_size=400).filter(lambda s: len(s.encode()) <= 600),
    nid=st.none() | st.integers(0, 0xFFFF),
    ts=st.none() | st.integers(0, (1 << 64) - 1),
    con=st.integers(0, 255),
    req_mos=st.booleans(),
    secret=st.none() | st.binary(max_size=40),
    auth=st.binary(max_size=40),
)
def test_round_trip(
    server_id: str,
    nid: int | None,
    ts: int | None,
    con: int,
    req_mos: bool,
    secret: bytes | None,
    auth: bytes,
) -> None:
    raw = build_notification(
        server_id,
        secret=secret,
        auth_data=auth,
        notification_id=nid,
        timestamp=ts,
        preferred_con_type=con,
        req_mos=req_mos,
    )
    n = parse_notification(raw)
    assert (n.server_id, n.notification_id, n.timestamp, n.preferred_con_type, n.req_mos) == (
        server_id,
        nid,
        ts,
        con,
        req_mos,
    )
    assert verify_digest(raw, secret, auth) is (secret is not None)
    if secret is not None:
        assert n.digest is not None and n.digest != bytes(32)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        n = parse_notification(data)
    except DecodeError:
        return
    assert n.server_id


# --- replay guard --------------------------------------------------------------------------------


def _n(nid: int | None = 1, ts: int | None = 1000, server: str = "srv", digest: bytes | None = None):
    return Notification(1, server, 0, nid, digest, ts, False)


def test_guard_ok_then_duplicate() -> None:
    g = NotificationGuard(window_s=60)
    assert g.check(_n(), now=1000) == "ok"
    assert g.check(_n(), now=1010) == "duplicate"
    assert g.check(_n(nid=2), now=1010) == "ok"
    assert g.check(_n(server="other"), now=1010) == "ok"


def test_guard_stale_and_future_by_timestamp() -> None:
    g = NotificationGuard(window_s=60)
    assert g.check(_n(ts=939), now=1000) == "stale"
    assert g.check(_n(ts=940), now=1000) == "ok"
    assert g.check(_n(nid=2, ts=1061), now=1000) == "future"
    assert g.check(_n(nid=2, ts=1060), now=1000) == "ok"


def test_guard_forgets_ids_after_window_because_ids_wrap() -> None:
    g = NotificationGuard(window_s=60)
    assert g.check(_n(ts=None), now=1000) == "ok"
    assert g.check(_n(ts=None), now=1059) == "duplicate"
    assert g.check(_n(ts=None), now=1061) == "ok"


def test_guard_does_not_remember_rejected_notifications() -> None:
    g = NotificationGuard(window_s=60)
    assert g.check(_n(ts=1), now=1000) == "stale"
    assert g.check(_n(ts=1000), now=1000) == "ok"


def test_guard_uses_digest_when_no_id_and_passes_anonymous() -> None:
    g = NotificationGuard(window_s=60)
    d = bytes(range(32))
    assert g.check(_n(nid=None, digest=d), now=1000) == "ok"
    assert g.check(_n(nid=None, digest=d), now=1001) == "duplicate"
    assert g.check(_n(nid=None), now=1000) == "ok"
    assert g.check(_n(nid=None), now=1000) == "ok"
