"""Every transport keeps the contract of :mod:`emulator.transport.base`: checked by mypy, not at run
time (nothing imports this module; base.py cannot import the transports, which import it)."""

from __future__ import annotations

from emulator.transport.base import AsyncTransport, Transport
from emulator.transport.blocking import BlockingTransport
from emulator.transport.http import HttpTransport
from emulator.transport.link import BearerLink
from emulator.transport.outage import OutageTransport


def transports(pooled: HttpTransport, link: BearerLink, outage: OutageTransport,
               blocking: BlockingTransport) -> tuple[AsyncTransport, AsyncTransport, AsyncTransport, Transport]:
    """Each transport where its interface is expected: mypy refuses a signature that drifted."""
    return pooled, link, outage, blocking
