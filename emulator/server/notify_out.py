"""The reference server reaching a device: Package#0 POSTed to the device's notification listener.

A device that can be reached (not behind NAT) gets its notification pushed to it, as an SMS / WAP
push would carry it (PROTOCOL 2.2 "Bearers", 1.19 item 6); the emulator's listener is
``POST <listener>/notify/<DevID>`` (:mod:`emulator.transport.listener`). A device behind NAT gets it
from the push queue instead (``ServerState.notify``). This module is the only place where the server
opens a connection itself; ``state.py`` stays free of network I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from emulator.errors import EmulatorError
from emulator.protocol.dm2.media import NOTIFICATION as DM2_NOTIFICATION
from emulator.protocol.syncml.codes import MEDIA_NOTIFICATION as DM12_NOTIFICATION
from emulator.protocol.values import DmProtocol, is_protocol

if TYPE_CHECKING:
    from emulator.server.state import ServerState

CONTENT_TYPES: dict[DmProtocol, str] = {"dm2": DM2_NOTIFICATION, "dm12": DM12_NOTIFICATION}
SEND_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of one Package#0 sent to a listener."""

    device: str
    protocol: DmProtocol
    to: str
    status: int  # the listener's HTTP status; 0 when it could not be reached
    detail: str  # its answer, or why it could not be reached
    notification_id: int | None = None  # DM 2.0 NOTIFICATION-ID

    @property
    def delivered(self) -> bool:
        """The device took it (the emulator's listener answers 202 when a session started)."""
        return 200 <= self.status < 300


def check_target(to: str) -> str:
    """``to`` when it is an http(s) URL with a host; EmulatorError (400) otherwise."""
    try:
        parts = urlsplit(to)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise EmulatorError(f"?to={to!r} is not an http:// or https:// URL of a notification listener", status=400)
    return to


def check_protocol(protocol: str) -> DmProtocol:
    """A protocol name from outside (a query, a form), checked: EmulatorError 400 if unknown."""
    if not is_protocol(protocol):
        raise EmulatorError(f"unknown protocol {protocol!r} (dm2 or dm12)", status=400)
    return protocol


async def post_package0(to: str, raw: bytes, protocol: DmProtocol, *,
                        timeout: float = SEND_TIMEOUT_S) -> tuple[int, str]:
    """POST the bytes with the protocol's notification type; (status, answer text) or (0, why not)."""
    return await post_message(to, raw, CONTENT_TYPES[protocol], timeout=timeout)


async def post_message(to: str, raw: bytes, ctype: str, *, timeout: float = SEND_TIMEOUT_S) -> tuple[int, str]:
    """POST bytes of type ``ctype`` to a device's listener (a Package 0, a DM 1.3 sessionless command
    message); (status, answer text) or (0, why not)."""
    check_target(to)
    headers = {"Content-Type": ctype}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as client, \
                client.post(to, data=raw, headers=headers, allow_redirects=False) as response:
            return response.status, (await response.read()).decode("utf-8", "replace")[:2000]
    except TimeoutError:
        return 0, f"the listener {to} did not answer within {timeout:g} s"
    except (aiohttp.ClientError, OSError) as exc:
        return 0, f"cannot reach the listener {to}: {exc}"


async def send_package0(state: ServerState, dev_id: str, to: str, protocol: DmProtocol = "dm2", *,
                        timeout: float = SEND_TIMEOUT_S, **options: Any) -> Sent:
    """Build ``dev_id``'s Package#0 on ``state`` and POST it to ``to``.

    DM 2.0 options: those of ``ServerState.notify`` (req_mos, server_id, now); DM 1.2: those of
    ``Dm12Server.build_package0`` (server_id, session_id, ui_mode, version). EmulatorError (400/404)
    for a bad target, protocol or authority, before anything is sent.
    """
    check_target(to)
    notification_id = None
    if protocol == "dm2":
        raw, notification_id = state.dm2_package0(dev_id, **options)
    else:
        if state.dm12 is None:
            raise EmulatorError("the DM 1.2 side of this server is not set up", status=404)
        raw = state.dm12.build_package0(dev_id, **options)
    status, detail = await post_package0(to, raw, protocol, timeout=timeout)
    return Sent(dev_id, protocol, to, status, detail, notification_id)
