"""Package 0: the SyncML DM server-alerted notification (PROTOCOL.md 2.2), both directions.

Layout (big-endian): digest[16] | version:10 ui-mode:2 initiator:1 future:27 session-id:16
id-length:8 | server-id[id-length] | vendor-specific[rest].
Digest = H(B64(H(server-id ":" password)) ":" nonce ":" B64(H(trigger))), H = MD5, where trigger is
every byte after the digest. Credentials are the server's (AAuthLevel SRVCRED) and the nonce is the
server nonce the device stores.

DM 1.3 (version 13) adds an expiry, a reason and requested MOs in the vendor-specific part, in the
project's encoding (:func:`encode_extension`, README "DM 1.3").

Version policy: `parse_notification` accepts any version value and reports it; whether to act on
1.1-1.3 only (`SUPPORTED_VERSIONS`, see `Notification.version_supported`) is the caller's decision,
because libdmclient accepts only 11 while Android ignores the field, and an emulator must be able to
show what a server sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from emulator.errors import DecodeError

DIGEST_LEN = 16
HEADER_LEN = 8
FIXED_LEN = DIGEST_LEN + HEADER_LEN
SUPPORTED_VERSIONS = range(11, 14)
RESYNC_NONCE = b"\x00\x00\x00\x00"

UI_NOT_SPECIFIED = 0
UI_BACKGROUND = 1
UI_INFORMATIVE = 2
UI_USER_INTERACTION = 3

INITIATOR_CLIENT = 0
INITIATOR_SERVER = 1


@dataclass(slots=True, frozen=True, kw_only=True)
class Notification:
    version: int
    ui_mode: int
    initiator: int
    session_id: int
    server_id: str
    vendor: bytes = b""
    digest: bytes = b""

    @property
    def version_supported(self) -> bool:
        return self.version in SUPPORTED_VERSIONS

    @property
    def syncml_session_id(self) -> str:
        return format_session_id(self.session_id)


def format_session_id(session_id: int) -> str:
    """SyncML SessionID for a notification session id: upper-case hex, no leading zeros (0x00A1 -> 'A1')."""
    return f"{session_id:X}"


def _b64_md5(data: bytes) -> bytes:
    return base64.b64encode(hashlib.md5(data).digest())


def compute_digest(trigger: bytes, server_id: str, password: str, nonce: bytes) -> bytes:
    """The 16-byte digest that precedes `trigger` (all bytes after the digest)."""
    key = _b64_md5(f"{server_id}:{password}".encode())
    return hashlib.md5(key + b":" + nonce + b":" + _b64_md5(trigger)).digest()


def build_notification(
    server_id: str,
    password: str,
    nonce: bytes,
    *,
    session_id: int,
    version: int = 11,
    ui_mode: int = UI_NOT_SPECIFIED,
    initiator: int = INITIATOR_SERVER,
    vendor: bytes = b"",
) -> bytes:
    """Encode a notification; ValueError for out-of-range fields (a caller bug, not input)."""
    sid = server_id.encode("utf-8")
    for name, value, limit in (
        ("version", version, 1 << 10),
        ("ui_mode", ui_mode, 1 << 2),
        ("initiator", initiator, 1 << 1),
        ("session_id", session_id, 1 << 16),
        ("server_id length", len(sid), 1 << 8),
    ):
        if not 0 <= value < limit:
            raise ValueError(f"notification {name} {value} out of range 0..{limit - 1}")
    word = (version << 54) | (ui_mode << 52) | (initiator << 51) | (session_id << 8) | len(sid)
    trigger = word.to_bytes(HEADER_LEN, "big") + sid + bytes(vendor)
    return compute_digest(trigger, server_id, password, nonce) + trigger


def parse_notification(data: bytes) -> Notification:
    """Decode a notification; DecodeError when it is too short or the server id does not fit."""
    data = bytes(data)
    if len(data) < FIXED_LEN:
        raise DecodeError(f"notification of {len(data)} bytes is shorter than the {FIXED_LEN}-byte header")
    word = int.from_bytes(data[DIGEST_LEN:FIXED_LEN], "big")
    id_len = word & 0xFF
    if FIXED_LEN + id_len > len(data):
        raise DecodeError(
            f"notification server id of {id_len} bytes runs past the end ({len(data) - FIXED_LEN} left)"
        )
    try:
        server_id = data[FIXED_LEN : FIXED_LEN + id_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("notification server id is not text") from exc
    return Notification(
        version=(word >> 54) & 0x3FF,
        ui_mode=(word >> 52) & 0x3,
        initiator=(word >> 51) & 0x1,
        session_id=(word >> 8) & 0xFFFF,
        server_id=server_id,
        vendor=data[FIXED_LEN + id_len :],
        digest=data[:DIGEST_LEN],
    )


def verify_digest(n: Notification, raw: bytes, server_id: str, password: str, nonce: bytes) -> bool:
    """Constant-time check of the digest of `raw` (the bytes `n` was parsed from)."""
    expected = compute_digest(bytes(raw[DIGEST_LEN:]), server_id, password, nonce)
    return hmac.compare_digest(n.digest, expected)


def verify_with_resync(
    n: Notification, raw: bytes, server_id: str, password: str, nonce: bytes
) -> Literal["ok", "resync", "bad"]:
    """'ok' with the stored nonce; 'resync' if only the 4-zero-byte nonce verifies (the client then
    authenticates the session with that nonce and both sides issue fresh ones); 'bad' otherwise."""
    if verify_digest(n, raw, server_id, password, nonce):
        return "ok"
    if verify_digest(n, raw, server_id, password, RESYNC_NONCE):
        return "resync"
    return "bad"


# --- DM 1.3 extended notification [P] -------------------------------------------------------------
# DM 1.3 adds an expiry, a reason for connection and a list of MOs the server wants in Package 1
# (ERELD 4.3); the DM_Notification-V1_3 text that encodes them was not reachable, so this project
# carries them in the vendor-specific part of a version-13 notification (README "DM 1.3"): the digest
# covers them, and a DM 1.2 device, which does not read that part, simply opens its session.
VERSION_13 = 13
EXT_MAGIC = b"DM13"
"""The extension starts the vendor-specific part: magic, then TLVs (type:8 length:8 value)."""
EXT_EXPIRY = 0x01  # uint32, POSIX seconds: a device drops the notification after this time
EXT_REASON = 0x02  # UTF-8 text, why the server asks for a session
EXT_REQUESTED_MO = 0x03  # UTF-8 DM URI of an MO (subtree) to send in Package 1; repeatable
MAX_EXT_VALUE = 255
"""Longest value of one field, in bytes (its length is one byte)."""
MAX_REQUESTED_MOS = 16
"""Most MOs one notification may ask for."""


@dataclass(slots=True, frozen=True)
class Extension:
    """The DM 1.3 fields of a notification: ``expiry`` (POSIX seconds; None: none), ``reason`` ('':
    none), ``requested`` (the MO URIs to send in Package 1)."""

    expiry: int | None = None
    reason: str = ""
    requested: tuple[str, ...] = ()

    def expired(self, now: float) -> bool:
        """True when ``now`` is past the expiry (a notification without one never expires)."""
        return self.expiry is not None and now > self.expiry


def encode_extension(ext: Extension) -> bytes:
    """The vendor-specific bytes of ``ext``; ValueError when a field is beyond the limits above."""
    if len(ext.requested) > MAX_REQUESTED_MOS:
        raise ValueError(f"a notification asks for at most {MAX_REQUESTED_MOS} MOs, not {len(ext.requested)}")
    out = bytearray(EXT_MAGIC)
    if ext.expiry is not None:
        if not 0 <= ext.expiry < 1 << 32:
            raise ValueError(f"expiry {ext.expiry} is not a 32-bit POSIX time")
        out += bytes((EXT_EXPIRY, 4)) + ext.expiry.to_bytes(4, "big")
    fields = ([(EXT_REASON, ext.reason)] if ext.reason else []) + [(EXT_REQUESTED_MO, u) for u in ext.requested]
    for kind, text in fields:
        value = text.encode("utf-8")
        if not value or len(value) > MAX_EXT_VALUE:
            raise ValueError(f"notification field {text!r} must be 1..{MAX_EXT_VALUE} bytes of UTF-8")
        out += bytes((kind, len(value))) + value
    return bytes(out)


def parse_extension(n: Notification) -> Extension | None:
    """The DM 1.3 fields of a version-13 notification, None when it has none; DecodeError when they
    are malformed (a device then ignores the whole notification, as for a bad digest)."""
    data = n.vendor
    if n.version != VERSION_13 or not data.startswith(EXT_MAGIC):
        return None
    pos = len(EXT_MAGIC)
    expiry: int | None = None
    reason = ""
    requested: list[str] = []
    while pos < len(data):
        if pos + 2 > len(data):
            raise DecodeError(f"DM 1.3 notification field header cut off at byte {pos}")
        kind, length = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        if len(value) != length:
            raise DecodeError(f"DM 1.3 notification field {kind} of {length} bytes runs past the end")
        pos += 2 + length
        if kind == EXT_EXPIRY:
            if length != 4 or expiry is not None:
                raise DecodeError("DM 1.3 notification expiry must appear once, 4 bytes")
            expiry = int.from_bytes(value, "big")
            continue
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"DM 1.3 notification field {kind} is not UTF-8 text") from exc
        if kind == EXT_REASON:
            reason = text
        elif kind == EXT_REQUESTED_MO:
            requested.append(text)
            if len(requested) > MAX_REQUESTED_MOS:
                raise DecodeError(f"DM 1.3 notification asks for more than {MAX_REQUESTED_MOS} MOs")
        # other types: later additions, skipped (their length says how far)
    return Extension(expiry, reason, tuple(requested))
