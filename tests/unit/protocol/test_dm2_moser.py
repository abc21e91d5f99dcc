"""MO serialization (PROTOCOL 1.11) and typed leaf values (1.19 item 3)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import DecodeError, TooLargeError
from emulator.protocol.dm2.moser import (
    MOSerialization,
    decode_mo_data,
    decode_mos,
    encode_mo_data,
    encode_mos,
    from_json_value,
    to_json_value,
)

# The example of PROTOCOL 1.11 (with the "urn:" the source forgot).
SPEC_EXAMPLE = (
    b'[{"DDF":"https://vendor.example/ddf/devinfo.ddf","ClientURI":"urn:oma:mo:oma-dm-devinfo:1.2//",'
    b'"CV":"686897696a7c876b7e","MOData":{"DevInfo":{"DevID":"IMEI:493005100592800","Man":"Vendor",'
    b'"Mod":"DM_Client","DmV":"2.0","Lang":"en","DevType":"smartphone","OEM":"","FwV":"1.0","SwV":"2.0",'
    b'"HwV":""}}}]'
)


def test_decode_spec_example() -> None:
    [mos] = decode_mos(SPEC_EXAMPLE)
    assert mos.client_uri == "urn:oma:mo:oma-dm-devinfo:1.2//"
    assert mos.cv == "686897696a7c876b7e"
    assert mos.ddf == "https://vendor.example/ddf/devinfo.ddf"
    assert mos.mo_data["DevInfo"]["DevID"] == "IMEI:493005100592800"
    assert mos.mo_data["DevInfo"]["OEM"] == ""


def test_encode_round_trip_and_member_names() -> None:
    items = [
        MOSerialization("urn:oma:mo:oma-dm-devinfo:1.2//FwV", {"FwV": "1.0.3"}),
        MOSerialization("urn:x:1.0/i/", {"R": {"N": 1, "B": True, "Z": None}}, ddf="d", cv="c"),
    ]
    raw = encode_mos(items)
    assert json.loads(raw) == [
        {"ClientURI": "urn:oma:mo:oma-dm-devinfo:1.2//FwV", "MOData": {"FwV": "1.0.3"}},
        {"DDF": "d", "ClientURI": "urn:x:1.0/i/", "CV": "c", "MOData": {"R": {"N": 1, "B": True, "Z": None}}},
    ]
    assert decode_mos(raw) == items


def test_single_object_accepted_as_one_element_array() -> None:
    [mos] = decode_mos(b'{"ClientURI":"urn:x:1.0//","MOData":{"A":"b"}}')
    assert mos.mo_data == {"A": "b"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"42",
        b'["x"]',
        b'[{"MOData":{}}]',  # no ClientURI
        b'[{"ClientURI":"","MOData":{}}]',
        b'[{"ClientURI":"u"}]',  # no MOData
        b'[{"ClientURI":"u","MOData":[]}]',
        b'[{"ClientURI":"u","MOData":{"A":[1]}}]',  # arrays are not nodes
        b'[{"ClientURI":"u","MOData":{"":1}}]',
        b'[{"ClientURI":"u","MOData":{"a/b":1}}]',
        b'[{"ClientURI":"u","MOData":{},"CV":5}]',
        b'[{"ClientURI":"u","MOData":{},"DDF":[]}]',
        b'[{"ClientURI":"u","MOData":{"A":NaN}}]',
        b'[{"ClientURI":"u","MOData":{"A":1e999}}]',
        b"\xff\xfe",
    ],
)
def test_bad_bodies_are_decode_errors(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_mos(body)


def test_size_and_depth_limits() -> None:
    with pytest.raises(TooLargeError):
        decode_mos(SPEC_EXAMPLE, max_size=50)
    deep = b'[{"ClientURI":"u","MOData":' + b'{"a":' * 70 + b"1" + b"}" * 70 + b"}]"
    with pytest.raises(DecodeError, match="nested"):
        decode_mos(deep)
    very_deep = b"[" * 100_000
    with pytest.raises(DecodeError):
        decode_mos(very_deep)


# --- leaf values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("hello", "chr", "hello"),
        ("2024-01-02", "date", "2024-01-02"),
        ("10:00:00", "time", "10:00:00"),
        ("<a/>", "xml", "<a/>"),
        ("42", "int", 42),
        (" -7 ", "int", -7),
        ("1.5", "float", 1.5),
        ("true", "bool", True),
        ("False", "bool", False),
        (b"\x00\xff", "bin", "AP8="),
        (b"hi", "b64", "aGk="),
        ("aGk=", "b64", "aGk="),  # b64 text already stored as text
        (None, "null", None),
        ("ignored", "null", None),
        (None, "int", None),
    ],
)
def test_to_json_value(value, fmt: str, expected) -> None:
    result = to_json_value(value, fmt)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "fmt"),
    [
        ("abc", "int"),
        ("abc", "float"),
        ("inf", "float"),
        ("yes", "bool"),
        ("x", "node"),
        ("x", "weird"),
        (b"\xff", "chr"),
    ],
)
def test_to_json_value_rejects_values_not_fitting_their_format(value, fmt: str) -> None:
    with pytest.raises(DecodeError):
        to_json_value(value, fmt)


@pytest.mark.parametrize(
    ("v", "fmt", "expected"),
    [
        ("hello", "chr", "hello"),
        (42, "int", "42"),
        ("42", "int", "42"),
        (1.5, "float", "1.5"),
        (2, "float", "2"),
        ("1.50", "float", "1.5"),
        (True, "bool", "true"),
        ("FALSE", "bool", "false"),
        ("AP8=", "bin", b"\x00\xff"),
        ("aGk=", "b64", b"hi"),
        (None, "null", None),
        (None, "chr", None),
    ],
)
def test_from_json_value(v, fmt: str, expected) -> None:
    assert from_json_value(v, fmt) == expected


@pytest.mark.parametrize(
    ("v", "fmt"),
    [
        ("abc", "int"),
        (1.5, "int"),
        (True, "int"),
        ("abc", "float"),
        (False, "float"),
        (1, "bool"),
        ("yes", "bool"),
        (5, "chr"),
        (True, "xml"),
        ("not base64!", "bin"),
        (12, "b64"),
        ("x", "null"),
        ({}, "chr"),
        ([], "int"),
        ("x", "node"),
        ("x", "nonsense"),
    ],
)
def test_from_json_value_type_mismatch_is_decode_error(v, fmt: str) -> None:
    with pytest.raises(DecodeError) as info:
        from_json_value(v, fmt)
    assert info.value.status == 400


FORMATS_OF = {
    ("DevInfo",): "node",
    ("DevInfo", "DevID"): "chr",
    ("DevInfo", "Count"): "int",
    ("DevInfo", "On"): "bool",
    ("DevInfo", "Key"): "bin",
    ("DevInfo", "Ext"): "node",
}


def test_mo_data_both_ways_with_formats() -> None:
    values = {
        "DevInfo": {"DevID": "IMEI:1", "Count": "3", "On": "true", "Key": b"\x01", "Ext": {"X": "free"}}
    }
    typed = encode_mo_data(values, FORMATS_OF.get)
    assert typed == {
        "DevInfo": {"DevID": "IMEI:1", "Count": 3, "On": True, "Key": "AQ==", "Ext": {"X": "free"}}
    }
    assert decode_mo_data(typed, FORMATS_OF.get) == values


def test_decode_mo_data_without_formats_keeps_text() -> None:
    assert decode_mo_data({"A": {"B": 1, "C": True, "D": 2.5, "E": None, "F": "s"}}) == {
        "A": {"B": "1", "C": "true", "D": "2.5", "E": None, "F": "s"}
    }


def test_decode_mo_data_errors_name_the_path() -> None:
    with pytest.raises(DecodeError, match="DevInfo/Count"):
        decode_mo_data({"DevInfo": {"Count": "many"}}, FORMATS_OF.get)
    with pytest.raises(DecodeError, match="DevInfo/DevID"):
        decode_mo_data({"DevInfo": {"DevID": {"x": "y"}}}, FORMATS_OF.get)
    with pytest.raises(DecodeError, match="DevInfo"):
        decode_mo_data({"DevInfo": "flat"}, FORMATS_OF.get)


_FMT_VALUES = st.one_of(
    st.tuples(st.just("chr"), st.text()),
    st.tuples(st.just("int"), st.integers(-(2**63), 2**63).map(str)),
    st.tuples(st.just("float"), st.floats(allow_nan=False, allow_infinity=False).map(repr)),
    st.tuples(st.just("bool"), st.sampled_from(["true", "false"])),
    st.tuples(st.just("bin"), st.binary(max_size=50)),
    st.tuples(st.just("null"), st.none()),
)


@settings(max_examples=200, deadline=None)
@given(_FMT_VALUES)
def test_leaf_value_round_trip_through_json_text(case) -> None:
    fmt, value = case
    wire = json.loads(json.dumps(to_json_value(value, fmt)))
    assert from_json_value(wire, fmt) == value


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
def test_random_bodies_raise_only_decode_error(data: bytes) -> None:
    try:
        items = decode_mos(data)
    except DecodeError:
        return
    assert all(isinstance(i.mo_data, dict) for i in items)
