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
from emulator.protocol.syncml import auth, codes
from emulator.protocol.syncml.commands import Alert as Alert12
from emulator.protocol.syncml.commands import Cred, Item, Message, Replace, Status, SyncHdr
from emulator.protocol.syncml.message import build_message, content_type, parse_message
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
        return r.status, (await r.read()).decode("utf-8", "replace"), r.headers


def dm12_package(dev_id: str, session_id: str, msg_id: int, *, cred: Cred | None = None,
                 server_status: Status | None = None, target: str = "http://127.0.0.1/dm12",
                 user: str | None = None) -> bytes:
    """A hand-made DM 1.2 client message: Package 1 (Alert 1201 + DevInfo), with an optional Status
    for the server's SyncHdr (``server_status``)."""
    header = SyncHdr(session_id=session_id, msg_id=str(msg_id), target=target, source=dev_id,
                     source_name=user or dev_id, cred=cred, max_msg_size=65536)
    commands: list = [server_status] if server_status is not None else []
    commands += [Alert12(cmd_id="1", code=codes.ALERT_CLIENT_INITIATED_MGMT),
                 Replace(cmd_id="2", items=[Item(source="./DevInfo/DevId", data=dev_id)])]
    return build_message(Message(header=header, commands=commands, final=True), wbxml=False)


def dm12_md5(user: str, secret: str, nonce: bytes) -> Cred:
    return Cred(type=codes.AUTH_MD5, format="b64", data=auth.md5_digest(user, secret, nonce))


async def post_dm12(url: str, body: bytes) -> tuple[int, Message | str]:
    """POST one SyncML XML message: (HTTP status, the parsed answer or the error text)."""
    async with aiohttp.ClientSession() as http, http.post(url, data=body,
                                                          headers={"Content-Type": content_type(wbxml=False)}) as r:
        raw = await r.read()
        if r.status != 200:
            return r.status, raw.decode("utf-8", "replace")
        return r.status, parse_message(raw, r.headers["Content-Type"])


def header_status(message: Message) -> Status:
    return next(c for c in message.commands if isinstance(c, Status) and c.cmd_ref == "0")
