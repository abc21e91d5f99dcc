"""A device of the fleet taking a DM 1.3 sessionless command message and POSTing its report.

Why here: the message reaches the device over any notification channel (the fleet's listener today,
a push binding tomorrow: they all call :meth:`Fleet.receive_notification` with the protocol
:data:`~emulator.transport.listener.SESSIONLESS`), the commands run on its tree at once, and the
report goes out over its current bearer like any request it makes outside a session, in the traffic
log. The rules of the message are in :mod:`emulator.protocol.syncml.sessionless`.

The report goes to the account's ``<DMAcc entry>/Ext/ReportURI`` when the server set one, else to
``<origin of the account's server URI>/dm13/report/<ServerID>`` [P].
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlsplit

from emulator.errors import EmulatorError
from emulator.events import AlertRaised
from emulator.protocol.actions import HttpRequest, HttpResult
from emulator.protocol.syncml import sessionless as sl
from emulator.transport.listener import Delivery

if TYPE_CHECKING:
    from emulator.device.virtual import VirtualDevice
    from emulator.events import EventBus
    from emulator.mo.accounts import Account
    from emulator.protocol.values import DmProtocol


class Fleet(Protocol):
    """What of the fleet (:class:`emulator.fleet.fleet.Fleet`) a sessionless exchange uses."""

    bus: EventBus
    sessionless_guards: dict[str, sl.ReplayGuard]

    def track(self, task: asyncio.Task) -> None: ...

    async def fetch(self, dev: VirtualDevice, request: HttpRequest, account: Account, label: str,
                    summary: str, *, protocol: DmProtocol = "dm2") -> HttpResult: ...

REPORT_LIFETIME_S = 600
"""How long a report stays valid (its expiry, seconds after it is made)."""


def report_uri(dev: VirtualDevice, account: Account) -> str:
    """Where the device reports to the server of ``account`` (see the module doc)."""
    if account.path:
        leaf = f"{account.path}/Ext/ReportURI"
        value = dev.tree.value(leaf) if dev.tree.exists(leaf) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    parts = urlsplit(account.server_uri)
    return f"{parts.scheme}://{parts.netloc}{sl.REPORT_PATH}/{quote(account.server_id, safe='')}"


def take(dev: VirtualDevice, raw: bytes, guard: sl.ReplayGuard | None, now: float) -> tuple[Account, sl.Executed]:
    """The device's checks of one sessionless command message, then its commands run: the account of
    the server that sent it and what was done. EmulatorError with the HTTP status that says why
    not (403, 400, 413); nothing runs then. ``guard`` None: no clock and replay checks (``respond``)."""
    if dev.profile.dm_version != "1.3":
        raise EmulatorError(f"a DM {dev.profile.dm_version} device takes no sessionless command message (DM 1.3)",
                            status=403)
    try:
        env = sl.open_envelope(raw)
    except EmulatorError as exc:
        raise EmulatorError(f"malformed sessionless message: {exc}", status=exc.status) from None
    if env.kind != sl.KIND_COMMAND:
        raise EmulatorError("a device takes sessionless command messages, not reports", status=400)
    account = next((a for a in dev.accounts("dm12") if env.sender in (a.server_id, a.server_user)), None)
    if account is None or not sl.verify(env, account.server_user or account.server_id, account.server_secret):
        raise EmulatorError(f"sessionless message from {env.sender!r} does not verify with any DM 1.x account",
                            status=403)
    stale = guard.refusal(env, now) if guard is not None else ""
    if stale:
        raise EmulatorError(f"sessionless message {stale}", status=403)
    try:
        return account, sl.execute(dev.tree, env, account.server_id, dev_id=dev.id, server_uri=account.server_uri)
    except EmulatorError as exc:
        raise EmulatorError(f"sessionless message refused: {exc}", status=400) from None


def receive(fleet: Fleet, dev: VirtualDevice, raw: bytes, now: float | None = None) -> Delivery:
    """Check, run and answer one sessionless command message (a :data:`Delivery` says what became
    of it: 202 with the report's task, else the status and why). Nothing runs unless the message
    is a DM 1.3 device's, well formed, signed by a DM 1.x server it has an account for, fresh and
    not a replay; the commands then run as that server, under its ACLs."""
    when = time.time() if now is None else now
    try:
        account, done = take(dev, raw, fleet.sessionless_guards.setdefault(dev.id, sl.ReplayGuard()), when)
    except EmulatorError as exc:
        fleet.bus.publish(AlertRaised(dev.id, "sessionless command refused", str(exc), {"status": exc.status}))
        return Delivery(None, str(exc), status=exc.status)
    lines = ", ".join(f"{cmd} {target} {code}" for cmd, target, code in done.statuses) or "no command"
    fleet.bus.publish(AlertRaised(dev.id, "sessionless command", f"{account.server_id}: {lines}",
                                  {"server_id": account.server_id}))
    task = asyncio.ensure_future(send_report(fleet, dev, account, done.report, when))
    fleet.track(task)
    return Delivery(task, started="executed")


async def send_report(fleet: Fleet, dev: VirtualDevice, account: Account, body: bytes,
                      now: float | None = None) -> HttpResult:
    """DM 1.3 sessionless reporting: ``body`` (a SyncML DM message) signed with the device's client
    credentials and POSTed to the server's reporting URI, no session opened. The server's answer."""
    when = int(time.time() if now is None else now)
    raw = sl.seal(sl.KIND_REPORT, dev.id, account.client_user or dev.id, account.client_secret, body,
                  msg_id=secrets.randbits(32), expiry=when + REPORT_LIFETIME_S)
    url = report_uri(dev, account)
    request = HttpRequest(f"report-{secrets.token_hex(4)}", "POST", url, raw, {"Content-Type": sl.MEDIA_SESSIONLESS})
    result = await fleet.fetch(dev, request, account, "sessionless report", f"report to {account.server_id}",
                               protocol="dm12")
    if not 200 <= result.status < 300:
        why = result.error or f"HTTP {result.status} {result.body[:200].decode('utf-8', 'replace').strip()}"
        fleet.bus.publish(AlertRaised(dev.id, "sessionless report refused", f"{url}: {why}",
                                      {"server_id": account.server_id}))
    return result
