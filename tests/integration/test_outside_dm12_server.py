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
             quirks: Quirks | None = None, **options):
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
            (dev,) = fleet.add("smartphone", 1)
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
