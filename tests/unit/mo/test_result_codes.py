"""Result codes in plain words: one table per alert family, shared by the traffic view and reports."""

from __future__ import annotations

import pytest

from emulator.mo import diagmon, fumo
from emulator.mo.result_codes import code_of, explain, explain_alert, table_for
from emulator.protocol.traffic import describe

FUMO_TYPE = fumo.ALERT_PREFIX + "downloadandupdate"


@pytest.mark.parametrize(("alert_type", "code", "words"), [
    (FUMO_TYPE, 402, "Corrupted Firmware Update Package"),
    (FUMO_TYPE, 250, "Successful (vendor specified)"),
    (FUMO_TYPE, 460, "Client error (vendor specified)"),
    ("urn:oma:at:scomo:1.0:OperationComplete", 1405, "Install Failed"),
    ("urn:oma:at:lawmo:1.0:OperationComplete", 1200, "Operation Succeeded"),
    (diagmon.ALERT_OPERATION, 503, "Upload failed: no answer from the server (network failure)"),
    (diagmon.ALERT_OPERATION, 413, "Upload refused: the log is larger than the server takes"),
    ("urn:oma:at:dm:2.0:ExecResult", 405, "Command not allowed"),
    (None, 7, "not a result code"),
])
def test_explain(alert_type: str | None, code: int, words: str) -> None:
    assert explain(alert_type, code) == words


@pytest.mark.parametrize(("data", "code"), [("402", 402), (" 200 ", 200), (b"1405", 1405), ("Result=503&URL=x", 503),
                                            ({"Value": "Result=200&URL=u"}, 200), ({"sc": 404}, 404),
                                            ({"Value": "402"}, 402), ("Measure=Battery%2FLevel&Value=12", None),
                                            ("12345", None), (True, None), (None, None), ({"x": 1}, None)])
def test_code_of(data: object, code: int | None) -> None:
    assert code_of(data) == code


def test_fumo_codes_are_fumos_own_table() -> None:
    assert table_for(FUMO_TYPE) == ("FUMO", fumo.RESULT_CODES)
    assert explain_alert(FUMO_TYPE, "402") == "402 Corrupted Firmware Update Package (FUMO)"
    assert explain_alert(diagmon.ALERT_TRAP, "Measure=Battery%2FLevel&Value=12") is None


def test_traffic_explains_a_generic_alert_in_both_protocols() -> None:
    xml = (b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD></SyncHdr><SyncBody>'
           b'<Alert><CmdID>2</CmdID><Data>1226</Data><Correlator>c1</Correlator><Item><Source><LocURI>./FwUpdate/fw'
           b'</LocURI></Source><Meta><Type xmlns="syncml:metinf">' + FUMO_TYPE.encode() + b'</Type></Meta>'
           b'<Data>402</Data></Item></Alert><Final/></SyncBody></SyncML>')
    text = describe("application/vnd.syncml.dm+xml", xml)
    assert "Result codes explained:" in text
    assert f"{FUMO_TYPE} from ./FwUpdate/fw: 402 Corrupted Firmware Update Package (FUMO)" in text
    json_body = (b'{"Alert": [{"AlertType": "urn:oma:at:diagmon:1.0:OperationComplete", "SourceURI": '
                 b'"urn:oma:mo:oma-diagmon:1.0/DiagMon/ErrorLog/Upload", "Data": {"Value": "Result=413&URL=u"}}]}')
    text = describe("application/vnd.oma.dm.initiation+json", json_body)
    assert "413 Upload refused: the log is larger than the server takes (DiagMon)" in text
    assert "Result codes explained" not in describe("application/json", b'{"Alert": [{"AlertType": "x"}]}')
