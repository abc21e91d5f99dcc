"""Which URLs a server may send a session to: never down from https, never off http(s).

A DM server steers a device with URLs (DM 1.2 RespURI; DM 2.0 CONT, HGET, HPUT, HPOST, SUB, SHOW,
DEFAULT and EXEC ServerURIs). A session that runs over https carries credentials and management
data; a URL that moves it to plain http hands them to anyone on the path, and a ``file:`` or
``ftp:`` URL reaches what HTTP never should. One rule for every protocol and command.
"""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("http", "https")


def refused_url(session_url: str, url: str) -> str | None:
    """Why ``url``, given by the server of a session at ``session_url``, may not be used; None if it may."""
    try:
        scheme = urlsplit(url).scheme.lower()
        current = urlsplit(session_url).scheme.lower()
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if scheme not in SCHEMES:
        return f"{url!r} uses the scheme {scheme or '(none)'!r}; a server may send the device to http or https only"
    if current == "https" and scheme != "https":
        return f"{url} would move the https session to {scheme}: downgrade refused"
    return None
