"""What the window remembers between runs (QSettings under one organisation and application name):
its layout, and the servers used before, which the next launch without the demo starts with and the
Server connection dialog offers."""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORG = "dm-emulator"
APP = "dm-emulator"
MAX_RECENT_SERVERS = 8


def settings() -> QSettings:
    return QSettings(ORG, APP)


def recent_servers(store: QSettings | None = None) -> list[str]:
    """Servers used before, newest first (QSettings hands back a one-item list as a plain string)."""
    value = (store or settings()).value("servers/recent") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def remember_servers(urls: list[str], current: str, store: QSettings | None = None) -> list[str]:
    """Put ``urls`` into the recent-servers list, newest first, after ``current`` (the fleet's server,
    which the next launch without the demo starts with); returns the new list."""
    s = store or settings()
    old = recent_servers(s)
    head = [current] if current else []
    new = head + [u for u in dict.fromkeys(urls) if u not in head]
    new += [u for u in old if u not in new]
    s.setValue("servers/recent", new[:MAX_RECENT_SERVERS])
    return new[:MAX_RECENT_SERVERS]
