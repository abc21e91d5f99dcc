"""The documented DM 1.3 deviation, end to end: a DM server that offers only TLS 1.1 is refused.

DM 1.3 makes TLS 1.1 mandatory (ERELD 4.3); this project refuses every version older than 1.2 (README
"Deliberate deviation: no TLS 1.1"). The reference server is started with a TLS 1.1-only context on
loopback and a DM 1.3 device, trusting its CA, tries a session: it must fail naming TLS, and the
server must never see a DM message. A control client that still allows TLS 1.1 shows the server
really speaks it; where the local OpenSSL forbids TLS 1.1 even at security level 0, the test says so
in its skip reason, and the device's own context is still checked to refuse anything below TLS 1.2.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings

import pytest

from emulator.fleet.fleet import Fleet
from emulator.mo.accounts import store_tls
from emulator.protocol.actions import HttpResult
from emulator.server.app import start_server
from emulator.server.state import ServerState
from emulator.server.tls import make_server_identity, serve_tls_context
from emulator.transport.http import HttpTransport, TlsConfig
from tests.integration.tls_servers import alerting_server

LEGACY = "DEFAULT:@SECLEVEL=0"
"""OpenSSL 3 refuses TLS 1.1 at its default security level; level 0 is the only way to offer it."""


def _tls11_only(ctx: ssl.SSLContext) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers(LEGACY)
    return ctx


def _server_context(tmp_path):
    """(CA file, a TLS 1.1-only server context), or a skip naming the OpenSSL policy that forbids it."""
    ca, cert, key = make_server_identity(tmp_path / "pki")
    try:
        return ca, _tls11_only(serve_tls_context(cert, key))
    except (ssl.SSLError, ValueError) as exc:
        pytest.skip(f"{ssl.OPENSSL_VERSION} will not even configure a TLS 1.1-only server context "
                    f"(OpenSSL security policy): {exc}")


def _negotiated(port: int, ca: str) -> str:
    """The version a client that still allows TLS 1.1 gets from the server (the control)."""
    ctx = _tls11_only(ssl.create_default_context(cafile=ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.version() or ""


def test_device_contexts_refuse_anything_below_tls_1_2():
    ctx = TlsConfig().ssl_context()
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_tls_1_1_only_dm_server_is_refused_by_a_dm13_device(tmp_path):
    ca, server_ctx = _server_context(tmp_path)

    async def main():
        state = ServerState()
        server = await start_server(state, ssl_context=server_ctx)
        fleet = Fleet(server=server.url)
        try:
            port = int(server.url.rsplit(":", 1)[1])
            try:
                control = await asyncio.to_thread(_negotiated, port, str(ca))
            except (ssl.SSLError, OSError) as exc:
                return f"skip: {exc}", None, None
            (dev,) = fleet.add("smartphone-dm13", 1)
            dev.bearers, dev.bearer = {}, ""  # no shaping: this test is about TLS
            store_tls(dev.tree, dev.account(protocol="dm12"), ca_file=str(ca))
            done = await fleet.run_session(dev.id, "dm12")
            return control, done, state.dm12_sessions.get(dev.id, [])
        finally:
            await fleet.aclose()
            await server.stop()

    control, done, sessions = asyncio.run(main())
    if control.startswith("skip: "):
        pytest.skip(f"{ssl.OPENSSL_VERSION} refuses a TLS 1.1 handshake even at @SECLEVEL=0 (OpenSSL security "
                    f"policy), so no TLS 1.1-only server can be shown here: {control[6:]}")
    assert control == "TLSv1.1"  # the server really offers TLS 1.1, and only that
    assert done.outcome == "failed" and "TLS refused" in done.detail, done.detail
    assert sessions == []  # not one DM message reached the server


def test_the_refusal_names_the_tls_version_when_the_server_sends_its_alert(tmp_path):
    """asyncio's TLS server drops its alert (the session above sees an early EOF); a server that sends
    it, as most do, gets the device to say why: no TLS version both sides accept."""
    ca, ctx = _server_context(tmp_path)
    port, thread = alerting_server(ctx)

    async def main() -> HttpResult:
        transport = HttpTransport(timeout=5)
        try:
            return await transport.request("POST", f"https://127.0.0.1:{port}/dm12", b"<SyncML/>",
                                           tls=TlsConfig(str(ca)))
        finally:
            await transport.aclose()

    result = asyncio.run(main())
    thread.join(5)
    assert result.status == 0
    assert "no TLS version both sides accept (the device needs TLS 1.2 or later)" in result.error, result.error
