"""What a protocol engine asks its driver to do, and what the driver feeds back.

The loop, written once in :mod:`emulator.protocol.flow` (which the asyncio and the blocking driver
both run), and by hand in tests:

    engine.start()                      # or engine.start(notification=...)
    while (action := engine.next_action()) is not None:
        match action:
            case SendMessage():    engine.receive_message(<response>) after POSTing the body
            case HttpRequest():    engine.receive_http(action.request_id, <HttpResult>)
            case AskUser():        engine.answer_user(action.request_id, <UserAnswer>)
            case OpenBrowser():    show it; nothing to feed back (DM 2.0 SHOW does not wait)
            case SessionDone():    stop
    (transport failures come back as HttpResult(0, error=...); engine.abort(reason) ends the session
    at the device's request, sending what the protocol allows for it)

Engines never block, never read clocks: time, when needed, comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from emulator.protocol.values import AskKind, SessionOutcome, UserOutcome


@dataclass(frozen=True, slots=True)
class SendMessage:
    """POST ``body`` to ``url``; the HTTP response body is the server's next message."""

    url: str
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    expect_reply: bool = True
    max_body: int | None = None  # the most the answer may hold (our MaxMsgSize); None: the transport's cap


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP exchange a command needs (DM 2.0 HGET/HPUT/HPOST/SUB pushes, DEFAULT fetches)."""

    request_id: str
    method: str
    url: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    max_body: int | None = None  # the most the answer may hold (MaxObjSize); None: the transport's cap


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in a plain dict of headers, whatever the case of either (HTTP
    header names are case-insensitive; the transports hand headers over as they came)."""
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


UI_DONE_PATH = "/ui/done"
"""Where a server-driven web flow ends (project convention, PROTOCOL 1.19 item 5): the reference
server redirects there after the last form, and the window and the headless answerer stop there."""


def is_ui_done(url: str) -> bool:
    """Whether ``url`` is the end of a web flow: its path ends in :data:`UI_DONE_PATH` (a query or a
    trailing ``/`` aside)."""
    return urlsplit(url).path.rstrip("/").endswith(UI_DONE_PATH)


@dataclass(frozen=True, slots=True)
class HttpResult:
    status: int  # 0 when no response came (connection refused, timeout, an answer over max_body)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    too_large: bool = False  # status 0 because the answer passed max_body: the transport stopped reading


@dataclass(frozen=True, slots=True)
class AskUser:
    """A question for the user (DM 1.2 alerts 1100-1104) the session waits for."""

    request_id: str
    kind: AskKind
    text: str
    choices: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)  # MINDT, MAXDT, DR, MAXLEN, IT, ET


@dataclass(frozen=True, slots=True)
class UserAnswer:
    """How the user answered (see :data:`~emulator.protocol.values.UserOutcome`)."""

    outcome: UserOutcome
    text: str = ""
    selected: tuple[int, ...] = ()  # 1-based choice numbers


@dataclass(frozen=True, slots=True)
class OpenBrowser:
    """A server-driven web page (DM 2.0 SHOW, DM 1.2 launchBrowserToURI)."""

    request_id: str
    url: str
    wait: bool = False  # DM 1.2 Hotspot-style Exec blocks until the flow ends (feed answer_user)


@dataclass(frozen=True, slots=True)
class SessionDone:
    """How the session ended; ``detail`` says why in the user's words."""

    outcome: SessionOutcome
    detail: str = ""
    status: int | None = None
    warnings: tuple[str, ...] = ()  # the server's tolerated protocol deviations (DM 1.2: syncml/quirks.py)


Action = SendMessage | HttpRequest | AskUser | OpenBrowser | SessionDone
