"""DM 1.3 devices against the reference server over real HTTP (README "DM 1.3" feature table).

A DM 1.3 profile speaks DM/1.3, authenticates both ways with auth-SHA256, reports the bearer and
roaming status of each session in Package 1 (from the active bearer: a switch changes the next
report), and its feature discovery node answers from the profile; a DM 1.2 device of the same server
gets none of it.
"""

from __future__ import annotations

import asyncio

from emulator.fleet.fleet import Fleet
from emulator.protocol.syncml import codes
from emulator.server.app import start_server
from emulator.server.state import ServerState


async def _sessions(profile: str, *, switch_to: str | None = None, runs: int = 1):
    server = await start_server(ServerState())
    fleet = Fleet(server=server.url)
    try:
        (dev,) = fleet.add(profile, 1)
        outcomes = []
        for n in range(runs):
            if switch_to is not None and n == 1:
                dev.set_bearer(switch_to, up=True)
            outcomes.append(await fleet.run_session(dev.id, "dm12"))
        return outcomes, server.state.dm12_sessions[dev.id], dev
    finally:
        await fleet.aclose()
        await server.stop()


def test_dm13_device_runs_a_whole_session_in_dm13_with_sha256_both_ways():
    (done,), (session,), dev = asyncio.run(_sessions("smartphone-dm13"))
    assert done.outcome == "completed", done.detail
    assert session.outcome == "completed"
    assert session.ver_proto == "DM/1.3"  # the server answered in the device's version
    assert session.scheme == "sha256" and session.server_scheme == "sha256"
    assert session.client_ok and session.server_accepted  # both sides proved themselves with SHA256
    assert session.devinfo["./DevInfo/DmV"] == "1.3"
    # the nonces for the next session were kept: a second session authenticates at once
    assert dev.tree.value("./DMAcc/demo-dm12/AppAuth/CLCRED/AAuthData") not in (None, b"\x00\x00\x00\x00")


def test_dm13_device_reports_its_session_bearer_and_roaming_from_the_active_bearer():
    (first, second), (s1, s2), _ = asyncio.run(_sessions("smartphone-dm13", switch_to="wlan0", runs=2))
    assert first.outcome == second.outcome == "completed"
    assert (s1.devinfo["./DevDetail/Ext/Session/Bearer"], s1.devinfo["./DevDetail/Ext/Session/Roaming"]) == \
        ("LTE", "true")
    assert (s2.devinfo["./DevDetail/Ext/Session/Bearer"], s2.devinfo["./DevDetail/Ext/Session/Roaming"]) == \
        ("WiFi", "false")


def test_dm12_device_of_the_same_server_gets_nothing_of_dm13():
    (done,), (session,), dev = asyncio.run(_sessions("smartphone"))
    assert done.outcome == "completed", done.detail
    assert session.ver_proto == "DM/1.2" and session.scheme == "md5"
    assert not any(k.startswith("./DevDetail/Ext/Session") for k in session.devinfo)
    assert not dev.tree.exists("./DevDetail/Ext/DMFeatures")


def test_reference_server_does_not_offer_sha256_to_a_dm12_client():
    """A DM/1.2 Package 1 presenting auth-SHA256 is challenged with md5, the DM 1.2 scheme."""
    import aiohttp

    from emulator.protocol.syncml import auth
    from emulator.protocol.syncml.commands import Alert, Cred, Message, Status, SyncHdr
    from emulator.protocol.syncml.message import build_message, content_type, parse_message

    cred = Cred(type=codes.AUTH_SHA256, format="b64",
                data=auth.sha256_digest("IMEI:354679130000001", "demo-client-secret", b"\0\0\0\0"))
    msg = Message(header=SyncHdr(session_id="9", msg_id="1", target="x", source="IMEI:354679130000001",
                                 cred=cred), commands=[Alert(cmd_id="1", code=codes.ALERT_CLIENT_INITIATED_MGMT)],
                  final=True)

    async def main():
        server = await start_server(ServerState())
        try:
            async with aiohttp.ClientSession() as http, http.post(
                    f"{server.url}/dm12", data=build_message(msg), headers={"Content-Type": content_type()}) as r:
                return parse_message(await r.read(), r.headers["Content-Type"])
        finally:
            await server.stop()

    reply = asyncio.run(main())
    head = next(c for c in reply.commands if isinstance(c, Status))
    assert head.code in (codes.INVALID_CREDENTIALS, codes.MISSING_CREDENTIALS)
    assert head.chal is not None and head.chal.type == codes.AUTH_MD5
    assert reply.header.ver_proto == "DM/1.2"
