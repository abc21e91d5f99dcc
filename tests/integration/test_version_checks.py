"""A SyncHdr naming a SyncML DTD or DM protocol version we do not speak is answered 505 / 513 and
nothing of its message runs: on the device (against an outside server) and on the reference server."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from outside_dm12 import OutsideDm12, Quirks, serve

from emulator.fleet.fleet import Fleet
from emulator.mo.diagmon import device_written
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Alert, Item, Message, Meta, Replace, Status, SyncHdr
from emulator.protocol.syncml.message import build_message, content_type, parse_message
from emulator.server.app import start_server
from emulator.server.state import ServerState

VERSIONS = [({"ver_dtd": "9.9"}, codes.DTD_VERSION_NOT_SUPPORTED, "VerDTD '9.9'"),
            ({"ver_proto": "DM/9.9"}, codes.PROTOCOL_VERSION_NOT_SUPPORTED, "VerProto 'DM/9.9'")]


@pytest.mark.parametrize(("quirk", "code", "words"), VERSIONS)
def test_device_answers_an_unknown_version_and_runs_nothing(quirk, code, words):
    replace = ("<Replace><CmdID>{cmd}</CmdID><Item><Target><LocURI>./DevDetail/Ext/Conf/Volume</LocURI></Target>"
               "<Data>9</Data></Item></Replace>")
    outside = OutsideDm12(Quirks(extra=[replace], **quirk))

    async def main():
        runner, url = await serve(outside)
        fleet = Fleet(server="http://127.0.0.1:1")
        try:
            (dev,) = fleet.add("smartphone", 1)
            dev.bearers, dev.bearer = {}, ""
            before = [(i.path, i.value) for i in dev.tree.walk(".") if not device_written(i.path)]
            done = await fleet.run_session(dev.id, "dm12", server_uri=url, server_auth="none")
            after = [(i.path, i.value) for i in dev.tree.walk(".")
                     if not i.path.endswith("AAuthData") and not device_written(i.path)]
            return done, [b for b in before if not b[0].endswith("AAuthData")], after
        finally:
            await fleet.aclose()
            await runner.cleanup()

    done, before, after = asyncio.run(main())
    assert done.outcome == "failed" and done.status == code
    assert words in done.detail
    answer = outside.received[1]
    statuses = [c for c in answer.commands if isinstance(c, Status)]
    assert statuses[0].cmd == "SyncHdr" and statuses[0].code == code
    assert {s.cmd: s.code for s in statuses[1:]} == {"Get": 215, "Replace": 215}
    assert not outside.results  # the Get did not run
    assert before == after  # neither did the Replace
    assert len(outside.received) == 2  # and the device said nothing more


@pytest.mark.parametrize(("quirk", "code", "words"), VERSIONS)
def test_reference_server_answers_an_unknown_version_and_opens_no_session(quirk, code, words):
    header = SyncHdr(session_id="7", msg_id="1", target="http://127.0.0.1/dm12", source="IMEI:001010000000017",
                     **quirk)
    message = Message(header=header, final=True, commands=[
        Alert(cmd_id="1", code=codes.ALERT_CLIENT_INITIATED_MGMT),
        Replace(cmd_id="2", items=[Item(source="./DevInfo/Mod", meta=Meta(format="chr"), data="X")]),
    ])

    async def main():
        server = await start_server(ServerState())
        try:
            async with aiohttp.ClientSession() as http, http.post(
                    f"{server.url}/dm12", data=build_message(message), headers={"Content-Type": content_type()}) as resp:
                return resp.status, await resp.read(), resp.headers["Content-Type"], server.state
        finally:
            await server.stop()

    status, body, media, state = asyncio.run(main())
    assert status == 200
    reply = parse_message(body, media)
    statuses = [c for c in reply.commands if isinstance(c, Status)]
    assert statuses[0].cmd == "SyncHdr" and statuses[0].code == code
    assert [s.code for s in statuses[1:]] == [215, 215]
    assert reply.final and all(isinstance(c, Status) for c in reply.commands)  # no management command follows
    (session,) = state.dm12_sessions["IMEI:001010000000017"]
    assert session.outcome.startswith("failed") and words in session.outcome
    assert not session.devinfo  # the DevInfo Replace was not read
