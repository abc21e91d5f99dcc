"""A real device against the real reference DM 1.2 server over loopback HTTP, through session.drive."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import EventBus, MessageLogged
from emulator.fleet.drive import SessionContext, drive
from emulator.protocol.actions import AskUser, OpenBrowser, UserAnswer
from emulator.protocol.flow import UiFlow, answered
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.client import SyncMLClient, check_notification
from emulator.protocol.syncml.useralerts import default_answer
from emulator.server.dm12 import Dm12Config, build_package0, setup_dm12
from emulator.server.state import ServerState
from emulator.transport.http import HttpTransport


class HeadlessUi:
    def __init__(self) -> None:
        self.asked: list[AskUser] = []

    def ask(self, session: SessionContext, action: AskUser) -> UiFlow:
        self.asked.append(action)
        return answered(default_answer(action))  # the demo confirm carries DR=1: yes

    def browse(self, session: SessionContext, action: OpenBrowser) -> UiFlow:
        return answered(UserAnswer("ok"))


async def _serve(config: Dm12Config) -> tuple[web.AppRunner, str, ServerState]:
    app = web.Application()
    state = ServerState()
    setup_dm12(app, state, config)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    state.base_url = base
    return runner, base, state


def _reboot(tree, request) -> int:
    tree.set_node("./DemoOps/LastReboot", request.data or "")
    return codes.OK


async def _session(profile: str, config: Dm12Config, *, sessions: int = 1, notify: bool = False):
    runner, base, state = await _serve(config)
    transport = HttpTransport()
    try:
        device = VirtualDevice(find_profile(profile), 0, server=base)
        device.tree.set_node("./DemoOps/Reboot", "", access=frozenset({"Get", "Exec"}))
        device.tree.on_exec("./DemoOps/Reboot", _reboot)
        ui = HeadlessUi()
        bus = EventBus()
        logged: list[MessageLogged] = []
        bus.subscribe(lambda e: logged.append(e) if isinstance(e, MessageLogged) else None)
        outcomes = []
        for n in range(sessions):
            account = device.account(protocol="dm12")
            p = device.profile
            kw = dict(dev_id=device.id, max_msg_size=p.max_msg_size, max_obj_size=p.max_obj_size,
                      wbxml=p.encoding == "wbxml", ui=p.ui.has_screen)
            if notify:
                raw = build_package0(state, device.id, session_id=0x1A2B + n)
                verdict, _ = check_notification(raw, account)
                assert verdict == "ok"
                engine = SyncMLClient.from_notification(raw, device.tree, account, **kw)
                assert engine.session_id == f"{0x1A2B + n:X}"
            else:
                engine = SyncMLClient(device.tree, account, session_id=str(100 + n), **kw)
            ctx = SessionContext(device_id=device.id, session_id=engine.session_id, protocol="dm12",
                                 server=base, bus=bus, transport=transport)
            done = await drive(engine, ctx, ui)
            engine.save_nonces()
            outcomes.append(done)
        return device, state, outcomes, ui, logged
    finally:
        await transport.aclose()
        await runner.cleanup()


def _check_script(device: VirtualDevice, state: ServerState, *, with_exec: bool, ui: bool = True) -> None:
    session = state.dm12_sessions[device.id][0]
    assert session.outcome == "completed", session.events
    final = session.script_statuses()
    steps = {s.step for s in final}
    assert {"reads", "writes", "atomic", "structure", "confirm", "large object"} <= steps
    assert ("exec" in steps) == with_exec
    # a device without a screen cannot confirm: 406 (PROTOCOL.md 2.6); everything else 200
    expected = {s: codes.OK for s in steps} | ({} if ui else {"confirm": codes.OPTIONAL_FEATURE_NOT_SUPPORTED})
    assert final and all(s.code == expected[s.step] for s in final), [s for s in final if s.code != codes.OK]
    # the large object went in chunks, each acknowledged with 213
    assert any(s.chunk and s.code == codes.CHUNK_ACCEPTED for s in session.statuses)
    # the tree changed as the script says
    tree = device.tree
    assert tree.value("./DemoApp/Greeting") == "hello, device"
    assert tree.value("./DemoApp/Settings/Volume") == "7"
    assert tree.value("./DemoApp/Settings/Brightness") == "80"
    blob = tree.value("./DemoApp/Blob")
    assert isinstance(blob, str) and len(blob) > device.profile.max_msg_size
    # results came back to the server
    assert session.results["./DevInfo/Mod"] == device.profile.devinfo["Mod"]
    assert session.results["./DevDetail/FwV"] == device.profile.devdetail["FwV"]
    assert "./DevInfo/DevId" in session.results


def test_smartphone_md5_session_runs_the_whole_script_and_a_second_session_needs_no_challenge():
    config = Dm12Config(exec_uri="./DemoOps/Reboot")
    device, state, outcomes, ui, logged = asyncio.run(_session("smartphone", config, sessions=2))
    assert [o.outcome for o in outcomes] == ["completed", "completed"], outcomes
    _check_script(device, state, with_exec=True)
    first, second = state.dm12_sessions[device.id]
    # first session: the server did not know the device's nonce, so it challenged once
    assert any(e.startswith("client challenged") for e in first.events)
    assert not any(e.startswith("client challenged") for e in second.events)
    assert device.tree.value("./DemoOps/LastReboot") == "demo"
    assert [a.kind for a in ui.asked] == ["confirm", "confirm"]
    # RespURI was followed: later messages went to the session URL the server gave
    assert any("?session=" in e.url for e in logged if e.direction == "out")


def test_wbxml_hmac_sensor_server_initiated_session():
    config = Dm12Config(auth="hmac", client_secret="sensor-secret", server_secret="sensor-server-secret")
    device, state, outcomes, ui, logged = asyncio.run(_session("nbiot-sensor", config, notify=True))
    assert [o.outcome for o in outcomes] == ["completed"], outcomes
    _check_script(device, state, with_exec=False, ui=False)
    assert ui.asked == []
    # every message both ways was WBXML and within the 2 KB the sensor accepts
    incoming = [e for e in logged if e.direction == "in"]
    assert incoming and all(e.content_type.startswith(codes.MEDIA_DM_WBXML) for e in incoming)
    assert all(len(e.body) <= device.profile.max_msg_size for e in incoming)


def test_malformed_messages_get_400_and_a_wrong_secret_ends_in_a_clear_failure():
    async def main():
        runner, base, state = await _serve(Dm12Config(client_secret="not-the-device-secret"))
        transport = HttpTransport()
        try:
            garbage = await transport.post(base + "/dm12", b"<SyncML><SyncHdr>", codes.MEDIA_DM_XML)
            wrong_type = await transport.post(base + "/dm12", b"{}", "application/json")
            device = VirtualDevice(find_profile("smartphone"), 0, server=base)
            engine = SyncMLClient(device.tree, device.account(protocol="dm12"), dev_id=device.id, session_id="7")
            ctx = SessionContext(device_id=device.id, session_id="7", protocol="dm12", server=base,
                                 bus=EventBus(), transport=transport)
            done = await drive(engine, ctx, HeadlessUi())
            return garbage, wrong_type, done, state, device
        finally:
            await transport.aclose()
            await runner.cleanup()

    garbage, wrong_type, done, state, device = asyncio.run(main())
    assert garbage.status == 400 and b"bad SyncML DM message" in garbage.body
    assert wrong_type.status == 400
    assert done.outcome == "failed" and "refused our credentials" in done.detail
    [session] = state.dm12_sessions[device.id]
    assert [e for e in session.events if e.startswith("client challenged")] == ["client challenged: 401"] * 3
    assert not device.tree.exists("./DemoApp")
