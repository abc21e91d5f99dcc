"""ATTACK and behaviour: the reference server's lean path for the DM session routes
(:mod:`emulator.server.lean_http`). Session messages are answered there; everything it does not take
(another route, chunked or oversized bodies, Expect, HTTP/1.0, bytes the parser refuses, armed
faults) goes to aiohttp from its first byte and is answered as before. Bounded, loopback."""

from __future__ import annotations

import asyncio

from hostile_kit import own_auth, phone, serving

from emulator.fleet.fleet import Fleet
from emulator.server.app import MAX_BODY
from emulator.server.faults import Fault
from emulator.server.state import ServerState

GIVE_UP_S = 20.0


async def _exchange(url: str, *requests: bytes, read_all: bool = False) -> list[bytes]:
    """Send each request on one connection and read its answer (all of them at once: pipelined)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    answers = []
    try:
        if read_all:
            writer.write(b"".join(requests))
            answers.append(await asyncio.wait_for(reader.read(), GIVE_UP_S))
            return answers
        for request in requests:
            writer.write(request)
            answers.append(await asyncio.wait_for(_one_answer(reader), GIVE_UP_S))
    finally:
        writer.close()
    return answers


async def _one_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return head + await reader.readexactly(length)


def _post(path: str, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"POST {path} HTTP/{version}", "Host: x", "Content-Type: application/vnd.syncml.dm+xml",
             *extra]
    if not any(e.lower().startswith("transfer-encoding") for e in extra):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _body(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[1]


def test_session_messages_of_both_protocols_take_the_lean_path():
    """The bench's quick scripts: sessions of session messages only (the demo scripts also fetch
    web pages and packages, which aiohttp serves on connections of their own)."""
    from emulator.commands.bench import QUICK_DM2_SCRIPT, quick_dm12_script

    async def main():
        state = ServerState()
        state.set_script("*", QUICK_DM2_SCRIPT)
        async with serving(state) as server:
            assert state.dm12 is not None
            state.dm12.config.script = quick_dm12_script
            fleet = Fleet(server=server.url)
            try:
                devices = fleet.add("smartphone", 2)
                done = [await fleet.run_session(d.id, p) for p in ("dm12", "dm2") for d in devices]
            finally:
                await fleet.aclose()
            lane = server.site.lane
            return [d.outcome for d in done], lane.answered, lane.handed_over

    outcomes, answered, handed_over = asyncio.run(main())
    assert outcomes == ["completed"] * 4
    assert answered >= 4 * 2 and handed_over == 0


def test_a_bad_message_gets_the_same_answer_on_both_paths():
    """Chunked goes to aiohttp, Content-Length stays lean: the same handler answers both alike."""
    async def main():
        async with serving() as server:
            lean = (await _exchange(server.url, _post("/dm12", b"<not-syncml/>")))[0]
            chunked = b"d\r\n<not-syncml/>\r\n0\r\n\r\n"
            aio = (await _exchange(server.url, _post("/dm12", chunked, "Transfer-Encoding: chunked")))[0]
            return lean, aio, server.site.lane.handed_over

    lean, aio, handed_over = asyncio.run(main())
    assert handed_over == 1
    assert _status(lean) == _status(aio) == 400
    assert _body(lean) == _body(aio) and _body(lean).startswith(b"bad SyncML DM message")

    def fields(answer: bytes) -> set[bytes]:
        return {line.split(b":", 1)[0].lower() + line.split(b":", 1)[1] for line in answer.split(b"\r\n\r\n")[0]
                .split(b"\r\n")[1:] if not line.lower().startswith(b"date:")}
    assert fields(lean) == fields(aio)


def test_another_route_on_a_lean_connection_is_answered_by_aiohttp_and_the_connection_goes_on():
    async def main():
        async with serving() as server:
            answers = await _exchange(server.url, _post("/dm12", b"<x/>"), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                      _post("/dm12", b"<x/>"))
            return answers, server.site.lane

    answers, lane = asyncio.run(main())
    assert [_status(a) for a in answers] == [400, 200, 400]
    assert b"Reference DM server" in _body(answers[1])
    assert lane.handed_over == 1 and lane.answered == 1


def test_pipelined_session_messages_are_answered_in_order_and_a_close_is_honoured():
    async def main():
        async with serving() as server:
            return (await _exchange(server.url, _post("/dm12", b"<a/>"), _post("/dm2", b"{}"),
                                    _post("/dm12", b"<c/>", "Connection: close"), read_all=True))[0]

    everything = asyncio.run(main())
    parts = everything.split(b"HTTP/1.1 ")[1:]
    assert [int(part.split(b" ", 1)[0]) for part in parts] == [400, 400, 400]
    assert [b"SyncML" in p for p in parts] == [True, False, True] and b"OMADM-DevID" in parts[1]  # in order
    assert everything.split(b"HTTP/1.1 ")[-1].count(b"Connection: close") == 1  # and then it closed (read() ended)


def test_the_body_limit_holds_at_its_exact_value_and_one_byte_over():
    async def main():
        async with serving() as server:
            at = (await _exchange(server.url, _post("/dm12", b" " * MAX_BODY)))[0]
            over = (await _exchange(server.url, _post("/dm12", b" " * (MAX_BODY + 1), "Connection: close"),
                                    read_all=True))[0]
            return at, over, server.site.lane

    at, over, lane = asyncio.run(main())
    assert _status(at) == 400 and _body(at).startswith(b"bad SyncML DM message")  # read, then refused as no message
    assert over.startswith(b"HTTP/1.1 413")  # aiohttp's answer, as before
    assert lane.answered == 1 and lane.handed_over == 1


def test_what_the_lean_path_does_not_take_goes_to_aiohttp_and_is_answered_as_before():
    close = "Connection: close"  # each answer is read to the end of its connection
    requests = [
        _post("/dm12", b"<x/>", version="1.0"),  # HTTP/1.0
        _post("/dm12", b"<x/>", "Expect: 100-continue", close),
        b"POST /dm12 HTTP/1.1\r\nConnection: close\r\nContent-Length: 4\r\n\r\n<x/>",  # no Host
        _post("/dm12", b"<x/>", "Content-Length: 4", close),  # two Content-Lengths
        b"BREW /dm12 HTTP/1.1\r\nHost: x\r\n\r\n",  # a method llhttp does not know
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # TLS to the plain port
        b"POST /dm12 HTTP/1.1\nHost: x\nConnection: close\nContent-Length: 0\n\n",  # bare LF line ends
        _post("/dm12/%64emo-dm12", b"<x/>", close),  # a route with a variable part
    ]

    async def main():
        async with serving() as server:
            out = [(await _exchange(server.url, r, read_all=True))[0] for r in requests]
            return out, server.site.lane

    answers, lane = asyncio.run(main())
    assert lane.answered == 0 and lane.handed_over == len(requests)
    assert answers[0].startswith(b"HTTP/1.0 400") or answers[0].startswith(b"HTTP/1.1 400")
    assert answers[1].startswith(b"HTTP/1.1 100") or answers[1].startswith(b"HTTP/1.1 400")
    for answer in answers[2:]:
        assert answer == b"" or answer.startswith(b"HTTP/1.") and _status(answer) >= 400, answer[:80]


def test_armed_session_faults_see_every_session_message():
    async def main():
        state = ServerState()
        async with serving(state) as server:
            state.faults.add(Fault("http_503", protocol="dm2"))
            fleet = Fleet(server=server.url)
            try:
                dev = fleet.add("smartphone", 1)[0]
                done = await fleet.run_session(dev.id, "dm2")
            finally:
                await fleet.aclose()
            return done, state.faults.hits, server.site.lane

    done, hits, lane = asyncio.run(main())
    assert done.outcome != "completed" and "503" in done.detail
    assert hits and lane.answered == 0 and lane.handed_over >= 1


def test_a_dm2_session_message_with_credentials_is_served_lean():
    async def main():
        async with serving() as server:
            dev = phone()
            body = b'{"DevID": "x"}'
            request = (f"POST /dm2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oma.dm.initiation+json\r\n"
                       f"OMADM-DevID: {dev.id}\r\nAuthorization: {own_auth(dev)}\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            return (await _exchange(server.url, request))[0], server.site.lane.answered

    answer, answered = asyncio.run(main())
    assert answered == 1 and _status(answer) == 200 and b"CMD" in _body(answer)  # its first package of commands


def test_a_compressed_message_is_unpacked_as_aiohttp_unpacks_it():
    """A device that gzips its message (Content-Encoding) is read as before the lean path: aiohttp
    unpacks the body, within its limits, so the handler sees the same package as from a plain POST."""
    import gzip

    package = b"<not-syncml/>"

    async def main():
        async with serving() as server:
            plain = (await _exchange(server.url, _post("/dm12", package)))[0]
            packed = (await _exchange(server.url, _post("/dm12", gzip.compress(package), "Content-Encoding: gzip")))[0]
            return plain, packed, server.site.lane.handed_over

    plain, packed, handed_over = asyncio.run(main())
    assert handed_over == 1  # the gzipped one went to aiohttp
    assert _status(packed) == _status(plain) == 400
    assert _body(packed) == _body(plain)  # not "malformed XML": the handler read the unpacked bytes


class _Written(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = b""

    def write(self, data) -> None:  # type: ignore[override]
        self.out += data


def test_a_header_with_a_line_break_of_its_own_is_never_written():
    """No answer header can split the response (aiohttp refuses to send one; so does this path)."""
    from aiohttp import web

    from emulator.server.lean_http import _write

    for headers, reason in (({"X-Hmac": "a\r\nSet-Cookie: evil=1"}, None), ({"X-A": "a\nb"}, None),
                            ({"X-A": "a\rb"}, None), ({"X-Evil\r\nX-A": "1"}, None)):
        transport = _Written()
        close = _write(transport, web.Response(body=b"<x/>", headers=headers, reason=reason), True)
        assert close and transport.out.startswith(b"HTTP/1.1 500 ")
        assert b"evil" not in transport.out.lower() and b"X-A" not in transport.out
    transport = _Written()
    assert not _write(transport, web.Response(body=b"<x/>", headers={"X-Hmac": "abc"}), True)
    assert transport.out.startswith(b"HTTP/1.1 200 OK\r\n") and b"X-Hmac: abc\r\n" in transport.out


def test_the_bench_ceiling_is_measured_on_the_lean_path_and_through_aiohttp_for_comparison():
    """The loopback ceiling is the fastest round trip the server makes: its echo takes the session
    messages' lean path (``lean_paths``); the aiohttp echo gives the earlier runs' yardstick."""
    from emulator.commands.bench import AIOHTTP_ECHO_PATH, ECHO_PATH, quick_server_app
    from emulator.server.app import start_server

    async def main():
        server = await start_server(app=quick_server_app(), lean_paths=(ECHO_PATH,))
        try:
            lean = (await _exchange(server.url, _post(ECHO_PATH, b"x" * 64)))[0]
            answered = server.site.lane.answered
            aio = (await _exchange(server.url, _post(AIOHTTP_ECHO_PATH, b"x" * 64)))[0]
            return lean, answered, aio, server.site.lane.answered, server.site.lane.handed_over
        finally:
            await server.stop()

    lean, answered, aio, answered_after, handed_over = asyncio.run(main())
    assert _body(lean) == _body(aio) == b"ok"
    assert answered == 1 and answered_after == 1 and handed_over == 1


def test_a_head_past_aiohttps_limits_is_judged_by_aiohttp_as_before():
    """A header line longer than aiohttp's 8,190 bytes, or more than its 128 fields, arriving in one
    piece: the lean path does not take it, so aiohttp refuses it as it always did. A head of exactly
    8,190 bytes with short fields stays lean."""
    from emulator.server.lean_http import AIOHTTP_MAX_HEADERS, LEAN_HEAD_BYTES

    package = b"<not-syncml/>"
    base = _post("/dm12", package)
    base_head = len(base) - len(package)
    pad = LEAN_HEAD_BYTES - base_head - len("X-Pad: \r\n")
    at_limit = _post("/dm12", package, "X-Pad: " + "a" * pad)
    assert at_limit.index(b"\r\n\r\n") + 4 == LEAN_HEAD_BYTES
    long_line = _post("/dm12", package, "X-Pad: " + "a" * 9000, "Connection: close")
    many = _post("/dm12", package, *(f"X-F{i}: 1" for i in range(AIOHTTP_MAX_HEADERS)), "Connection: close")

    async def main():
        async with serving() as server:
            lane = server.site.lane
            ok = (await _exchange(server.url, at_limit))[0]
            lean_after_ok = (lane.answered, lane.handed_over)
            too_long = (await _exchange(server.url, long_line, read_all=True))[0]
            too_many = (await _exchange(server.url, many, read_all=True))[0]
            return ok, lean_after_ok, too_long, too_many, lane.handed_over

    ok, lean_after_ok, too_long, too_many, handed_over = asyncio.run(main())
    assert lean_after_ok == (1, 0) and _status(ok) == 400 and _body(ok).startswith(b"bad SyncML DM message")
    assert handed_over == 2
    assert _status(too_long) in (400, 431) and b"bad SyncML" not in too_long
    assert _status(too_many) in (400, 431) and b"bad SyncML" not in too_many
