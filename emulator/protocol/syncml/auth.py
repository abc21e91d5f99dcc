"""SyncML DM credentials (PROTOCOL.md 2.9): auth-basic, auth-md5, the auth-MAC HTTP header, and DM
1.3's auth-SHA256 (the md5 construction with SHA-256: B64(H(B64(H(user ":" password)) ":" nonce))).

One module for both directions: the device computes what it sends and checks what the server sent,
the reference server does the opposite, with the same functions. Comparisons are constant-time.

Nonces travel base64 (`NextNonce`, `AAuthData`) but the digests hash the decoded bytes. Android
falls back to the base64 string itself when a digest does not verify; `nonce_candidates` gives both
readings, decoded first, so a verifier accepts either and a sender uses the first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable

from emulator.errors import DecodeError, UnsupportedError

_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {"MD5": hashlib.md5}
HMAC_HEADER = "x-syncml-hmac"


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _hash(algorithm: str) -> Callable[[bytes], hashlib._Hash]:
    h = _HASHES.get(algorithm.upper())
    if h is None:
        raise UnsupportedError(f"unsupported auth-MAC algorithm {algorithm!r} (only MD5 is defined)")
    return h


def _same(a: str | bytes, b: str | bytes) -> bool:
    left = a.encode("utf-8") if isinstance(a, str) else a
    right = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def basic_credential(user: str, password: str) -> str:
    """Cred Data for syncml:auth-basic: B64(user ":" password)."""
    return _b64(f"{user}:{password}".encode()).decode("ascii")


def parse_basic_credential(data: str) -> tuple[str, str]:
    """(user, password) from auth-basic Cred Data; DecodeError if it is not base64 of 'user:password'."""
    try:
        decoded = base64.b64decode(data.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("auth-basic credential is not base64 UTF-8 text") from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise DecodeError("auth-basic credential has no ':' between user and password")
    return user, password


def verify_basic(data: str, user: str, password: str) -> bool:
    return _same(data.strip(), basic_credential(user, password))


def _user_key(user: str, password: str, h: Callable[[bytes], hashlib._Hash]) -> bytes:
    return _b64(h(f"{user}:{password}".encode()).digest())


def md5_digest(user: str, password: str, nonce: bytes) -> str:
    """Cred Data for syncml:auth-md5: B64(H(B64(H(user ":" password)) ":" nonce))."""
    key = _user_key(user, password, hashlib.md5)
    return _b64(hashlib.md5(key + b":" + nonce).digest()).decode("ascii")


def sha256_digest(user: str, password: str, nonce: bytes) -> str:
    """Cred Data for DM 1.3 syncml:auth-SHA256: the auth-md5 construction with H = SHA-256 [P: the
    DM 1.3 Security text was not reachable; README "How DM is read here"]."""
    key = _user_key(user, password, hashlib.sha256)
    return _b64(hashlib.sha256(key + b":" + nonce).digest()).decode("ascii")


def verify_sha256(data: str, user: str, password: str, nonce: bytes | list[bytes]) -> bool:
    """True if `data` is the auth-SHA256 digest for any of the nonce readings (see nonce_candidates)."""
    nonces = nonce if isinstance(nonce, list) else [nonce]
    ok = False
    for candidate in nonces:  # no early exit, as verify_md5
        ok |= _same(data.strip(), sha256_digest(user, password, candidate))
    return ok


def digest_credential(scheme: str, user: str, password: str, nonce: bytes) -> str:
    """Cred Data of a nonce-based scheme: ``md5`` or ``sha256``."""
    return sha256_digest(user, password, nonce) if scheme == "sha256" else md5_digest(user, password, nonce)


def verify_digest(scheme: str, data: str, user: str, password: str, nonce: bytes | list[bytes]) -> bool:
    """verify_md5 or verify_sha256 by ``scheme``."""
    check = verify_sha256 if scheme == "sha256" else verify_md5
    return check(data, user, password, nonce)


def verify_md5(data: str, user: str, password: str, nonce: bytes | list[bytes]) -> bool:
    """True if `data` is the auth-md5 digest for any of the nonce readings (see nonce_candidates)."""
    nonces = nonce if isinstance(nonce, list) else [nonce]
    ok = False
    for candidate in nonces:  # no early exit: the time does not tell which reading matched
        ok |= _same(data.strip(), md5_digest(user, password, candidate))
    return ok


def hmac_mac(user: str, password: str, nonce: bytes, body: bytes, algorithm: str = "MD5") -> str:
    """mac for auth-MAC: B64(H(B64(H(user ":" password)) ":" nonce ":" B64(H(body))))."""
    h = _hash(algorithm)
    key = _user_key(user, password, h)
    return _b64(h(key + b":" + nonce + b":" + _b64(h(body).digest())).digest()).decode("ascii")


def hmac_header(user: str, password: str, nonce: bytes, body: bytes, algorithm: str = "MD5") -> str:
    """Value of the `x-syncml-hmac` HTTP header for a message body (XML or WBXML bytes as sent)."""
    mac = hmac_mac(user, password, nonce, body, algorithm)
    quoted = user.replace("\\", "\\\\").replace('"', '\\"')
    return f'algorithm={algorithm}, username="{quoted}", mac={mac}'


_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,"]*?)\s*(?:,|$)', re.DOTALL)


def parse_hmac_header(value: str) -> tuple[str, str, str]:
    """(algorithm, username, mac) from an `x-syncml-hmac` value; algorithm defaults to MD5.

    Tolerates any parameter order, case of the names, spaces and quoted or bare values (servers
    differ); refuses duplicates and missing username/mac with DecodeError.
    """
    params: dict[str, str] = {}
    pos = 0
    text = value.strip()
    while pos < len(text):
        m = _PARAM.match(text, pos)
        if m is None or m.end() == pos:
            raise DecodeError(f"malformed x-syncml-hmac header near {text[pos : pos + 30]!r}")
        key, raw = m.group(1).lower(), m.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1], flags=re.DOTALL)
        if key in params:
            raise DecodeError(f"x-syncml-hmac header repeats {key!r}")
        params[key] = raw
        pos = m.end()
    if "username" not in params or not params.get("mac"):
        raise DecodeError("x-syncml-hmac header needs username and mac")
    algorithm = params.get("algorithm") or "MD5"
    return algorithm, params["username"], params["mac"]


def verify_hmac(
    header_value: str, user: str, password: str, nonce: bytes | list[bytes], body: bytes
) -> bool:
    """True if the header names `user` and carries the right mac for `body` (any nonce reading).

    DecodeError for a malformed header, UnsupportedError for an algorithm other than MD5.
    """
    algorithm, username, mac = parse_hmac_header(header_value)
    _hash(algorithm)
    nonces = nonce if isinstance(nonce, list) else [nonce]
    ok = _same(username, user)
    matched = False
    for candidate in nonces:
        matched |= _same(mac, hmac_mac(user, password, candidate, body, algorithm))
    return ok and matched


def decode_nonce(value: str) -> bytes:
    """The nonce bytes a digest uses: the base64-decoded value, or the raw text if not base64."""
    return nonce_candidates(value)[0]


def nonce_candidates(value: str) -> list[bytes]:
    """Readings of a base64 nonce to try, in order: decoded bytes, then the string as sent.

    Why both: the spec hashes the decoded bytes, but some implementations (Android's fallback) hash
    the base64 text; a verifier that tries both interoperates with either.
    """
    text = value.strip()
    raw = text.encode("utf-8")
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return [raw]
    return [decoded] if decoded == raw else [decoded, raw]


def encode_nonce(nonce: bytes) -> str:
    """NextNonce / AAuthData text for nonce bytes."""
    return _b64(nonce).decode("ascii")
