"""DM 2.0 Package#0: the binary notification a server sends to ask for a session (PROTOCOL 1.4).

Layout (big-endian): a 2-byte header ``VER(4) | OC(5) | RESERVED(7)`` then OC options in strictly
increasing option number. Each option starts with one byte ``delta(4) | length(4)``; the public
text does not give the length extension, so the project uses the CoAP scheme (1.19 item 7):
nibble 13 = one extra byte holding value-13, 14 = two extra bytes holding value-269, 15 = invalid.
Extended delta bytes come before extended length bytes, as in CoAP.

Decisions where the text is silent (all documented in the report and the UI as project reading):
- SERVER-ID is required on parse: without it the client cannot find the account that verifies it.
- Unknown option numbers (> 6) are skipped, counted in OC, and never fail the parse: a newer
  server may add options and the digest still covers them.
- Any VER is accepted and reported; the caller decides whether it understands it.
- TIMESTAMP is an unsigned big-endian integer of 1..8 bytes; we write 4 bytes (8 after 2106).
- PREFERRED-CON-TYPE is 0 or 1 byte (absent/empty = 0, ANY_AVAILABLE); unknown values are kept.
- Trailing bytes after the OC-th option are an error (they would be outside the digest's meaning).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from dataclasses import dataclass
from typing import Literal

from emulator.errors import DecodeError, TooLargeError

OPT_SERVER_ID = 1
OPT_PREFERRED_CON_TYPE = 2
OPT_NOTIFICATION_ID = 3
OPT_SHA256_DIGEST = 4
OPT_TIMESTAMP = 5
OPT_REQ_MOS = 6

CON_ANY_AVAILABLE = 0x00
CON_CELLULAR = 0x01
CON_WLAN = 0x02
CON_WIRELINE = 0x03

DIGEST_SIZE = 32
MAX_NOTIFICATION_SIZE = 4096
"""Default parse limit: a notification carries a server id, a digest and a few integers."""

_MAX_OPTIONS = 31  # OC is 5 bits
_MAX_OPTION_LENGTH = 269 + 0xFFFF


@dataclass(frozen=True, slots=True)
class Notification:
    """A decoded Package#0. Optional options that were absent are None (REQ-MOS: False)."""

    version: int
    server_id: str
    preferred_con_type: int
    notification_id: int | None
    digest: bytes | None
    timestamp: int | None
    req_mos: bool


@dataclass(frozen=True, slots=True)
class _RawOption:
    number: int
    offset: int  # offset of the value in the message
    value: bytes


def _encode_nibble(n: int) -> tuple[int, bytes]:
    """CoAP extension: the nibble to put in the option byte and the extra bytes that follow."""
    if n < 13:
        return n, b""
    if n < 269:
        return 13, bytes([n - 13])
    if n <= _MAX_OPTION_LENGTH:
        return 14, (n - 269).to_bytes(2, "big")
    raise ValueError(f"option field {n} too large for the CoAP-style encoding")


def _encode_option(delta: int, value: bytes) -> bytes:
    d_nib, d_ext = _encode_nibble(delta)
    l_nib, l_ext = _encode_nibble(len(value))
    return bytes([(d_nib << 4) | l_nib]) + d_ext + l_ext + value


def _encode_options(options: list[tuple[int, bytes]], version: int) -> bytes:
    if not 0 <= version <= 15:
        raise ValueError(f"notification version {version} does not fit 4 bits")
    if len(options) > _MAX_OPTIONS:
        raise ValueError("too many options for the 5-bit OC field")
    oc = len(options)
    header = bytes([(version << 4) | (oc >> 1), (oc & 1) << 7])
    body = bytearray(header)
    previous = 0
    for number, value in options:
        body += _encode_option(number - previous, value)
        previous = number
    return bytes(body)


def build_notification(
    server_id: str,
    *,
    secret: bytes | None,
    auth_data: bytes = b"",
    notification_id: int | None,
    timestamp: int | None,
    preferred_con_type: int = CON_ANY_AVAILABLE,
    req_mos: bool = False,
    version: int = 1,
) -> bytes:
    """Encode a Package#0, digest included when ``secret`` is given.

    ``secret=None`` leaves the digest option out (a client must then ignore the notification;
    useful to test that). ``notification_id``/``timestamp`` None leave those options out.
    """
    if not server_id:
        raise ValueError("server_id must not be empty")
    if notification_id is not None and not 0 <= notification_id <= 0xFFFF:
        raise ValueError(f"notification_id {notification_id} does not fit 16 bits")
    if not 0 <= preferred_con_type <= 0xFF:
        raise ValueError(f"preferred_con_type {preferred_con_type} does not fit one byte")
    options: list[tuple[int, bytes]] = [
        (OPT_SERVER_ID, server_id.encode("utf-8")),
        (OPT_PREFERRED_CON_TYPE, bytes([preferred_con_type])),
    ]
    if notification_id is not None:
        options.append((OPT_NOTIFICATION_ID, notification_id.to_bytes(2, "big")))
    if secret is not None:
        options.append((OPT_SHA256_DIGEST, bytes(DIGEST_SIZE)))
    if timestamp is not None:
        if not 0 <= timestamp < 1 << 64:
            raise ValueError(f"timestamp {timestamp} out of range")
        options.append((OPT_TIMESTAMP, timestamp.to_bytes(4 if timestamp < 1 << 32 else 8, "big")))
    if req_mos:
        options.append((OPT_REQ_MOS, b""))
    zeroed = _encode_options(options, version)
    if secret is None:
        return zeroed
    digest = compute_digest(zeroed, secret, auth_data)
    _, raw = _scan(zeroed, len(zeroed))
    where = next(o.offset for o in raw if o.number == OPT_SHA256_DIGEST)
    return zeroed[:where] + digest + zeroed[where + DIGEST_SIZE :]


def compute_digest(notification_with_zero_digest: bytes, secret: bytes, auth_data: bytes) -> bytes:
    """SHA256(secret || notification_with_zero_digest || auth_data), PROTOCOL 1.4."""
    return hashlib.sha256(secret + notification_with_zero_digest + auth_data).digest()


def _read_extended(data: bytes, pos: int, nibble: int, what: str) -> tuple[int, int]:
    if nibble < 13:
        return nibble, pos
    if nibble == 13:
        if pos + 1 > len(data):
            raise DecodeError(f"notification truncated in extended option {what}")
        return data[pos] + 13, pos + 1
    if nibble == 14:
        if pos + 2 > len(data):
            raise DecodeError(f"notification truncated in extended option {what}")
        return int.from_bytes(data[pos : pos + 2], "big") + 269, pos + 2
    raise DecodeError(f"option {what} nibble 15 is reserved")


def _scan(data: bytes, max_size: int = MAX_NOTIFICATION_SIZE) -> tuple[int, list[_RawOption]]:
    """Split the message into (version, options), checking the framing rules only."""
    if len(data) > max_size:
        raise TooLargeError(f"notification of {len(data)} bytes exceeds {max_size}")
    if len(data) < 2:
        raise DecodeError(f"notification truncated: {len(data)} bytes, header needs 2")
    version = data[0] >> 4
    count = ((data[0] & 0x0F) << 1) | (data[1] >> 7)
    pos = 2
    number = 0
    options: list[_RawOption] = []
    for index in range(count):
        if pos >= len(data):
            raise DecodeError(f"notification truncated: OC says {count} options, found {index}")
        first = data[pos]
        pos += 1
        delta, pos = _read_extended(data, pos, first >> 4, "delta")
        length, pos = _read_extended(data, pos, first & 0x0F, "length")
        if delta == 0:
            raise DecodeError(f"option numbers must increase (option {index + 1} repeats {number})")
        number += delta
        if pos + length > len(data):
            raise DecodeError(f"notification truncated in the value of option {number}")
        options.append(_RawOption(number, pos, bytes(data[pos : pos + length])))
        pos += length
    if pos != len(data):
        raise DecodeError(f"{len(data) - pos} bytes after the {count} options announced by OC")
    return version, options


def parse_notification(data: bytes, *, max_size: int = MAX_NOTIFICATION_SIZE) -> Notification:
    """Decode and validate a Package#0 (the digest is not checked here: see verify_digest)."""
    version, options = _scan(bytes(data), max_size)
    by_number = {o.number: o.value for o in options}
    if OPT_SERVER_ID not in by_number:
        raise DecodeError("notification has no SERVER-ID option")
    try:
        server_id = by_number[OPT_SERVER_ID].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("SERVER-ID is not UTF-8") from exc
    if not server_id:
        raise DecodeError("SERVER-ID is empty")
    con = by_number.get(OPT_PREFERRED_CON_TYPE, b"")
    if len(con) > 1:
        raise DecodeError(f"PREFERRED-CON-TYPE must be one byte, got {len(con)}")
    notification_id = None
    if OPT_NOTIFICATION_ID in by_number:
        value = by_number[OPT_NOTIFICATION_ID]
        if len(value) != 2:
            raise DecodeError(f"NOTIFICATION-ID must be exactly 2 bytes, got {len(value)}")
        notification_id = int.from_bytes(value, "big")
    digest = by_number.get(OPT_SHA256_DIGEST)
    if digest is not None and len(digest) != DIGEST_SIZE:
        raise DecodeError(f"SHA256-DIGEST must be exactly 32 bytes, got {len(digest)}")
    timestamp = None
    if OPT_TIMESTAMP in by_number:
        value = by_number[OPT_TIMESTAMP]
        if not 1 <= len(value) <= 8:
            raise DecodeError(f"TIMESTAMP must be 1..8 bytes, got {len(value)}")
        timestamp = int.from_bytes(value, "big")
    req_mos = OPT_REQ_MOS in by_number
    if req_mos and by_number[OPT_REQ_MOS]:
        raise DecodeError("REQ-MOS is a Null option and must have no value")
    return Notification(
        version=version,
        server_id=server_id,
        preferred_con_type=con[0] if con else CON_ANY_AVAILABLE,
        notification_id=notification_id,
        digest=digest,
        timestamp=timestamp,
        req_mos=req_mos,
    )


def verify_digest(raw: bytes, secret: bytes, auth_data: bytes) -> bool:
    """True when the SHA256-DIGEST option matches; False when it is absent or wrong.

    Compares in constant time. Raises DecodeError when ``raw`` is not a well-framed notification.
    """
    raw = bytes(raw)
    _, options = _scan(raw, max(len(raw), MAX_NOTIFICATION_SIZE))
    digests = [o for o in options if o.number == OPT_SHA256_DIGEST]
    if not digests or len(digests[0].value) != DIGEST_SIZE:
        return False
    where = digests[0].offset
    zeroed = raw[:where] + bytes(DIGEST_SIZE) + raw[where + DIGEST_SIZE :]
    return hmac.compare_digest(compute_digest(zeroed, secret, auth_data), digests[0].value)


GuardVerdict = Literal["ok", "duplicate", "stale", "future"]


class NotificationGuard:
    """Drops replays: notifications too old or from the future, and ids seen within the window.

    ``now`` is always passed in (POSIX seconds) so the guard stays clock-free and testable.
    Ids are only 16 bits and wrap, so an id is remembered for ``window_s`` seconds of *receive*
    time and then forgotten. The key is (server_id, notification_id); without an id the digest
    stands in (it changes with the timestamp); with neither there is nothing to compare.
    A notification without TIMESTAMP is not age-checked (the option is optional for clients).
    Rejected notifications are not remembered, so a stale copy cannot poison a later fresh one.
    """

    def __init__(self, window_s: int) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.window_s = window_s
        self._seen: dict[tuple[str, object], float] = {}
        self._order: deque[tuple[float, tuple[str, object]]] = deque()

    def _forget_before(self, cutoff: float) -> None:
        while self._order and self._order[0][0] < cutoff:
            seen_at, key = self._order.popleft()
            if self._seen.get(key) == seen_at:
                del self._seen[key]

    def check(self, n: Notification, now: float) -> GuardVerdict:
        """Verdict for ``n`` received at ``now``; an "ok" notification is remembered."""
        if n.timestamp is not None:
            if n.timestamp < now - self.window_s:
                return "stale"
            if n.timestamp > now + self.window_s:
                return "future"
        self._forget_before(now - self.window_s)
        if n.notification_id is not None:
            key: tuple[str, object] = (n.server_id, n.notification_id)
        elif n.digest is not None:
            key = (n.server_id, n.digest)
        else:
            return "ok"
        if key in self._seen:
            return "duplicate"
        self._seen[key] = now
        self._order.append((now, key))
        return "ok"
