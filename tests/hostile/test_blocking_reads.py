"""The blocking transport (httpx, Locust's users) against the same hostile server as the asyncio one:
a body trickled byte by byte ends at the request deadline, a flood or a gzip bomb stops at the limit."""

from __future__ import annotations

import asyncio

import pytest
from hostile_peer import Exchange, PeerThread, gzip_bomb

from emulator.transport.blocking import BlockingTransport
from emulator.transport.bodies import raw_margin

LIMIT = 16384


def _request(script, limit: int = LIMIT, **kw):
    transport = BlockingTransport(**kw)
    with PeerThread(script) as peer:
        try:
            result = transport.request("POST", peer.url + "/dm", b"<SyncML/>", max_body=limit)
        finally:
            transport.close()
    return result, peer


def test_a_trickled_body_ends_at_the_deadline():
    async def trickle(ex: Exchange) -> None:
        await ex.head(200, {"Content-Type": "application/vnd.syncml.dm+xml", "Content-Length": "1000"})
        for _ in range(200):  # bounded: 200 bytes, 0.1 s apart, each well inside the read timeout
            await ex.send(b"<")
            await asyncio.sleep(0.1)

    result, peer = _request(trickle, timeout=5, deadline=0.5)
    assert result.status == 0 and "did not finish within the deadline of 0.5 s" in result.error
    assert peer.sent < 200 + 200  # headers and part of the body: it hung up early


@pytest.mark.parametrize("size,ok", [(LIMIT, True), (LIMIT + 1, False)])
def test_max_body_is_exact(size, ok):
    async def answer(ex: Exchange) -> None:
        await ex.answer(b"a" * size)

    result, _ = _request(answer)
    assert (result.status == 200) is ok and result.too_large is not ok


def test_a_flood_without_length_stops_at_the_limit():
    async def flood(ex: Exchange) -> None:
        await ex.head(200, {"Transfer-Encoding": "chunked"})
        frame = b"10000\r\n" + b"a" * 65536 + b"\r\n"
        for _ in range(150 * 16):
            await ex.send(frame)

    result, peer = _request(flood)
    assert result.too_large
    read = int(result.error.rsplit("after ", 1)[1].split()[0])
    assert LIMIT < read <= LIMIT + raw_margin(LIMIT) + 65536 + 16
    assert peer.sent < 32 * 1024 * 1024


def test_a_gzip_bomb_is_not_unpacked():
    bomb = gzip_bomb(200)

    async def explode(ex: Exchange) -> None:
        await ex.answer(bomb, headers={"Content-Encoding": "gzip"})

    result, _ = _request(explode, limit=1 << 20)
    assert result.too_large and "decoded size" in result.error
