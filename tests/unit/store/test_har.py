"""Traffic as HAR 1.2 and as raw bodies: structure checked against the HAR 1.2 spec's required
fields, request/response pairing, secrets masked, binary bodies in base64, safe file names."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

from emulator.events import MessageLogged
from emulator.store.har import har_log, pair_exchanges, raw_bodies, write_har, write_raw_bodies

EXAMPLES = Path(__file__).resolve().parents[3] / "assets" / "examples"
DM2 = "http://127.0.0.1:8700/dm2"
SECRET_INIT = json.dumps({"MOS": [{"ClientURI": "x", "MOData": {"AAuthSecret": "hunter2"}}]}).encode()


def _log() -> list[MessageLogged]:
    wbxml = (EXAMPLES / "dm12" / "replace.wbxml").read_bytes()
    return [
        MessageLogged("IMEI:1", "s1", "out", 1_700_000_000.0, "application/vnd.oma.dm.initiation+json",
                      SECRET_INIT, "Package#1", None, DM2),
        MessageLogged("IMEI:2", "s7", "out", 1_700_000_000.1, "application/vnd.syncml.dm+wbxml", wbxml, "Package 1",
                      None, "http://127.0.0.1:8700/dm12"),
        MessageLogged("IMEI:1", "s1", "in", 1_700_000_000.2, "application/vnd.oma.dm.request+json",
                      b'{"CMD": [["GET", "./DevInfo/Man"]]}', "HTTP 200", 42.5, DM2),
        MessageLogged("IMEI:2", "s7", "in", 1_700_000_000.3, "application/vnd.syncml.dm+wbxml", wbxml, "HTTP 200",
                      7.0, "http://127.0.0.1:8700/dm12"),
        MessageLogged("IMEI:1", "s1", "out", 1_700_000_000.4, "application/vnd.oma.dm.response+json",
                      b'{"Status": [{"sc": 200}]}', "Package#3 [200]", None, DM2),
        MessageLogged("IMEI:1", "s1", "in", 1_700_000_000.5, "text/plain", b"oops", "HTTP 500", 3.0, DM2),
        MessageLogged("IMEI:3", "s9", "out", 1_700_000_000.6, "application/json", b"{}", "Package#1", None,
                      "http://127.0.0.1:9/dm2"),  # refused: no answer
    ]


REQUIRED = {
    "log": {"version", "creator", "entries"},
    "entry": {"startedDateTime", "time", "request", "response", "cache", "timings"},
    "request": {"method", "url", "httpVersion", "cookies", "headers", "queryString", "headersSize", "bodySize"},
    "response": {"status", "statusText", "httpVersion", "cookies", "headers", "content", "redirectURL",
                 "headersSize", "bodySize"},
    "content": {"size", "mimeType"},
    "timings": {"send", "wait", "receive"},
}


def test_har_has_the_structure_of_har_1_2():
    doc = json.loads(json.dumps(har_log(_log())))  # plain JSON all the way down
    log = doc["log"]
    assert REQUIRED["log"] <= set(log) and log["version"] == "1.2"
    assert set(log["creator"]) >= {"name", "version"}
    assert len(log["entries"]) == 4
    for entry in log["entries"]:
        assert REQUIRED["entry"] <= set(entry)
        datetime.fromisoformat(entry["startedDateTime"])  # ISO 8601 with a zone
        assert entry["startedDateTime"].endswith("+00:00")
        assert REQUIRED["request"] <= set(entry["request"])
        assert REQUIRED["response"] <= set(entry["response"])
        assert REQUIRED["content"] <= set(entry["response"]["content"])
        assert REQUIRED["timings"] <= set(entry["timings"])
        assert isinstance(entry["time"], int | float) and entry["time"] >= 0
        for part in ("request", "response"):
            assert all(set(h) == {"name", "value"} for h in entry[part]["headers"])
        if "postData" in entry["request"]:
            assert {"mimeType", "text"} <= set(entry["request"]["postData"])


def test_requests_are_paired_with_their_answers_per_device_and_session():
    entries = har_log(_log())["log"]["entries"]
    first, dm12, third, refused = entries
    assert first["request"]["method"] == "POST" and first["_device"] == "IMEI:1"
    assert first["response"]["status"] == 200 and first["time"] == 42.5
    assert "GET" in first["response"]["content"]["text"]
    assert dm12["_device"] == "IMEI:2" and dm12["response"]["content"]["encoding"] == "base64"
    assert third["response"]["status"] == 500 and third["response"]["content"]["text"] == "oops"
    assert refused["response"]["status"] == 0 and refused["response"]["statusText"] == "no answer"
    assert [len(pair_exchanges(_log())), sum(a is None for _, a in pair_exchanges(_log()))] == [4, 1]


def test_binary_bodies_are_base64_and_come_back_whole():
    wbxml = (EXAMPLES / "dm12" / "replace.wbxml").read_bytes()
    entry = har_log(_log(), reveal=True)["log"]["entries"][1]
    assert entry["request"]["postData"]["comment"] == "binary body in base64"
    assert base64.b64decode(entry["request"]["postData"]["text"]) == wbxml
    assert base64.b64decode(entry["response"]["content"]["text"]) == wbxml
    assert entry["response"]["content"]["size"] == len(wbxml)


def test_secrets_are_masked_unless_revealed():
    assert "hunter2" not in json.dumps(har_log(_log()))
    assert "hunter2" in json.dumps(har_log(_log(), reveal=True))


def test_empty_log_is_a_valid_empty_har(tmp_path):
    assert har_log([])["log"]["entries"] == []
    assert write_har(tmp_path / "t.har", []) == 0
    assert json.loads((tmp_path / "t.har").read_text())["log"]["version"] == "1.2"


def test_raw_bodies_are_one_file_per_message_with_safe_names(tmp_path):
    files = raw_bodies(_log())
    names = [n for n, _ in files]
    assert names[0] == "00001-IMEI_1-s1-out.json"
    assert names[1] == "00002-IMEI_2-s7-out.wbxml"
    assert names[5] == "00006-IMEI_1-s1-in.txt"
    assert all(":" not in n and "/" not in n for n in names)
    assert b"hunter2" not in files[0][1]
    assert write_raw_bodies(tmp_path / "bodies", _log(), reveal=True) == 7
    assert (tmp_path / "bodies" / names[0]).read_bytes() == SECRET_INIT
    assert sorted(p.name for p in (tmp_path / "bodies").iterdir()) == sorted(names)
