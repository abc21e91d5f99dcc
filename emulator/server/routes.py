"""The reference server's URL paths, in one list every part of the server reads.

The protocol handlers mount these paths, the fault middleware recognises session requests by them
and the admin API lives under :data:`ADMIN`; keeping them here lets those modules agree on a path
without importing one another.
"""

from __future__ import annotations

from urllib.parse import quote

from emulator.protocol.values import DmProtocol

DM2_SESSION_PATHS = ("/dm20", "/dm2", "/dmclient/dm20")
"""Where DM 2.0 sessions are posted (``/dm2`` is the profiles' default SrvURI)."""
DM2_AUTHORITY_PREFIXES = ("/dm2", "/dm20")
"""``<prefix>/<ServerID>`` plays another DM 2.0 authority."""
ALERTS_SUFFIX = "/alerts"
"""Appended to a session path: the ServerURI the demo gives to EXEC, whose sessions only deliver alerts."""
PUSH_PREFIXES = ("", "/dm2", "/dm20")
"""``<prefix>/push/<DevID>``: the DM 2.0 push long-poll."""
DM12 = "/dm12"
"""DM 1.2/1.3 sessions (``/dm12/<ServerID>`` for another authority)."""
REPO = "/repo"
"""The data repository (HGET, HPUT/HPOST, SUB pushes)."""
UI = "/ui"
"""The web pages a SHOW (or launchBrowserToURI) opens; the flow ends at ``actions.UI_DONE_PATH``."""
DIAG = "/diag"
"""DiagMon log uploads (``/diag/upload/<token>``: :mod:`emulator.server.diag`)."""
ADMIN = "/admin"
"""The control surface over HTTP (:mod:`emulator.server.admin`)."""


def repo_url(base: str, key: str) -> str:
    """The URL a device fetches a repository item from (DevIDs keep their ``:`` readable)."""
    return f"{base}{REPO}/{quote(key, safe=':/@')}"


def session_protocol(path: str) -> DmProtocol | None:
    """"dm12" or "dm2" when ``path`` is a session route of that protocol; None otherwise."""
    if path == DM12 or path.startswith(DM12 + "/"):
        return "dm12"
    if any(path == p or path.startswith(p + "/") for p in DM2_SESSION_PATHS):
        return "dm2"
    return None
