"""What the attack tests share: a reference server on loopback, a raw HTTP client, real devices'
credentials. Nothing here is mocked: the server is the one ``dm-emulator server`` runs."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.protocol.dm2 import media
from emulator.protocol.dm2.client import basic_auth
from emulator.protocol.dm2.messages import ALERT_CLIENT_INITIATED, Alert, Initiation, encode_initiation
from emulator.server.app import RunningServer, start_server
from emulator.server.state import ServerState

PACKAGE1 = encode_initiation(Initiation([], [Alert(ALERT_CLIENT_INITIATED)]))


@contextlib.asynccontextmanager
async def serving(state: ServerState | None = None, **options: Any) -> AsyncIterator[RunningServer]:
    server = await start_server(state or ServerState(), **options)
    try:
        yield server
    finally:
        await server.stop()


def phone(index: int = 0, base: str = "http://127.0.0.1:9") -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone"), index, server=base)


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def own_auth(dev: VirtualDevice) -> str:
    """The Authorization header a device's DM 2.0 account sends."""
    header = basic_auth(dev.account(protocol="dm2"))
    assert header
    return header


def package1_headers(dev_id: str, authorization: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": media.INITIATION, media.HEADER_DEVID: dev_id}
    if authorization is not None:
        headers["Authorization"] = authorization
    return headers


async def post(url: str, body: bytes = b"", headers: dict[str, str] | None = None,
               method: str = "POST") -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
    """One request on a fresh connection: (status, text, headers)."""
    async with aiohttp.ClientSession() as http, http.request(method, url, data=body, headers=headers or {}) as r:
        return r.status, await r.text(), r.headers
