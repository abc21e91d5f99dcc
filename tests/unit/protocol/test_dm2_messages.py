"""DM 2.0 Packages #1/#2/#3 (PROTOCOL 1.5-1.9) and command parameter reading (1.19 item 1)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import DecodeError, TooLargeError
from emulator.protocol.dm2.messages import (
    ALERT_CLIENT_INITIATED,
    ALERT_SERVER_INITIATED,
    Alert,
    Command,
    Cont,
    Default,
    Delete,
    End,
    Exec,
    Get,
    HGet,
    HPost,
    HPut,
    Initiation,
    Malformed,
    MOInfo,
    Request,
    Response,
    Show,
    StatusEntry,
    Sub,
    Unknown,
    Unsub,
    decode_initiation,
    decode_request,
    decode_response,
    encode_initiation,
    encode_request,
    encode_response,
    format_command,
    notification_id_of,
    parse_command,
    server_initiated_alert,
)
from emulator.protocol.dm2.moser import MOSerialization

S = "https://dm.example/repo/x"
C = "urn:oma:mo:oma-dm-devinfo:1.2//FwV"
C2 = "urn:oma:mo:oma-mo:1.0/miid1/"


def test_package1_spec_example_shape() -> None:
    init = Initiation(
        mos=[
            MOInfo("https://vendor.example/ddf/devinfo.ddf", "urn:oma:mo:oma-dm-devinfo:1.2", ["i1"]),
            MOInfo("https://vendor.example/ddf/sessioninfo.ddf", "urn:oma:mo:oma-sessioninfomo:1.0", ["i1"]),
        ],
        alerts=[Alert(ALERT_CLIENT_INITIATED)],
    )
    body = encode_initiation(init)
    # the example body of PROTOCOL 1.5, written out by hand
    assert json.loads(body) == {
        "MOS": [
            {
                "DDF": "https://vendor.example/ddf/devinfo.ddf",
                "MOID": "urn:oma:mo:oma-dm-devinfo:1.2",
                "MIID": ["i1"],
            },
            {
                "DDF": "https://vendor.example/ddf/sessioninfo.ddf",
                "MOID": "urn:oma:mo:oma-sessioninfomo:1.0",
                "MIID": ["i1"],
            },
        ],
        "Alert": [{"AlertType": "urn:oma:at:dm:2.0:ClientInitiatedMgmt"}],
    }
    assert decode_initiation(body) == init


def test_package1_without_mos_and_server_initiated_alert() -> None:
    init = Initiation(alerts=[server_initiated_alert(4660)])
    body = encode_initiation(init)
    assert json.loads(body) == {
        "Alert": [{"AlertType": "urn:oma:at:dm:2.0:ServerInitiatedMgmt", "Data": {"NotificationID": 4660}}]
    }
    decoded = decode_initiation(body)
    assert decoded.alerts[0].alert_type == ALERT_SERVER_INITIATED
    assert notification_id_of(decoded.alerts[0]) == 4660
    assert notification_id_of(Alert(ALERT_SERVER_INITIATED, data={"NotificationID": "x"})) is None
    assert notification_id_of(Alert(ALERT_SERVER_INITIATED)) is None


def test_alert_all_members_round_trip() -> None:
    alert = Alert(
        "urn:oma:at:scomo:1.0:OperationComplete",
        source_uri="urn:oma:mo:oma-scomo:1.0/i1/Inventory",
        target_uri="https://dm.example/a",
        mark="critical",
        data_type="text/xml",
        data={"DM1x": "<x/>"},
    )
    body = encode_response(Response([], [alert]))
    assert json.loads(body)["Alert"][0] == {
        "AlertType": "urn:oma:at:scomo:1.0:OperationComplete",
        "SourceURI": "urn:oma:mo:oma-scomo:1.0/i1/Inventory",
        "TargetURI": "https://dm.example/a",
        "Mark": "critical",
        "DataType": "text/xml",
        "Data": {"DM1x": "<x/>"},
    }
    assert decode_response(body).alerts == [alert]


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"MOS":{}}',
        b'{"MOS":[{"MIID":[]}]}',
        b'{"MOS":[{"MOID":"m"}]}',
        b'{"MOS":[{"MOID":"m","MIID":"i1"}]}',
        b'{"MOS":[{"MOID":"m","MIID":[1]}]}',
        b'{"Alert":[{}]}',
        b'{"Alert":[{"AlertType":"t","Mark":"bad"}]}',
        b'{"Alert":[{"AlertType":"t","Data":"str"}]}',
        b'{"Alert":[{"AlertType":"t","SourceURI":5}]}',
        b'{"Alert":"t"}',
    ],
)
def test_package1_errors(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_initiation(body)


# --- Package#2 -------------------------------------------------------------------------------------


def test_package2_spec_examples() -> None:
    body = (
        b'{"CMD":[["HPOST","https://DMcontent.DMserver.operator.com/[DevID]","urn:oma:mo:oma-mo:1.0/a/",'
        b'"urn:oma:mo:oma-mo:1.0/b/"],["HGET","https://dm.example/repo/apn-profile"],'
        b'["GET","urn:oma:mo:oma-sessioninfomo:1.0//CBT"],["END"]]}'
    )
    request = decode_request(body)
    assert [c.name for c in request.commands] == ["HPOST", "HGET", "GET", "END"]
    typed = [parse_command(c) for c in request.commands]
    assert typed == [
        HPost(
            "https://DMcontent.DMserver.operator.com/[DevID]",
            ("urn:oma:mo:oma-mo:1.0/a/", "urn:oma:mo:oma-mo:1.0/b/"),
        ),
        HGet("https://dm.example/repo/apn-profile"),
        Get("urn:oma:mo:oma-sessioninfomo:1.0//CBT"),
        End(),
    ]
    assert json.loads(encode_request(request)) == json.loads(body)


def test_empty_command_list_is_valid() -> None:
    assert decode_request(b'{"CMD":[]}') == Request([])


@pytest.mark.parametrize(
    ("params", "name", "expected"),
    [
        ([S, C], "HGET", HGet(S, C)),
        ([C, S], "HGET", HGet(S, C)),  # swapped: read by scheme
        ([S], "HGET", HGet(S, None)),
        ([S, C], "HPUT", HPut(S, (C,))),
        ([C, S, C2], "HPUT", HPut(S, (C, C2))),
        ([S, C, C2], "HPOST", HPost(S, (C, C2))),
        ([C], "GET", Get(C)),
        ([C], "DELETE", Delete(C)),
        ([C], "EXEC", Exec(C, None)),
        ([C, S], "EXEC", Exec(C, S)),
        ([S, C], "EXEC", Exec(C, S)),
        (["http://ui.example/s/1"], "SHOW", Show("http://ui.example/s/1")),
        (["HTTPS://dm.example/next"], "CONT", Cont("HTTPS://dm.example/next")),
        (["urn:oma:mo:oma-x:1.0", S], "DEFAULT", Default("urn:oma:mo:oma-x:1.0", S)),
        ([C, S], "SUB", Sub(C, S)),
        ([S, C], "SUB", Sub(C, S)),
        ([C], "UNSUB", Unsub(C)),
        ([], "END", End()),
        (["junk"], "END", End()),
        ([C], "get", Get(C)),
    ],
)
def test_parse_command(params: list[str], name: str, expected) -> None:
    assert parse_command(Command(name, params)) == expected


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("HGET", []),
        ("HGET", [C]),
        ("HGET", [S, S]),
        ("HGET", [S, C, C2]),
        ("HPUT", [S]),
        ("HPOST", [C, C2]),
        ("GET", []),
        ("GET", [C, C2]),
        ("GET", [S]),
        ("DELETE", [C, S]),
        ("EXEC", []),
        ("EXEC", [C, S, S]),
        ("SHOW", [C]),
        ("SHOW", []),
        ("CONT", [S, S]),
        ("SUB", [C]),
        ("SUB", [S]),
        ("DEFAULT", [S]),
        ("UNSUB", [C, C2]),
        ("GET", [""]),
    ],
)
def test_wrong_parameters_give_malformed_400(name: str, params: list[str]) -> None:
    result = parse_command(Command(name, params))
    assert isinstance(result, Malformed)
    assert result.name == name and result.status == 400 and result.reason


def test_unknown_command_gives_501() -> None:
    result = parse_command(Command("REPLACE", [C, "x"]))
    assert result == Unknown("REPLACE", (C, "x"))
    assert result.status == 501


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"CMD"',
        b"{}",
        b'{"cmd":[]}',
        b'{"CMD":{}}',
        b'{"CMD":"END"}',
        b'{"CMD":["END"]}',  # a command must be an array
        b'{"CMD":[[]]}',
        b'{"CMD":[["GET",1]]}',
        b'{"CMD":[[null]]}',
        b'{"CMD":[[""]]}',
        b'{"CMD":[["GET","a"]],"x":NaN}',
        b'{"CMD":[],"x":Infinity}',
        b'{"CMD":[],"x":1' + b"0" * 5000 + b"}",
        b'{"CMD":[],"x":1' + b"0" * 5000 + b".5}",
        b'{"CMD":[["GET","\\ud800"]]}',  # lone surrogate: could never be written back as UTF-8
        b'{"CMD":[],"\\udfff":1}',
        b"\xc3\x28",
    ],
)
def test_package2_errors_are_400(body: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_request(body)
    assert info.value.status == 400


def test_package2_size_and_nesting_limits() -> None:
    with pytest.raises(TooLargeError) as info:
        decode_request(b'{"CMD":[["END"]]}', max_size=10)
    assert info.value.status == 413
    nested = b'{"CMD":[],"x":' + b"[" * 64 + b"]" * 64 + b"}"
    with pytest.raises(DecodeError, match="nested"):
        decode_request(nested)
    ok = b'{"CMD":[],"x":' + b"[" * 62 + b"]" * 62 + b"}"
    assert decode_request(ok).commands == []
    with pytest.raises(DecodeError):
        decode_request(b"[" * 200_000)


def test_byte_order_mark_and_extra_members_tolerated() -> None:
    assert decode_request(b'\xef\xbb\xbf{"CMD":[["END"]],"Vendor":{"x":1}}').commands == [Command("END", [])]


_PARAM = st.one_of(st.sampled_from([S, C, C2, "http://h/", "urn:x:1.0//a"]), st.text(max_size=8))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=10), st.lists(_PARAM, max_size=4))
def test_parse_command_never_raises_and_round_trips(name: str, params: list[str]) -> None:
    typed = parse_command(Command(name, params))
    if isinstance(typed, Malformed):
        return
    again = format_command(typed)
    assert parse_command(again) == typed
    if not isinstance(typed, End | Unknown):
        assert sorted(again.params) == sorted(params)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["CMD", "a"]), inner, max_size=2)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60) | _JSON.map(lambda v: json.dumps(v).encode()))
def test_random_bodies_raise_only_decode_error(body: bytes) -> None:
    for decode in (decode_request, decode_response, decode_initiation):
        with contextlib.suppress(DecodeError):
            decode(body)  # anything but DecodeError fails the test


# --- Package#3 -------------------------------------------------------------------------------------


def test_package3_spec_status_list() -> None:
    response = Response(
        [
            StatusEntry(200),
            StatusEntry(200, uri=["urn:oma:mo:oma-mo:1.0/miid1/", "urn:oma:mo:oma-mo:1.0/miid2/"]),
            StatusEntry(200),
        ]
    )
    body = encode_response(response)
    # the example of PROTOCOL 1.7
    assert json.loads(body) == {
        "Status": [
            {"sc": 200},
            {"sc": 200, "URI": ["urn:oma:mo:oma-mo:1.0/miid1/", "urn:oma:mo:oma-mo:1.0/miid2/"]},
            {"sc": 200},
        ]
    }
    assert decode_response(body) == response


def test_package3_get_result_per_project_rule() -> None:
    mos = [MOSerialization(C, {"FwV": "1.0.3"})]
    body = encode_response(Response([StatusEntry(200, uri=[C], mos=mos), StatusEntry(200)]))
    # the example exchange of PROTOCOL 1.19
    assert json.loads(body) == {
        "Status": [
            {
                "sc": 200,
                "URI": ["urn:oma:mo:oma-dm-devinfo:1.2//FwV"],
                "MOS": [{"ClientURI": "urn:oma:mo:oma-dm-devinfo:1.2//FwV", "MOData": {"FwV": "1.0.3"}}],
            },
            {"sc": 200},
        ]
    }
    assert decode_response(body).statuses[0].mos == mos


def test_package3_bare_mo_data_accepted() -> None:
    decoded = decode_response(b'{"Status":[{"sc":200,"URI":["u"],"MOData":{"FwV":"1"}}]}')
    assert decoded.statuses[0].mo_data == {"FwV": "1"}
    assert json.loads(encode_response(decoded))["Status"][0]["MOData"] == {"FwV": "1"}


def test_long_poll_keepalive_package3() -> None:
    assert encode_response(Response()) == b'{"Status":[]}'


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"Status":{}}',
        b'{"Status":[1]}',
        b'{"Status":[{}]}',
        b'{"Status":[{"sc":"200"}]}',
        b'{"Status":[{"sc":true}]}',
        b'{"Status":[{"sc":99}]}',
        b'{"Status":[{"sc":200.0}]}',
        b'{"Status":[{"sc":200,"URI":"u"}]}',
        b'{"Status":[{"sc":200,"MOS":[{"ClientURI":"u"}]}]}',
        b'{"Status":[{"sc":200,"MOData":[1]}]}',
        b'{"Status":[],"Alert":[{"AlertType":1}]}',
    ],
)
def test_package3_errors(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_response(body)
