"""ATTACK: holding the reference server's connections (issue 12, "Connections"): idle sockets,
headers or bodies sent a byte at a time, more sockets than the server can hold. Bounded, loopback."""

from __future__ import annotations

import asyncio
import contextlib

from hostile_kit import own_auth, phone, serving

from emulator.fleet.fleet import Fleet
from emulator.server.limits import ServerLimits
from emulator.server.state import ServerState

GIVE_UP_S = 20.0  # how long a test waits for the server to act before it calls the attack a success


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection. A close with bytes of ours still unread
    in the server's socket reaches us as a reset, not an end of stream: closed all the same."""
    try:
        return await asyncio.wait_for(reader.read(), GIVE_UP_S)
    except ConnectionResetError:
        return b""


def test_idle_sockets_and_unfinished_headers_are_closed():
    async def main():
        async with serving(limits=ServerLimits(idle_s=0.5)) as server:
            host, port = server.url.removeprefix("http://").split(":")
            idle = await asyncio.open_connection(host, int(port))
            partial = await asyncio.open_connection(host, int(port))
            partial[1].write(b"POST /dm2 HTTP/1.1\r\nHost: x\r\n")
            trickle = await asyncio.open_connection(host, int(port))
            header = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 600 + b"\r\n\r\n"

            async def drip() -> bool:  # about 30 s of header, a byte every 50 ms; True if all of it went
                with contextlib.suppress(ConnectionError):
                    for byte in header:
                        trickle[1].write(bytes([byte]))
                        await trickle[1].drain()
                        await asyncio.sleep(0.05)
                    return True
                return False  # the server cut it

            dripping = asyncio.ensure_future(drip())
            got = [await _closed_by_server(r) for r, _ in (idle, partial, trickle)]
            # closed while the trickle was still going (or it failed on the closed socket)
            still_dripping = not dripping.done() or not dripping.result()
            dripping.cancel()
            for _, writer in (idle, partial, trickle):
                writer.close()
            return got, still_dripping

    got, still_dripping = asyncio.run(main())
    assert got == [b"", b"", b""]  # closed without an answer: no request was ever complete
    assert still_dripping  # the trickle did not keep its connection alive


def test_a_body_sent_a_byte_at_a_time_gets_408():
    async def main():
        async with serving(limits=ServerLimits(body_s=0.5, idle_s=30)) as server:
            host, port = server.url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            dev = phone()
            writer.write((f"POST /dm2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oma.dm.initiation+json\r\n"
                          f"OMADM-DevID: {dev.id}\r\nAuthorization: {own_auth(dev)}\r\n"
                          "Content-Length: 1000\r\n\r\n{").encode())
            await writer.drain()

            async def drip() -> None:
                with contextlib.suppress(ConnectionError):
                    for _ in range(999):
                        writer.write(b" ")
                        await writer.drain()
                        await asyncio.sleep(0.05)

            dripping = asyncio.ensure_future(drip())
            answer = await asyncio.wait_for(reader.readline(), GIVE_UP_S)
            dripping.cancel()
            writer.close()
            return answer

    assert asyncio.run(main()).startswith(b"HTTP/1.1 408")


def test_a_flood_of_idle_connections_gives_way_and_honest_devices_are_served():
    cap = 20

    async def main():
        state = ServerState()
        async with serving(state, limits=ServerLimits(max_connections=cap, idle_s=60)) as server:
            host, port = server.url.removeprefix("http://").split(":")
            flood = []
            for n in range(3 * cap):  # bounded: three times the cap, idle or half a header each
                reader, writer = await asyncio.open_connection(host, int(port))
                if n % 2:
                    writer.write(b"POST /dm2 HTTP/1.1\r\nHost: x\r\n")
                flood.append((reader, writer))
            await asyncio.sleep(0.1)
            held = len(server.site.gate.open)
            fleet = Fleet(server=server.url)
            try:
                devices = fleet.add("smartphone", 3)
                done = [await fleet.run_session(dev.id, "dm2") for dev in devices]
                done += [await fleet.run_session(dev.id, "dm12") for dev in devices]
            finally:
                await fleet.aclose()
            open_after = len(server.site.gate.open)
            for _, writer in flood:
                writer.close()
            return held, done, open_after, server.site.gate.evicted

    held, done, open_after, evicted = asyncio.run(main())
    assert held <= cap and open_after <= cap
    assert evicted >= 2 * cap
    assert [d.outcome for d in done] == ["completed"] * 6, done


def test_when_every_connection_is_busy_a_new_one_gets_503():
    async def main():
        state = ServerState(push_wait_s=10)
        async with serving(state, limits=ServerLimits(max_connections=2)) as server:
            host, port = server.url.removeprefix("http://").split(":")
            dev = phone()
            polls = []
            for _ in range(2):  # two long-polls in progress: neither is idle
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(f"GET /push/{dev.id}?wait=10 HTTP/1.1\r\nHost: x\r\n"
                             f"Authorization: {own_auth(dev)}\r\n\r\n".encode())
                polls.append((reader, writer))
            for _ in range(200):  # until the server handles both (bounded)
                if len(server.site.gate.open) == 2 and not any(c.idle for c in server.site.gate.open):
                    break
                await asyncio.sleep(0.05)
            reader, writer = await asyncio.open_connection(host, int(port))
            answer = await asyncio.wait_for(reader.read(), GIVE_UP_S)
            writer.close()
            for _, w in polls:
                w.close()
            return answer

    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer


def test_a_tls_handshake_that_never_comes_is_cut(tmp_path):
    from emulator.server.tls import server_tls

    ssl_context, _ca = server_tls(tmp_path, "127.0.0.1")

    async def main():
        async with serving(ssl_context=ssl_context, limits=ServerLimits(handshake_s=0.5)) as server:
            host, port = server.url.removeprefix("https://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))  # plain TCP: no ClientHello
            got = await _closed_by_server(reader)
            writer.close()
            return got

    assert asyncio.run(main()) == b""
