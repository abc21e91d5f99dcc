"""The one event stream of the emulator.

The window, the traffic log, persistence and local applications all subscribe here; nothing polls a
device. Dispatch is synchronous and cheap: subscribers that need to batch (the Qt window flushes every
few tens of milliseconds) do so on their side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

from emulator.protocol.values import Direction, DmProtocol, SessionOutcome, UserOutcome
from emulator.tree.tree import TreeEvent


@dataclass(frozen=True, slots=True)
class Event:
    device_id: str


@dataclass(frozen=True, slots=True)
class TreeChanged(Event):
    change: TreeEvent


@dataclass(frozen=True, slots=True)
class DeviceStateChanged(Event):
    """state: idle, in session, waiting for UI, error."""

    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    session_id: str
    protocol: DmProtocol
    server: str
    bearer: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    session_id: str
    outcome: SessionOutcome
    detail: str = ""
    bearer: str = ""
    warnings: tuple[str, ...] = ()  # the server's protocol deviations the device tolerated


@dataclass(frozen=True, slots=True)
class MessageLogged(Event):
    """One message of a session, either way, as bytes on the wire plus a one-line summary."""

    session_id: str
    direction: Direction
    ts: float
    content_type: str
    body: bytes
    summary: str = ""
    rtt_ms: float | None = None
    url: str = ""


@dataclass(frozen=True, slots=True)
class RoundTrip(Event):
    """One HTTP round trip of a session (``kind`` "message" for its packages, "request" for the HTTP
    exchanges its commands make): what load tools count. ``status`` 0: no answer (see ``error``)."""

    session_id: str
    kind: str
    method: str
    url: str
    status: int
    rtt_ms: float
    size: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class UiRequested(Event):
    """A server asks for user interaction: a web page (SHOW, launchBrowserToURI) or a 1100-1104 alert."""

    session_id: str
    kind: str  # "web" or "alert"
    url: str = ""
    server_id: str = ""
    alert: object | None = None
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class UiFinished(Event):
    session_id: str
    request_id: str
    outcome: UserOutcome


@dataclass(frozen=True, slots=True)
class AlertRaised(Event):
    """A generic alert the device raised, or a notable thing a tester should see (bad notification)."""

    alert_type: str
    detail: str = ""
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TransferProgress(Event):
    """A device-side download (or upload) outside any session moved on: ``done`` of ``total`` bytes
    (``total`` 0 while unknown); ``resumed`` counts the HTTP Range resumptions after a cut so far;
    ``outcome`` is "" while it runs, then "completed" or the reason it stopped. Published with
    ``done`` 0 when it starts, after each piece, after each cut, and once at its end. What the
    window's progress bars follow (:mod:`emulator.transport.download`, :mod:`ui.device_ops`)."""

    transfer_id: str
    url: str
    done: int
    total: int = 0
    resumed: int = 0
    outcome: str = ""


@dataclass(frozen=True, slots=True)
class OperationChanged(Event):
    """A management operation the device runs after a session (a FUMO update, a SCOMO install...)
    entered ``state`` (the MO's own word, e.g. FUMO "30" downloading); ``result`` is the result code
    once it ended (0 while it runs). What scenario reports time states with (:mod:`emulator.mo.operations`)."""

    operation: str
    node: str
    state: str
    result: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RecordChanged(Event):
    """What a device keeps besides its tree changed (a delegation or revocation record, an app
    registration): the workspace writes it now, so a crash before the next session loses nothing."""

    what: str = ""


Subscriber = Callable[[Event], None]
_E = TypeVar("_E", bound=Event)


log = logging.getLogger(__name__)

MAX_ERRORS = 100
"""Subscriber errors a bus keeps (the newest); every one is logged as it happens."""


class EventBus:
    """Publish/subscribe by event class; a subscriber raising never stops the others, nor the
    session that published: its error is logged (with the traceback) and kept in ``errors``. The
    test suite makes such an error fail the test (``tests/conftest.py``)."""

    def __init__(self) -> None:
        self._subs: list[tuple[tuple[type[Event], ...], Subscriber]] = []
        self._wanted: dict[type[Event], bool] = {}  # see wants(); cleared whenever the subscribers change
        self.errors: list[BaseException] = []

    def subscribe(self, callback: Callable[[_E], None], *kinds: type[_E]) -> Callable[[], None]:
        """Call ``callback`` with every event of the ``kinds`` (all events when none are given)."""
        # the kinds filter in publish() hands ``callback`` only the _E it declared
        entry = (kinds or (Event,), cast(Subscriber, callback))
        self._subs.append(entry)
        self._wanted.clear()

        def unsubscribe() -> None:
            if entry in self._subs:
                self._subs.remove(entry)
                self._wanted.clear()

        return unsubscribe

    def wants(self, kind: type[Event]) -> bool:
        """Whether an event of ``kind`` would reach any subscriber now: a publisher of many events
        (every tree change of every device) skips building the ones nobody listens to."""
        wanted = self._wanted.get(kind)
        if wanted is None:
            wanted = self._wanted[kind] = any(issubclass(kind, kinds) for kinds, _ in self._subs)
        return wanted

    def publish(self, event: Event) -> None:
        for kinds, callback in tuple(self._subs):
            if isinstance(event, kinds):
                try:
                    callback(event)
                except Exception as exc:  # a broken subscriber must not break a session
                    self.subscriber_failed(callback, event, exc)

    def subscriber_failed(self, callback: Subscriber, event: Event, exc: Exception) -> None:
        """Log and keep the error of a subscriber that raised on ``event``."""
        log.error("event subscriber %r raised on %s of %s", callback, type(event).__name__, event.device_id,
                  exc_info=exc)
        self.errors.append(exc)
        del self.errors[:-MAX_ERRORS]
