"""Converged devices over loopback HTTP, with several reference-server instances as different
management authorities: each manages only what it may, full delegation hides data, a bearer switch
during a session of a device behind NAT, two environments with their own identities, and a local
application notified of a server's change and refused outside its grant."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from emulator.device.profile import load_profile
from emulator.events import AlertRaised, EventBus, MessageLogged, SessionEnded, SessionStarted
from emulator.fleet.fleet import Fleet
from emulator.mo.delegation import ALERT_REFUSED
from emulator.protocol.dm2.client import basic_auth
from emulator.protocol.dm2.moser import MOSerialization
from emulator.protocol.syncml.commands import Add, Exec, Get, Item, Meta, Replace
from emulator.server.app import create_app
from emulator.server.authorities import learn_authorities
from emulator.server.dm12 import Dm12Config, setup_dm12
from emulator.server.state import ServerState

APP_MOID = "urn:oma:mo:ext-test-app:1.0"
DMACC2 = "urn:oma:mo:oma-dm-dmacc:1.2"
ALL = "Add={ids}&Delete={ids}&Exec={ids}&Get={ids}&Replace={ids}"
SETTING = "./Vendor/App/Setting"


async def _listen(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"


async def _dm12_server(server_id: str, steps: list[list]) -> tuple[web.AppRunner, str, ServerState]:
    """A reference DM 1.2 server playing ``server_id``, running ``steps`` (lists of commands)."""
    def script(config: Dm12Config):
        return [(f"step {i}", lambda s, cmds=cmds: [c() for c in cmds]) for i, cmds in enumerate(steps, 1)]

    state = ServerState()
    app = web.Application()
    setup_dm12(app, state, Dm12Config(server_id=server_id, client_secret=f"{server_id}-client",
                                      server_secret=f"{server_id}-server", script=script))
    runner, base = await _listen(app)
    state.base_url = base
    return runner, base, state


def _dm12_account(server_id: str, base: str, priority: int) -> str:
    return f"""
[[accounts]]
server_id = "{server_id}"
protocol = "dm12"
server_uri = "{base}/dm12"
auth = "md5"
client_secret = "{server_id}-client"
server_secret = "{server_id}-server"
nonce = "AAAAAA=="
priority = {priority}
"""


def _profile(tmp_path, name: str, body: str, *, protocols: str = '["dm12"]'):
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\ntitle = "{name}"\nprotocols = {protocols}\n'
                    '[devinfo]\nMan = "Acme"\nMod = "C1"\n' + body)
    return load_profile(path)


def _get(uri: str):
    return lambda: Get(cmd_id="0", items=[Item(target=uri)])


def _replace(uri: str, value: str):
    return lambda: Replace(cmd_id="0", meta=Meta(format="chr", type="text/plain"), items=[Item(target=uri, data=value)])


def _add(uri: str, value: str):
    return lambda: Add(cmd_id="0", meta=Meta(format="chr", type="text/plain"), items=[Item(target=uri, data=value)])


def _exec(uri: str, data: str):
    return lambda: Exec(cmd_id="0", items=[Item(target=uri, data=data)])


def _codes(state: ServerState) -> list[tuple[str, str, int]]:
    (sessions,) = state.dm12_sessions.values()
    return [(s.cmd, s.target, s.code) for s in sessions[-1].script_statuses()]


def test_three_dm12_authorities_each_manage_what_they_may_and_full_delegation_hides_data(tmp_path):
    async def main():
        a = await _dm12_server("opA", [
            [_get(SETTING), _get("./Vendor/Other/Note")],
            [_exec("./DMAcc/opA/Ext/Delegate", "delegate=opB&scope=./Vendor/App&kind=full&depth=0")],
            [_get(SETTING)],
        ])
        b = await _dm12_server("opB", [
            [_get(SETTING), _replace(SETTING, "set by B")],
            [_exec("./DMAcc/opB/Ext/Delegate", "delegate=opC&scope=./Vendor/App")],
        ])
        c = await _dm12_server("opC", [[_get(SETTING), _get("./Vendor/Other/Note")]])
        profile = _profile(tmp_path, "three-authorities",
                           _dm12_account("opA", a[1], 30) + _dm12_account("opB", b[1], 20)
                           + _dm12_account("opC", c[1], 10))
        bus = EventBus()
        refused: list[AlertRaised] = []
        bus.subscribe(lambda e: refused.append(e) if e.alert_type == ALERT_REFUSED else None, AlertRaised)
        fleet = Fleet(server=a[1], bus=bus)
        try:
            (dev,) = fleet.add(profile, 1)
            dev.tree.set_node("./Vendor/App", format="node", acl=ALL.format(ids="opA"))
            dev.tree.set_node(SETTING, "factory")
            dev.tree.set_node("./Vendor/Other", format="node", acl=ALL.format(ids="opC"))
            dev.tree.set_node("./Vendor/Other/Note", "C's own")
            before_b = await fleet.run_session(dev.id, "dm12", server_id="opB")
            b_before = _codes(b[2])
            done = [await fleet.run_session(dev.id, "dm12", server_id=s) for s in ("opA", "opB", "opC")]
        finally:
            await fleet.aclose()
            for runner, _, _ in (a, b, c):
                await runner.cleanup()
        return dev, before_b, b_before, done, a[2], b[2], c[2], refused

    dev, before_b, b_before, done, a, b, c, refused = asyncio.run(main())
    assert before_b.outcome == "completed" and all(d.outcome == "completed" for d in done), (before_b, done)
    # before any delegation opB may not touch opA's object
    assert b_before == [("Get", SETTING, 425), ("Replace", SETTING, 425),
                        ("Exec", "./DMAcc/opB/Ext/Delegate", 425)]
    # opA reads its own, not opC's; delegates fully; then cannot read what it gave away
    assert _codes(a) == [("Get", SETTING, 200), ("Get", "./Vendor/Other/Note", 425),
                         ("Exec", "./DMAcc/opA/Ext/Delegate", 200), ("Get", SETTING, 425)]
    # opB now manages it; its sub-delegation is refused (depth 0)
    assert _codes(b) == [("Get", SETTING, 200), ("Replace", SETTING, 200),
                         ("Exec", "./DMAcc/opB/Ext/Delegate", 425)]
    (b_session,) = b.dm12_sessions.values()
    assert b_session[-1].results[SETTING] == "factory"
    assert dev.tree.value(SETTING) == "set by B"
    # opC never saw opA's data, delegated or not, and keeps its own
    assert _codes(c) == [("Get", SETTING, 425), ("Get", "./Vendor/Other/Note", 200)]
    assert [r.data["server"] for r in refused] == ["opB", "opB"]
    assert "does not control" in refused[0].detail and "no further sub-delegation" in refused[1].detail


def _dm2_profile(tmp_path, name: str, accounts: list[tuple[str, str]], extra: str = ""):
    body = "".join(f"""
[[accounts]]
server_id = "{sid}"
protocol = "dm2"
server_uri = "{base}/dm2"
auth = "basic"
client_secret = "{sid}-secret"
perms = ["{DMACC2}", "{APP_MOID}"]
""" for sid, base in accounts)
    return _profile(tmp_path, name, extra + body, protocols='["dm2"]')


def _provision(profile, *states: ServerState) -> None:
    """The servers learn the profile's DM 2.0 accounts (as the reference server learns the shipped ones)."""
    for state in states:
        state.dm2_authorities = learn_authorities("dm2", [profile])


async def _dm2_server(server_id: str) -> tuple[web.AppRunner, str, ServerState]:
    state = ServerState(server_id=server_id, noti_secret=server_id.encode(), noti_data=server_id.encode(),
                        push_wait_s=2)
    runner, base = await _listen(create_app(state))
    state.base_url = base
    return runner, base, state


def test_dm2_authorities_own_their_instances_and_full_delegation_hides_one(tmp_path):
    find_all = f"{APP_MOID}/*/Url"

    async def main():
        x = await _dm2_server("dmX")
        y = await _dm2_server("dmY")
        x[2].put_repo("app", [MOSerialization(client_uri=f"{APP_MOID}//", mo_data={"App": {"Url": "https://x/"}})])
        y[2].put_repo("app", [MOSerialization(client_uri=f"{APP_MOID}//", mo_data={"App": {"Url": "https://y/"}})])
        profile = _dm2_profile(tmp_path, "two-dm2", [("dmX", x[1]), ("dmY", y[1])])
        _provision(profile, x[2], y[2])
        fleet = Fleet(server=x[1])
        try:
            (dev,) = fleet.add(profile, 1)
            x[2].set_script(dev.id, [[["HGET", "${base}/repo/app"]], [["GET", find_all]], [["END"]]])
            y[2].set_script(dev.id, [[["HGET", "${base}/repo/app"]], [["GET", find_all]], [["END"]]])
            first = [await fleet.run_session(dev.id, "dm2", server_id=s) for s in ("dmX", "dmY")]
            x[2].set_script(dev.id, [
                [["EXEC", f"{DMACC2}/dmX/Ext/Delegate?delegate=dmY&kind=full&scope=${{new:{APP_MOID}}}"]],
                [["GET", find_all]], [["END"]]])
            y[2].set_script(dev.id, [[["GET", find_all]], [["END"]]])
            second = [await fleet.run_session(dev.id, "dm2", server_id=s) for s in ("dmX", "dmY")]
        finally:
            await fleet.aclose()
            await x[0].cleanup()
            await y[0].cleanup()
        return dev, first + second, x[2], y[2]

    dev, done, x, y = asyncio.run(main())
    assert [d.outcome for d in done] == ["completed"] * 4, done
    xlog, ylog = x.device(dev.id), y.device(dev.id)
    # DM-HLF-011: each authority created and sees only its own instance of the same MO
    gets_x = xlog.status_of("GET")
    gets_y = ylog.status_of("GET")
    assert gets_x[0].sc == 200 and [m.mo_data for m in gets_x[0].mos] == [{"Url": "https://x/"}]
    assert gets_y[0].sc == 200 and [m.mo_data for m in gets_y[0].mos] == [{"Url": "https://y/"}]
    # opX delegated its instance fully: it no longer sees it, dmY sees both
    assert [s.sc for s in xlog.status_of("EXEC")] == [200]
    assert gets_x[1].sc == 404
    assert sorted(m.mo_data["Url"] for m in gets_y[1].mos) == ["https://x/", "https://y/"]


def test_a_bearer_switch_during_a_session_of_a_device_behind_nat(tmp_path):
    """Notified over the push channel (the device is behind NAT); the bearer changes twice during
    sessions: between two messages (the session goes on over the new bearer) and while a request is
    in flight (the session fails cleanly and runs again over the new bearer)."""
    script = [[["GET", "urn:oma:mo:oma-dm-devinfo:1.2//Mod"]], [["GET", "urn:oma:mo:oma-dm-devinfo:1.2//Man"]],
              [["END"]]]

    async def main():
        switch_in_flight = {"at": None}
        dev_holder = {}

        @web.middleware
        async def cut(request, handler):
            # the server holds the device's 2nd message while the device changes bearer
            response = await handler(request)
            n = switch_in_flight["at"]
            if request.method == "POST" and n is not None:
                switch_in_flight["count"] = switch_in_flight.get("count", 0) + 1
                if switch_in_flight["count"] == n:
                    dev_holder["dev"].set_bearer("dsl0", up=True)
            return response

        state = ServerState(server_id="nat-dm2", noti_secret=b"nat-dm2", noti_data=b"nat-dm2", push_wait_s=2)
        app = create_app(state)
        app.middlewares.append(cut)
        runner, base = await _listen(app)
        state.base_url = base
        profile = _profile(tmp_path, "nat-gateway", f"""
[[bearers]]
name = "dsl0"
type = "DSL"
nat = true
bandwidth_kbps = 50000
[[bearers]]
name = "lte0"
type = "LTE"
nat = true
[[accounts]]
server_id = "nat-dm2"
protocol = "dm2"
server_uri = "{base}/dm2"
auth = "basic"
client_secret = "nat-secret"
perms = ["urn:oma:mo:oma-dm-devinfo:1.2"]
""", protocols='["dm2"]')
        _provision(profile, state)
        bus = EventBus()
        events: list[object] = []
        bus.subscribe(events.append, SessionStarted, SessionEnded)
        fleet = Fleet(server=base, bus=bus)
        try:
            (dev,) = fleet.add(profile, 1)
            dev_holder["dev"] = dev
            assert dev.behind_nat and dev.bearer == "dsl0"
            state.set_script(dev.id, script)

            async def notified() -> SessionEnded:
                """The device long-polls the server (it cannot be reached behind NAT), then runs the session."""
                own = {"Authorization": basic_auth(dev.account(protocol="dm2")) or ""}
                poll = asyncio.ensure_future(fleet.transport.request("GET", f"{base}/push/{dev.id}?wait=2", headers=own))
                await asyncio.sleep(0)
                state.notify(dev.id)
                got = await poll
                assert got.status == 200
                task = fleet.deliver_notification(dev.id, got.body, "dm2")
                assert task is not None
                return await task

            # 1) between messages: on the first Package#2, the device moves to LTE
            def on_message(e: MessageLogged) -> None:
                if e.direction == "in" and dev.bearer == "dsl0" and e.content_type.startswith("application/vnd.oma.dm"):
                    dev.set_bearer("lte0", up=True)

            unsubscribe = bus.subscribe(on_message, MessageLogged)
            first = await notified()
            unsubscribe()
            # 2) in flight: the server answers the 2nd message after the device went back to DSL
            switch_in_flight["at"] = 2
            second = await notified()
            tree_state = dev.tree.value("./DM2/DevInfo/Bearer/lte0/State")
        finally:
            await fleet.aclose()
            await runner.cleanup()
        return dev, first, second, events, state, tree_state

    dev, first, second, events, state, tree_state = asyncio.run(main())
    ended = [e for e in events if isinstance(e, SessionEnded)]
    started = [e for e in events if isinstance(e, SessionStarted)]
    assert first.outcome == "completed", first
    assert ended[0].outcome == "completed" and ended[0].bearer == "dsl0→lte0"
    assert started[0].bearer == "dsl0" and started[0].reason == "notification"
    # the in-flight switch: a clean failure naming the cause, then the same session again over DSL
    assert ended[1].outcome == "failed" and "bearer changed from lte0 to dsl0" in ended[1].detail
    assert started[2].reason == "bearer change" and started[2].bearer == "dsl0"
    assert second.outcome == "completed" and ended[2].outcome == "completed" and ended[2].bearer == "dsl0"
    assert len(ended) == 3
    assert tree_state == "up"  # the tree shows the bearers (DM 2.0 DevInfo/Bearer)
    log = state.device(dev.id)
    assert [s.sc for s in log.status_of("GET")][-2:] == [200, 200]


def test_two_environments_each_with_its_own_identity_and_authority(tmp_path):
    async def main():
        work = await _dm12_server("work-mdm", [[
            _get("./OpEnv/work/Name"), _get("./OpEnv/host/Name"),
            _add("./OpEnv/work/Policy", "strict"),
            _add("./OpEnv/host/Policy", "open"),
        ]])
        home = await _dm2_server("home-dm2")
        profile = _profile(tmp_path, "dual-env", f"""
[[environments]]
name = "host"
kind = "host"
accounts = ["home-dm2"]
[[environments]]
name = "work"
kind = "guest"
own_identity = true
accounts = ["work-mdm"]
[[accounts]]
server_id = "home-dm2"
protocol = "dm2"
server_uri = "{home[1]}/dm2"
auth = "basic"
client_secret = "home-secret"
perms = ["urn:oma:mo:oma-dm-devinfo:1.2", "com.dmemulator/1.0/OpEnv"]
""" + _dm12_account("work-mdm", work[1], 20), protocols='["dm2", "dm12"]')
        _provision(profile, home[2])
        fleet = Fleet(server=home[1])
        try:
            (dev,) = fleet.add(profile, 1)
            home[2].set_script(dev.id, [[["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"]], [["END"]]])
            guest = await fleet.run_session(dev.id, "dm12")  # the work MDM's account: runs as "work"
            host = await fleet.run_session(dev.id, "dm2", environment="host")
        finally:
            await fleet.aclose()
            await work[0].cleanup()
            await home[0].cleanup()
        return dev, guest, host, work[2], home[2]

    dev, guest, host, work, home = asyncio.run(main())
    assert guest.outcome == host.outcome == "completed", (guest, host)
    env = dev.environment("work")
    assert env.own_identity and env.id.startswith("urn:uuid:") and env.id != dev.id
    # the work MDM saw (and authenticated) the work environment, not the device
    assert list(work.dm12_sessions) == [env.id]
    (session,) = work.dm12_sessions[env.id]
    assert session.devinfo["./DevInfo/DevId"] == env.id
    assert _codes(work) == [("Get", "./OpEnv/work/Name", 200), ("Get", "./OpEnv/host/Name", 425),
                            ("Add", "./OpEnv/work/Policy", 200), ("Add", "./OpEnv/host/Policy", 425)]
    assert dev.tree.value("./OpEnv/work/Policy") == "strict" and not dev.tree.exists("./OpEnv/host/Policy")
    # the host's server saw the device's own identity
    assert list(home.dm2_devices) == [dev.id]
    assert [env.name for env in dev.environments] == ["host", "work"]
    assert dev.environment("host").id == dev.id


def test_an_app_is_notified_of_a_servers_change_and_refused_outside_its_grant(tmp_path):
    async def main():
        a = await _dm12_server("opA", [[_replace(SETTING, "new from opA")]])
        profile = _profile(tmp_path, "app-phone", _dm12_account("opA", a[1], 10))
        bus = EventBus()
        alerts: list[AlertRaised] = []
        bus.subscribe(alerts.append, AlertRaised)
        fleet = Fleet(server=a[1], bus=bus)
        try:
            (dev,) = fleet.add(profile, 1)
            dev.tree.set_node("./Vendor/App", format="node", acl=ALL.format(ids="opA"))
            dev.tree.set_node(SETTING, "factory")
            dev.tree.set_node("./Vendor/Secret/Key", "k")
            app = dev.apps.register("settings-app", ["./Vendor/App"])
            heard = []
            app.subscribe("./Vendor/App", heard.append)
            assert app.read(SETTING) == "factory"
            done = await fleet.run_session(dev.id, "dm12", server_id="opA")
            try:
                app.read("./Vendor/Secret/Key")
            except Exception as exc:  # noqa: BLE001 - the type is checked below
                refusal = exc
        finally:
            await fleet.aclose()
            await a[0].cleanup()
        return dev, done, app, heard, refusal, alerts

    dev, done, app, heard, refusal, alerts = asyncio.run(main())
    assert done.outcome == "completed", done
    assert [(n.path, n.by, n.old, n.new) for n in heard] == [(SETTING, "opA", "factory", "new from opA")]
    assert app.read(SETTING) == "new from opA"
    assert type(refusal).__name__ == "AppAccessError" and refusal.status == 403
    assert [a.data["target"] for a in alerts if a.alert_type == "urn:dmemulator:app:refused"] == ["./Vendor/Secret/Key"]


def test_bandwidth_delays_each_body_by_its_size():
    """A bearer's bandwidth is the time a body spends on the link, both ways (8 bits per byte)."""
    from emulator.transport.http import HttpTransport, Shaping

    async def main():
        async def echo(request: web.Request) -> web.Response:
            return web.Response(body=b"r" * 2000)

        app = web.Application()
        app.router.add_post("/", echo)
        runner, base = await _listen(app)
        slept: list[float] = []

        async def record(seconds: float) -> None:
            slept.append(seconds)

        transport = HttpTransport(sleep=record)
        try:
            result = await transport.request("POST", base + "/", b"q" * 1000, shaping=Shaping(bandwidth_kbps=80))
            plain = await transport.request("POST", base + "/", b"q" * 1000)
        finally:
            await transport.aclose()
            await runner.cleanup()
        return result, plain, slept

    result, plain, slept = asyncio.run(main())
    assert result.status == plain.status == 200
    # 1000 bytes up at 80 kbit/s = 100 ms; 2000 bytes down = 200 ms; nothing without shaping
    assert slept == [0.1, 0.2]
    assert Shaping(bandwidth_kbps=0).transfer_ms(10**6) == 0.0
