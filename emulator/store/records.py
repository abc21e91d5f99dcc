"""Plain rows the workspace hands out and takes in: frozen, so a reader cannot change the store by accident."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("running", "completed", "failed", "cut off")
DIRECTIONS = ("out", "in")


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
    protocol: str
    server: str
    started: float
    ended: float | None
    outcome: str  # one of OUTCOMES
    detail: str


@dataclass(frozen=True, slots=True)
class TrafficRecord:
    """One message, either way. ``id`` is None until the workspace has stored it."""

    session_id: int | None
    device_id: str
    direction: str  # "out" (device -> server) or "in"
    ts: float
    content_type: str
    body: bytes
    summary: str = ""
    id: int | None = None
