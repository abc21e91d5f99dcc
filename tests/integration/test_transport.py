"""The session transport over real loopback HTTP: answers, refusals and timeouts become HttpResults."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from emulator.transport.http import HttpTransport, Shaping


async def _serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_post_reaches_server_and_returns_body_and_headers():
    async def main():
        async def echo(request: web.Request) -> web.Response:
            body = await request.read()
            return web.Response(body=body[::-1], content_type="application/x-test",
                                headers={"X-Seen": request.headers["Content-Type"]})

        runner, base = await _serve(echo)
        transport = HttpTransport()
        try:
            result = await transport.post(base + "/dm", b"abc", "application/vnd.syncml.dm+xml")
        finally:
            await transport.aclose()
            await runner.cleanup()
        return result

    result = asyncio.run(main())
    assert result.status == 200
    assert result.body == b"cba"
    assert result.headers["x-seen"] == "application/vnd.syncml.dm+xml"


def test_refused_connection_is_a_result_not_an_exception():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now

    async def main():
        transport = HttpTransport(connect_timeout=2)
        try:
            return await transport.request("GET", f"http://127.0.0.1:{port}/")
        finally:
            await transport.aclose()

    result = asyncio.run(main())
    assert result.status == 0
    assert "cannot connect" in result.error


def test_slow_server_times_out_with_clear_error():
    async def main():
        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(2)
            return web.Response(text="late")

        runner, base = await _serve(slow)
        transport = HttpTransport(timeout=0.2)
        try:
            return await transport.request("GET", base + "/")
        finally:
            await transport.aclose()
            await runner.cleanup()

    result = asyncio.run(main())
    assert result.status == 0
    assert "no answer within 0.2 s" in result.error


def test_total_loss_drops_every_request_before_the_wire():
    async def main():
        hits = []

        async def count(request: web.Request) -> web.Response:
            hits.append(1)
            return web.Response(text="ok")

        runner, base = await _serve(count)
        transport = HttpTransport()
        try:
            r = await transport.request("GET", base + "/", shaping=Shaping(loss=1.0))
        finally:
            await transport.aclose()
            await runner.cleanup()
        return r, hits

    result, hits = asyncio.run(main())
    assert result.status == 0 and "after 5 retransmissions" in result.error
    assert hits == []


def test_partial_loss_costs_time_not_the_request():
    async def main():
        async def ok(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        runner, base = await _serve(ok)
        transport = HttpTransport()
        try:
            import random as _random

            return [await transport.request("GET", base + "/", shaping=Shaping(loss=0.5), rng=_random.Random(i))
                    for i in range(3)]
        finally:
            await transport.aclose()
            await runner.cleanup()

    assert [r.status for r in asyncio.run(main())] == [200, 200, 200]
