"""Fleet sessions use each account's TLS settings: a CA file makes HTTPS work, none refuses clearly."""

from __future__ import annotations

import asyncio

from emulator.events import AlertRaised
from emulator.fleet.fleet import Fleet
from emulator.mo.accounts import store_tls
from emulator.server.app import start_server
from emulator.server.state import ServerState
from emulator.server.tls import make_server_identity, serve_tls_context


def _run(tmp_path, configure) -> tuple[str, str, list[AlertRaised]]:
    ca, cert, key = make_server_identity(tmp_path / "pki")

    async def main():
        server = await start_server(ServerState(), ssl_context=serve_tls_context(cert, key))
        fleet = Fleet(server=server.url)
        alerts: list[AlertRaised] = []
        fleet.bus.subscribe(alerts.append, AlertRaised)
        try:
            (dev,) = fleet.add("nbiot-sensor", 1)
            dev.bearers, dev.bearer = {}, ""  # no shaping: this test is about TLS
            configure(dev, ca)
            done = await fleet.run_session(dev.id, "dm12")
        finally:
            await fleet.aclose()
            await server.stop()
        return done.outcome, done.detail, alerts

    return asyncio.run(main())


def test_account_ca_file_lets_the_session_complete_over_https(tmp_path):
    def trust(dev, ca):
        store_tls(dev.tree, dev.account(protocol="dm12"), ca_file=str(ca))

    outcome, detail, _ = _run(tmp_path, trust)
    assert outcome == "completed", detail


def test_without_the_ca_the_session_fails_naming_the_unknown_ca(tmp_path):
    outcome, detail, _ = _run(tmp_path, lambda dev, ca: None)
    assert outcome == "failed"
    assert "unknown CA" in detail


def test_verification_off_works_and_is_reported_as_a_warning(tmp_path):
    def insecure(dev, ca):
        store_tls(dev.tree, dev.account(protocol="dm12"), verify=False)

    outcome, detail, alerts = _run(tmp_path, insecure)
    assert outcome == "completed", detail
    assert any(a.alert_type == "tls" and "verif" in a.detail.lower() for a in alerts)
