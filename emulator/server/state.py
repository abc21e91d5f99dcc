"""What the reference server keeps in memory, shared by its protocol handlers.

One object per running server app. Each protocol module keeps its own part (set up by its
`setup_*` function) so the modules never reach into each other: DM 1.2 fills `dm12` and
`dm12_sessions`; other protocols add their own attributes the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ServerState:
    """`base_url` is where clients reach the server (e.g. http://127.0.0.1:8700), '' until known."""

    base_url: str = ""
    dm12: Any = None  # emulator.server.dm12.Dm12Server once setup_dm12 ran
    dm12_sessions: dict[str, list[Any]] = field(default_factory=dict)  # DevId -> its Dm12Sessions, oldest first
    extra: dict[str, Any] = field(default_factory=dict)
