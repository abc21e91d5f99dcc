"""Notification channels over loopback HTTP (DM-HLF-002, DM-HLF-008; PROTOCOL 1.19 item 6, 2.2):
the fleet's one listener for devices a server can reach, push long-polls for devices behind NAT,
both ending in a server-initiated session with the reference server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from emulator.events import AlertRaised, EventBus, SessionEnded, SessionStarted
from emulator.fleet.fleet import Fleet
from emulator.protocol.dm2.notification import parse_notification
from emulator.server.app import create_app
from emulator.server.control import ServerControl
from emulator.server.state import ServerState
from emulator.transport.listener import NotificationListener, is_loopback
from emulator.util.admin_token import admin_headers

DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.2"
QUICK_DM2 = [[["GET", f"{DEVINFO}//FwV"]], [["END"]]]
SERVER_INITIATED = "urn:oma:at:dm:2.0:ServerInitiatedMgmt"  # PROTOCOL 1.19 item 4
DM2_TYPE = "application/vnd.oma.dm.notification"
DM12_TYPE = "application/vnd.syncml.notification"


async def _serve(state: ServerState) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_app(state), shutdown_timeout=0.5)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _with_fleet(body: Callable[..., Awaitable[Any]], *, push_wait_s: float = 0.5) -> tuple[Any, list[object]]:
    """Run ``body(state, base, fleet, listener)`` against a served reference server; (its result, bus events)."""
    async def main():
        state = ServerState(push_wait_s=push_wait_s)
        runner, base = await _serve(state)
        state.base_url = base
        bus = EventBus()
        events: list[object] = []
        bus.subscribe(events.append, SessionStarted, SessionEnded, AlertRaised)
        fleet = Fleet(server=base, bus=bus)
        try:
            listener = await fleet.start_listener()
            result = await body(state, base, fleet, listener)
        finally:
            await fleet.aclose()
            await runner.cleanup()
        return result, events

    return asyncio.run(asyncio.wait_for(main(), 30))


async def _ended(fleet: Fleet, dev_id: str, reason: str = "notification", timeout: float = 10) -> SessionEnded:
    """The end of the next session of ``dev_id`` started for ``reason``."""
    started: set[str] = set()
    done: asyncio.Future[SessionEnded] = asyncio.get_running_loop().create_future()

    def watch(event: object) -> None:
        if isinstance(event, SessionStarted) and event.device_id == dev_id and event.reason.startswith(reason):
            started.add(event.session_id)
        elif isinstance(event, SessionEnded) and event.session_id in started and not done.done():
            done.set_result(event)

    stop = fleet.bus.subscribe(watch, SessionStarted, SessionEnded)
    try:
        return await asyncio.wait_for(done, timeout)
    finally:
        stop()


async def _until(check: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# the listener: devices a server can reach


def test_reachable_dm12_device_gets_package0_on_the_fleet_listener():
    async def body(state, base, fleet, listener):
        (dev,) = fleet.add("smartphone", 1)
        dev.set_bearer("wlan0", up=True, nat=False)  # reachable
        assert not dev.behind_nat
        first = await fleet.run_session(dev.id, "dm12")  # the server learns the device's credentials
        assert first.outcome == "completed", first
        state.dm12_sessions.clear()
        ended = asyncio.ensure_future(_ended(fleet, dev.id))
        async with aiohttp.ClientSession(headers=admin_headers(state.admin_token)) as http, http.post(
                f"{base}/admin/notify/{dev.id}", params={"to": listener.notify_url(dev.id), "protocol": "dm12"}) as r:
            answer = await r.json(), r.status
        return dev.id, answer, await ended

    (dev_id, (answer, status), ended), events = _with_fleet(body)
    assert status == 200 and answer["delivered"] and answer["listener_status"] == 202, answer
    assert ended.outcome == "completed", ended
    started = [e for e in events if isinstance(e, SessionStarted)]
    assert [(e.reason, e.protocol) for e in started] == [("client", "dm12"), ("notification", "dm12")]
    assert not [e for e in events if isinstance(e, AlertRaised)]


def test_the_server_logs_alert_1200_for_the_session_a_listener_notification_started():
    async def body(state, base, fleet, listener):
        (dev,) = fleet.add("smartphone", 1)
        assert (await fleet.run_session(dev.id, "dm12")).outcome == "completed"
        state.dm12_sessions.clear()
        ended = asyncio.ensure_future(_ended(fleet, dev.id))
        notice = await ServerControl(state).notify(dev.id, "dm12", listener=listener.notify_url(dev.id))  # the Python API
        sent = notice.sent
        return sent, await ended, state.dm12_sessions.get(dev.id, [])

    (sent, ended, sessions), _ = _with_fleet(body)
    assert sent.delivered and sent.status == 202 and sent.protocol == "dm12"
    assert ended.outcome == "completed"
    (session,) = sessions
    assert "package 1 (Alert 1200)" in session.events  # 1200: server-initiated management (PROTOCOL 2.5)


def test_dm2_package0_on_the_listener_echoes_the_notification_id():
    async def body(state, base, fleet, listener):
        (dev,) = fleet.add("smartphone", 1)
        state.set_script(dev.id, QUICK_DM2)
        ended = asyncio.ensure_future(_ended(fleet, dev.id))
        sent = (await ServerControl(state).notify(dev.id, "dm2", listener=listener.notify_url(dev.id))).sent
        return sent, await ended, state.device(dev.id)

    (sent, ended, log), _ = _with_fleet(body)
    assert sent.delivered and sent.notification_id is not None
    assert ended.outcome == "completed"
    assert log.notification_ids == [sent.notification_id] == log.notifications_sent
    assert len(log.alerts_of(SERVER_INITIATED)) == 1


def test_bad_digest_on_the_listener_is_refused_with_the_reason_and_starts_nothing():
    async def body(state, base, fleet, listener):
        (dev,) = fleet.add("smartphone", 1)
        raw, _ = state.dm2_package0(dev.id)
        digest = parse_notification(raw).digest
        at = raw.index(digest) + 5
        bad = raw[:at] + bytes([raw[at] ^ 0x40]) + raw[at + 1:]
        async with aiohttp.ClientSession() as http, http.post(
                listener.notify_url(dev.id), data=bad, headers={"Content-Type": DM2_TYPE}) as r:
            answer = r.status, await r.text()
        await asyncio.sleep(0.1)  # a session, had one started, would have said so by now
        return dev.id, answer, state.device(dev.id), listener.rejected

    (dev_id, (status, text), log, rejected), events = _with_fleet(body)
    assert status == 403 and "digest" in text.lower(), text
    assert rejected == 1
    assert not [e for e in events if isinstance(e, SessionStarted)]
    assert log.sessions == 0
    (alert,) = [e for e in events if isinstance(e, AlertRaised)]
    assert alert.device_id == dev_id and alert.alert_type == "notification rejected"
    assert alert.detail in text


def test_unknown_device_and_wrong_type_are_refused():
    async def body(state, base, fleet, listener):
        (dev,) = fleet.add("smartphone", 1)
        raw, _ = state.dm2_package0(dev.id)
        out = {}
        async with aiohttp.ClientSession() as http:
            for name, url, ctype in (
                ("unknown", listener.notify_url("IMEI:000000000000000"), DM2_TYPE),
                ("wrong type", listener.notify_url(dev.id), "application/octet-stream"),
                ("get", None, None),
            ):
                if url is None:
                    async with http.get(listener.notify_url(dev.id)) as r:
                        out[name] = r.status
                    continue
                async with http.post(url, data=raw, headers={"Content-Type": ctype}) as r:
                    out[name] = r.status
        return out

    out, events = _with_fleet(body)
    assert out == {"unknown": 404, "wrong type": 415, "get": 405}
    assert not [e for e in events if isinstance(e, SessionStarted | AlertRaised)]


def test_listener_binds_loopback_by_default():
    async def body(state, base, fleet, listener):
        addresses = listener.addresses
        # a second start returns the same listener: one for the whole fleet
        again = await fleet.start_listener()
        return listener.host, listener.url, addresses, again is listener

    (host, url, addresses, same), _ = _with_fleet(body)
    assert host == "127.0.0.1" and url.startswith("http://127.0.0.1:")
    assert [a[0] for a in addresses] == ["127.0.0.1"]
    assert same
    assert NotificationListener.__init__.__defaults__ == ("127.0.0.1", 0)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("")


def test_admin_notify_to_an_unreachable_listener_says_so():
    async def body(state, base, fleet, listener):
        (dev,) = fleet.add("smartphone", 1)
        first = await fleet.run_session(dev.id, "dm12")  # the server sees where the device comes from
        assert first.outcome == "completed", first
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{free.getsockname()[1]}/notify/{dev.id}"
        free.close()
        out = {}
        async with aiohttp.ClientSession(headers=admin_headers(state.admin_token)) as http:
            for name, params in (("dead", {"to": dead}), ("not a url", {"to": "ftp://x/notify"}),
                                 ("dm12 queued", {"protocol": "dm12"}),
                                 ("bad protocol", {"to": listener.notify_url(dev.id), "protocol": "dm3"})):
                async with http.post(f"{base}/admin/notify/{dev.id}", params=params) as r:
                    out[name] = r.status, await r.text()
        return out

    out, events = _with_fleet(body)
    assert out["dead"][0] == 502 and "cannot reach" in out["dead"][1]
    assert out["not a url"][0] == 400 and out["bad protocol"][0] == 400
    assert out["dm12 queued"][0] == 200  # DM 1.3's HTTP push binding: queued, not sent anywhere
    assert not [e for e in events if isinstance(e, SessionStarted) and e.reason != "client"]


# ---------------------------------------------------------------------------------------------
# the push channel: devices behind NAT


def test_dm2_device_behind_nat_long_polls_and_is_notified():
    async def body(state, base, fleet, listener):
        (dev,) = fleet.add("smartphone", 1)
        assert dev.behind_nat  # every smartphone bearer is behind NAT
        state.set_script(dev.id, QUICK_DM2)
        poller = fleet.start_push(wait_s=0.5, recheck_s=0.05)
        await _until(lambda: dev.id in poller.polling)
        await asyncio.sleep(0.1)  # a long-poll is open at the server now
        ended = asyncio.ensure_future(_ended(fleet, dev.id))
        nid = state.notify(dev.id)
        return nid, await ended, state.device(dev.id), poller.delivered

    (nid, ended, log, delivered), events = _with_fleet(body)
    assert ended.outcome == "completed", ended
    assert delivered == 1
    assert log.notification_ids == [nid]
    (alert,) = log.alerts_of(SERVER_INITIATED)
    assert alert.data == {"NotificationID": nid}
    assert [(e.reason, e.protocol) for e in events if isinstance(e, SessionStarted)] == [("notification", "dm2")]


def test_polling_follows_the_bearer_in_and_out_of_nat():
    async def body(state, base, fleet, listener):
        nat_dev, reachable = fleet.add("smartphone", 2)
        reachable.set_bearer(reachable.bearer, nat=False)
        sensor = fleet.add("nbiot-sensor", 1)[0]  # behind NAT but DM 1.2 only: nothing to poll
        problems: list[tuple[str, str]] = []
        poller = fleet.start_push(wait_s=0.3, recheck_s=0.05, on_problem=lambda d, t: problems.append((d, t)))
        await _until(lambda: nat_dev.id in poller.polling)
        seen = [set(poller.polling)]
        nat_dev.set_bearer(nat_dev.bearer, nat=False)  # leaves NAT: stops
        reachable.set_bearer(reachable.bearer, nat=True)  # enters NAT: starts
        await _until(lambda: poller.polling == {reachable.id, sensor.id})
        seen.append(set(poller.polling))
        added = fleet.add("smartphone", 1)[0]  # a device added later is watched too
        await _until(lambda: added.id in poller.polling)
        # and the newcomer's long-poll carries a notification
        state.set_script(reachable.id, QUICK_DM2)
        ended = asyncio.ensure_future(_ended(fleet, reachable.id))
        state.notify(reachable.id)
        return (nat_dev.id, reachable.id, sensor.id), seen, problems, await ended

    ((nat_id, reach_id, sensor_id), seen, problems, ended), _ = _with_fleet(body, push_wait_s=0.3)
    assert seen[0] == {nat_id, sensor_id}
    assert seen[1] == {reach_id, sensor_id}
    assert [d for d, _ in problems] == [sensor_id] and "no DM 2.0 account" in problems[0][1]
    assert ended.outcome == "completed"


def test_poller_backs_off_while_the_server_is_away():
    async def body(state, base, fleet, listener):
        (dev,) = fleet.add("smartphone", 1)
        first = await fleet.run_session(dev.id, "dm12")  # the server sees where the device comes from
        assert first.outcome == "completed", first
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{free.getsockname()[1]}"
        free.close()
        from emulator.transport.push import PushPoller

        poller = PushPoller(fleet.devices, fleet.receive_notification, server_uri=dead, wait_s=0.2, backoff=(0.05, 0.4), jitter=0.0, recheck_s=0.05)
        poller.start([dev.id])
        await asyncio.sleep(0.6)
        tried = poller.transport.requests
        await poller.stop()
        return tried, poller.polling

    (tried, polling), _ = _with_fleet(body)
    # refused at once each time: without a back-off there would be hundreds of tries in 0.6 s;
    # with 0.05, 0.1, 0.2, 0.4 s between them there are a handful
    assert 2 <= tried <= 6, tried
    assert polling == set()


def test_a_notification_queued_while_the_device_left_nat_waits_for_its_next_poll():
    """The device stops polling (it left NAT) while its long-poll is held: the server keeps the
    Package#0 that arrives for the abandoned request, and the next poll gets it."""
    async def body(state, base, fleet, listener):
        (dev,) = fleet.add("smartphone", 1)
        state.set_script(dev.id, QUICK_DM2)
        poller = fleet.start_push(wait_s=3, recheck_s=0.05)
        await _until(lambda: dev.id in poller.polling)
        await asyncio.sleep(0.2)  # its long-poll is held by the server
        dev.set_bearer(dev.bearer, nat=False)
        await _until(lambda: dev.id not in poller.polling)
        await asyncio.sleep(0.2)  # the server has seen the connection go
        nid = state.notify(dev.id)
        await asyncio.sleep(0.2)
        queued = state.push_queue(dev.id).qsize()
        ended = asyncio.ensure_future(_ended(fleet, dev.id))
        dev.set_bearer(dev.bearer, nat=True)
        return nid, queued, await ended, state.device(dev.id)

    (nid, queued, ended, log), _ = _with_fleet(body, push_wait_s=3)
    assert queued == 1  # not lost to the request nobody waits for any more
    assert ended.outcome == "completed"
    assert log.notification_ids == [nid]
