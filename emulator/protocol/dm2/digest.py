"""HTTP Digest authentication (RFC 7616) for the DM 2.0 client: PROTOCOL.md 1.15, where a DM 2.0
server must support Digest beside Basic and client certificates, and a client may.

Sans-IO: the engine hands in the ``WWW-Authenticate`` values of a 401 and gets back the
``Authorization`` value for each request; the client nonce comes from a factory it is given (random
by default), so tests can fix it. ``qop=auth`` with SHA-256 or MD5 (the server's order of preference
when it offers several); ``auth-int`` and the ``-sess`` variants are not offered by the reference
server and not spoken here. After the first challenge the same server nonce is reused with a
growing nonce count (RFC 7616 3.4), so a session costs one 401, not one per message; a 401 with
``stale=true`` renews the nonce without counting as a refusal.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class _Hash(Protocol):
    def hexdigest(self) -> str: ...


ALGORITHMS: dict[str, Callable[[bytes], _Hash]] = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}
"""What the client can answer, the preferred first."""

MAX_CHALLENGE = 4096
"""Longest ``WWW-Authenticate`` text read, all challenges together (a longer one is not answered)."""

_ITEM = re.compile(r'\s*,?\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?')


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``Digest`` challenge: its parameters (names lower-cased, values unquoted)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False


def unquote(value: str) -> str:
    """A quoted-string of an HTTP auth parameter without its quotes and escapes (RFC 7230 3.2.6)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_challenges(values: str) -> list[Challenge]:
    """The Digest challenges (any algorithm we speak) in ``WWW-Authenticate`` text, in the order sent.

    ``values`` may hold several headers (one per line) and several challenges per header
    (``Digest ..., Basic ...``); unknown schemes and algorithms are skipped, not errors: the
    server may offer something we cannot answer next to something we can.
    """
    out: list[Challenge] = []
    if len(values) > MAX_CHALLENGE:
        return out  # a server flooding the header gets no answer at all: the 401 ends the session
    for line in values.splitlines():
        scheme: str | None = None
        params: dict[str, str] = {}
        for m in _ITEM.finditer(line):
            name, value = m.group(1), m.group(2)
            if value is None:  # a bare token starts the next challenge
                _add(out, scheme, params)
                scheme, params = name, {}
            else:
                params[name.lower()] = unquote(value)
        _add(out, scheme, params)
    return out


def _add(out: list[Challenge], scheme: str | None, params: dict[str, str]) -> None:
    if scheme is None or scheme.lower() != "digest" or "nonce" not in params or "realm" not in params:
        return
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in ALGORITHMS:
        return
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    if qop and "auth" not in qop:
        return  # auth-int only: we do not hash bodies
    out.append(Challenge(params["realm"], params["nonce"], algorithm, qop, params.get("opaque"),
                         params.get("stale", "").lower() == "true"))


def pick(challenges: list[Challenge]) -> Challenge | None:
    """The challenge to answer: the strongest algorithm offered."""
    for algorithm in ALGORITHMS:
        for c in challenges:
            if c.algorithm == algorithm:
                return c
    return None


def response(challenge: Challenge, user: str, secret: str, *, method: str, uri: str, nc: int, cnonce: str) -> str:
    """The ``response`` digest (RFC 7616 3.4.1) for one request."""
    hash_fn = ALGORITHMS[challenge.algorithm]

    def h(text: str) -> str:
        return hash_fn(text.encode("utf-8")).hexdigest()

    ha1 = h(f"{user}:{challenge.realm}:{secret}")
    ha2 = h(f"{method}:{uri}")
    if "auth" in challenge.qop:
        return h(f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return h(f"{ha1}:{challenge.nonce}:{ha2}")  # RFC 2069 style, for a server that names no qop


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class DigestClient:
    """One account's Digest state across the requests of a session: the challenge and the count."""

    user: str
    secret: str
    cnonce_factory: Callable[[], str] = field(default=lambda: secrets.token_hex(8))
    challenge: Challenge | None = None
    nc: int = 0

    def take(self, www_authenticate: str) -> Challenge | None:
        """Read a 401's challenges; the one now used, or None when there is none we can answer."""
        chosen = pick(parse_challenges(www_authenticate))
        if chosen is not None:
            self.challenge, self.nc = chosen, 0
        return chosen

    def authorization(self, method: str, uri: str) -> str | None:
        """The ``Authorization`` value for the next request, None before any challenge."""
        c = self.challenge
        if c is None:
            return None
        self.nc += 1
        cnonce = self.cnonce_factory()
        digest = response(c, self.user, self.secret, method=method, uri=uri, nc=self.nc, cnonce=cnonce)
        parts = [f"username={_quote(self.user)}", f"realm={_quote(c.realm)}", f"nonce={_quote(c.nonce)}",
                 f"uri={_quote(uri)}", f"algorithm={c.algorithm}", f"response={_quote(digest)}"]
        if "auth" in c.qop:
            parts += ["qop=auth", f"nc={self.nc:08x}", f"cnonce={_quote(cnonce)}"]
        if c.opaque is not None:
            parts.append(f"opaque={_quote(c.opaque)}")
        return "Digest " + ", ".join(parts)
