"""DM-HLF-018: a session goes to the server that owns what it is about, not always to the
highest-priority account: the MO node of a generic alert, a scenario group's named server, the
ServerURI of an asynchronous result. Two outside DM 1.2 servers on loopback, one per authority."""

from __future__ import annotations

import asyncio
import textwrap

from outside_dm12 import OutsideDm12, serve

from emulator.device.profile import find_profile
from emulator.fleet.fleet import Fleet
from emulator.mo.accounts import account_for_url
from emulator.protocol.syncml.client import GenericAlert
from emulator.protocol.syncml.commands import Alert
from emulator.scenarios.model import load_scenario
from emulator.scenarios.runner import ScenarioRunner

ACME = '''
[[extra_mos]]
path = "./Vendor/Acme"
format = "node"

[[extra_mos]]
path = "./Vendor/Acme/State"
value = "idle"

[[accounts]]
server_id = "acme"
protocol = "dm12"
server_uri = "{url}"
auth = "md5"
client_secret = "acme-secret"
server_secret = "acme-server"
acl_scope = ["./Vendor/Acme"]
priority = 0
'''


def _alerts(server: OutsideDm12) -> list[Alert]:
    return [c for m in server.received for c in m.commands if isinstance(c, Alert) and c.code == 1226]


def _two_servers(profile_with, body):
    demo, acme = OutsideDm12(), OutsideDm12()

    async def main():
        r1, demo_url = await serve(demo)
        r2, acme_url = await serve(acme)
        try:
            path = profile_with(ACME.format(url=acme_url))
            return await body(find_profile(str(path)), demo_url, path)
        finally:
            await r1.cleanup()
            await r2.cleanup()

    result = asyncio.run(main())
    return demo, acme, result


def test_generic_alert_goes_to_the_server_that_owns_its_node(profile_with):
    async def body(prof, demo_url, _):
        fleet = Fleet(server=demo_url.rsplit("/", 1)[0])
        try:
            (dev,) = fleet.add(prof, 1)
            dev.bearers, dev.bearer = {}, ""
            from emulator.mo.accounts import configure_account

            configure_account(dev.tree, dev.account("demo-dm12"), server_uri=demo_url)
            owned = GenericAlert("Reversed-Domain-Name: com.acme.state", "chr", "busy", "./Vendor/Acme/State")
            other = GenericAlert("Reversed-Domain-Name: com.example.battery", "chr", "low", "./DevInfo/Mod")
            a = await fleet.run_session(dev.id, "dm12", generic_alerts=[owned], server_auth="none")
            b = await fleet.run_session(dev.id, "dm12", generic_alerts=[other], server_auth="none")
            return a, b
        finally:
            await fleet.aclose()

    demo, acme, (a, b) = _two_servers(profile_with, body)
    assert a.outcome == b.outcome == "completed", (a.detail, b.detail)
    assert [al.items[0].data for al in _alerts(acme)] == ["busy"]  # not the priority-10 demo server
    assert [al.items[0].data for al in _alerts(demo)] == ["low"]


def test_scenario_group_names_its_server(profile_with, tmp_path):
    async def body(prof, demo_url, path):
        scenario = tmp_path / "s.toml"
        scenario.write_text(textwrap.dedent(f"""
            [[devices]]
            name = "acme-phones"
            profile = "{path}"
            protocol = "dm12"
            server = "acme"
            server_auth = "none"
        """))
        return await ScenarioRunner(load_scenario(scenario), demo_url.rsplit("/", 1)[0]).run()

    demo, acme, result = _two_servers(profile_with, body)
    assert result.report()["sessions_completed"] == 1, result.report()["results"]
    assert len(acme.received) >= 2 and not demo.received


def test_account_for_url_matches_by_origin_only(profile_with):
    prof = find_profile(str(profile_with(ACME.format(url="https://acme.example:8443/omadm"))))
    from emulator.device.virtual import VirtualDevice

    dev = VirtualDevice(prof, 0, server="http://127.0.0.1:9")
    accounts = dev.accounts("dm12")
    assert account_for_url(accounts, "https://ACME.example:8443/results?x=1").server_id == "acme"
    assert account_for_url(accounts, "http://acme.example:8443/results") is None  # another scheme
    assert account_for_url(accounts, "not a url") is None
