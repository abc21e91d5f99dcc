"""A hostile server behind real TLS on loopback tries to move the device's https session to plain http
(DM 1.2 RespURI; DM 2.0 CONT and every command URL) or to another scheme. The device refuses, says
why, and a plain-http listener next to it never hears a byte."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import EventBus
from emulator.fleet.drive import SessionContext, drive
from emulator.fleet.engines import make_engine
from emulator.fleet.headless import HeadlessUi
from emulator.protocol.syncml.commands import SyncHdr
from emulator.protocol.syncml.message import Message, build_message, parse_message
from emulator.protocol.urls import refused_url
from emulator.server.tls import serve_tls_context
from emulator.transport.http import HttpTransport, TlsConfig
from emulator.util.certs import issue_cert, load_ca, make_ca

SYNCML = "application/vnd.syncml.dm+xml"
DMACC = "urn:oma:mo:oma-dm-dmacc:1.2"
DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.2"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    ca = load_ca(make_ca(root / "ca", "Downgrade Test Root"))
    cert, key = issue_cert(ca, "dm.test", sans=["127.0.0.1"])
    return {"ca": ca.cert_path, "cert": cert, "key": key}


async def _site(app: web.Application, ssl_context=None) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return runner, runner.addresses[0][1]


def _run(pki, protocol: str, answer):
    """One session of a phone at https://127.0.0.1:<port>/dm; ``answer(body, plain_url)`` is the server."""
    heard: list[bytes] = []

    async def plain(request: web.Request) -> web.Response:
        heard.append(await request.read())
        return web.Response(text="")

    async def main():
        plain_app = web.Application()
        plain_app.router.add_route("*", "/{tail:.*}", plain)
        plain_runner, plain_port = await _site(plain_app)
        plain_url = f"http://127.0.0.1:{plain_port}"

        async def dm(request: web.Request) -> web.Response:
            return answer(await request.read(), plain_url)

        app = web.Application()
        app.router.add_post("/dm", dm)
        runner, port = await _site(app, serve_tls_context(pki["cert"], pki["key"]))
        base = f"https://127.0.0.1:{port}"
        dev = VirtualDevice(find_profile("smartphone"), 0, server=base)
        account = dev.account(protocol=protocol)
        engine = make_engine(dev, account, "s1", server_uri=base + "/dm")
        transport = HttpTransport(timeout=10)
        ctx = SessionContext(device_id=dev.id, session_id="s1", protocol=protocol, server=account.server_id,
                             bus=EventBus(), transport=transport, tls=TlsConfig(verify=str(pki["ca"])))
        try:
            done = await drive(engine, ctx, HeadlessUi())
        finally:
            await transport.aclose()
            await runner.cleanup()
            await plain_runner.cleanup()
        return done, engine

    done, engine = asyncio.run(main())
    return done, engine, heard


@pytest.mark.parametrize("resp_uri", ["{plain}/dm12", "ftp://127.0.0.1/x", "file:///etc/passwd"])
def test_dm12_resp_uri_cannot_leave_https(pki, resp_uri):
    def answer(body: bytes, plain: str) -> web.Response:
        package1 = parse_message(body, SYNCML)
        hdr = SyncHdr(session_id=package1.header.session_id, msg_id="1", target=package1.header.source,
                      source=package1.header.target, resp_uri=resp_uri.format(plain=plain))
        return web.Response(body=build_message(Message(header=hdr, commands=[], final=True)), content_type=SYNCML)

    done, _, heard = _run(pki, "dm12", answer)
    assert done.outcome == "failed" and done.status == 403
    assert "RespURI was refused" in done.detail
    assert ("downgrade refused" in done.detail) if "{plain}" in resp_uri else ("http or https only" in done.detail)
    assert heard == []


def test_dm2_cont_to_http_ends_the_session(pki):
    def answer(body: bytes, plain: str) -> web.Response:
        return web.json_response({"CMD": [["CONT", plain + "/dm"]]})

    done, _, heard = _run(pki, "dm2", answer)
    assert done.outcome == "failed" and done.status == 403 and "downgrade refused" in done.detail
    assert heard == []


def test_dm2_command_urls_cannot_leave_https(pki):
    statuses: list[int] = []

    def answer(body: bytes, plain: str) -> web.Response:
        package = json.loads(body)
        if "Status" in package:
            statuses.extend(s["sc"] for s in package["Status"])
            return web.json_response({"CMD": [["END"]]})
        return web.json_response({"CMD": [
            ["HGET", plain + "/repo", f"{DEVINFO}/DevInfo/"],
            ["HPUT", plain + "/steal", f"{DEVINFO}/DevInfo/"],
            ["HPOST", plain + "/steal", f"{DEVINFO}/DevInfo/"],
            ["SUB", f"{DMACC}/demo-dm2/", plain + "/steal"],
            ["SHOW", plain + "/page"],
            ["DEFAULT", DEVINFO, plain + "/repo"],
            ["EXEC", f"{DEVINFO}/DevInfo/", plain + "/result"],
        ]})

    done, engine, heard = _run(pki, "dm2", answer)
    assert done.outcome == "completed", done
    assert statuses == [403] * 7
    assert all("downgrade refused" in n or "http or https only" in n for n in engine.notes[:7]), engine.notes
    assert heard == [] and engine.browsed == [] and engine.pending_alerts == []


@pytest.mark.parametrize("session,url,ok", [
    ("https://a/dm", "https://b/x", True), ("http://a/dm", "https://b/x", True), ("http://a/dm", "http://b/x", True),
    ("https://a/dm", "http://a/dm", False), ("https://a/dm", "HTTP://a/dm", False), ("http://a/dm", "ftp://a/x", False),
    ("https://a/dm", "javascript:alert(1)", False), ("https://a/dm", "", False), ("https://a/dm", "//b/x", False),
])
def test_the_one_url_rule(session, url, ok):
    assert (refused_url(session, url) is None) is ok
