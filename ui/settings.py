"""What the window remembers between runs (QSettings under one organisation and application name):
its layout, and the servers the user chose in the Server connection dialog, one list per protocol
(a DM 1.2 URL is no use in the DM 2.0 list, nor the reverse), which that dialog offers.

Only servers the user chose are kept: not the demo server (a random loopback port that is gone with
the window), and not the servers devices merely had. A window started without the demo shows "No
server" until the user picks one; it does not guess from this list.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORG = "dm-emulator"
APP = "dm-emulator"
MAX_RECENT_SERVERS = 8
OLD_KEY = "servers/recent"  # before 2026-12: one list for both protocols, with demo ports; dropped


def settings() -> QSettings:
    return QSettings(ORG, APP)


def _key(protocol: str) -> str:
    if protocol not in ("dm12", "dm2"):
        raise ValueError(f"protocol must be dm12 or dm2, not {protocol!r}")
    return f"servers/recent-{protocol}"


def recent_servers(protocol: str, store: QSettings | None = None) -> list[str]:
    """Servers the user chose for ``protocol`` ("dm12" or "dm2"), newest first (QSettings hands back
    a one-item list as a plain string)."""
    value = (store or settings()).value(_key(protocol)) or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def remember_servers(protocol: str, urls: list[str], store: QSettings | None = None) -> list[str]:
    """Put ``urls`` (chosen by the user for ``protocol``) first in that protocol's list; returns it."""
    s = store or settings()
    new = [u for u in dict.fromkeys(u.strip() for u in urls) if u]
    new += [u for u in recent_servers(protocol, s) if u not in new]
    s.setValue(_key(protocol), new[:MAX_RECENT_SERVERS])
    s.remove(OLD_KEY)
    return new[:MAX_RECENT_SERVERS]
