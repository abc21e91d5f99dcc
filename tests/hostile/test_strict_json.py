"""Duplicate keys in a DM 2.0 package: a hostile server hides a second ``CMD`` behind the first (Python
keeps the last, other parsers the first, so a log and the device would disagree on what ran). The
device refuses the package and ends the session with 400; the reference server answers 400 too."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientSession, web

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import DecodeError
from emulator.events import EventBus
from emulator.fleet.drive import SessionContext, drive
from emulator.fleet.engines import make_engine
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.dm2 import jsonsafe, media
from emulator.protocol.dm2.client import basic_auth
from emulator.server.app import start_server
from emulator.server.state import ServerState
from emulator.transport.http import HttpTransport

DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.2"
TWO_CMDS = ('{"CMD": [["GET", "' + DEVINFO + '/DevInfo/"]], '
            '"CMD": [["DELETE", "' + DEVINFO + '/DevInfo/"]]}').encode()


def test_the_device_refuses_a_package_with_a_repeated_key():
    async def main():
        async def dm(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=TWO_CMDS, content_type=media.REQUEST)

        app = web.Application()
        app.router.add_post("/dm2", dm)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        dev = VirtualDevice(find_profile("smartphone"), 0, server=base)
        account = dev.account(protocol="dm2")
        engine = make_engine(dev, account, "s1")
        transport = HttpTransport(timeout=10)
        ctx = SessionContext(device_id=dev.id, session_id="s1", protocol="dm2", server=account.server_id,
                             bus=EventBus(), transport=transport)
        try:
            return await drive(engine, ctx, HeadlessUi()), engine
        finally:
            await transport.aclose()
            await runner.cleanup()

    done, engine = asyncio.run(main())
    assert done.outcome == "failed" and done.status == 400
    assert "duplicate key 'CMD'" in done.detail
    assert engine.commands_run == 0  # neither the GET nor the hidden DELETE ran


def test_the_reference_server_answers_400_to_a_repeated_key():
    async def main():
        server = await start_server(ServerState())
        dev = VirtualDevice(find_profile("smartphone"), 0, server=server.url)
        account = dev.account(protocol="dm2")
        body = (b'{"MOS": [], "ALERT": [{"AlertType": "urn:oma:at:dm:2.0:ClientInitiatedMgmt"}], '
                b'"ALERT": []}')
        headers = {"Content-Type": media.INITIATION, media.HEADER_DEVID: dev.id,
                   "Authorization": basic_auth(account) or ""}
        try:
            async with ClientSession() as client, client.post(account.server_uri, data=body,
                                                               headers=headers) as response:
                return response.status, await response.text()
        finally:
            await server.runner.cleanup()

    status, text = asyncio.run(main())
    assert status == 400 and "duplicate key 'ALERT'" in text


@pytest.mark.parametrize("text,ok", [
    ('{"a": 1, "b": {"a": 2}}', True),  # the same key in different objects is fine
    ('{"a": 1, "a": 1}', False),  # even with the same value
    ('[{"x": 1}, {"y": 2, "y": 3}]', False),
    ('{"a": {"b": 1, "b": 2}}', False),
    ('{"": 1, "": 2}', False),
])
def test_one_key_once_per_object(text, ok):
    if ok:
        jsonsafe.loads(text)
    else:
        with pytest.raises(DecodeError, match="duplicate key"):
            jsonsafe.loads(text)
