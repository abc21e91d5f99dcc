"""DM 2.0 media types and Accept negotiation (PROTOCOL 1.3, RFC 9110 section 12.5.1 rules)."""

from __future__ import annotations

import pytest

from emulator.protocol.dm2 import media

MO = [media.MO_JSON, "application/json"]


def test_names_match_protocol_tables() -> None:
    assert media.INITIATION == "application/vnd.oma.dm.initiation+json"
    assert media.REQUEST == "application/vnd.oma.dm.request+json"
    assert media.RESPONSE == "application/vnd.oma.dm.response+json"
    assert media.HEADER_DEVID == "OMADM-DevID"
    assert media.HEADER_ACCEPT == "OMADM-Accept"
    assert "application/dmmo+json" in media.MO_JSON_ACCEPTED


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, media.MO_JSON),
        ("", media.MO_JSON),
        ("*/*", media.MO_JSON),
        ("application/json", "application/json"),
        ("application/json, application/vnd.oma.dm.mo+json;q=0.5", "application/json"),
        ("application/*;q=0.3, application/json;q=0.9", "application/json"),
        ("APPLICATION/JSON", "application/json"),
        ("text/html", None),
        ("application/json;q=0, */*;q=0.1", media.MO_JSON),  # exact q=0 wins over */*
        ("application/*;q=0", None),
        ("application/json;q=abc", None),  # malformed q drops the range
        ("application/json;q=2", None),
        ("application/json; charset=utf-8; q=0.8", "application/json"),
        ("garbage, ,;;", None),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert media.negotiate(accept, MO) == expected


def test_negotiate_nothing_supported() -> None:
    assert media.negotiate("*/*", []) is None


def test_media_type_and_mo_json() -> None:
    assert media.media_type("Application/VND.oma.dm.request+json; charset=UTF-8") == media.REQUEST
    assert media.media_type(None) == ""
    assert media.is_mo_json("application/dmmo+json")
    assert media.is_mo_json("application/json;charset=utf-8")
    assert not media.is_mo_json("text/plain")
