"""Result codes of the generic alerts devices send, in plain words: one table that the traffic view
(:func:`emulator.protocol.traffic.describe`), saved traffic and reports read, so a code means the
same thing everywhere.

Which table applies follows the alert type; each MO keeps its own (this module only chooses): FUMO
(``org.openmobilealliance.dm.firmwareupdate.*``, :mod:`emulator.mo.fumo`), SCOMO and LAWMO
(``urn:oma:at:scomo:1.0:*``, ``urn:oma:at:lawmo:1.0:*``: :mod:`emulator.mo.scomo`,
:mod:`emulator.mo.lawmo`), DiagMon (``urn:oma:at:diagmon:1.0:*``: the project's codes for a log upload [P], see
:mod:`emulator.mo.diagmon`), the DM 2.0 ExecResult (``urn:oma:at:dm:2.0:ExecResult``: a DM status).
A code a table does not list is explained by its range (a vendor-specified success or failure).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from emulator.mo import diagmon, fumo, lawmo, scomo

DIAGMON = {
    diagmon.RESULT_UPLOADED: "Log uploaded",
    diagmon.RESULT_NETWORK: "Upload failed: no answer from the server (network failure)",
    400: "Upload refused: the server found the request bad",
    404: "Upload refused: the server expects nothing at that URL",
    410: "Upload refused: that URL was used already",
    413: "Upload refused: the log is larger than the server takes",
    415: "Upload refused: the server does not take text",
}
"""DiagMon OperationComplete results [P]: 200, the receiving server's HTTP status, 503 no answer."""

DM_STATUS = {
    200: "OK", 202: "Accepted for processing", 400: "Bad request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not found", 405: "Command not allowed", 406: "Optional feature not supported", 409: "Conflict",
    410: "Gone", 413: "Request entity too large", 415: "Unsupported media type", 500: "Command failed",
    503: "Service unavailable",
}
"""DM status codes, for an ExecResult and anything without a table of its own."""


KINDS: dict[str, tuple[str, dict[int, str]]] = {"fumo": ("FUMO", fumo.RESULT_CODES), "scomo": ("SCOMO", scomo.RESULT_CODES),
         "lawmo": ("LAWMO", lawmo.RESULT_CODES), "diagmon": ("DiagMon", DIAGMON)}
"""The table of each managed-object kind (an ``OperationChanged`` names its kind, not an alert type)."""


def table_for(alert_type: str | None) -> tuple[str, dict[int, str]]:
    """(the table's name, code -> words) for an alert type."""
    t = (alert_type or "").lower()
    if t.startswith(fumo.ALERT_PREFIX):
        return KINDS["fumo"]
    for kind in ("scomo", "lawmo", "diagmon"):
        if t.startswith(f"urn:oma:at:{kind}:"):
            return KINDS[kind]
    return "DM status", DM_STATUS


def explain(alert_type: str | None, code: int) -> str:
    """``code`` in plain words, as the alert type's table says (or its range, for vendor codes)."""
    return in_words(table_for(alert_type)[1], code)


def explain_kind(kind: str, code: int) -> tuple[str, str]:
    """(the kind's name, ``code`` in its words) for an operation of a managed-object ``kind``
    (``fumo``...); an unknown kind reads its code as a DM status."""
    name, table = KINDS.get(kind, (kind.upper(), DM_STATUS))
    return name, in_words(table, code)


def succeeded(code: int) -> bool:
    """A result code that says the operation worked: 2xx, or 12xx (SCOMO, LAWMO)."""
    return 200 <= code < 300 or 1200 <= code < 1300


def in_words(table: dict[int, str], code: int) -> str:
    """``code`` as ``table`` says, or by its range (a vendor-specified success or failure)."""
    if code in table:
        return table[code]
    if succeeded(code):
        return "Successful (vendor specified)"
    if 400 <= code < 500 or 1400 <= code < 1500:
        return "Client error (vendor specified)" if code % 100 >= 50 else "Client error"
    if 500 <= code < 600 or 1500 <= code < 1600:
        return "Server error (vendor specified)" if code % 100 >= 50 else "Server error"
    return "not a result code"


def code_of(data: object) -> int | None:
    """The result code an alert's Data carries: the Data itself (FUMO, SCOMO: ``402``), ``Result=``
    in a ``key=value&...`` text (DiagMon over DM 1.2), ``Value``/``Result``/``sc`` in a DM 2.0 table."""
    if isinstance(data, dict):
        for key in ("Result", "Value", "sc", "ResultCode"):
            if key in data:
                return code_of(data[key])
        return None
    if isinstance(data, bool):
        return None
    if isinstance(data, int):
        return data
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if not isinstance(data, str):
        return None
    text = data.strip()
    if text.isdigit() and len(text) <= 4:
        return int(text)
    if "Result=" in text:
        found = parse_qs(text).get("Result")
        return code_of(found[0]) if found else None
    return None


def explain_alert(alert_type: str | None, data: object) -> str | None:
    """"<code> <words> (<table>)" for an alert whose Data carries a result code; None otherwise."""
    code = code_of(data)
    if code is None:
        return None
    name, _ = table_for(alert_type)
    return f"{code} {explain(alert_type, code)} ({name})"
