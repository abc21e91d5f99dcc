"""The closed vocabularies the engines, the drivers, the store and the window share.

Each is a ``Literal`` so mypy refuses a misspelt or unknown value at the call that writes it, while
the values stay plain strings on the wire, in SQLite, in JSON reports and in the window. The tuples
beside them are for the few places that check a value from outside (a file, a command line, a row).
"""

from __future__ import annotations

from typing import Literal, TypeGuard, get_args

DmProtocol = Literal["dm12", "dm2"]
"""DM 1.2/1.3 (SyncML XML and WBXML) or DM 2.0 (JSON)."""
PROTOCOLS: tuple[DmProtocol, ...] = get_args(DmProtocol)

SessionOutcome = Literal["completed", "failed", "aborted"]
"""How a session ended (``SessionDone``, ``SessionEnded``): aborted is the server's Alert 1223, a
cancelled task or a stopped run."""
SESSION_OUTCOMES: tuple[SessionOutcome, ...] = get_args(SessionOutcome)

Direction = Literal["out", "in"]
"""A message's way on the wire: "out" is device -> server, "in" is server -> device."""
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

UserOutcome = Literal["ok", "no", "cancelled", "timeout", "failed"]
"""How a user interaction ended (``UserAnswer``, ``UiFinished``), for the window and headless runs
alike: ok (confirmed, entered, chosen, or the web flow reached its done page), no (declined),
cancelled (closed or cancelled), timeout (nobody answered in time), failed (the page could not be
driven: an HTTP error, no form, no done page)."""
USER_OUTCOMES: tuple[UserOutcome, ...] = get_args(UserOutcome)

AskKind = Literal["display", "confirm", "text", "single", "multiple"]
"""What a DM 1.2 user alert (1100-1104) asks: the AskUser kinds."""
ASK_KINDS: tuple[AskKind, ...] = get_args(AskKind)


def is_protocol(value: object) -> TypeGuard[DmProtocol]:
    return value in PROTOCOLS


def is_session_outcome(value: object) -> TypeGuard[SessionOutcome]:
    return value in SESSION_OUTCOMES


def is_direction(value: object) -> TypeGuard[Direction]:
    return value in DIRECTIONS
