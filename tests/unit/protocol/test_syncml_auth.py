"""SyncML DM credentials: the published md5 vector, real basic credentials, auth-MAC header."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import DecodeError, UnsupportedError
from emulator.protocol.syncml.auth import (
    HMAC_HEADER,
    basic_credential,
    decode_nonce,
    encode_nonce,
    hmac_header,
    hmac_mac,
    md5_digest,
    nonce_candidates,
    parse_basic_credential,
    parse_hmac_header,
    verify_basic,
    verify_hmac,
    verify_md5,
)


def _b64md5(data: bytes) -> bytes:
    return base64.b64encode(hashlib.md5(data).digest())


def test_md5_digest_matches_the_published_vector():
    assert md5_digest("Bruce2", "OhBehave", b"Nonce") == "Zz6EivR3yeaaENcRN6lpAQ=="
    assert verify_md5("Zz6EivR3yeaaENcRN6lpAQ==", "Bruce2", "OhBehave", b"Nonce")
    assert not verify_md5("Zz6EivR3yeaaENcRN6lpAQ==", "Bruce2", "OhBehave", b"nonce")
    assert not verify_md5("Zz6EivR3yeaaENcRN6lpAQ==", "Bruce2", "ohbehave", b"Nonce")


def test_basic_credentials_match_the_aosp_vectors():
    # Cred Data found in testnewdatatype.xml / testadd.wbxml and testreplace.wbxml.
    assert basic_credential("Scts", "SampleClient") == "U2N0czpTYW1wbGVDbGllbnQ="
    assert basic_credential("SampleServer", "SampleServer") == "U2FtcGxlU2VydmVyOlNhbXBsZVNlcnZlcg=="
    assert parse_basic_credential("U2N0czpTYW1wbGVDbGllbnQ=") == ("Scts", "SampleClient")
    assert verify_basic(" U2N0czpTYW1wbGVDbGllbnQ= ", "Scts", "SampleClient")
    assert not verify_basic("U2N0czpTYW1wbGVDbGllbnQ=", "Scts", "SampleServer")
    assert parse_basic_credential(basic_credential("u", "pa:ss")) == ("u", "pa:ss")


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"no-colon").decode(), "//79"])
def test_malformed_basic_credential(bad):
    with pytest.raises(DecodeError):
        parse_basic_credential(bad)


def test_hmac_follows_the_formula():
    body = b"<SyncML>...</SyncML>"
    inner = _b64md5(b"Bruce2:OhBehave")
    expected = base64.b64encode(hashlib.md5(inner + b":Nonce:" + _b64md5(body)).digest()).decode()
    assert hmac_mac("Bruce2", "OhBehave", b"Nonce", body) == expected
    header = hmac_header("Bruce2", "OhBehave", b"Nonce", body)
    assert header == f'algorithm=MD5, username="Bruce2", mac={expected}'
    assert HMAC_HEADER == "x-syncml-hmac"


def test_verify_hmac():
    body = b"\x02\x00\x00\x6a wbxml bytes count too"
    header = hmac_header("dev", "secret", b"\x01\x02", body)
    assert verify_hmac(header, "dev", "secret", b"\x01\x02", body)
    assert not verify_hmac(header, "dev", "secret", b"\x01\x02", body + b" ")
    assert not verify_hmac(header, "dev", "secret", b"\x01\x03", body)
    assert not verify_hmac(header, "other", "secret", b"\x01\x02", body)
    with pytest.raises(UnsupportedError):
        verify_hmac(header.replace("MD5", "SHA-1"), "dev", "secret", b"\x01\x02", body)
    with pytest.raises(UnsupportedError):
        hmac_header("dev", "secret", b"n", body, algorithm="SHA-1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('algorithm=MD5, username="Bruce2", mac=Zz6EivR3yeaaENcRN6lpAQ==', ("MD5", "Bruce2", "Zz6EivR3yeaaENcRN6lpAQ==")),
        ("mac=abc=,username=Bruce2", ("MD5", "Bruce2", "abc=")),
        ('  Username = "a, \\"b\\"" ,  MAC = x== , Algorithm = md5 ', ("md5", 'a, "b"', "x==")),
    ],
)
def test_parse_hmac_header_variants(value, expected):
    assert parse_hmac_header(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "username=a", "mac=b", 'username="a", mac=b, mac=c', "garbage", 'username="unterminated, mac=x', "=x"],
)
def test_parse_hmac_header_refuses_malformed(value):
    with pytest.raises(DecodeError):
        parse_hmac_header(value)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_parse_hmac_header_only_raises_decode_error(value):
    try:
        algorithm, user, mac = parse_hmac_header(value)
    except DecodeError:
        return
    assert mac and isinstance(user, str) and algorithm


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20), st.binary(max_size=20))
def test_hmac_header_round_trips_any_username(user, nonce):
    header = hmac_header(user, "pw", nonce, b"body")
    assert parse_hmac_header(header) == ("MD5", user, hmac_mac(user, "pw", nonce, b"body"))
    assert verify_hmac(header, user, "pw", nonce, b"body")
    assert not verify_hmac(header, user + "x", "pw", nonce, b"body")


def test_nonce_tolerance_decoded_first_then_raw():
    assert nonce_candidates("Tm9uY2U=") == [b"Nonce", b"Tm9uY2U="]
    assert nonce_candidates("not base64!") == [b"not base64!"]
    assert decode_nonce("AAAAAA==") == b"\x00\x00\x00\x00"
    assert encode_nonce(b"\x00\x00\x00\x00") == "AAAAAA=="
    # A peer that hashed the base64 text (Android's fallback) still verifies.
    digest_over_text = md5_digest("Bruce2", "OhBehave", b"Tm9uY2U=")
    assert verify_md5(digest_over_text, "Bruce2", "OhBehave", nonce_candidates("Tm9uY2U="))
    assert verify_md5("Zz6EivR3yeaaENcRN6lpAQ==", "Bruce2", "OhBehave", nonce_candidates("Tm9uY2U="))
    body = b"x"
    header = hmac_header("u", "p", b"Tm9uY2U=", body)
    assert verify_hmac(header, "u", "p", nonce_candidates("Tm9uY2U="), body)
