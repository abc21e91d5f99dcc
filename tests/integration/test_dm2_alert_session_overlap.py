"""An EXEC result delivered in its own alerts-only session must not end the device's open session."""

from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import ClientSession

from emulator.protocol.dm2 import media
from emulator.server.app import start_server
from emulator.server.state import ServerState

DEV = "IMEI:490154203237518"


def test_alerts_only_session_while_a_session_is_open():
    async def main():
        state = ServerState()
        state.set_script(DEV, [[["GET", "urn:oma:mo:oma-dm-devinfo:1.2//FwV"]], [["END"]]])
        server = await start_server(state)
        base = server.url
        creds = "Basic " + base64.b64encode(b"u1:demo-client-secret").decode()  # a DevID no profile makes
        headers = {media.HEADER_DEVID: DEV, "Accept": media.REQUEST, "Authorization": creds}
        init = json.dumps({"Alert": [{"AlertType": "urn:oma:at:dm:2.0:ClientInitiatedMgmt"}]}).encode()
        alert = json.dumps({"Alert": [{"AlertType": "urn:oma:at:dm:2.0:ExecResult", "Data": {"sc": 200}}]}).encode()
        try:
            async with ClientSession() as http:
                first = await http.post(base + "/dm20", data=init,
                                        headers={**headers, "Content-Type": media.INITIATION})
                cmds = json.loads(await first.read())["CMD"]
                side = await http.post(base + "/dm20/alerts", data=alert,
                                       headers={**headers, "Content-Type": media.INITIATION})
                side_cmds = json.loads(await side.read())["CMD"]
                status = json.dumps({"Status": [{"sc": 200}] * len(cmds)}).encode()
                second = await http.post(base + "/dm20", data=status,
                                         headers={**headers, "Content-Type": media.RESPONSE})
                return cmds, side_cmds, second.status, json.loads(await second.read())
        finally:
            await server.stop()

    cmds, side_cmds, status, after = asyncio.run(main())
    assert cmds[0][0] == "GET"
    assert side_cmds == [["END"]]
    assert status == 200, after  # the main session is still open after the alerts-only one
    assert after["CMD"] == [["END"]]
