"""DM 1.3's HTTP push binding and server-initiated bootstrap over real HTTP (README "DM 1.3"): the
reference server queues a DM 1.x Package 0, or a MAC'd bootstrap message, on the push channel a DM 1.3
device behind NAT long-polls (``GET /push/<DevID>``), through its admin API; the device checks it as
any notification (digest, NOTIFCRED, expiry, replay) or bootstrap (MAC, fresh, all or nothing) and
opens its session. Bootstrap server discovery: a factory-fresh device whose BootConfig names no
server asks ``/.well-known/dm-bootstrap``."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from emulator.events import AlertRaised, EventBus, SessionEnded, SessionStarted
from emulator.fleet.fleet import Fleet
from emulator.mo.accounts import find_account
from emulator.protocol.syncml.auth import basic_credential
from emulator.protocol.syncml.bootstrap import build_bootstrap
from emulator.protocol.syncml.codes import MEDIA_NOTIFICATION
from emulator.protocol.syncml.notification import build_notification
from emulator.server.bootstrap import provision
from emulator.server.state import ServerState
from emulator.util.admin_token import admin_headers
from tests.integration.test_notification_channels import _ended, _serve


def _run(profile: str, body: Callable[..., Awaitable[Any]], *, push: bool = True) -> tuple[Any, list[object]]:
    """``body(state, base, fleet, dev)`` against a served reference server, the device long-polling."""
    async def main():
        state = ServerState(push_wait_s=0.5)
        runner, base = await _serve(state)
        state.base_url = base
        bus = EventBus()
        events: list[object] = []
        bus.subscribe(events.append, SessionStarted, SessionEnded, AlertRaised)
        fleet = Fleet(server=base, bus=bus)
        try:
            (dev,) = fleet.add(profile, 1)
            if push:
                poller = fleet.start_push(wait_s=0.5, recheck_s=0.05)
                async with asyncio.timeout(10):
                    while dev.id not in poller.polling:
                        await asyncio.sleep(0.01)
            return await body(state, base, fleet, dev), events
        finally:
            await fleet.aclose()
            await runner.cleanup()

    return asyncio.run(asyncio.wait_for(main(), 45))


async def _admin(state: ServerState, base: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, \
            http.post(base + path, headers=admin_headers(state.admin_token)) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


async def _alert(fleet: Fleet, dev_id: str, kind: str, timeout: float = 10) -> AlertRaised:
    got: asyncio.Future[AlertRaised] = asyncio.get_running_loop().create_future()

    def watch(event: object) -> None:
        if isinstance(event, AlertRaised) and event.device_id == dev_id and event.alert_type == kind and not got.done():
            got.set_result(event)

    stop = fleet.bus.subscribe(watch, AlertRaised)
    try:
        return await asyncio.wait_for(got, timeout)
    finally:
        stop()


def _snapshot(dev) -> list[tuple[str, object, str]]:
    return [(i.path, i.value, i.acl) for i in dev.tree.walk(".")]


# ---------------------------------------------------------------------------- notification over HTTP


def test_dm13_device_behind_nat_gets_its_package0_over_the_push_binding_and_opens_its_session():
    async def body(state, base, fleet, dev):
        assert dev.behind_nat and dev.accounts("dm12") and not dev.accounts("dm2")
        ended = asyncio.ensure_future(_ended(fleet, dev.id, "notification"))
        answer = await _admin(state, base, f"/admin/notify/{dev.id}?protocol=dm12")
        first = await ended
        # the 1.3 extended notification over the same channel: the reason labels the session
        ended = asyncio.ensure_future(_ended(fleet, dev.id, "notification: check-in"))
        raw = state.dm12.build_package0(dev.id, expiry=int(time.time()) + 600, reason="check-in",
                                        requested=("./DevDetail",))
        state.push(dev.id, raw, MEDIA_NOTIFICATION)
        second = await ended
        return answer, first, second, state.dm12_sessions[dev.id]

    (answer, first, second, sessions), _ = _run("smartphone-dm13", body)
    assert answer == (200, {"device": answer[1]["device"], "protocol": "dm12", "channel": "push",
                            "notification_id": None, "req_mos": False})
    assert first.outcome == second.outcome == "completed"
    assert [s.outcome for s in sessions] == ["completed", "completed"]
    assert all(s.ver_proto == "DM/1.3" for s in sessions)
    assert "./DevDetail" in sessions[1].devinfo  # the requested MO went in Package 1


def test_push_binding_keeps_every_notification_check_replayed_expired_and_forged_are_dropped():
    async def body(state, base, fleet, dev):
        good = state.dm12.build_package0(dev.id, expiry=int(time.time()) + 600, reason="once")
        ended = asyncio.ensure_future(_ended(fleet, dev.id, "notification"))
        state.push(dev.id, good, MEDIA_NOTIFICATION)
        await ended
        why = []
        for raw in (good,  # the same one again
                    state.dm12.build_package0(dev.id, expiry=int(time.time()) - 5),
                    build_notification("demo-dm12", "demo-server-secret", b"\0\0\0\0", session_id=7)):
            rejected = asyncio.ensure_future(_alert(fleet, dev.id, "notification rejected"))
            state.push(dev.id, raw, MEDIA_NOTIFICATION)
            why.append((await rejected).detail)
        return why, len(state.dm12_sessions[dev.id])

    (why, sessions), _ = _run("smartphone-dm13", body)
    assert "replayed" in why[0] and "expired" in why[1] and "does not verify" in why[2]
    assert sessions == 1  # only the first one opened a session


def test_push_channel_refuses_a_dm1_device_with_wrong_or_no_credentials():
    from emulator.protocol.dm2.digest import DigestClient

    async def body(state, base, fleet, dev):
        account = dev.account("demo-dm12", "dm12")
        url = f"{base}/push/{dev.id}?wait=0"
        out = []
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                out.append(r.status)
                challenge = r.headers.getall("WWW-Authenticate")[0]
            for secret in ("wrong", account.client_secret):
                digest = DigestClient(account.client_user, secret)
                digest.take(challenge)
                async with http.get(url, headers={"Authorization": digest.authorization("GET", url[len(base):])}) as r:
                    out.append(r.status)
            bad_factory = f"Basic {basic_credential('bootstrap', 'factory-guess')}"
            async with http.get(url, headers={"Authorization": bad_factory}) as r:
                out.append(r.status)
        return out

    statuses, _ = _run("smartphone-dm13", body, push=False)
    assert statuses == [401, 401, 204, 401]


def test_dm13_listener_and_push_are_one_notification_check_a_dm12_device_does_not_poll_with_dm1_accounts():
    async def body(state, base, fleet, dev):
        poller = fleet.start_push(wait_s=0.2, recheck_s=0.05)
        return poller.urls(dev, 0.2)

    urls, _ = _run("nbiot-sensor", body, push=False)
    assert urls == []  # a DM 1.2 device: WAP push (the listener) only


# ---------------------------------------------------------------------------- server-initiated bootstrap


def test_server_initiated_bootstrap_of_a_factory_fresh_device_then_its_first_session():
    async def body(state, base, fleet, dev):
        before = _snapshot(dev)
        ended = asyncio.ensure_future(_ended(fleet, dev.id, "bootstrap"))
        answer = await _admin(state, base, f"/admin/bootstrap/{dev.id}")
        done = await ended
        return before, answer, done, state

    (_, answer, done, state), events = _run("smartphone-dm13-fresh", body)
    dev_id = answer[1]["device"]
    assert answer == (200, {"device": dev_id, "server_id": "demo-dm12", "channel": "push"})
    assert done.outcome == "completed", done
    assert state.bootstraps == [dev_id]
    (session,) = state.dm12_sessions[dev_id]
    assert session.scheme == "sha256" and session.client_ok and session.ver_proto == "DM/1.3"
    assert any(isinstance(e, AlertRaised) and e.alert_type == "bootstrap" and "server push" in e.detail for e in events)


def test_pushed_bootstrap_sets_the_initial_rights_as_the_device_decides():
    async def body(state, base, fleet, dev):
        ended = asyncio.ensure_future(_ended(fleet, dev.id, "bootstrap"))
        await _admin(state, base, f"/admin/bootstrap/{dev.id}")
        await ended
        return dev

    dev, _ = _run("smartphone-dm13-fresh", body)
    account = find_account(dev.tree, "demo-dm12", "dm12")
    assert account is not None and account.auth == "sha256"
    assert dev.tree.value("./BootConfig/1/State") == "done"
    assert dev.tree.get_prop("./DMAcc/demo-dm12", "ACL") == "Delete=demo-dm12&Get=demo-dm12&Replace=demo-dm12"
    assert "demo-dm12" in dev.tree.get_prop("./DevDetail", "ACL")
    assert "demo-dm12" not in dev.tree.get_prop(".", "ACL")


def test_forged_malformed_and_foreign_bootstraps_are_refused_whole():
    async def body(state, base, fleet, dev):
        before = _snapshot(dev)
        _sid, tnds = provision(state, dev.id, base, keep=True)
        key = dev.tree.value("./BootConfig/1/Secret")
        good, ctype = build_bootstrap(tnds, dev_id=dev.id, server_uri=base, key=key)
        forged, forged_type = build_bootstrap(tnds, dev_id=dev.id, server_uri=base, key="guessed-pin")
        _, network = build_bootstrap(tnds, dev_id=dev.id, server_uri=base, key=key, method="NETWORKID")
        cases = [(forged, forged_type), (good, network), (b"\x02\x00\x00\x6a\x00garbage",
                                                          ctype.split("MAC=")[0] + "MAC=" + "0" * 40),
                 (good, ctype.replace("SEC=USERPIN; ", "")), (good, "application/vnd.syncml.dm+xml")]
        why = []
        for raw, media in cases:
            refused = asyncio.ensure_future(_alert(fleet, dev.id, "bootstrap refused"))
            state.push(dev.id, raw, media)
            why.append((await refused).detail)
        return why, before, _snapshot(dev)

    (why, before, after), events = _run("smartphone-dm13-fresh", body)
    assert "does not verify" in why[0]
    assert "NETWORKID" in why[1] and "network shared secret" in why[1]
    assert "does not verify" in why[2]  # nothing is decoded before the MAC verifies
    assert "SEC and MAC" in why[3]
    assert "never XML" in why[4]
    assert before == after
    assert not any(isinstance(e, SessionStarted) for e in events)


def test_a_bootstrap_for_a_device_that_has_an_account_is_refused_and_its_account_still_works():
    async def body(state, base, fleet, dev):
        before = _snapshot(dev)
        refused = asyncio.ensure_future(_alert(fleet, dev.id, "bootstrap refused"))
        answer = await _admin(state, base, f"/admin/bootstrap/{dev.id}")
        why = (await refused).detail
        after = _snapshot(dev)
        done = await fleet.run_session(dev.id, "dm12")  # the server kept the pair the device holds
        return answer, why, before == after, done

    (answer, why, unchanged, done), _ = _run("smartphone-dm13", body)
    assert answer[0] == 200 and "not factory-fresh" in why
    assert unchanged and done.outcome == "completed", done


def test_a_replayed_bootstrap_is_refused_once_the_device_has_its_account():
    async def body(state, base, fleet, dev):
        _sid, tnds = provision(state, dev.id, base, keep=True)
        raw, ctype = build_bootstrap(tnds, dev_id=dev.id, server_uri=base, key=dev.tree.value("./BootConfig/1/Secret"))
        ended = asyncio.ensure_future(_ended(fleet, dev.id, "bootstrap"))
        state.push(dev.id, raw, ctype)
        first = await ended
        refused = asyncio.ensure_future(_alert(fleet, dev.id, "bootstrap refused"))
        state.push(dev.id, raw, ctype)
        return first, (await refused).detail

    (first, why), _ = _run("smartphone-dm13-fresh", body)
    assert first.outcome == "completed" and "not factory-fresh" in why


def test_a_dm12_device_refuses_a_pushed_bootstrap():
    async def body(state, base, fleet, dev):
        _sid, tnds = provision(state, dev.id, base, keep=True)
        raw, ctype = build_bootstrap(tnds, dev_id=dev.id, server_uri=base, key="x")
        before = _snapshot(dev)
        delivery = fleet.receive_bootstrap(dev.id, raw, ctype)
        return delivery, before == _snapshot(dev)

    (delivery, unchanged), _ = _run("smartphone", body, push=False)
    assert delivery.session is None and "DM 1.2 device" in delivery.why and unchanged


# ---------------------------------------------------------------------------- bootstrap server discovery


def test_a_device_with_no_bootstrap_server_discovers_it_then_bootstraps_and_is_managed():
    async def body(state, base, fleet, dev):
        dev.tree.set_node("./BootConfig/1/ServerURI", "", access=frozenset({"Get"}))
        first = await fleet.run_session(dev.id, "dm12")
        return first, dev.tree.value("./BootConfig/1/ServerURI"), base, state.bootstraps

    (first, found, base, bootstraps), _ = _run("smartphone-dm13-fresh", body, push=False)
    assert first.outcome == "completed", first.detail
    assert found == f"{base}/bootstrap" and len(bootstraps) == 1


def test_a_bad_discovery_answer_is_refused_and_nothing_is_written():
    async def serve(answer: bytes, status: int = 200) -> tuple[web.AppRunner, str]:
        async def discovery(request: web.Request) -> web.Response:
            return web.Response(status=status, body=answer, content_type="text/uri-list")

        app = web.Application()
        app.router.add_get("/.well-known/dm-bootstrap", discovery)
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def main():
        out = []
        for answer, status in ((b"ftp://example.net/boot\r\n", 200), (b"http://203.0.113.9/bootstrap", 200),
                               (b"# nothing\r\n", 200), (b"", 404)):
            runner, base = await serve(answer, status)
            fleet = Fleet(server=base)
            try:
                (dev,) = fleet.add("smartphone-dm13-fresh", 1)
                dev.tree.set_node("./BootConfig/1/ServerURI", "", access=frozenset({"Get"}))
                before = _snapshot(dev)
                done = await fleet.run_session(dev.id, "dm12")
                out.append((done.outcome, done.detail, before == _snapshot(dev)))
            finally:
                await fleet.aclose()
                await runner.cleanup()
        return out

    results = asyncio.run(asyncio.wait_for(main(), 30))
    assert [r[0] for r in results] == ["failed"] * 4 and all(r[2] for r in results)
    assert "https://" in results[0][1] and "https://" in results[1][1]
    assert "names no bootstrap server" in results[2][1] and "HTTP 404" in results[3][1]


def test_push_binding_over_https_with_the_account_tls_settings(tmp_path):
    """The long-poll and the session it starts go over TLS, trusting the account's CA file."""
    from emulator.mo.accounts import store_tls
    from emulator.server.app import start_server
    from emulator.server.tls import make_server_identity, serve_tls_context

    ca, cert, key = make_server_identity(tmp_path / "pki")

    async def main():
        server = await start_server(ServerState(push_wait_s=0.5), ssl_context=serve_tls_context(cert, key))
        fleet = Fleet(server=server.url)
        try:
            (dev,) = fleet.add("smartphone-dm13", 1)
            store_tls(dev.tree, dev.account("demo-dm12", "dm12"), ca_file=str(ca))
            poller = fleet.start_push(wait_s=0.5, recheck_s=0.05)
            async with asyncio.timeout(10):
                while dev.id not in poller.polling:
                    await asyncio.sleep(0.01)
            ended = asyncio.ensure_future(_ended(fleet, dev.id, "notification"))
            server.state.push(dev.id, server.state.dm12.build_package0(dev.id), MEDIA_NOTIFICATION)
            return server.url, await ended, poller.delivered
        finally:
            await fleet.aclose()
            await server.stop()

    url, ended, delivered = asyncio.run(asyncio.wait_for(main(), 30))
    assert url.startswith("https://") and ended.outcome == "completed" and delivered == 1
