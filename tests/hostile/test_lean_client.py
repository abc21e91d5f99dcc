"""The lean client of session messages (emulator/transport/lean.py) against a raw-socket peer: what a
well-behaved HTTP client library would otherwise guarantee, checked here for ours."""

from __future__ import annotations

import asyncio

from hostile_peer import Exchange, HostilePeer

from emulator.transport.http import HttpTransport
from emulator.transport.lean import MAX_HEADER_BYTES

DM = "application/vnd.syncml.dm+xml"


async def _posts(script, n=1, concurrent=False, **transport_kw):
    transport = HttpTransport(**transport_kw)
    async with HostilePeer(script) as peer:
        peer.base = peer.url  # type: ignore[attr-defined]  # for after the peer closed
        try:
            calls = [transport.post(f"{peer.url}/dm?n={i}", b"<SyncML/>", DM) for i in range(n)]
            if concurrent:
                results = await asyncio.gather(*calls)
            else:
                results = [await c for c in calls]
        finally:
            await transport.aclose()
    return results, peer


def test_one_connection_carries_every_message_in_turn():
    async def answer(ex: Exchange) -> None:
        await ex.answer(b"ok " + ex.path.encode())

    results, peer = asyncio.run(_posts(answer, n=5))
    assert [r.body for r in results] == [f"ok /dm?n={i}".encode() for i in range(5)]
    assert len({id(ex.writer) for ex in peer.requests}) == 1  # one keep-alive connection
    first = peer.requests[0]
    assert first.method == "POST" and first.headers["content-type"] == DM
    assert first.headers["host"] == peer.base.split("//")[1] and first.headers["content-length"] == "9"
    assert first.body == b"<SyncML/>"


def test_no_more_connections_than_the_pool_allows():
    async def slow(ex: Exchange) -> None:
        await asyncio.sleep(0.05)
        await ex.answer(b"ok")

    results, peer = asyncio.run(_posts(slow, n=12, concurrent=True, max_connections=3))
    assert all(r.status == 200 for r in results)
    assert len({id(ex.writer) for ex in peer.requests}) == 3


def test_an_answer_that_closes_the_connection_is_read_to_its_end_and_not_reused():
    async def http10(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")  # no length: ends at close
        ex.writer.close()

    results, peer = asyncio.run(_posts(http10, n=2))
    assert [(r.status, r.body) for r in results] == [(200, b"all of it")] * 2
    assert len({id(ex.writer) for ex in peer.requests}) == 2


def test_a_server_that_hangs_up_without_answering_fails_the_message_in_words():
    async def hang_up(ex: Exchange) -> None:
        ex.writer.close()

    (result,), _ = asyncio.run(_posts(hang_up))
    assert result.status == 0 and "Server disconnected" in result.error


def test_silence_ends_at_the_read_timeout():
    async def silent(ex: Exchange) -> None:
        await asyncio.sleep(5)

    (result,), _ = asyncio.run(_posts(silent, timeout=0.2))
    assert result.status == 0 and "no answer within 0.2 s" in result.error


def test_a_refused_connection_says_where():
    async def main():
        transport = HttpTransport()
        try:
            return await transport.post("http://127.0.0.1:9/dm", b"<SyncML/>", DM)
        finally:
            await transport.aclose()

    result = asyncio.run(main())
    assert result.status == 0 and "cannot connect (connection refused: 127.0.0.1:9)" in result.error


def test_garbage_and_oversized_headers_are_refused():
    async def garbage(ex: Exchange) -> None:
        await ex.send(b"SMTP ready\r\n\r\n")

    async def huge(ex: Exchange) -> None:
        await ex.head(200, {f"X-{i}": "v" * 1000 for i in range(MAX_HEADER_BYTES // 1000 + 2)})

    (bad,), _ = asyncio.run(_posts(garbage))
    assert bad.status == 0 and "not a readable HTTP answer" in bad.error
    (big,), _ = asyncio.run(_posts(huge))
    assert big.status == 0 and f"over {MAX_HEADER_BYTES} bytes" in big.error


def test_repeated_headers_are_joined_and_names_lower_case():
    async def challenge(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 401 X\r\nWWW-Authenticate: Basic realm=a\r\nWWW-Authenticate: Digest realm=b\r\n"
                      b"Content-Length: 0\r\n\r\n")

    (result,), _ = asyncio.run(_posts(challenge))
    assert result.status == 401 and result.headers["www-authenticate"] == "Basic realm=a, Digest realm=b"


def test_a_body_that_keeps_coming_outlives_the_read_timeout_within_the_deadline():
    """One timer watches both limits: each byte moves the read timeout on, the deadline stays."""

    async def steady(ex: Exchange) -> None:
        await ex.head(200, {"Content-Type": DM, "Content-Length": "6"})
        for _ in range(6):  # 0.6 s in all, 0.1 s apart: past the 0.3 s read timeout, never silent that long
            await asyncio.sleep(0.1)
            await ex.send(b"x")

    (result,), _ = asyncio.run(_posts(steady, timeout=0.3, deadline=5))
    assert (result.status, result.body) == (200, b"xxxxxx"), result.error


def test_the_deadline_counts_while_a_message_waits_for_a_connection():
    async def held(ex: Exchange) -> None:
        await asyncio.sleep(1.0)
        await ex.answer(b"late")

    results, _ = asyncio.run(_posts(held, n=2, concurrent=True, max_connections=1, timeout=5, deadline=0.4))
    assert [r.status for r in results] == [0, 0]
    assert all("did not finish within the deadline of 0.4 s" in r.error for r in results)


def test_unshaped_messages_take_the_lean_path_and_count_as_requests():
    """A bearer that does nothing to traffic gives NO_SHAPING itself, and ``post`` then goes to the
    lean client directly (one step less per message): still counted, still the same exchange."""
    from dataclasses import replace

    from emulator.device.profile import find_profile
    from emulator.device.virtual import VirtualDevice
    from emulator.transport.shaping import NO_SHAPING, Shaping

    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:1")
    b = dev.bearers[dev.bearer]
    assert b.spec.latency_ms and dev.shaping == b.shaping != NO_SHAPING  # the profile's bearer shapes
    dev.bearers[b.name] = replace(b, spec=replace(b.spec, latency_ms=0, jitter_ms=0, loss=0, bandwidth_kbps=0))
    assert dev.shaping is NO_SHAPING

    async def answer(ex: Exchange) -> None:
        await ex.answer(b"ok")

    async def run() -> tuple[list[int], int]:
        transport = HttpTransport()
        async with HostilePeer(answer) as peer:
            try:
                plain = [await transport.post(f"{peer.url}/dm", b"<SyncML/>", DM, shaping=NO_SHAPING) for _ in range(3)]
                shaped = await transport.post(f"{peer.url}/dm", b"<SyncML/>", DM, shaping=Shaping(latency_ms=1))
            finally:
                await transport.aclose()
        return [r.status for r in [*plain, shaped]], transport.requests

    statuses, requests = asyncio.run(run())
    assert statuses == [200] * 4 and requests == 4
