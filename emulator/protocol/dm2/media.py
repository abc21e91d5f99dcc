"""DM 2.0 media types, header names and Accept negotiation (PROTOCOL 1.3, 1.19 items 3 and 6).

Kept in one place so the client, the reference server and the traffic log spell them the same way.
Names marked "project" are this project's choice where no public OMA text names a type.
"""

from __future__ import annotations

INITIATION = "application/vnd.oma.dm.initiation+json"
"""Package#1 body (client -> server)."""
REQUEST = "application/vnd.oma.dm.request+json"
"""Package#2 body (server -> client); also what the client sends in ``Accept``."""
RESPONSE = "application/vnd.oma.dm.response+json"
"""Package#3 body (client -> server)."""

MO_JSON = "application/vnd.oma.dm.mo+json"
"""MO serialization (HGET/HPUT/HPOST/SUB bodies). Project name (1.19 item 3)."""
MO_JSON_ACCEPTED: tuple[str, ...] = (MO_JSON, "application/json", "application/dmmo+json")
"""Types read as MO serialization: the project name, plain JSON and the PoC server's name."""

NOTIFICATION = "application/vnd.oma.dm.notification"
"""Package#0 bytes on the long-poll push channel. Project name (1.19 item 6)."""

HEADER_DEVID = "OMADM-DevID"
HEADER_ACCEPT = "OMADM-Accept"


def media_type(content_type: str | None) -> str:
    """The bare, lower-case ``type/subtype`` of a Content-Type value (parameters dropped).

    Media types are case-insensitive (RFC 9110), so every comparison goes through this.
    """
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def is_mo_json(content_type: str | None) -> bool:
    """True when a body of this Content-Type is read as MO serialization."""
    return media_type(content_type) in MO_JSON_ACCEPTED


def _parse_accept(header: str) -> list[tuple[str, float]]:
    """(media range, q) pairs; ranges with a malformed or out-of-range q are dropped (RFC 9110 12.4.2)."""
    ranges: list[tuple[str, float]] = []
    for element in header.split(","):
        parts = [p.strip() for p in element.split(";")]
        rng = parts[0].lower()
        if "/" not in rng:
            continue
        q = 1.0
        valid = True
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() != "q":
                continue
            try:
                q = float(value.strip())
            except ValueError:
                valid = False
                break
            if not 0.0 <= q <= 1.0:
                valid = False
                break
        if valid:
            ranges.append((rng, q))
    return ranges


def _quality(mtype: str, ranges: list[tuple[str, float]]) -> float:
    """q of the most specific range matching ``mtype`` (exact > type/* > */*); 0 when none matches."""
    major = mtype.split("/", 1)[0]
    best_specificity = -1
    best_q = 0.0
    for rng, q in ranges:
        if rng == mtype:
            specificity = 2
        elif rng == f"{major}/*":
            specificity = 1
        elif rng == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, best_q = specificity, q
    return best_q


def negotiate(accept_header: str | None, supported: list[str] | tuple[str, ...]) -> str | None:
    """Pick the type from ``supported`` (ordered by our preference) that the peer accepts best.

    No or empty header means "anything" (RFC 9110), so our first choice wins. Returns None when
    nothing is acceptable: the caller answers 406 (HTTP) or puts 406 in that command's status.
    Ties in q go to our order, so a peer sending ``*/*`` gets our preferred type.
    """
    if not supported:
        return None
    if accept_header is None or not accept_header.strip():
        return supported[0]
    ranges = _parse_accept(accept_header)
    best: str | None = None
    best_q = 0.0
    for candidate in supported:
        q = _quality(media_type(candidate), ranges)
        if q > best_q:
            best, best_q = candidate, q
    return best
