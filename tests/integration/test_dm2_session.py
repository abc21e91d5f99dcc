"""PROOF: a virtual smartphone runs whole DM 2.0 sessions against the reference server over real
loopback HTTP (emulator.fleet.drive.drive + HttpTransport + HeadlessUi), the web form fill deciding
what the server does next, SUB pushes, async EXEC results and notifications over the push channel."""

from __future__ import annotations

import asyncio
import base64
import json
import time

from aiohttp import web

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import EventBus, UiFinished
from emulator.fleet.drive import SessionContext, drive, run
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.dm2.client import ALERT_EXEC_RESULT, DM2Client, basic_auth, check_notification
from emulator.protocol.dm2.messages import ALERT_SERVER_INITIATED
from emulator.protocol.dm2.notification import NotificationGuard
from emulator.protocol.dm2.subscriptions import subscriptions_for
from emulator.protocol.flow import Sleep
from emulator.server.app import start_server
from emulator.server.authorities import Authority, SecretPair
from emulator.server.dm2 import script_for
from emulator.server.state import ServerState
from emulator.server.ui_flows import BOOKMARK_MOID, DATAPLAN_MOID, FWUPDATE_MOID, WLAN_MOID
from emulator.transport.http import HttpTransport
from emulator.util.admin_token import admin_headers

DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.2"
EXTRA_PERMS = (WLAN_MOID, BOOKMARK_MOID, DATAPLAN_MOID, FWUPDATE_MOID)


async def _serve(state: ServerState) -> tuple[web.AppRunner, str]:
    server = await start_server(state)
    return server.runner, server.url


def _phone(base: str, index: int = 0) -> VirtualDevice:
    """A smartphone whose DM 2.0 server was also granted the demo's own MOs at bootstrap."""
    dev = VirtualDevice(find_profile("smartphone"), index, server=base)
    perm = "./DM2/DMAcc/demo-dm2/Perm"
    start = len(dev.tree.children(perm)) + 1
    for n, moid in enumerate(EXTRA_PERMS, start):
        dev.tree.set_node(f"{perm}/{n}", format="node")
        dev.tree.set_node(f"{perm}/{n}/MOID", moid)
    return dev


class Harness:
    """One server, one transport, one bus: runs sessions of devices like a runner would."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.bus = EventBus()
        self.transport = HttpTransport(timeout=10)
        self.runner: web.AppRunner | None = None
        self.base = ""
        self.sessions = 0

    async def __aenter__(self) -> Harness:
        self.runner, self.base = await _serve(self.state)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.aclose()
        if self.runner is not None:
            await self.runner.cleanup()

    async def session(self, dev: VirtualDevice, ui, **options) -> tuple[DM2Client, object]:
        account = dev.account(protocol="dm2")
        engine = DM2Client(dev.tree, account, dev_id=dev.id, **options)
        self.sessions += 1
        ctx = SessionContext(device_id=dev.id, session_id=f"s{self.sessions}", protocol="dm2",
                             server=account.server_id, bus=self.bus, transport=self.transport)
        done = await drive(engine, ctx, ui)
        if ctx.background:  # a SHOW's page flow still running in the background
            await asyncio.gather(*ctx.background)
        return engine, done

    async def push_changes(self, dev: VirtualDevice) -> list[int]:
        """What a runner does between sessions: send the SUB pushes the device has queued."""
        subs = subscriptions_for(dev.tree)
        codes = []
        for request in subs.pending_pushes():
            result = await self.transport.request(request.method, request.url, request.body, request.headers)
            subs.push_result(request.request_id, result)
            codes.append(result.status)
        return codes


def test_full_session_get_hget_sub_show_exec_end_then_async_alert_and_push():
    state = ServerState(show_hold_s=5, push_wait_s=1)
    executed: list[str] = []

    async def main():
        async with Harness(state) as h:
            dev = _phone(h.base)
            dev.tree.on_exec("./DM2/ext-dmemulator-wlan/*/Ops/Connect",
                             lambda tree, req: executed.append(req.path) or 200)
            finished: list[UiFinished] = []
            h.bus.subscribe(finished.append, UiFinished)
            ui = HeadlessUi({"ssid": "Lab-5G", "security": "wpa3", "password": "s3cret-pass"})
            engine, done = await h.session(dev, ui)
            assert done.outcome == "completed", (done, engine.notes)
            # the EXEC with a ServerURI left an alert for a new session, to that ServerURI
            assert [p.server_uri for p in engine.pending_alerts] == [h.base + "/dm20/alerts"]
            engine2, done2 = await h.session(dev, ui, alerts=engine.pending_alerts)
            assert done2.outcome == "completed", done2
            dev.set_bearer("wlan0", up=True)  # a local change inside the subscribed subtree
            push_codes = await h.push_changes(dev)
            return dev, engine, engine2, ui, finished, push_codes

    dev, engine, engine2, ui, finished, push_codes = asyncio.run(main())
    log = state.device(dev.id)
    tree = dev.tree

    # GET of DevInfo: the server holds what the device's tree holds
    assert log.gets[f"{DEVINFO}//FwV"] == {"FwV": tree.value("./DM2/DevInfo/FwV")} == {"FwV": "X5P-BL-2.14.07"}
    assert log.gets[f"{DEVINFO}//Mod"] == {"Mod": "NW-X5 Pro"}

    # HGET created a new bookmark instance, owned by the server that created it
    bookmark = f"{BOOKMARK_MOID}/i1/"
    assert bookmark in log.instances[BOOKMARK_MOID]
    assert tree.value("./DM2/ext-dmemulator-bookmark/i1/URL") == "https://care.example.net/"
    assert tree.info("./DM2/ext-dmemulator-bookmark/i1").type == BOOKMARK_MOID
    assert "Get=demo-dm2" in tree.info("./DM2/ext-dmemulator-bookmark/i1").acl

    # DEFAULT was stored on the device
    assert tree.value("./DM2/Defaults/1/MOID") == "urn:oma:mo:oma-sessioninfomo:1.0"

    # SHOW: the headless browser went through both wizard pages to /ui/done, and what it typed
    # decided the next HGET: the device's tree now holds the chosen network
    base = engine.account.server_uri.rsplit("/", 1)[0]
    assert engine.browsed and engine.browsed[0].startswith(base + "/ui/wifi?s=")
    assert ui.visited[-1].startswith(base + "/ui/done")
    assert [f.outcome for f in finished][:1] == ["ok"]
    assert log.ui[0].answers["ssid"] == "Lab-5G" and log.ui[0].outcome == "submitted"
    wlan = "./DM2/ext-dmemulator-wlan/i1"
    assert tree.value(f"{wlan}/SSID") == "Lab-5G"
    assert tree.value(f"{wlan}/Security") == "wpa3"
    assert tree.value(f"{wlan}/Passphrase") == "s3cret-pass"

    # EXEC ran the device behaviour once; 202 in the session, the result came in a new session
    assert executed == [f"{wlan}/Ops/Connect"]
    assert [s.sc for s in log.status_of("EXEC")] == [202]
    results = log.alerts_of(ALERT_EXEC_RESULT)
    assert len(results) == 1
    assert results[0].source_uri == f"{WLAN_MOID}/i1/Ops/Connect"
    assert results[0].data == {"sc": 200}
    assert engine2.pending_alerts == []
    assert log.sessions == 2 and log.completed == 2
    assert log.problems == []

    # SUB: the local bearer change reached the server's repository as MO serialization
    assert push_codes == [204]
    upload = log.uploads[-1]
    assert upload.method == "PUT" and upload.path.endswith("/sub/bearer")
    assert upload.items[0].client_uri == f"{DEVINFO}/DevInfo/Bearer"
    assert upload.items[0].mo_data["Bearer"]["wlan0"]["State"] == "up"


def test_notification_over_push_long_poll_starts_server_initiated_session():
    state = ServerState(show_hold_s=2, push_wait_s=2)

    async def main():
        async with Harness(state) as h:
            dev = _phone(h.base)
            state.set_script(dev.id, [[["GET", f"{DEVINFO}//DevID"]]])
            push_url = f"{h.base}/push/{dev.id}"
            own = {"Authorization": basic_auth(dev.account(protocol="dm2")) or ""}
            idle = await h.transport.request("GET", push_url + "?wait=0.05", headers=own)
            notified = await h.transport.request("POST", f"{h.base}/admin/notify/{dev.id}?req_mos=1",
                                                 headers=admin_headers(state.admin_token))
            raw = await h.transport.request("GET", push_url, headers=own)
            guard = NotificationGuard(300)
            decision = check_notification(raw.body, dev.accounts("dm2"), guard, time.time())
            replay = check_notification(raw.body, dev.accounts("dm2"), guard, time.time())
            tampered = bytearray(raw.body)
            tampered[-1] ^= 0x01
            bad = check_notification(bytes(tampered), dev.accounts("dm2"), NotificationGuard(300), time.time())
            engine, done = await h.session(dev, HeadlessUi(), **decision.engine_options())
            return dev, idle, notified, raw, decision, replay, bad, done

    dev, idle, notified, raw, decision, replay, bad, done = asyncio.run(main())
    assert idle.status == 204
    assert raw.status == 200 and raw.headers["content-type"].startswith("application/vnd.oma.dm.notification")
    nid = json.loads(notified.body)["notification_id"]
    assert decision.accepted and decision.notification.notification_id == nid
    assert not replay.accepted and "duplicate" in replay.reason
    assert not bad.accepted
    assert done.outcome == "completed"
    log = state.device(dev.id)
    session_alerts = [a for a in log.initiations[-1].alerts if a.alert_type == ALERT_SERVER_INITIATED]
    assert session_alerts and session_alerts[0].data == {"NotificationID": nid}
    assert log.notification_ids == [nid]
    mos = {m.moid: m.miid for m in log.initiations[-1].mos}  # REQ-MOS was set
    assert mos[DEVINFO] == ["DevInfo"] and WLAN_MOID in mos
    assert log.gets[f"{DEVINFO}//DevID"] == {"DevID": dev.id}


def test_declined_terms_end_the_session_without_an_update():
    state = ServerState(show_hold_s=5)
    state.default_flow = "terms"

    async def main():
        async with Harness(state) as h:
            dev = _phone(h.base)
            engine, done = await h.session(dev, HeadlessUi(policy="decline"))
            return dev, engine, done

    dev, engine, done = asyncio.run(main())
    assert done.outcome == "completed", (done, engine.notes)
    log = state.device(dev.id)
    assert log.ui[0].answers["decision"] == "decline"
    assert not dev.tree.exists("./DM2/ext-dmemulator-fwupdate")
    assert log.status_of("EXEC") == [] and engine.pending_alerts == []
    assert log.statuses[-1][0][0] == "SHOW"  # nothing was sent after the flow but END


def test_accepted_terms_fetch_the_update_and_plan_choice_replaces_the_plan_instance():
    state = ServerState(show_hold_s=5)

    async def main():
        async with Harness(state) as h:
            dev = _phone(h.base)
            dev.tree.on_exec("./DM2/*/*/Ops/*", lambda tree, req: 200)
            state.set_script(dev.id, [[["SHOW", "${ui:terms}"]], [["SHOW", "${ui:plan}"]]])
            e1, d1 = await h.session(dev, HeadlessUi({"plan": "plus-20gb"}))
            first_plan = dev.tree.value("./DM2/ext-dmemulator-dataplan/i1/PlanID")
            state.set_script(dev.id, [[["SHOW", "${ui:plan}"]]])
            e2, d2 = await h.session(dev, HeadlessUi({"plan": "unlimited"}))
            return dev, d1, d2, first_plan, e2

    dev, d1, d2, first_plan, e2 = asyncio.run(main())
    assert d1.outcome == d2.outcome == "completed"
    tree = dev.tree
    assert tree.value("./DM2/ext-dmemulator-fwupdate/i1/PkgVersion") == "X5P-BL-2.15.01"
    assert first_plan == "plus-20gb"
    # the second choice replaced the same instance (HGET with its ClientURI), no second one
    assert tree.children("./DM2/ext-dmemulator-dataplan") == ["i1"]
    assert tree.value("./DM2/ext-dmemulator-dataplan/i1/PlanID") == "unlimited"
    assert tree.value("./DM2/ext-dmemulator-dataplan/i1/QuotaMB") == "0"
    hgets = [cmd for cmd, _ in state.device(dev.id).statuses if cmd[0] == "HGET"]
    assert hgets[-1][2] == f"{DATAPLAN_MOID}/i1/"


class SlowUser(HeadlessUi):
    """Opens the page only after ``delay``: the server must hold and time out meanwhile."""

    def __init__(self, delay: float, **kw) -> None:
        super().__init__(**kw)
        self.delay = delay

    def browse(self, session, action):
        yield Sleep(self.delay)
        return (yield from super().browse(session, action))


def test_show_long_poll_times_out_with_empty_packages_until_the_form_is_sent():
    state = ServerState(show_hold_s=0.15)

    async def main():
        async with Harness(state) as h:
            dev = _phone(h.base)
            state.set_script(dev.id, [[["SHOW", "${ui:plan}"]], [["GET", f"{DEVINFO}//Man"]]])
            return dev, await h.session(dev, SlowUser(1.5))  # ten holds: empty packages go by even on a busy machine

    dev, (engine, done) = asyncio.run(main())
    assert done.outcome == "completed", (done, engine.notes)
    log = state.device(dev.id)
    assert log.problems == []
    # SHOW, the flow's HGET, GET and END are 4 packages; empty ones went by while the user read
    assert engine.packages >= 5
    assert dev.tree.value("./DM2/ext-dmemulator-dataplan/i1/PlanID") == "basic-5gb"
    assert log.gets[f"{DEVINFO}//Man"] == {"Man": "Nordwave"}


def test_device_without_browser_answers_show_500_and_the_server_does_not_wait():
    state = ServerState(show_hold_s=30)

    async def main():
        async with Harness(state) as h:
            dev = _phone(h.base)
            state.set_script(dev.id, [[["SHOW", "${ui:wifi}"]]])
            t0 = time.monotonic()
            engine, done = await h.session(dev, HeadlessUi(), has_browser=False)
            return dev, done, time.monotonic() - t0

    dev, done, took = asyncio.run(main())
    assert done.outcome == "completed"
    assert [s.sc for s in state.device(dev.id).status_of("SHOW")] == [500]
    assert state.device(dev.id).ui[0].outcome == "not shown"
    assert took < 30  # not held for show_hold_s: the session would have taken 30 s


def test_session_http_error_aborts_with_the_servers_words():
    other = Authority("demo-dm2", "dm2", ("basic",), (SecretPair("not-the-device's", ""),))
    state = ServerState(dm2_authorities={"demo-dm2": other})

    async def main():
        async with Harness(state) as h:
            dev = _phone(h.base)
            return await h.session(dev, HeadlessUi())

    engine, done = asyncio.run(main())
    assert done.outcome == "failed" and done.status == 401
    assert "HTTP 401" in done.detail and "credentials" in done.detail


def test_headless_browse_reports_pages_that_never_complete():
    state = ServerState()

    async def main():
        async with Harness(state) as h:
            ctx = SessionContext(device_id="d", session_id="s", protocol="dm2", server="demo-dm2",
                                 bus=h.bus, transport=h.transport)
            from emulator.protocol.actions import OpenBrowser
            from emulator.server.ui_flows import open_ui, ui_url

            refused = await run(HeadlessUi({"ssid": ""}).browse(
                ctx, OpenBrowser("1", ui_url(open_ui(state, "wifi", "", h.base)))), ctx)
            no_form = await run(HeadlessUi().browse(ctx, OpenBrowser("2", h.base + "/repo/demo/bookmark")), ctx)
            missing = await run(HeadlessUi().browse(ctx, OpenBrowser("3", h.base + "/ui/wifi?s=expired")), ctx)
            limited = await run(HeadlessUi(max_steps=2).browse(
                ctx, OpenBrowser("4", ui_url(open_ui(state, "wifi", "", h.base)))), ctx)
            return refused, no_form, missing, limited

    refused, no_form, missing, limited = asyncio.run(main())
    assert refused.outcome == "failed" and "1 to 32 characters" in refused.text
    assert no_form.outcome == "failed" and "no form" in no_form.text
    assert missing.outcome == "failed" and "HTTP 404" in missing.text
    assert limited.outcome == "failed" and "after 2 pages" in limited.text


def test_server_refuses_what_is_not_a_dm2_package():
    state = ServerState()

    async def main():
        async with Harness(state) as h:
            t, url = h.transport, h.base + "/dm2"
            dev = {"OMADM-DevID": "IMEI:1", "Authorization": "Basic " + base64.b64encode(b"u1:demo-client-secret").decode()}
            admin = admin_headers(state.admin_token)
            init = {"Content-Type": "application/vnd.oma.dm.initiation+json"}
            resp = {"Content-Type": "application/vnd.oma.dm.response+json"}
            return {
                "no devid": await t.request("POST", url, b"{}", init),
                "bad json": await t.request("POST", url, b"{", {**init, **dev}),
                "no session": await t.request("POST", url, b'{"Status":[]}', {**resp, **dev}),
                "text": await t.request("POST", url, b"hi", {"Content-Type": "text/plain", **dev}),
                "accept": await t.request("POST", url, b'{"Alert":[]}', {**init, **dev, "Accept": "text/html"}),
                "repo put": await t.request("PUT", h.base + "/repo/IMEI:1/y", b"a,b", {"Content-Type": "text/csv", **dev}),
                "repo get": await t.request("GET", h.base + "/repo/nothing/here"),
                "script": await t.request("POST", h.base + "/admin/script/IMEI:1", b'{"steps": [["GET"]]}', admin),
                "flow": await t.request("POST", h.base + "/admin/script/IMEI:1", b'{"flow": "plan"}', admin),
                "unknown flow": await t.request("GET", h.base + "/ui/nope"),
            }

    r = asyncio.run(main())
    assert r["no devid"].status == 400 and b"OMADM-DevID" in r["no devid"].body
    assert r["bad json"].status == 400
    assert r["no session"].status == 400 and b"Package#1" in r["no session"].body
    assert r["text"].status == 415
    assert r["accept"].status == 406
    assert r["repo put"].status == 415 and "application/vnd.oma.dm.mo+json" in r["repo put"].headers["omadm-accept"]
    assert r["repo get"].status == 404
    assert r["script"].status == 400
    assert r["flow"].status == 200 and script_for(state, "IMEI:1")[1][1] == ["SHOW", "${ui:plan}"]
    assert r["unknown flow"].status == 404
