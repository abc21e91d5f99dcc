"""Who may open a DM 2.0 session at the reference server: HTTP Basic, HTTP Digest (RFC 7616) and
verified TLS client certificates (PROTOCOL.md 1.15: a DM 2.0 server must support all three).

Why so strict: DM is remote control of devices, and a session opened in a device's name reads and
sets that device's data. So every request to a session route must authenticate, and as the device it
names in ``OMADM-DevID``:

- the user must be the one the device's account gives that DevId (the profile's ``client_user``
  template filled with the identity behind the DevId, or the user of an account added with
  ``--accounts``). When no rule can tell (a DevId no profile makes, a UUID that cannot be traced
  back), the first user that authenticates for a DevId is bound to it and the DevId to that user,
  for the life of the server: a second device with the same shared secret cannot take it over;
- the secret must be one of that account's client secrets;
- a verified client certificate (mutual TLS) authenticates when its CN is the DevId.

Digest nonces are stateless (a timestamp signed with a key of this server) and live
:data:`DIGEST_NONCE_TTL` seconds; an older one gets a new challenge with ``stale=true``. Each nonce
count (``nc``) is accepted once, within a bounded memory of :data:`DIGEST_NONCES_KEPT` nonces.
Nothing here does network I/O: the handler passes the request's header, method, path and peer CN.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from emulator.protocol.dm2.digest import ALGORITHMS, Challenge, response, unquote
from emulator.server.authorities import Authority, SecretPair

DIGEST_NONCE_TTL = 300.0
"""Seconds a Digest nonce is accepted after it was issued (then: a new challenge, ``stale=true``)."""

DIGEST_NONCES_KEPT = 4096
"""Nonces whose last nonce count is remembered (against replays); the oldest is forgotten first."""

DIGEST_ALGORITHMS = tuple(ALGORITHMS)
"""RFC 7616 algorithms offered, the preferred first (those the emulator's own client speaks;
``-sess`` variants and ``auth-int`` are not offered)."""

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')
_MAX_HEADER = 4096


@dataclass
class Dm2Guard:
    """What the server remembers to authenticate DM 2.0 devices: the Digest key, used nonce counts,
    and the first-come bindings of user and DevId (per ServerID) described in the module doc."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    nonce_counts: OrderedDict[str, int] = field(default_factory=OrderedDict)
    user_of: dict[tuple[str, str], str] = field(default_factory=dict)  # (ServerID, DevID) -> user
    device_of: dict[tuple[str, str], str] = field(default_factory=dict)  # (ServerID, user) -> DevID

    # ----------------------------------------------------------------------------- challenges

    def new_nonce(self, realm: str, now: float | None = None) -> str:
        stamp = f"{int((time.time() if now is None else now) * 1000):x}"
        mac = hmac.new(self.key, f"{stamp}:{realm}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{stamp}.{mac}"

    def nonce_age(self, nonce: str, realm: str, now: float | None = None) -> float | None:
        """Seconds since this server issued ``nonce`` for ``realm``; None for one it did not issue."""
        stamp, _, mac = nonce.partition(".")
        want = hmac.new(self.key, f"{stamp}:{realm}".encode(), hashlib.sha256).hexdigest()[:32]
        if not mac or not hmac.compare_digest(mac, want):
            return None
        try:
            issued = int(stamp, 16) / 1000
        except ValueError:
            return None
        return (time.time() if now is None else now) - issued

    def challenges(self, realm: str, *, stale: bool = False) -> list[str]:
        """``WWW-Authenticate`` values of a 401: Digest (each algorithm) then Basic."""
        nonce = self.new_nonce(realm)
        out = [f'Digest realm="{realm}", qop="auth", algorithm={alg}, nonce="{nonce}"'
               + (", stale=true" if stale else "") for alg in DIGEST_ALGORITHMS]
        out.append(f'Basic realm="{realm}", charset="UTF-8"')
        return out

    # ----------------------------------------------------------------------------- verification

    def check(self, authority: Authority, dev_id: str, header: str | None, *, method: str, uri: str,
              peer_cn: str | None = None, realm: str | None = None) -> Verdict:
        """Whether this request may act for ``dev_id`` with ``authority`` (see the module doc).
        ``realm``: the Digest realm the route challenged with (default: the authority's ServerID;
        the push channel challenges with one realm for every authority)."""
        if peer_cn is not None and peer_cn == dev_id and not header:
            return Verdict(dev_id, None, "client certificate")
        if not header:
            return Verdict(None, None, "no credentials (HTTP Basic, Digest or a client certificate)")
        if len(header) > _MAX_HEADER:
            return Verdict(None, None, "Authorization header too long")
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() == "basic":
            return self._basic(authority, dev_id, rest)
        if scheme.lower() == "digest":
            return self._digest(authority, dev_id, rest, method=method, uri=uri, realm=realm)
        return Verdict(None, None, f"authentication scheme {scheme[:20]!r} is not accepted (Basic or Digest)")

    def _basic(self, authority: Authority, dev_id: str, token: str) -> Verdict:
        try:
            text = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return Verdict(None, None, "malformed Basic credentials")
        # DevIDs such as "IMEI:35..." put ':' in the user-id (RFC 7617 forbids it): try each split
        for at in (i for i, ch in enumerate(text) if ch == ":"):
            user, secret = text[:at], text[at + 1:]
            for pair in self._pairs(authority, dev_id, user):
                if hmac.compare_digest(pair.client.encode(), secret.encode()):
                    return self._accept(authority, dev_id, user, pair, "basic")
        return Verdict(None, None, "wrong user or secret for this DevID")

    def _digest(self, authority: Authority, dev_id: str, rest: str, *, method: str, uri: str,
                realm: str | None = None) -> Verdict:
        expected_realm = realm
        params = {m.group(1).lower(): unquote(m.group(2)) for m in _PARAM.finditer(rest)}
        realm, nonce, user = params.get("realm", ""), params.get("nonce", ""), params.get("username", "")
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in DIGEST_ALGORITHMS:
            return Verdict(None, None, f"Digest algorithm {algorithm[:20]!r} is not offered")
        if realm != (expected_realm or authority.server_id):
            return Verdict(None, None, f"Digest realm must be {expected_realm or authority.server_id!r}")
        if params.get("uri") != uri:
            return Verdict(None, None, "Digest uri does not match the request")
        age = self.nonce_age(nonce, realm)
        if age is None:
            return Verdict(None, None, "Digest nonce was not issued by this server")
        if age > DIGEST_NONCE_TTL or age < -1:
            return Verdict(None, None, "Digest nonce is stale", stale=True)
        qop, nc, cnonce = params.get("qop", ""), params.get("nc", ""), params.get("cnonce", "")
        if qop not in ("", "auth"):
            return Verdict(None, None, f"Digest qop {qop[:20]!r} is not offered (auth)")
        count = None
        if qop:
            if not re.fullmatch(r"[0-9a-fA-F]{8}", nc):
                return Verdict(None, None, "Digest nc is not 8 hex digits")
            count = int(nc, 16)

        challenge = Challenge(realm, nonce, algorithm, (qop,) if qop else ())
        for pair in self._pairs(authority, dev_id, user):  # the client's formula, computed again
            want = response(challenge, user, pair.client, method=method, uri=uri, nc=count or 0, cnonce=cnonce)
            if hmac.compare_digest(want, params.get("response", "").lower()):
                if count is not None and not self._fresh_count(nonce, count):
                    return Verdict(None, None, "Digest nonce count replayed")
                return self._accept(authority, dev_id, user, pair, "digest")
        return Verdict(None, None, "wrong user or secret for this DevID")

    def _pairs(self, authority: Authority, dev_id: str, user: str) -> list[SecretPair]:
        """The pairs ``user`` may authenticate ``dev_id`` with (see the module doc)."""
        if not user:
            return []
        expected = authority.expected(dev_id)
        if expected is not None:
            return [pair for name, pair in expected if name == user]
        key = authority.server_id
        bound_user = self.user_of.get((key, dev_id))
        bound_dev = self.device_of.get((key, user))
        if (bound_user is not None and bound_user != user) or (bound_dev is not None and bound_dev != dev_id):
            return []
        return authority.candidates(dev_id=dev_id)

    def _accept(self, authority: Authority, dev_id: str, user: str, pair: SecretPair, how: str) -> Verdict:
        if authority.expected(dev_id) is None:
            self.user_of[(authority.server_id, dev_id)] = user
            self.device_of[(authority.server_id, user)] = dev_id
        return Verdict(user, pair, how)

    def _fresh_count(self, nonce: str, count: int) -> bool:
        last = self.nonce_counts.get(nonce)
        if last is not None and count <= last:
            return False
        self.nonce_counts[nonce] = count
        self.nonce_counts.move_to_end(nonce)
        while len(self.nonce_counts) > DIGEST_NONCES_KEPT:
            self.nonce_counts.popitem(last=False)
        return True


@dataclass(frozen=True, slots=True)
class Verdict:
    """``user`` is None when refused; ``how`` says how it was accepted, or why not."""

    user: str | None
    pair: SecretPair | None
    how: str
    stale: bool = False
