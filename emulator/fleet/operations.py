"""The fleet's side of a managed object's operation (:mod:`emulator.mo.operations`): it holds the
clock and the network for the state machine.

Each :class:`~emulator.mo.operations.Action` the operation yields is done here: waits on the loop's
clock, downloads and requests over the device's bearer of the moment (a
:class:`~emulator.transport.link.BearerLink`, with the TLS settings of the account that executed:
:mod:`emulator.transport.download`), states published as ``OperationChanged``, download progress as
``TransferProgress``, and generic alerts sent in new sessions to the server that executed
(:func:`emulator.fleet.engines.job_sessions`). A session that does not complete is tried again
after :data:`ALERT_RETRY_S` seconds, at most :data:`ALERT_RETRIES` times: a device keeps its result
until a server has it.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any, Protocol

from emulator.events import OperationChanged, TransferProgress
from emulator.mo.behaviours import Job
from emulator.mo.operations import Enter, Fetch, OperationRun, Report, Send, Wait

if TYPE_CHECKING:
    from emulator.device.virtual import VirtualDevice
    from emulator.events import EventBus
    from emulator.protocol.actions import SessionDone
    from emulator.transport.http import HttpTransport


class Fleet(Protocol):
    """What an operation needs of the fleet that drives it (:class:`emulator.fleet.fleet.Fleet`)."""

    devices: dict[str, VirtualDevice]
    bus: EventBus
    transport: HttpTransport
    resume_wait_s: float
    alert_retry_s: float

    async def run_session(self, dev_id: str, protocol: Any = None, **options: Any) -> SessionDone: ...

ALERT_RETRIES = 3
"""Sessions tried again when the one carrying an operation's alerts did not complete."""
ALERT_RETRY_S = 30.0
"""Seconds between those tries."""

_transfers = itertools.count(1)


async def send_alerts(fleet: Fleet, dev: VirtualDevice, job: Job, *, final: bool = True) -> bool:
    """The sessions carrying a run's gathered alerts (and, once final, a DM 2.0 ExecResult); True
    when every one completed, each tried again as the module doc says."""
    from emulator.fleet.engines import job_sessions

    ok = True
    for options in job_sessions(dev, job, final=final):
        for attempt in range(ALERT_RETRIES + 1):
            if dev.id not in fleet.devices:
                return False
            done = await fleet.run_session(dev.id, **dict(options))
            if done.outcome == "completed":
                break
            if attempt == ALERT_RETRIES:
                ok = False
                break
            await asyncio.sleep(fleet.alert_retry_s)
    return ok


async def drive_operation(fleet: Fleet, dev: VirtualDevice, job: Job) -> None:
    """Run one operation to its end (see the module doc); a device removed meanwhile stops it."""
    from emulator.transport.download import download, send
    from emulator.transport.http import TlsConfig
    from emulator.transport.link import BearerLink

    run = job.run
    assert isinstance(run, OperationRun)
    account = next((a for a in dev.accounts() if a.server_id == job.server_id), None)
    tls = TlsConfig.for_account(account) if account is not None else TlsConfig()
    answer: object = None
    while dev.id in fleet.devices:
        action = run.next(answer)
        if action is None:
            break
        answer = None
        if isinstance(action, Wait):
            await asyncio.sleep(action.seconds)
        elif isinstance(action, Enter):
            fleet.bus.publish(OperationChanged(dev.id, run.kind, run.request.path, action.state, 0, action.detail))
        elif isinstance(action, Fetch):
            transfer = f"t{next(_transfers)}"
            url = action.url

            def progress(done: int, total: int, resumed: int, transfer: str = transfer, url: str = url) -> None:
                fleet.bus.publish(TransferProgress(dev.id, transfer, url, done, total, resumed))

            fleet.bus.publish(TransferProgress(dev.id, transfer, url, 0))  # a bar before the first piece
            fetched = await download(BearerLink(fleet.transport, dev), url, max_size=action.max_size,
                                     expect_size=action.expect_size, keep=action.keep,
                                     keep_types=action.keep_types, rate_kbps=action.rate_kbps, tls=tls,
                                     resume_wait_s=fleet.resume_wait_s, progress=progress)
            fleet.bus.publish(TransferProgress(dev.id, transfer, url, fetched.size, fetched.total, fetched.resumed,
                                               fetched.outcome))
            answer = fetched
        elif isinstance(action, Send):
            answer = await send(BearerLink(fleet.transport, dev), action.method, action.url, action.body,
                                action.content_type, tls=tls, max_answer=action.max_answer,
                                resume_wait_s=fleet.resume_wait_s)
        elif isinstance(action, Report):
            answer = await send_alerts(fleet, dev, job, final=False) if run.alerts else True
            run.alerts.clear()
    else:
        return  # removed (or restarted) meanwhile: its runs went with it
    fleet.bus.publish(OperationChanged(dev.id, run.kind, run.request.path, "ended", run.result))
    if run.alerts or run.request.reply_to:
        await send_alerts(fleet, dev, job)

