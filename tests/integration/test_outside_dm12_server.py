"""Our devices against a DM 1.2 server we did not write (outside_dm12.py), over real loopback HTTP/TLS.

That server never sends DM-layer credentials. The shipped md5 profile must get through by the
account's server authentication policy alone, its own md5 credentials untouched.
"""

from __future__ import annotations

import asyncio

from outside_dm12 import OutsideDm12, Quirks, serve

from emulator.events import AlertRaised, SessionEnded
from emulator.fleet.fleet import Fleet
from emulator.mo.accounts import configure_account, store_tls
from emulator.protocol.syncml import codes
from emulator.server.tls import make_server_identity, serve_tls_context


def _session(tmp_path, *, tls: bool = False, server_auth: str | None = None, configure=None,
             quirks: Quirks | None = None, profile: str = "smartphone", **options):
    outside = OutsideDm12(quirks)

    async def main():
        ctx = None
        ca = None
        if tls:
            ca, cert, key = make_server_identity(tmp_path / "pki")
            ctx = serve_tls_context(cert, key)
        runner, url = await serve(outside, ctx)
        fleet = Fleet(server="http://127.0.0.1:1")
        events: list[object] = []
        fleet.bus.subscribe(events.append, AlertRaised, SessionEnded)
        try:
            (dev,) = fleet.add(profile, 1)
            dev.bearers, dev.bearer = {}, ""  # no shaping: this test is about authentication
            account = dev.account(protocol="dm12")
            if ca is not None:
                store_tls(dev.tree, account, ca_file=str(ca))
            if configure is not None:
                configure(dev)
            if server_auth is not None:
                options["server_auth"] = server_auth
            done = await fleet.run_session(dev.id, "dm12", server_uri=url, **options)
        finally:
            await fleet.aclose()
            await runner.cleanup()
        return done, events, dev

    done, events, dev = asyncio.run(main())
    return done, events, dev, outside


def test_default_policy_fails_against_a_server_without_credentials_and_names_the_option(tmp_path):
    done, _, _, outside = _session(tmp_path)
    assert done.outcome == "failed"
    assert "missing credentials" in done.detail
    assert "--server-auth" in done.detail and "server_auth" in done.detail
    assert outside.received[0].header.cred.type == codes.AUTH_MD5


def test_transport_policy_over_verified_tls_completes_with_the_md5_profile_untouched(tmp_path):
    done, events, dev, outside = _session(tmp_path, tls=True, server_auth="transport")
    assert done.outcome == "completed", done.detail
    assert outside.received[0].header.cred.type == codes.AUTH_MD5  # the device's own scheme is unchanged
    assert outside.results["./DevInfo/Mod"] == dev.tree.value("./DevInfo/Mod")
    assert not any(isinstance(e, AlertRaised) and e.alert_type == "server-auth" for e in events)


def test_transport_policy_from_the_tree_setting(tmp_path):
    def policy(dev):
        configure_account(dev.tree, dev.account(protocol="dm12"), server_auth="transport")

    done, _, _, _ = _session(tmp_path, tls=True, configure=policy)
    assert done.outcome == "completed", done.detail


def test_hmac_device_with_transport_policy_over_tls_and_without_it(tmp_path):
    """auth-MAC servers sign every message; one that signs none gets through by TLS, not without."""
    done, _, _, outside = _session(tmp_path, tls=True, server_auth="transport", profile="nbiot-sensor")
    assert done.outcome == "completed", done.detail
    assert "./DevInfo/Mod" in outside.results
    done, _, _, _ = _session(tmp_path / "plain", profile="nbiot-sensor")
    assert done.outcome == "failed" and "--server-auth" in done.detail


def test_none_policy_over_plain_http_completes_and_warns(tmp_path):
    done, events, _, outside = _session(tmp_path, server_auth="none")
    assert done.outcome == "completed", done.detail
    assert "./DevInfo/Mod" in outside.results
    assert any(isinstance(e, AlertRaised) and e.alert_type == "server-auth" and "OFF" in e.detail for e in events)


def test_transport_policy_over_plain_http_fails_saying_why(tmp_path):
    done, _, _, outside = _session(tmp_path, server_auth="transport")
    assert done.outcome == "failed"
    assert "plain HTTP" in done.detail and "server authentication 'transport'" in done.detail
    assert "./DevInfo/Mod" not in outside.results  # nothing ran for an unauthenticated server


def test_transport_policy_with_verification_off_is_not_enough(tmp_path):
    def insecure(dev):
        store_tls(dev.tree, dev.account(protocol="dm12"), verify=False)

    done, _, _, _ = _session(tmp_path, tls=True, server_auth="transport", configure=insecure)
    assert done.outcome == "failed"
    assert "verification off" in done.detail


# --- server quirks: tolerated, reported per session, fatal in strict mode ----------------------------

QUIRKY = Quirks(reuse_cmd_ids=True, status_disorder=True, auth_code_later=212)


def test_quirks_are_tolerated_and_each_reported_once_as_a_session_warning(tmp_path):
    done, events, _, outside = _session(tmp_path, server_auth="none", quirks=QUIRKY)
    assert done.outcome == "completed", done.detail
    assert "./DevInfo/Mod" in outside.results  # tolerated: the session did its work
    (ended,) = [e for e in events if isinstance(e, SessionEnded)]
    assert ended.warnings == done.warnings
    text = "\n".join(done.warnings)
    assert "CmdID reused" in text and "Status children out of DTD order" in text
    assert "212 where 200 is due (our MsgID 2 carried no credentials)" in text
    assert len(done.warnings) == 3  # each kind once, however often it happened
    assert any("more time" in w for w in done.warnings if "out of DTD order" in w)


def test_a_well_behaved_server_gives_no_warnings(tmp_path):
    done, _, _, _ = _session(tmp_path, server_auth="none")
    assert done.outcome == "completed" and done.warnings == ()


def test_strict_mode_fails_the_session_at_the_first_deviation(tmp_path):
    done, _, _, outside = _session(tmp_path, server_auth="none", quirks=Quirks(reuse_cmd_ids=True), strict=True)
    assert done.outcome == "failed"
    assert "strict mode" in done.detail and "CmdID reused" in done.detail
    assert not outside.results  # the Get of the deviating message did not run


def test_run_report_junit_and_summary_carry_the_warnings(tmp_path, capsys):
    from emulator.commands.run import print_summary, write_junit
    from emulator.scenarios.model import default_scenario
    from emulator.scenarios.runner import ScenarioRunner

    outside = OutsideDm12(QUIRKY)

    async def main():
        runner, url = await serve(outside)
        try:
            return await ScenarioRunner(default_scenario("smartphone", 2, "dm12"), url,
                                        session_options={"server_auth": "none"}).run()
        finally:
            await runner.cleanup()

    result = asyncio.run(main())
    report = result.report()
    assert report["sessions_completed"] == 2 and report["sessions_with_warnings"] == 2
    assert all(any("CmdID reused" in w for w in r["warnings"]) for r in report["results"])
    junit = tmp_path / "run.xml"
    write_junit(result, str(junit))
    from xml.etree import ElementTree as ET

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.find("properties/property[@name='sessions_with_warnings']").get("value") == "2"
    case = suite.find("testcase[@classname='fleet.devices']")
    assert any("CmdID reused" in p.get("value") for p in case.findall("properties/property[@name='server_warning']"))
    assert case.find("failure") is None  # warnings do not fail a run unless --strict
    print_summary(result)
    assert "warning: " in capsys.readouterr().err


def test_opaque_chr_data_from_a_wbxml_server_is_stored_as_text(tmp_path):
    """libwbxml-style servers send chr Data as OPAQUE: the device stores the text, not b'...'."""
    from aiohttp import web

    from emulator.protocol.syncml.commands import Add, Item, Message, Meta, Status, SyncHdr
    from emulator.protocol.syncml.message import build_message, content_type, parse_message

    seen: list[Message] = []

    async def handle(request: web.Request) -> web.Response:
        msg = parse_message(await request.read(), request.headers["Content-Type"])
        seen.append(msg)
        h = msg.header
        hdr = SyncHdr(session_id=h.session_id, msg_id=str(len(seen)), target=h.source, source=h.target)
        cmds: list = [Status(cmd_id="1", msg_ref=h.msg_id, cmd_ref="0", cmd="SyncHdr", code=212 if len(seen) == 1
                             else 200)]
        cmds += [Status(cmd_id=str(i), msg_ref=h.msg_id, cmd_ref=c.cmd_id, cmd=c.name, code=200)
                 for i, c in enumerate((c for c in msg.commands if c.name not in ("Status", "Results")), 2)]
        if len(seen) == 1:
            cmds.append(Add(cmd_id=str(len(cmds) + 1), items=[
                Item(target="./ChrTest", meta=Meta(format="chr"), data=b"test model")]))
        body = build_message(Message(header=hdr, commands=cmds, final=True), wbxml=True)
        return web.Response(body=body, content_type=content_type(wbxml=True))

    async def main():
        app = web.Application()
        app.router.add_post("/omadm", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/omadm"  # type: ignore[union-attr]
        fleet = Fleet(server="http://127.0.0.1:1")
        try:
            (dev,) = fleet.add("smartphone", 1)
            dev.bearers, dev.bearer = {}, ""
            done = await fleet.run_session(dev.id, "dm12", server_uri=url, server_auth="none")
            return done, dev
        finally:
            await fleet.aclose()
            await runner.cleanup()

    done, dev = asyncio.run(main())
    assert done.outcome == "completed", done.detail
    assert dev.tree.value("./ChrTest") == "test model"
