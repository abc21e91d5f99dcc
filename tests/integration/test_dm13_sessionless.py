"""DM 1.3 sessionless command DM and sessionless reporting DM over real HTTP (README "DM 1.3").

The reference server signs commands for a device (admin API), POSTs them to the fleet's listener,
the device runs them under its ACLs with the session engine's executor and POSTs a signed report to
the server's reporting URI, which the admin API shows. Hostile senders on both sides change nothing.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from emulator.fleet.fleet import Fleet
from emulator.protocol.syncml import sessionless as sl
from emulator.server.app import start_server
from emulator.server.notify_out import post_message
from emulator.server.sessionless import ReportLimits, SessionlessDesk
from emulator.server.state import ServerState
from emulator.util.admin_token import admin_headers

SERVER_ID, SERVER_SECRET = "demo-dm12", "demo-server-secret"


async def _settle(fleet: Fleet) -> None:
    while fleet._tasks:
        await asyncio.gather(*list(fleet._tasks), return_exceptions=True)


def _run(profile: str, body, *, limits: ReportLimits | None = None):
    async def main():
        state = ServerState()
        if limits is not None:
            state.sessionless = SessionlessDesk(limits=limits)
        server = await start_server(state)
        fleet = Fleet(server=server.url)
        try:
            (dev,) = fleet.add(profile, 1)
            listener = await fleet.start_listener()
            done = await fleet.run_session(dev.id, "dm12")  # the server learns the device (and its address)
            assert done.outcome == "completed", done.detail
            async with aiohttp.ClientSession(headers=admin_headers(state.admin_token)) as admin:
                result = await body(server, fleet, listener.notify_url(dev.id), dev, admin)
            await _settle(fleet)
            return result
        finally:
            await fleet.aclose()
            await server.stop()

    return asyncio.run(asyncio.wait_for(main(), 60))


def _command_body(dev_id: str, *, proto: str = "DM/1.3", pad: int = 0) -> bytes:
    return (f'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>{proto}</VerProto>'
            f'<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>{dev_id}</LocURI></Target>'
            f'<Source><LocURI>{SERVER_ID}</LocURI></Source></SyncHdr><SyncBody><Get><CmdID>1</CmdID><Item><Target>'
            f'<LocURI>./DevInfo/Mod</LocURI></Target></Item></Get><Final/></SyncBody></SyncML>' + " " * pad).encode()


def _sealed(dev_id: str, *, msg_id: int = 7, expiry: int | None = None, secret: str = SERVER_SECRET,
            sender: str = SERVER_ID, body: bytes | None = None) -> bytes:
    return sl.seal(sl.KIND_COMMAND, sender, sender, secret, body or _command_body(dev_id), msg_id=msg_id,
                   expiry=int(time.time()) + 300 if expiry is None else expiry)


def _exactly(dev_id: str, size: int, msg_id: int) -> bytes:
    bare = len(_sealed(dev_id))
    return _sealed(dev_id, msg_id=msg_id, body=_command_body(dev_id, pad=size - bare))


async def _post(url: str, raw: bytes) -> tuple[int, str]:
    return await post_message(url, raw, sl.MEDIA_SESSIONLESS)


def test_server_sends_sessionless_commands_the_device_runs_them_and_reports_to_the_reporting_uri():
    async def body(server, fleet, to, dev, admin):
        dev.tree.set_node("./Vendor", format="node")
        dev.tree.set_node("./Vendor/Locked", "keep", acl="Get=someone-else&Replace=someone-else")
        commands = [{"cmd": "Get", "target": "./DevInfo/Mod"},
                    {"cmd": "Add", "target": "./Vendor/Note", "data": "written without a session", "format": "chr"},
                    {"cmd": "Replace", "target": "./Vendor/Locked", "data": "changed"}]
        async with admin.post(f"{server.url}/admin/sessionless/{dev.id}", params={"to": to},
                              json={"commands": commands}) as r:
            sent = (r.status, await r.json())
        await _settle(fleet)
        async with admin.get(f"{server.url}/admin/sessionless/reports", params={"device": dev.id}) as r:
            reports = (await r.json())["reports"]
        return sent, reports, dev.tree.value("./Vendor/Note"), dev.tree.value("./Vendor/Locked")

    (status, sent), reports, note, locked = _run("smartphone-dm13", body)
    assert status == 200 and sent["delivered"] and sent["listener_status"] == 202, sent
    (report,) = reports
    assert report["session_id"] == sent["session_id"] and report["server_id"] == SERVER_ID
    codes = [(s["cmd"], s["code"]) for s in report["statuses"]]
    assert codes == [("SyncHdr", 200), ("Get", 200), ("Add", 200), ("Replace", 425)]  # the ACL said no
    assert report["results"] == [{"target": "./DevInfo/Mod", "data": "NW-X6 (DM 1.3)"}]
    assert note == "written without a session" and locked == "keep"


def test_dm13_device_refuses_forged_replayed_expired_and_oversize_messages_and_changes_nothing():
    async def body(server, fleet, to, dev, admin):
        before = dev.tree.value("./DevInfo/Mod")
        out = {
            "garbage": await _post(to, b"DMSL not really"),
            "forged": await _post(to, _sealed(dev.id, secret="guessed")),
            "stranger": await _post(to, _sealed(dev.id, sender="evil-server", secret="evil")),
            "expired": await _post(to, _sealed(dev.id, expiry=int(time.time()) - 1)),
            "too far": await _post(to, _sealed(dev.id, expiry=int(time.time()) + sl.MAX_LIFETIME_S + 60)),
            "other device": await _post(to, _sealed(dev.id, body=_command_body("IMEI:000000000000000"))),
            "dm12 body": await _post(to, _sealed(dev.id, msg_id=8, body=_command_body(dev.id, proto="DM/1.2"))),
            "at limit": await _post(to, _exactly(dev.id, sl.MAX_MESSAGE, 9)),
            "replay": await _post(to, _exactly(dev.id, sl.MAX_MESSAGE, 9)),
            "over limit": await _post(to, _exactly(dev.id, sl.MAX_MESSAGE + 1, 10)),
        }
        await _settle(fleet)
        async with admin.get(f"{server.url}/admin/sessionless/reports") as r:
            reports = (await r.json())["reports"]
        return out, reports, before, dev.tree.value("./DevInfo/Mod")

    out, reports, before, after = _run("smartphone-dm13", body)
    assert out["garbage"][0] == 400
    assert out["forged"][0] == 403 and "does not verify" in out["forged"][1]
    assert out["stranger"][0] == 403
    assert out["expired"][0] == 403 and "expired" in out["expired"][1]
    assert out["too far"][0] == 403 and "ahead" in out["too far"][1]
    assert out["other device"][0] == 400 and "addressed to" in out["other device"][1]
    assert out["dm12 body"][0] == 400 and "DM/1.3" in out["dm12 body"][1]
    assert out["at limit"][0] == 202  # exactly MAX_MESSAGE bytes: taken
    assert out["replay"][0] == 403 and "replayed" in out["replay"][1]
    assert out["over limit"][0] == 413
    assert len(reports) == 1 and before == after  # only the one taken message was answered


def test_dm12_device_refuses_a_sessionless_message_cleanly():
    async def body(server, fleet, to, dev, admin):
        async with admin.post(f"{server.url}/admin/sessionless/{dev.id}", params={"to": to},
                              json={"commands": [{"cmd": "Replace", "target": "./DevInfo/Mod", "data": "x"}]}) as r:
            answer = (r.status, await r.json())
        return answer, dev.tree.value("./DevInfo/Mod")

    (status, answer), mod = _run("smartphone", body)
    assert status == 502 and answer["listener_status"] == 403
    assert "DM 1.2 device takes no sessionless" in answer["detail"]
    assert mod != "x"


def _report(dev, *, msg_id: int, secret: str | None = None, expiry: int | None = None, pad: int = 0,
            session_id: str = "AB") -> bytes:
    body = (f'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.3</VerProto>'
            f'<SessionID>{session_id}</SessionID><MsgID>1</MsgID><Target><LocURI>{SERVER_ID}</LocURI></Target>'
            f'<Source><LocURI>{dev.id}</LocURI></Source></SyncHdr><SyncBody><Status><CmdID>1</CmdID>'
            f'<MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data></Status><Final/></SyncBody>'
            f'</SyncML>' + " " * pad).encode()
    account = dev.account(SERVER_ID, "dm12")
    return sl.seal(sl.KIND_REPORT, dev.id, account.client_user, account.client_secret if secret is None else secret,
                   body, msg_id=msg_id, expiry=int(time.time()) + 300 if expiry is None else expiry)


def test_reporting_uri_refuses_forged_replayed_oversize_and_flooding_reports_and_keeps_nothing_of_them():
    async def body(server, fleet, to, dev, admin):
        url = f"{server.url}{sl.REPORT_PATH}/{SERVER_ID}"
        bare = len(_report(dev, msg_id=1))
        out: dict[str, object] = {}
        async with aiohttp.ClientSession() as http:
            async def post(raw: bytes, ctype: str = sl.MEDIA_SESSIONLESS, to: str = url) -> tuple[int, str, str | None]:
                async with http.post(to, data=raw, headers={"Content-Type": ctype}) as r:
                    return r.status, await r.text(), r.headers.get("Retry-After")

            out["wrong type"] = await post(_report(dev, msg_id=1), "text/plain")
            out["forged"] = await post(_report(dev, msg_id=1, secret="guessed"))
            out["expired"] = await post(_report(dev, msg_id=2, expiry=int(time.time()) - 1))
            out["over limit"] = await post(_report(dev, msg_id=3, pad=sl.MAX_MESSAGE + 1 - bare))
            out["at limit"] = await post(_report(dev, msg_id=4, pad=sl.MAX_MESSAGE - bare))
            out["replay"] = await post(_report(dev, msg_id=4, pad=sl.MAX_MESSAGE - bare))
            out["unknown authority"] = await post(_report(dev, msg_id=5), to=f"{server.url}{sl.REPORT_PATH}/nobody")
            flood = [await post(_report(dev, msg_id=100 + n)) for n in range(3)]
            out["flood"] = [f[0] for f in flood]
            out["retry"] = flood[-1][2]
        async with admin.get(f"{server.url}/admin/sessionless/reports") as r:
            out["kept"] = (await r.json())["reports"]
        return out

    # per device: 3 verified reports a minute (expired, at limit, its replay); the flood gets 429
    out = _run("smartphone-dm13", body, limits=ReportLimits(per_device=3))
    assert out["wrong type"][0] == 415
    assert out["forged"][0] == 401
    assert out["expired"][0] == 403 and "expired" in out["expired"][1]
    assert out["over limit"][0] == 413
    assert out["at limit"][0] == 200
    assert out["replay"][0] == 403 and "replayed" in out["replay"][1]
    assert out["unknown authority"][0] == 404
    assert out["flood"] == [429, 429, 429] and out["retry"] == "60"
    assert [r["session_id"] for r in out["kept"]] == ["AB"]  # only the one at the limit


def test_reporting_uri_answers_a_flood_from_one_address_with_429_before_reading_it():
    async def body(server, fleet, to, dev, admin):
        url = f"{server.url}{sl.REPORT_PATH}/{SERVER_ID}"
        async with aiohttp.ClientSession() as http:
            statuses = []
            for n in range(6):
                async with http.post(url, data=_report(dev, msg_id=n + 1),
                                     headers={"Content-Type": sl.MEDIA_SESSIONLESS}) as r:
                    statuses.append(r.status)
        return statuses, server.state.sessionless.reports

    statuses, kept = _run("smartphone-dm13", body, limits=ReportLimits(per_address=4))
    assert statuses == [200, 200, 200, 200, 429, 429] and len(kept) == 4
