"""Plain rows the workspace hands out and takes in: frozen, so a reader cannot change the store by accident."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from emulator.protocol.values import Direction, DmProtocol

StoredOutcome = Literal["running", "completed", "failed", "aborted", "cut off"]
"""A stored session's state: running until it ends (a SessionOutcome); cut off when the process died in it."""
OUTCOMES: tuple[StoredOutcome, ...] = get_args(StoredOutcome)
EndOutcome = Literal["completed", "failed", "aborted", "cut off"]
"""What :meth:`Workspace.end_session` records (the CHECK of the sessions table allows no other)."""
END_OUTCOMES: tuple[EndOutcome, ...] = get_args(EndOutcome)


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """What the workspace keeps about a device besides its tree; ``data`` is any JSON object."""

    id: str
    profile: str
    identity_index: int
    protocol: str
    state: str = "stopped"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: int
    device_id: str
    protocol: DmProtocol
    server: str
    started: float
    ended: float | None
    outcome: StoredOutcome
    detail: str


@dataclass(frozen=True, slots=True)
class TrafficRecord:
    """One message, either way. ``id`` is None until the workspace has stored it."""

    session_id: int | None
    device_id: str
    direction: Direction
    ts: float
    content_type: str
    body: bytes
    summary: str = ""
    id: int | None = None
