"""Local applications (DM-HLF-005, 016, 017, DM-SECARIZE-002, use case B.2): grants, reads, writes,
notifications from servers and other apps, refusals (logged and raised as alerts), and the DM 2.0
DEFAULT path against a real repository over loopback HTTP."""

from __future__ import annotations

import asyncio
import socket
from functools import partial

import pytest
from aiohttp import web

from emulator.device.apps import ALERT_APP_DEFAULT, ALERT_APP_REFUSED, AppAccessError, Grant
from emulator.device.profile import load_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from emulator.events import AlertRaised, EventBus, MessageLogged
from emulator.fleet.fleet import Fleet
from emulator.mo.instances import set_default
from emulator.protocol.dm2 import media
from emulator.protocol.dm2.executor import Actor, store
from emulator.protocol.dm2.moser import MOSerialization, encode_mos

MAIL = "urn:oma:mo:ext-test-mail:1.0"
VPN = "urn:oma:mo:ext-test-vpn:1.0"
DMACC2 = "urn:oma:mo:oma-dm-dmacc:1.2"


def _profile_text(server: str) -> str:
    return f"""
name = "app-host"
title = "A phone with local applications"
protocols = ["dm12", "dm2"]
[devinfo]
Man = "Acme"
Mod = "P1"
[[bearers]]
name = "wlan0"
type = "WiFi"
bandwidth_kbps = 100000
[[accounts]]
server_id = "op"
protocol = "dm2"
server_uri = "{server}/dm2"
auth = "basic"
client_secret = "s3cret"
perms = ["{DMACC2}", "{MAIL}", "{VPN}"]
[[accounts]]
server_id = "legacy"
protocol = "dm12"
auth = "none"
"""


@pytest.fixture
def make_dev(tmp_path):
    def make(server: str = "http://127.0.0.1:9") -> VirtualDevice:
        path = tmp_path / f"app-host-{len(list(tmp_path.iterdir()))}.toml"
        path.write_text(_profile_text(server))
        dev = VirtualDevice(load_profile(path), 0, server=server, bus=EventBus())
        dev.tree.set_node("./Vendor/Mail/Server", "imap.example.net", acl=None)
        dev.tree.set_node("./Vendor/Mail/Port", "993")
        dev.tree.set_node("./Vendor/Browser/Home", "https://start.example/")
        dev.tree.replace_prop("./Vendor/Mail", "ACL", "Get=legacy&Replace=legacy")
        return dev

    return make


def _alerts(dev: VirtualDevice) -> list[AlertRaised]:
    seen: list[AlertRaised] = []
    dev.bus.subscribe(seen.append, AlertRaised)
    return seen


def _new_mail_instance(dev: VirtualDevice, host: str) -> str:
    (uri,) = store(dev.tree, Actor("op", frozenset({MAIL})), [MOSerialization(
        client_uri=f"{MAIL}//", mo_data={"Mail": {"Host": host, "TLS": True}})], None)
    return uri


def test_an_app_reads_its_granted_settings(make_dev):
    dev = make_dev()
    app = dev.apps.register("mail", ["./Vendor/Mail"])
    assert app.read("./Vendor/Mail/Server") == "imap.example.net"
    assert app.read("./Vendor/Mail") == {"Server": "imap.example.net", "Port": "993"}
    uri = _new_mail_instance(dev, "mx.example.org")
    reader = dev.apps.register("mail-widget", [f"{MAIL}/*"])
    assert reader.read(f"{uri}Host") == "mx.example.org"
    assert reader.instances(MAIL) == [uri]
    assert reader.read(f"{MAIL}/*/Host") == {f"./DM2/ext-test-mail/{uri.split('/')[1]}/Host": "mx.example.org"}


def test_reads_outside_the_grant_are_refused_logged_and_alerted(make_dev):
    dev = make_dev()
    seen = _alerts(dev)
    app = dev.apps.register("mail", ["./Vendor/Mail"])
    for uri in ("./Vendor/Browser/Home", "./Vendor/Nothing", "./DevInfo/DevId", f"{MAIL}/*/Host"):
        with pytest.raises(AppAccessError) as e:
            app.read(uri)
        assert e.value.status == 403
    assert [r.target for r in dev.apps.refusals] == ["./Vendor/Browser/Home", "./Vendor/Nothing",
                                                     "./DevInfo/DevId", f"{MAIL}/*/Host"]
    # a missing node reads as refused, not "not found": an app cannot probe outside its grants
    assert "no such node" in dev.apps.refusals[1].reason
    assert [a.alert_type for a in seen] == [ALERT_APP_REFUSED] * 4
    assert seen[0].data == {"app": "mail", "operation": "read", "target": "./Vendor/Browser/Home"}


@pytest.mark.parametrize("grant", [".", "./DMAcc", "./DMAcc/legacy/AppAuth", "./DM2", f"{DMACC2}/op",
                                   f"{DMACC2}/*"])
def test_accounts_are_never_granted_to_apps(make_dev, grant):
    dev = make_dev()
    with pytest.raises(AppAccessError, match="credentials"):
        dev.apps.register("spy", [grant])
    assert "spy" not in dev.apps.apps and dev.apps.refusals[-1].operation == "register"


def test_writes_need_a_write_grant_and_notify_servers_side_listeners(make_dev):
    dev = make_dev()
    ro = dev.apps.register("viewer", ["./Vendor/Mail"])
    rw = dev.apps.register("settings", [Grant("./Vendor/Mail", write=True)])
    with pytest.raises(AppAccessError, match="read-only"):
        ro.write("./Vendor/Mail/Port", "995")
    got = []
    ro.subscribe("./Vendor/Mail", got.append)
    rw.subscribe("./Vendor/Mail")
    rw.write("./Vendor/Mail/Port", "995")
    assert dev.tree.value("./Vendor/Mail/Port") == "995"
    assert [(n.path, n.by, n.old, n.new) for n in got] == [("./Vendor/Mail/Port", "app:settings", "993", "995")]
    assert rw.notifications == []  # an app is not told of its own change


def test_an_app_is_notified_of_a_servers_change_inside_its_subscription_only(make_dev):
    dev = make_dev()
    app = dev.apps.register("mail", ["./Vendor/Mail", "./Vendor/Browser"])
    app.subscribe("./Vendor/Mail/Server")
    dev.tree.replace("./Vendor/Mail/Server", "imap2.example.net", by="legacy")  # a DM 1.x server's Replace
    dev.tree.replace("./Vendor/Mail/Port", "143", by="legacy")  # not subscribed
    dev.tree.set_node("./Vendor/Browser/Home", "x")  # not subscribed either
    assert [(n.path, n.kind, n.by, n.new) for n in app.notifications] == [
        ("./Vendor/Mail/Server", "replace", "legacy", "imap2.example.net")]
    with pytest.raises(AppAccessError):
        app.subscribe("./DevInfo")


def test_an_mo_wide_subscription_hears_of_instances_made_later(make_dev):
    dev = make_dev()
    app = dev.apps.register("mail", [f"{MAIL}/*"])
    app.subscribe(f"{MAIL}/*")
    uri = _new_mail_instance(dev, "mx1.example.org")
    (host,) = [n for n in app.notifications if n.path.endswith("/Host")]
    assert (host.kind, host.by, host.new) == ("add", "op", "mx1.example.org")
    with pytest.raises(AppAccessError, match="every instance"):
        dev.apps.register("vpn", [f"{VPN}/i1"]).subscribe(f"{VPN}/*")
    count = len(app.notifications)
    dev.tree.delete(uri.replace(f"{MAIL}/", "./DM2/ext-test-mail/").rstrip("/"))
    assert app.notifications[count:][0].kind == "delete"


def test_obtain_without_a_default_or_a_grant_is_refused(make_dev):
    dev = make_dev()
    app = dev.apps.register("vpn", [f"{VPN}/*"])
    with pytest.raises(EmulatorError) as e:
        asyncio.run(app.obtain(VPN))
    assert e.value.status == 404 and "no server gave a DEFAULT" in str(e.value)
    with pytest.raises(AppAccessError):
        asyncio.run(app.obtain(MAIL))


async def _repository(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/repo/vpn", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_an_app_asking_for_a_missing_mo_gets_it_through_default(make_dev):
    seen_requests: list[web.Request] = []

    async def serve(request: web.Request) -> web.Response:
        seen_requests.append(request)
        body = encode_mos([MOSerialization(client_uri=f"{VPN}//",
                                           mo_data={"VPN": {"Gateway": "vpn.example.com", "Port": 443}})])
        return web.Response(body=body, content_type=media.MO_JSON)

    async def main():
        runner, base = await _repository(serve)
        dev = make_dev(base)
        fleet = Fleet(server=base, bus=dev.bus)
        try:
            dev.fetch = partial(fleet.fetch, dev)  # what the fleet gives every device it holds
            seen = _alerts(dev)
            logged: list[MessageLogged] = []
            dev.bus.subscribe(logged.append, MessageLogged)
            set_default(dev.tree, VPN, f"{base}/repo/vpn")  # what a server's DEFAULT command stored
            app = dev.apps.register("vpn", [f"{VPN}/*"])
            app.subscribe(f"{VPN}/*")
            first = await app.obtain(VPN)
            second = await app.obtain(VPN)  # now present: no second fetch
            return dev, app, first, second, seen, logged, base
        finally:
            await fleet.aclose()
            await runner.cleanup()

    dev, app, first, second, seen, logged, base = asyncio.run(main())
    # the fetch is in the traffic log like a session's messages, both ways
    assert [(m.session_id, m.direction, m.url) for m in logged] == [
        ("app:vpn", "out", f"{base}/repo/vpn"), ("app:vpn", "in", f"{base}/repo/vpn")]
    assert logged[0].summary == f"DEFAULT fetch of {VPN} for app vpn" and logged[1].rtt_ms is not None
    assert len(seen_requests) == 1
    assert seen_requests[0].headers["OMADM-DevID"] == dev.id
    assert seen_requests[0].headers["Authorization"].startswith("Basic ")  # same origin as the SrvURI
    assert first == second and len(first) == 1
    assert app.read(f"{first[0]}Gateway") == "vpn.example.com"
    # the instance belongs to the server that gave the DEFAULT (creator rights, PROTOCOL 1.16)
    path = "./DM2/ext-test-vpn/" + first[0].split("/")[1]
    assert "Replace=op" in dev.tree.info(path).acl
    assert any(a.alert_type == ALERT_APP_DEFAULT for a in seen)
    assert {n.by for n in app.notifications if n.path.endswith("/Gateway")} == {"op"}


def test_a_device_in_no_fleet_cannot_fetch_a_default(make_dev):
    dev = make_dev()
    set_default(dev.tree, VPN, "http://127.0.0.1:9/repo/vpn")  # the origin of the account "op"
    app = dev.apps.register("vpn", [f"{VPN}/*"])
    with pytest.raises(EmulatorError, match="no transport") as e:
        asyncio.run(app.obtain(VPN))
    assert e.value.status == 500


def test_a_default_pointing_elsewhere_is_not_followed(make_dev):
    dev = make_dev()
    set_default(dev.tree, VPN, "http://203.0.113.5/repo/vpn")  # not the origin of any account
    app = dev.apps.register("vpn", [f"{VPN}/*"])
    with pytest.raises(EmulatorError, match="belongs to no DM 2.0 account"):
        asyncio.run(app.obtain(VPN))
