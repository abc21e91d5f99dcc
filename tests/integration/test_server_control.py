"""The reference server's one control surface (emulator.server.control), in Python and over /admin/.

The window and the admin API both drive the server through ServerControl; these tests pin what it
decides (the notification channel, what a script or a fault may be) and that /admin/ answers with
what it says, over real loopback HTTP.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from emulator.errors import EmulatorError
from emulator.protocol.dm2.notification import parse_notification
from emulator.server.app import start_server
from emulator.server.control import ServerControl
from emulator.server.dm2 import demo_script, script_for
from emulator.server.state import ServerState, pushed_media
from emulator.util.admin_token import admin_headers


def test_without_a_listener_a_dm2_notification_waits_on_the_push_channel():
    async def main():
        state = ServerState()
        notice = await ServerControl(state).notify("IMEI:1", "dm2", req_mos=True)
        return state, notice, state.push_queue("IMEI:1").get_nowait()

    state, notice, raw = asyncio.run(main())
    assert notice.channel == "push" and notice.sent is None and notice.delivered
    assert parse_notification(raw).notification_id == notice.notification_id
    assert state.device("IMEI:1").notifications_sent == [notice.notification_id]


def test_a_dm12_notification_on_the_push_channel_needs_the_dm12_side_and_nothing_is_queued_without_it():
    state = ServerState()
    with pytest.raises(EmulatorError, match="DM 1.2 side") as caught:
        asyncio.run(ServerControl(state).notify("IMEI:1", "dm12"))
    assert caught.value.status == 404
    assert not state.dm2_devices and state.push_queue("IMEI:1").empty()


@pytest.mark.parametrize("protocol, listener, status", [
    ("dm3", None, 400),
    ("dm2", "ftp://127.0.0.1/notify", 400),
    ("dm2", "not a url", 400),
])
def test_a_bad_notification_request_is_refused_before_anything_is_sent(protocol, listener, status):
    state = ServerState()
    with pytest.raises(EmulatorError) as caught:
        asyncio.run(ServerControl(state).notify("IMEI:1", protocol, listener=listener))
    assert caught.value.status == status
    assert not state.device("IMEI:1").notifications_sent


def test_an_unreachable_listener_is_reported_not_raised():
    async def main():
        return await ServerControl(ServerState()).notify("IMEI:1", "dm2", listener="http://127.0.0.1:9/notify/x")

    notice = asyncio.run(main())
    assert notice.channel == "listener" and not notice.delivered
    assert notice.sent is not None and notice.sent.status == 0 and "cannot reach" in notice.sent.detail


def test_package0_is_built_for_direct_hand_over_and_queued_nowhere():
    state = ServerState()
    raw = ServerControl(state).package0("IMEI:1", "dm2")
    assert parse_notification(raw).notification_id == state.device("IMEI:1").notifications_sent[-1]
    assert state.push_queue("IMEI:1").empty()


def test_scripts_are_checked_once_for_every_face():
    state = ServerState()
    control = ServerControl(state)
    assert control.set_script("IMEI:1", flow="plan") == demo_script("plan") == script_for(state, "IMEI:1")
    assert control.set_script("*", steps=[]) == [] and script_for(state, "IMEI:2") == []
    for bad in (None, [["GET"]], [[[]]], [[["GET", 1]]], "steps"):
        with pytest.raises(EmulatorError, match="steps must be") as caught:
            control.set_script("IMEI:1", steps=bad)
        assert caught.value.status == 400
    with pytest.raises(EmulatorError, match="unknown flow"):
        control.set_script("IMEI:1", flow="nope")
    assert script_for(state, "IMEI:1") == demo_script("plan")  # a refused script changes nothing


def test_faults_are_added_all_or_none():
    control = ServerControl(ServerState())
    with pytest.raises(EmulatorError):
        control.add_faults([{"kind": "drop"}, {"kind": "nope"}])
    assert control.faults()["faults"] == []
    with pytest.raises(EmulatorError):
        control.add_faults({"kind": "drop", "colour": "red"})
    assert [f["kind"] for f in control.add_faults([{"kind": "drop"}, {"kind": "slow"}])["faults"]] == ["drop", "slow"]
    assert control.clear_faults() == 2 and control.faults()["faults"] == []


def test_the_admin_api_answers_with_what_the_control_surface_says():
    async def main():
        server = await start_server(ServerState(push_wait_s=0.2))
        server.state.device_addresses.add("127.0.0.1")  # as if a device had authenticated from loopback
        base = server.url + "/admin"
        out = {}
        try:
            async with aiohttp.ClientSession(headers=admin_headers(server.state.admin_token)) as http:
                for name, method, url, body in (
                    ("push", "POST", f"{base}/notify/IMEI:1?req_mos=1", b""),
                    ("dm12 push", "POST", f"{base}/notify/IMEI:1?protocol=dm12", b""),
                    ("bad to", "POST", f"{base}/notify/IMEI:1?to=ftp://x", b""),
                    ("unreachable", "POST", f"{base}/notify/IMEI:1?to=http://127.0.0.1:9/n", b""),
                    ("script", "POST", f"{base}/script/IMEI:1", b'{"flow": "terms"}'),
                    ("bad script", "POST", f"{base}/script/IMEI:1", b'{"steps": 3}'),
                    ("not json", "POST", f"{base}/script/IMEI:1", b"{"),
                    ("devices", "GET", f"{base}/devices", b""),
                    ("device", "GET", f"{base}/devices/IMEI:1", b""),
                    ("unseen", "GET", f"{base}/devices/IMEI:2", b""),
                    ("fault", "POST", f"{base}/faults", b'{"kind": "drop"}'),
                    ("bad fault", "POST", f"{base}/faults", b'[{"kind": "nope"}]'),
                    ("clear", "DELETE", f"{base}/faults", b""),
                ):
                    async with http.request(method, url, data=body) as r:
                        out[name] = r.status, await r.text()
        finally:
            await server.stop()
        return server, out

    server, out = asyncio.run(main())
    status, text = out["push"]
    assert status == 200 and json.loads(text)["req_mos"] is True
    status, text = out["dm12 push"]  # DM 1.3's HTTP push binding: a DM 1.x Package 0 waits on the channel
    assert status == 200 and json.loads(text)["protocol"] == "dm12"
    queued = [server.state.push_queue("IMEI:1").get_nowait() for _ in range(2)]
    assert [pushed_media(q) for q in queued] == ["application/vnd.oma.dm.notification",
                                                 "application/vnd.syncml.notification"]
    assert out["bad to"][0] == 400
    status, text = out["unreachable"]
    assert status == 502 and json.loads(text)["delivered"] is False
    assert out["script"][0] == 200 and script_for(server.state, "IMEI:1") == demo_script("terms")
    assert out["bad script"][0] == 400 and out["not json"][0] == 400
    assert json.loads(out["devices"][1]) == {"devices": ["IMEI:1"], "sessions": []}
    assert json.loads(out["device"][1])["notification_ids"] == []
    assert out["unseen"][0] == 404
    assert out["fault"][0] == 200 and out["bad fault"][0] == 400
    assert json.loads(out["clear"][1]) == {"removed": 1}
