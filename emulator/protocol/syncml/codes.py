"""SyncML DM numbers and names shared by the message model, the engines and the traffic log.

Kept in one place so a status code or an alert code is never spelled as a bare number twice, and so
the log can print "404 Not found" instead of "404" (PROTOCOL.md 2.5, 2.7).
"""

from __future__ import annotations

from typing import Final

# --- media types (PROTOCOL.md 2.1, 2.2, 2.4) -------------------------------------------------------
MEDIA_DM_XML: Final = "application/vnd.syncml.dm+xml"
MEDIA_DM_WBXML: Final = "application/vnd.syncml.dm+wbxml"
MEDIA_NOTIFICATION: Final = "application/vnd.syncml.notification"
MEDIA_TNDS_XML: Final = "application/vnd.syncml.dmtnds+xml"
MEDIA_TNDS_WBXML: Final = "application/vnd.syncml.dmtnds+wbxml"
# SyncML DS media types: not DM, but sloppy servers label DM messages with them, so the parser
# accepts them (see message.parse_message).
MEDIA_DS_XML: Final = "application/vnd.syncml+xml"
MEDIA_DS_WBXML: Final = "application/vnd.syncml+wbxml"

# --- SyncML namespaces ----------------------------------------------------------------------------
NS_SYNCML_11: Final = "SYNCML:SYNCML1.1"
NS_SYNCML_12: Final = "SYNCML:SYNCML1.2"
NS_METINF: Final = "syncml:metinf"

# --- authentication schemes (Meta Type in Cred / Chal, PROTOCOL.md 2.9) ---------------------------
AUTH_BASIC: Final = "syncml:auth-basic"
AUTH_MD5: Final = "syncml:auth-md5"
AUTH_MAC: Final = "syncml:auth-MAC"
AUTH_SHA256: Final = "syncml:auth-SHA256"
"""DM 1.3's SHA256 scheme; the spelling follows the auth-MAC/auth-md5 family (README "How DM is read
here": the DM 1.3 Security text itself was not reachable) [P]."""

# --- alert codes (PROTOCOL.md 2.5) ----------------------------------------------------------------
ALERT_DISPLAY: Final = 1100
ALERT_CONFIRM_OR_REJECT: Final = 1101
ALERT_TEXT_INPUT: Final = 1102
ALERT_SINGLE_CHOICE: Final = 1103
ALERT_MULTIPLE_CHOICE: Final = 1104
ALERT_SERVER_INITIATED_MGMT: Final = 1200
ALERT_CLIENT_INITIATED_MGMT: Final = 1201
ALERT_NEXT_MESSAGE: Final = 1222
ALERT_SESSION_ABORT: Final = 1223
ALERT_CLIENT_EVENT: Final = 1224
ALERT_NO_END_OF_DATA: Final = 1225
ALERT_GENERIC: Final = 1226

UI_ALERTS: Final = frozenset(range(ALERT_DISPLAY, ALERT_MULTIPLE_CHOICE + 1))

ALERT_NAMES: Final[dict[int, str]] = {
    ALERT_DISPLAY: "DISPLAY",
    ALERT_CONFIRM_OR_REJECT: "CONFIRM OR REJECT",
    ALERT_TEXT_INPUT: "TEXT INPUT",
    ALERT_SINGLE_CHOICE: "SINGLE CHOICE",
    ALERT_MULTIPLE_CHOICE: "MULTIPLE CHOICE",
    ALERT_SERVER_INITIATED_MGMT: "SERVER-INITIATED MGMT",
    ALERT_CLIENT_INITIATED_MGMT: "CLIENT-INITIATED MGMT",
    ALERT_NEXT_MESSAGE: "NEXT MESSAGE",
    ALERT_SESSION_ABORT: "SESSION ABORT",
    ALERT_CLIENT_EVENT: "CLIENT EVENT",
    ALERT_NO_END_OF_DATA: "NO END OF DATA",
    ALERT_GENERIC: "GENERIC ALERT",
}

# --- status codes (PROTOCOL.md 2.7) ---------------------------------------------------------------
IN_PROGRESS: Final = 101
OK: Final = 200
ITEM_ADDED: Final = 201
ACCEPTED: Final = 202
AUTH_ACCEPTED: Final = 212
CHUNK_ACCEPTED: Final = 213
OPERATION_CANCELLED: Final = 214
NOT_EXECUTED: Final = 215
ATOMIC_ROLLBACK_OK: Final = 216
NOT_MODIFIED: Final = 304
BAD_REQUEST: Final = 400
INVALID_CREDENTIALS: Final = 401
FORBIDDEN: Final = 403
NOT_FOUND: Final = 404
COMMAND_NOT_ALLOWED: Final = 405
OPTIONAL_FEATURE_NOT_SUPPORTED: Final = 406
MISSING_CREDENTIALS: Final = 407
REQUEST_TIMEOUT: Final = 408
INCOMPLETE_COMMAND: Final = 412
REQUEST_ENTITY_TOO_LARGE: Final = 413
URI_TOO_LONG: Final = 414
UNSUPPORTED_MEDIA_TYPE: Final = 415
REQUESTED_SIZE_TOO_BIG: Final = 416
ALREADY_EXISTS: Final = 418
DEVICE_FULL: Final = 420
SIZE_MISMATCH: Final = 424
PERMISSION_DENIED: Final = 425
COMMAND_FAILED: Final = 500
COMMAND_NOT_IMPLEMENTED: Final = 501
PROCESSING_ERROR: Final = 506
ATOMIC_FAILED: Final = 507
DATA_STORE_FAILURE: Final = 510
DTD_VERSION_NOT_SUPPORTED: Final = 505
PROTOCOL_VERSION_NOT_SUPPORTED: Final = 513
ATOMIC_ROLLBACK_FAILED: Final = 516
ATOMIC_RESPONSE_TOO_LARGE: Final = 517

STATUS_NAMES: Final[dict[int, str]] = {
    101: "In progress",
    200: "OK",
    201: "Item added",
    202: "Accepted for processing",
    203: "Non-authoritative response",
    204: "No content",
    205: "Reset content",
    206: "Partial content",
    207: "Conflict resolved with merge",
    208: "Conflict resolved with client's command winning",
    209: "Conflict resolved with duplicate",
    210: "Delete without archive",
    211: "Item not deleted",
    212: "Authentication accepted",
    213: "Chunked item accepted and buffered",
    214: "Operation cancelled",
    215: "Not executed",
    216: "Atomic roll back OK",
    300: "Multiple choices",
    301: "Moved permanently",
    302: "Found",
    303: "See other URI",
    304: "Not modified",
    305: "Use proxy",
    400: "Bad request",
    401: "Invalid credentials",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    405: "Command not allowed",
    406: "Optional feature not supported",
    407: "Missing credentials",
    408: "Request timeout",
    409: "Conflict",
    410: "Gone",
    411: "Size required",
    412: "Incomplete command",
    413: "Request entity too large",
    414: "URI too long",
    415: "Unsupported media type or format",
    416: "Requested size too big",
    417: "Retry later",
    418: "Already exists",
    419: "Conflict resolved with server data",
    420: "Device full",
    421: "Unknown search grammar",
    422: "Bad CGI script",
    423: "Soft-delete conflict",
    424: "Size mismatch",
    425: "Permission denied",
    426: "Partial item not accepted",
    427: "Item not empty",
    428: "Move failed",
    500: "Command failed",
    501: "Command not implemented",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
    505: "DTD version not supported",
    506: "Processing error",
    507: "Atomic failed",
    508: "Refresh required",
    510: "Data store failure",
    511: "Server failure",
    512: "Synchronization failed",
    513: "Protocol version not supported",
    514: "Operation cancelled",
    516: "Atomic roll back failed",
    517: "Atomic response too large to fit",
}


def status_name(code: int) -> str:
    """Short human name for the traffic log; unknown codes are named by their class (2xx, 4xx...)."""
    name = STATUS_NAMES.get(code)
    if name is not None:
        return name
    return {1: "Informational", 2: "Success", 3: "Redirection", 4: "Originator error", 5: "Recipient error"}.get(
        code // 100, "Unknown status"
    )


def is_success(code: int) -> bool:
    """2xx, the class a session treats as 'the command did what was asked'."""
    return 200 <= code < 300


def alert_name(code: int) -> str:
    return ALERT_NAMES.get(code, f"ALERT {code}")


# --- versions (PROTOCOL.md 2.3, 2.12) -------------------------------------------------------------
VER_DTDS: Final = ("1.1", "1.2")
"""SyncHdr VerDTD values both sides accept (DM 1.3 still uses the SyncML 1.2 DTD: the 1.3 enabler
merged SyncML Common 1.2 into itself, ERELD 4.3; "1.3" is tolerated from a DM 1.3 peer [P])."""
DM_VERSIONS: Final = ("1.2", "1.3")
"""The DM 1.x versions a device profile may implement (``dm_version``)."""
VER_PROTOS_OF: Final[dict[str, tuple[str, ...]]] = {
    "1.2": ("DM/1.1", "DM/1.2"),
    "1.3": ("DM/1.1", "DM/1.2", "DM/1.3"),
}
"""VerProto values a side speaking each DM version accepts: a 1.2 device refuses DM/1.3 (513)."""
VER_PROTOS: Final = VER_PROTOS_OF["1.3"]
"""SyncHdr VerProto values the reference server accepts (it answers each client in its own)."""


def ver_proto(dm_version: str) -> str:
    """The VerProto a side speaking ``dm_version`` writes: DM/1.2 or DM/1.3."""
    return f"DM/{dm_version}"


def version_refusal(ver_dtd: str, ver_proto: str, dm_version: str = "1.3") -> tuple[int, str] | None:
    """(505 or 513, why) when a SyncHdr names a version we do not speak, None when it is one we do.

    An absent value is tolerated (a peer that leaves it out still means SyncML DM); a present one
    must be known, because its commands could mean something else (RepPro 10: 505 for VerDTD, 513
    for VerProto). The DTD is checked first: without it, VerProto cannot even be read reliably.
    ``dm_version`` is what this side implements: a DM 1.2 device refuses a DM/1.3 message whole.
    """
    dtds = VER_DTDS + (("1.3",) if dm_version == "1.3" else ())
    if ver_dtd and ver_dtd.strip() not in dtds:
        return (DTD_VERSION_NOT_SUPPORTED,
                f"VerDTD {ver_dtd.strip()!r} is not supported (only {' and '.join(VER_DTDS)})")
    protos = VER_PROTOS_OF.get(dm_version, VER_PROTOS)
    if ver_proto and ver_proto.strip() not in protos:
        return (PROTOCOL_VERSION_NOT_SUPPORTED,
                f"VerProto {ver_proto.strip()!r} is not supported (only {', '.join(protos)}: "
                f"a DM {dm_version} implementation)")
    return None
