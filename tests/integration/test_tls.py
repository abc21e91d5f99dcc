"""Real TLS over loopback: the device's transport against an aiohttp server with generated certificates.

Every refusal a tester meets in the field (unknown CA, expired certificate, wrong host name, a server
that wants a client certificate) must end the request with status 0 and a sentence that names the
cause, never with an ssl traceback.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from emulator.protocol.actions import HttpResult
from emulator.server.tls import peer_common_name, serve_tls_context
from emulator.transport.http import HttpTransport, TlsConfig
from emulator.util.certs import export_pkcs12, issue_cert, issue_device_certs, load_ca, make_ca
from tests.integration.tls_servers import alerting_server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    ca = load_ca(make_ca(root / "ca", "Test Root"))
    other = load_ca(make_ca(root / "other", "Somebody Else's Root"))
    past = datetime.now(UTC) - timedelta(days=30)
    files: dict[str, Path] = {"ca": ca.cert_path, "other_ca": other.cert_path}
    files["server"], files["server_key"] = issue_cert(ca, "dm.test", sans=["127.0.0.1", "localhost"])
    files["expired"], files["expired_key"] = issue_cert(
        ca, "old.test", sans=["127.0.0.1"], not_before=past, not_after=past + timedelta(days=1)
    )
    files["elsewhere"], files["elsewhere_key"] = issue_cert(ca, "elsewhere", sans=["dm.elsewhere.example"])
    devices = issue_device_certs(ca, ["IMEI:350000000000001", "IMEI:350000000000002"])
    files["dev1"], files["dev1_key"] = devices["IMEI:350000000000001"]
    files["dev2"], files["dev2_key"] = devices["IMEI:350000000000002"]
    files["stranger"], files["stranger_key"] = issue_cert(other, "IMEI:999", client=True)
    return files


async def _fetch(server_ctx: ssl.SSLContext, tls: TlsConfig, *, host: str = "127.0.0.1",
                 times: int = 1) -> tuple[list[HttpResult], list[str | None]]:
    """Start an HTTPS server, make ``times`` requests through a fresh transport, stop everything."""
    seen: list[str | None] = []

    async def who(request: web.Request) -> web.Response:
        cn = peer_common_name(request.transport)
        seen.append(cn)
        return web.Response(text=f"hello {cn}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", who)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, ssl_context=server_ctx).start()
    transport = HttpTransport(timeout=5, connect_timeout=5)
    url = f"https://{host}:{sock.getsockname()[1]}/dm"
    try:
        results = [await transport.post(url, b"{}", "application/json", tls=tls) for _ in range(times)]
    finally:
        await transport.aclose()
        await runner.cleanup()
    return results, seen


def fetch(server_ctx: ssl.SSLContext, tls: TlsConfig, **kw) -> tuple[HttpResult, list[str | None]]:
    results, seen = asyncio.run(_fetch(server_ctx, tls, **kw))
    return results[-1], seen


def test_https_with_the_ca_file_of_the_account(pki):
    result, seen = fetch(serve_tls_context(pki["server"], pki["server_key"]), TlsConfig(verify=str(pki["ca"])))
    assert result.status == 200, result.error
    assert result.body == b"hello None"  # no client certificate asked for, none sent
    assert seen == [None]


def test_localhost_name_matches_the_certificate(pki):
    result, _ = fetch(serve_tls_context(pki["server"], pki["server_key"]), TlsConfig(verify=str(pki["ca"])),
                      host="localhost")
    assert result.status == 200, result.error


def test_unknown_ca_is_refused_and_named(pki):
    result, seen = fetch(serve_tls_context(pki["server"], pki["server_key"]),
                         TlsConfig(verify=str(pki["other_ca"])))
    assert result.status == 0
    assert "TLS refused" in result.error and "unknown CA" in result.error
    assert str(pki["other_ca"]) in result.error  # says what it was checked against
    assert seen == []


def test_system_store_does_not_trust_a_test_ca(pki):
    result, _ = fetch(serve_tls_context(pki["server"], pki["server_key"]), TlsConfig())
    assert result.status == 0
    assert "unknown CA" in result.error and "system trust store" in result.error


def test_expired_server_certificate_is_refused(pki):
    result, _ = fetch(serve_tls_context(pki["expired"], pki["expired_key"]), TlsConfig(verify=str(pki["ca"])))
    assert result.status == 0
    assert "the server's certificate has expired" in result.error


def test_wrong_host_name_is_refused(pki):
    result, _ = fetch(serve_tls_context(pki["elsewhere"], pki["elsewhere_key"]),
                      TlsConfig(verify=str(pki["ca"])))
    assert result.status == 0
    assert "wrong host name" in result.error and "127.0.0.1" in result.error


def test_verification_off_connects_anyway_and_warns(pki, caplog):
    with caplog.at_level(logging.WARNING, logger="emulator.transport.http"):
        result, _ = fetch(serve_tls_context(pki["elsewhere"], pki["elsewhere_key"]), TlsConfig(verify=False))
    assert result.status == 200, result.error
    assert TlsConfig(verify=False).warning and "verification is OFF" in TlsConfig(verify=False).warning
    assert any("verification is OFF" in r.getMessage() for r in caplog.records)
    assert TlsConfig(verify=str(pki["ca"])).warning is None


def test_missing_client_certificate_when_required(pki):
    ctx = serve_tls_context(pki["server"], pki["server_key"], client_ca=pki["ca"], require_client_cert=True)
    result, seen = fetch(ctx, TlsConfig(verify=str(pki["ca"])))
    assert result.status == 0
    assert "client certificate" in result.error and "has none" in result.error
    assert seen == []


def test_mutual_tls_server_sees_each_device(pki):
    ctx = serve_tls_context(pki["server"], pki["server_key"], client_ca=pki["ca"], require_client_cert=True)
    one, seen1 = fetch(ctx, TlsConfig(str(pki["ca"]), str(pki["dev1"]), str(pki["dev1_key"])))
    two, seen2 = fetch(ctx, TlsConfig(str(pki["ca"]), str(pki["dev2"]), str(pki["dev2_key"])))
    assert (one.status, two.status) == (200, 200), (one.error, two.error)
    assert seen1 == ["IMEI:350000000000001"] and seen2 == ["IMEI:350000000000002"]


def test_client_certificate_from_an_unknown_ca_is_refused(pki):
    ctx = serve_tls_context(pki["server"], pki["server_key"], client_ca=pki["ca"], require_client_cert=True)
    result, seen = fetch(ctx, TlsConfig(str(pki["ca"]), str(pki["stranger"]), str(pki["stranger_key"])))
    assert result.status == 0
    assert "refused the device's client certificate" in result.error and str(pki["stranger"]) in result.error
    assert seen == []


def test_pkcs12_client_certificate(pki, tmp_path):
    bundle = export_pkcs12(pki["dev2"], pki["dev2_key"], tmp_path / "dev2.p12", password="s3cret")
    ctx = serve_tls_context(pki["server"], pki["server_key"], client_ca=pki["ca"], require_client_cert=True)
    result, seen = fetch(ctx, TlsConfig(str(pki["ca"]), str(bundle), client_password="s3cret"))
    assert result.status == 200, result.error
    assert seen == ["IMEI:350000000000002"]


def test_wrong_pkcs12_password_is_a_clear_set_up_error(pki, tmp_path):
    bundle = export_pkcs12(pki["dev2"], pki["dev2_key"], tmp_path / "dev2.p12", password="right")
    ctx = serve_tls_context(pki["server"], pki["server_key"])
    result, seen = fetch(ctx, TlsConfig(str(pki["ca"]), str(bundle), client_password="wrong"))
    assert result.status == 0
    assert "TLS set-up failed" in result.error and "dev2.p12" in result.error and "password" in result.error
    assert seen == []


def test_missing_ca_file_is_a_clear_set_up_error(pki, tmp_path):
    result, _ = fetch(serve_tls_context(pki["server"], pki["server_key"]),
                      TlsConfig(verify=str(tmp_path / "nope.pem")))
    assert result.status == 0
    assert "TLS set-up failed" in result.error and "nope.pem" in result.error


def test_a_reset_after_a_good_handshake_is_not_blamed_on_certificates(pki):
    """Once the server has answered with a configuration, later drops are not TLS refusals."""

    async def main() -> list[HttpResult]:
        calls = 0

        async def flaky(request: web.Request) -> web.StreamResponse:
            nonlocal calls
            calls += 1
            if calls >= 2:  # aiohttp retries an idempotent request once on a dropped connection
                request.transport.abort()  # the connection dies mid-request
                await asyncio.sleep(0.05)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", flaky)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock, ssl_context=serve_tls_context(pki["server"], pki["server_key"])).start()
        transport = HttpTransport(timeout=5)
        url = f"https://127.0.0.1:{sock.getsockname()[1]}/"
        try:
            return [await transport.request("GET", url, tls=TlsConfig(str(pki["ca"]))) for _ in range(2)]
        finally:
            await transport.aclose()
            await runner.cleanup()

    first, second = asyncio.run(main())
    assert first.status == 200
    assert second.status == 0 and "TLS" not in second.error


def test_plain_http_port_gives_a_clear_error(pki):
    async def main() -> HttpResult:
        async def plain(request: web.Request) -> web.Response:
            return web.Response(text="plain")

        app = web.Application()
        app.router.add_get("/", plain)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        transport = HttpTransport(timeout=5)
        try:
            return await transport.request("GET", f"https://127.0.0.1:{sock.getsockname()[1]}/",
                                           tls=TlsConfig(str(pki["ca"])))
        finally:
            await transport.aclose()
            await runner.cleanup()

    result = asyncio.run(main())
    assert result.status == 0
    assert "does not speak TLS" in result.error


@pytest.mark.parametrize(("client", "expected"), [
    (None, "requires a client certificate and the device has none configured"),
    ("stranger", "does not trust the device's client certificate (unknown CA)"),
])
def test_alerts_of_servers_that_send_them_are_named(pki, client, expected):
    ctx = serve_tls_context(pki["server"], pki["server_key"], client_ca=pki["ca"], require_client_cert=True)
    port, thread = alerting_server(ctx)
    tls = TlsConfig(str(pki["ca"]), *(str(pki[client]), str(pki[client + "_key"])) if client else ())

    async def main() -> HttpResult:
        transport = HttpTransport(timeout=5)
        try:
            return await transport.request("GET", f"https://127.0.0.1:{port}/", tls=tls)
        finally:
            await transport.aclose()

    result = asyncio.run(main())
    thread.join(5)
    assert result.status == 0
    assert expected in result.error
    assert "probably" not in result.error  # the alert itself was read, not guessed from a reset


def test_account_tls_nodes_give_each_device_its_identity(pki, tmp_path):
    """Ext/TLS of a DMAcc entry -> Account -> TlsConfig -> the server sees that device's certificate."""
    from emulator.device.build import device_tree
    from emulator.device.profile import find_profile
    from emulator.mo.accounts import read_accounts, store_tls

    identity, tree = device_tree(find_profile("smartphone"), 0, server="https://127.0.0.1:1")
    ca = load_ca((pki["ca"], pki["ca"].with_suffix(".key")))
    cert, key = issue_device_certs(ca, [identity.dev_id], directory=tmp_path)[identity.dev_id]
    for account in read_accounts(tree):
        assert TlsConfig.for_account(account) == TlsConfig()  # nothing configured: system store, verify on
        store_tls(tree, account, ca_file=str(pki["ca"]), client_cert=str(cert), client_key=str(key))
    accounts = read_accounts(tree)
    assert {a.protocol for a in accounts} == {"dm2", "dm12"}
    tls = TlsConfig.for_account(accounts[0])
    assert tls == TlsConfig(str(pki["ca"]), str(cert), str(key))
    ctx = serve_tls_context(pki["server"], pki["server_key"], client_ca=pki["ca"], require_client_cert=True)
    result, seen = fetch(ctx, tls)
    assert result.status == 200, result.error
    assert seen == [identity.dev_id]

    store_tls(tree, accounts[0], verify=False)
    off = TlsConfig.for_account(read_accounts(tree)[0])
    assert off.verify is False and off.warning


def test_server_command_serves_https_and_requires_client_certificates(tmp_path):
    """`dm-emulator server --tls --require-client-cert`: its CA is printed; devices with a certificate
    from it get in, devices without one are refused; a restart keeps the same CA."""
    import signal
    import subprocess
    import sys

    tls_dir = tmp_path / "tls"
    cmd = [sys.executable, "-m", "emulator", "server", "--port", "0", "--tls", "--tls-dir", str(tls_dir),
           "--require-client-cert"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        proc.stdout.readline()
        third = proc.stdout.readline()
        assert first.startswith("reference DM server on https://127.0.0.1:"), first
        ca_file = tls_dir / "ca.pem"
        assert str(ca_file) in third and "required" in third
        url = first.split()[-1] + "/"
        device = issue_device_certs(load_ca((ca_file, tls_dir / "ca.key")), ["IMEI:1"], directory=tmp_path)["IMEI:1"]

        async def main() -> tuple[HttpResult, HttpResult]:
            transport = HttpTransport(timeout=5)
            try:
                with_cert = await transport.request("GET", url, tls=TlsConfig(str(ca_file), *map(str, device)))
                without = await transport.request("GET", url, tls=TlsConfig(str(ca_file)))
                return with_cert, without
            finally:
                await transport.aclose()

        with_cert, without = asyncio.run(main())
        assert with_cert.status == 200 and b"/dm2" in with_cert.body, with_cert.error
        assert without.status == 0 and "client certificate" in without.error
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    before = ca_file.read_bytes()
    from emulator.server.tls import make_server_identity

    assert make_server_identity(tls_dir)[0].read_bytes() == before  # reused, devices keep trusting it


def test_server_listens_on_loopback_unless_told_otherwise():
    from emulator.cli import build_parser

    args = build_parser().parse_args(["server"])
    assert args.host == "127.0.0.1" and args.tls is False
    assert build_parser().parse_args(["server", "--host", "0.0.0.0"]).host == "0.0.0.0"


def test_client_contexts_verify_by_default_and_only_off_when_asked(pki):
    default = TlsConfig().ssl_context()
    with_ca = TlsConfig(str(pki["ca"])).ssl_context()
    off = TlsConfig(verify=False).ssl_context()
    for ctx in (default, with_ca):
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert with_ca.cert_store_stats()["x509_ca"] == 1  # exactly the account's CA, not the system store
    assert off.verify_mode == ssl.CERT_NONE and not off.check_hostname
    assert TlsConfig(client_password="pw") != TlsConfig() and "pw" not in repr(TlsConfig(client_password="pw"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/", "http://a:b:c/", "https://[::1/", "ftp://x/"])
def test_urls_a_server_may_send_never_raise(url):
    """DM 2.0 HGET/HPUT targets come from the server: whatever they are, the answer is a result."""

    async def main() -> HttpResult:
        transport = HttpTransport(connect_timeout=1)
        try:
            return await transport.request("GET", url)
        finally:
            await transport.aclose()

    result = asyncio.run(main())
    assert result.status == 0 and result.error.startswith(f"GET {url}: ")
    assert "TLS" not in result.error and "ExceptionGroup" not in result.error
