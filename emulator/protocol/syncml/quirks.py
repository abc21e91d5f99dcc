"""Deviations of a DM 1.2 server from the protocol that the device tolerates, but reports.

Server developers use the emulator to find exactly these, so each is a warning of the session
(``SessionDone.warnings`` -> ``SessionEnded.warnings`` -> the report, the traffic view, JUnit) and,
in strict mode, the end of the session. What is checked (PROTOCOL.md section 2), all cheap:

- ``cmdid-reused``: a CmdID used twice in one message (2.3: unique in the message);
- ``status-order`` / ``header-order``: Status or SyncHdr children out of their DTD order (RepPro);
- ``auth-212``: 212 on our SyncHdr where 200 is due: our message carried no credentials, or the
  scheme is auth-MAC, whose SyncHdr status must be 200 (2.9);
- ``msgid-sequence``: server MsgIDs not 1, 2, 3 ... (2.3: start 1, +1 per message);
- ``no-header-status``: a message with no Status for our SyncHdr (2.3: the server answers every package);
- ``status-unknown-ref``: a Status for a command we never sent;
- ``results-status``: a Status 200 for our Results (2.4: not sent for a Results whose status would be 200);
- ``no-version``: a SyncHdr without VerDTD or VerProto.

Each kind is reported once per session with the number of times it happened, so the list is
bounded by the number of kinds (no server can flood a report).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("cmdid-reused", "status-order", "header-order", "auth-212", "msgid-sequence", "no-header-status",
         "status-unknown-ref", "results-status", "no-version")

STATUS_ORDER = ("CmdID", "MsgRef", "CmdRef", "Cmd", "TargetRef", "SourceRef", "Cred", "Chal", "Data", "Item")
"""The Status content model of the SyncML RepPro DTD."""
HEADER_ORDER = ("VerDTD", "VerProto", "SessionID", "MsgID", "Target", "Source", "RespURI", "NoResp", "Cred", "Meta")
"""The SyncHdr content model of the SyncML RepPro DTD."""


_RANKS: dict[tuple[str, ...], dict[str, int]] = {}
"""Each content model's name -> position, made at its first use (every Status of every message is judged)."""


def out_of_order(names: list[str], order: tuple[str, ...]) -> bool:
    """Whether known child names appear against ``order`` (unknown names are not judged here)."""
    rank = _RANKS.get(order)
    if rank is None:
        rank = _RANKS[order] = {name: i for i, name in enumerate(order)}
    last = -1
    for name in names:
        r = rank.get(name)
        if r is None:
            continue
        if r < last:
            return True
        last = r
    return False


@dataclass
class Deviations:
    """The warnings of one session: first description and count per kind, in the order first seen."""

    seen: dict[str, tuple[str, int]] = field(default_factory=dict)

    def add(self, kind: str, text: str) -> bool:
        """Record one; True when the kind is new in this session."""
        first, count = self.seen.get(kind, (text, 0))
        self.seen[kind] = (first, count + 1)
        return count == 0

    def texts(self) -> tuple[str, ...]:
        return tuple(text if n == 1 else f"{text} (and {n - 1} more time{'s' if n > 2 else ''} in this session)"
                     for text, n in self.seen.values())

    def __bool__(self) -> bool:
        return bool(self.seen)
