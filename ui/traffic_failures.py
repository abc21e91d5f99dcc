"""Failed exchanges as rows of the traffic list, with their reason (no Qt here: the model colours them).

Why: a device pointed at a port where nothing listens logs only its outgoing Package#1; the reason
was in a tooltip and a status bar message that went. Every exchange that fails becomes a row of its
own, or marks the answer that failed, with the reason for the detail pane:

- no answer (connection refused, timeout, TLS set-up or refusal, a cut connection): the
  :class:`~emulator.events.RoundTrip` with status 0 becomes a :class:`FailedExchange` row;
- an HTTP error status (4xx/5xx): the answer's row (the server's body is worth reading) is marked,
  or, for a request the log has no message of (DM 2.0 HGET, a form page), a row is added;
- a protocol error (the server answered, the device could not go on) and any other session that did
  not complete: one row at the session's end, unless an exchange of it already failed (that row then
  also tells how the session ended);
- a session that could not run at all (:meth:`FailureTracker.not_run`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

from emulator.events import MessageLogged, RoundTrip, SessionEnded

MAX_SESSIONS = 10_000
"""Sessions whose end (outcome and reason) the tracker keeps for the detail pane (oldest forgotten first)."""
FAILED_MARK = "✖"


@dataclass(frozen=True, slots=True)
class FailedExchange:
    """A traffic row for what has no message of its own; shaped like a MessageLogged for the list's
    columns and search (no body, no content type)."""

    device_id: str
    session_id: str
    ts: float
    url: str
    summary: str
    reason: str
    method: str = ""
    status: int = 0
    rtt_ms: float | None = None
    direction: str = "failed"
    content_type: str = ""
    body: bytes = b""


Row = MessageLogged | FailedExchange


def http_reason(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def trip_reason(trip: RoundTrip) -> str:
    """Why a round trip failed, without the "METHOD url: " its error starts with (the row shows those)."""
    if trip.status:
        return f"the server answered {http_reason(trip.status)}"
    error = trip.error or "no answer"
    return error.removeprefix(f"{trip.method} {trip.url}: ")


class FailureTracker:
    """Turns the event stream into traffic rows: messages as they are, failures added or marked."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], dict[str, float]] = {}  # session -> url -> when it went out
        self._http_errors: dict[tuple[str, str, str], str] = {}  # an answer on its way that is an error
        self._failed: set[tuple[str, str]] = set()  # sessions with a failure row or marked answer
        self.outcomes: dict[tuple[str, str], str] = {}  # (device, session) -> how it ended, when not completed

    def feed(self, events: Iterable[object]) -> list[tuple[Row, str]]:
        """The rows ``events`` add, in order, each with its failure reason ("" for a good message)."""
        rows: list[tuple[Row, str]] = []
        for e in events:
            if isinstance(e, MessageLogged):
                rows.append((e, self._message(e)))
            elif isinstance(e, RoundTrip) and (e.status == 0 or e.status >= 400):
                row = self._trip(e)
                if row is not None:
                    rows.append(row)
            elif isinstance(e, SessionEnded):
                row = self._ended(e)
                if row is not None:
                    rows.append(row)
        return rows

    def _message(self, m: MessageLogged) -> str:
        key = (m.device_id, m.session_id)
        if m.direction == "out":
            self._open.setdefault(key, {})[m.url] = m.ts
            return ""
        self._open.get(key, {}).pop(m.url, None)
        reason = self._http_errors.pop((m.device_id, m.session_id, m.url), "")
        if reason:
            self._failed.add(key)
        return reason

    def _trip(self, t: RoundTrip) -> tuple[Row, str] | None:
        key = (t.device_id, t.session_id)
        reason = trip_reason(t)
        sent = self._open.get(key, {})
        if t.status and t.url in sent:  # its answer follows as a message: that row turns red
            self._http_errors[(t.device_id, t.session_id, t.url)] = reason
            return None
        went = sent.pop(t.url, None)
        ts = went + t.rtt_ms / 1000 if went is not None else time.time()
        self._failed.add(key)
        summary = f"{FAILED_MARK} {http_reason(t.status) if t.status else reason}"
        if went is None:  # a request of the session's own (HGET, a page): say which
            summary += f" ({t.method} {t.url})"
        return FailedExchange(t.device_id, t.session_id, ts, t.url, summary, reason, t.method, t.status,
                              t.rtt_ms), reason

    def _ended(self, e: SessionEnded) -> tuple[Row, str] | None:
        key = (e.device_id, e.session_id)
        self._open.pop(key, None)
        failed_before = key in self._failed
        self._failed.discard(key)
        if e.outcome == "completed":
            return None
        how = f"{e.outcome}" + (f": {e.detail}" if e.detail else "")
        self.outcomes[key] = how
        while len(self.outcomes) > MAX_SESSIONS:
            self.outcomes.pop(next(iter(self.outcomes)))
        if failed_before:
            return None
        reason = f"session {e.session_id} {how}"
        return FailedExchange(e.device_id, e.session_id, time.time(), "", f"{FAILED_MARK} {reason}", reason), reason

    def not_run(self, device_id: str, why: str) -> tuple[Row, str]:
        """A session that could not run at all (no exchange): its row."""
        reason = f"session could not run: {why}"
        return FailedExchange(device_id, "—", time.time(), "", f"{FAILED_MARK} {reason}", reason), reason

    def clear(self) -> None:
        self.outcomes.clear()
