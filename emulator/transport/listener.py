"""One notification listener for the whole fleet: ``POST /notify/<DevID>`` with a raw Package#0.

It stands in for SMS / WAP push (PROTOCOL 2.2 "Bearers", 1.19 item 6): a server that can reach the
emulator posts the notification bytes here, the DevID in the path says which device gets them, and
the Content-Type says which protocol they are (``application/vnd.syncml.notification`` = DM 1.2,
``application/vnd.oma.dm.notification`` = DM 2.0, ``application/vnd.syncml.dm.sessionless`` = a DM 1.3
sessionless command message, :mod:`emulator.protocol.syncml.sessionless`). The listener hands them to a :data:`Deliver`
callback (the fleet's ``receive_notification``), where the device checks them exactly as it checks any
other Package#0; it knows nothing else of the fleet. So the HTTP answer only tells the sender what
the device did: 202 a session was started (or the sessionless commands ran), 403 the device ignored
the message (and why; 413 when it was over the size limit), 404 no such device, 415 not a type it takes. One server for thousands of devices: no port per device.

It listens on 127.0.0.1 unless the user asks for another address (anything that reaches it can make
devices open sessions), and says so in the log when it is not loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from emulator.protocol.dm2.media import NOTIFICATION as DM2_NOTIFICATION
from emulator.protocol.dm2.media import media_type
from emulator.protocol.syncml.codes import MEDIA_NOTIFICATION as DM12_NOTIFICATION
from emulator.protocol.syncml.sessionless import MEDIA_SESSIONLESS

log = logging.getLogger(__name__)

SESSIONLESS = "dm13-sessionless"
"""The "protocol" a channel hands a DM 1.3 sessionless command message over as."""
PROTOCOL_OF_TYPE = {DM12_NOTIFICATION: "dm12", DM2_NOTIFICATION: "dm2", MEDIA_SESSIONLESS: SESSIONLESS}
"""Content-Type of a Package#0 (or a sessionless command message) -> the protocol it belongs to."""
TYPE_OF_PROTOCOL = {protocol: ctype for ctype, protocol in PROTOCOL_OF_TYPE.items()}
MAX_PACKAGE0 = 64 << 10
"""Largest body taken (a Package#0 is tens of bytes; a WAP push fits a few SMS)."""
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a device did with a Package#0: ``session`` is the task of the session it started (None:
    it ignored the notification, ``why`` says why, ``status`` the HTTP status that says so); ``known``
    False: no such device. For a sessionless command message ``session`` is the report's task."""

    session: asyncio.Task[object] | None
    why: str = ""
    known: bool = True
    status: int = 403
    started: str = "started"


Deliver = Callable[[str, bytes, str], Delivery]
"""``deliver(dev_id, raw, protocol)``: how a notification channel (this listener, the push poller)
hands a Package#0 to a device; protocol is "dm12" or "dm2"."""


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, "localhost")."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class NotificationListener:
    """``await NotificationListener(deliver).start()``; ``.url`` is where servers post, ``.notify_url(dev)``
    the address of one device."""

    def __init__(self, deliver: Deliver, host: str = "127.0.0.1", port: int = 0) -> None:
        self.deliver = deliver
        self.host = host
        self.port = port
        self.url = ""
        self.accepted = 0
        self.rejected = 0
        self._runner: web.AppRunner | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def addresses(self) -> list[tuple[Any, ...]]:
        """The socket addresses it listens on (empty when stopped)."""
        return list(self._runner.addresses) if self._runner is not None else []

    def notify_url(self, dev_id: str) -> str:
        """Where a server posts the Package#0 of ``dev_id`` (DevIDs keep their ``:`` readable)."""
        return f"{self.url}/notify/{quote(dev_id, safe=':@')}"

    async def start(self) -> str:
        """Listen; returns the URL. OSError when the address cannot be bound."""
        if self._runner is not None:
            return self.url
        if not is_loopback(self.host):
            log.warning("notification listener on %s, not loopback: whoever reaches it can make the "
                        "fleet's devices open management sessions", self.host or "every address")
        app = web.Application(client_max_size=MAX_PACKAGE0)
        app.router.add_post("/notify/{dev}", self._handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host or None, self.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        shown = "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host
        self.url = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        dev_id = request.match_info["dev"]
        protocol = PROTOCOL_OF_TYPE.get(media_type(request.headers.get("Content-Type")))
        if protocol is None:
            return web.Response(status=415, text="a notification is application/vnd.syncml.notification "
                                                 "(DM 1.2) or application/vnd.oma.dm.notification (DM 2.0); "
                                                 f"a sessionless command message {MEDIA_SESSIONLESS}")
        delivery = self.deliver(dev_id, await request.read(), protocol)
        if not delivery.known:
            return web.Response(status=404, text=f"no device {dev_id!r} in this fleet")
        if delivery.session is None:
            self.rejected += 1
            return web.Response(status=delivery.status, text=f"notification ignored: {delivery.why or 'rejected'}")
        self.accepted += 1
        return web.json_response({"device": dev_id, "protocol": protocol, "session": delivery.started}, status=202)
