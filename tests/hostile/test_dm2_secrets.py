"""A hostile DM 2.0 server on loopback asks the device for its secrets in every way it can read: GET of
the leaves, of the DMAcc instance, wildcards, ``?cv`` and ``?nv`` forms, HPUT/HPOST to its own
upload URL, SUB notifications. No byte of a secret may reach it; a direct read answers 405 as DM 1.2
answers a Get of AAuthSecret."""

from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import web

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import EventBus
from emulator.fleet.drive import SessionContext, drive
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.dm2.client import DM2Client
from emulator.protocol.dm2.subscriptions import subscriptions_for
from emulator.transport.http import HttpTransport

DMACC = "urn:oma:mo:oma-dm-dmacc:1.2"
ACC = "./DM2/DMAcc/demo-dm2"
HTTP_SECRET = "http-secret-8c1f"
NOTI_SECRET = b"noti-secret-77d2"
KEY_SECRET = "client-secret-key-19ab"
LEAKS = (HTTP_SECRET.encode(), NOTI_SECRET, base64.b64encode(NOTI_SECRET), KEY_SECRET.encode())

DIRECT = [  # every ClientURI form that names a secret leaf itself: refused, 405
    f"{DMACC}/demo-dm2/Ext/HTTPAuth/Secret",
    f"{DMACC}/demo-dm2/Auth/Noti/Secret",
    f"{DMACC}/demo-dm2/Auth/ClientSecretKey",
    f"{DMACC}/*/Ext/HTTPAuth/Secret",
    f"{DMACC}/(x)/Auth/Noti/Secret?nv=(x)/SrvID:demo-dm2",
    f"{DMACC}/demo-dm2/Ext/HTTPAuth/Secret?cv=0",
]
INTERIOR = [  # reads of what holds them: the subtree without the secret leaves
    f"{DMACC}/demo-dm2/",
    f"{DMACC}/*/",
    f"{DMACC}/demo-dm2/Ext/HTTPAuth",
    f"{DMACC}/(x)/Ext?nv=(x)/SrvID:demo-dm2",
]


def _device(base: str) -> VirtualDevice:
    dev = VirtualDevice(find_profile("smartphone"), 0, server=base)
    dev.tree.set_node(f"{ACC}/Ext/HTTPAuth/Secret", HTTP_SECRET)
    dev.tree.set_node(f"{ACC}/Auth/Noti/Secret", NOTI_SECRET, format="bin")
    dev.tree.set_node(f"{ACC}/Auth/ClientSecretKey", KEY_SECRET)
    return dev


class Thief:
    """The hostile server: one scripted Package#2, then END; keeps every body the device sent."""

    def __init__(self, commands: list[list[str]]) -> None:
        self.commands = commands
        self.bodies: list[bytes] = []
        self.statuses: list[dict] = []

    async def dm(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        package = json.loads(body)
        if "Status" in package:
            self.statuses = self.statuses or package["Status"]  # the first session's, the attack
            return web.json_response({"CMD": [["END"]]})
        return web.json_response({"CMD": self.commands})

    async def upload(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return web.Response(status=204)


async def _session(dev: VirtualDevice, thief: Thief, base: str, transport: HttpTransport) -> object:
    account = dev.account(protocol="dm2")
    engine = DM2Client(dev.tree, account, dev_id=dev.id, subscriptions=subscriptions_for(dev.tree))
    ctx = SessionContext(device_id=dev.id, session_id="s", protocol="dm2", server=account.server_id,
                         bus=EventBus(), transport=transport)
    return await drive(engine, ctx, HeadlessUi())


def _attack(commands_for) -> tuple[Thief, VirtualDevice]:
    async def main():
        thief = Thief([])
        app = web.Application()
        app.router.add_post("/dm2", thief.dm)
        app.router.add_route("*", "/steal", thief.upload)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        thief.commands = commands_for(base)
        transport = HttpTransport(timeout=10)
        dev = _device(base)
        try:
            done = await _session(dev, thief, base, transport)
            assert done.outcome == "completed", done
            dev.tree.set_node(f"{ACC}/Ext/HTTPAuth/Secret", HTTP_SECRET + "-new")  # wakes the SUB
            thief.commands = []
            await _session(dev, thief, base, transport)  # its pushes go out before the session ends
        finally:
            await transport.aclose()
            await runner.cleanup()
        return thief, dev

    return asyncio.run(main())


def _no_leak(thief: Thief) -> None:
    for body in thief.bodies:
        for secret in LEAKS:
            assert secret not in body, (secret, body[:300])


def test_direct_reads_of_secret_leaves_are_refused_405():
    thief, _ = _attack(lambda base: [["GET", uri] for uri in DIRECT])
    assert [s["sc"] for s in thief.statuses] == [405] * len(DIRECT)
    _no_leak(thief)


def test_interior_reads_leave_the_secret_leaves_out():
    thief, _ = _attack(lambda base: [["GET", uri] for uri in INTERIOR])
    assert [s["sc"] for s in thief.statuses] == [200] * len(INTERIOR)
    shown = json.dumps(thief.statuses)
    assert "HTTPAuth" in shown and '"Name": "R5CW' in shown  # the rest of the account is there
    assert '"Secret"' not in shown and "ClientSecretKey" not in shown
    _no_leak(thief)


def test_uploads_and_subscriptions_carry_no_secret():
    def commands(base: str) -> list[list[str]]:
        return [["HPUT", base + "/steal", f"{DMACC}/demo-dm2/", f"{DMACC}/demo-dm2/Auth/Noti/Secret"],
                ["HPOST", base + "/steal", f"{DMACC}/*/"],
                ["HPUT", base + "/steal", f"{DMACC}/demo-dm2/Ext/HTTPAuth/Secret"],
                ["SUB", f"{DMACC}/demo-dm2/", base + "/steal"],
                ["SUB", f"{DMACC}/demo-dm2/Ext/HTTPAuth/Secret", base + "/steal"]]

    thief, _ = _attack(commands)
    assert [s["sc"] for s in thief.statuses] == [405, 200, 405, 200, 405]
    uploads = [b for b in thief.bodies if b.startswith(b"[")]
    assert len(uploads) == 2  # the HPOST, and one SUB push after the secret changed
    assert all(b"HTTPAuth" in b for b in uploads)
    _no_leak(thief)
