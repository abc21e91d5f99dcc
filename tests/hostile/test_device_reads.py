"""A hostile server on loopback tries to hang or flood the device's transport: a body trickled one byte
at a time, a 150 MB answer, a gzip bomb. The device stops at its deadline and at its size limit."""

from __future__ import annotations

import asyncio
import resource

import pytest
from hostile_peer import Exchange, HostilePeer, gzip_bomb

from emulator.transport.bodies import raw_margin
from emulator.transport.http import HttpTransport

LIMIT = 16384


@pytest.fixture(params=["request", "post"])
def how(request):
    """Both ways a device reads an answer: ``request`` (aiohttp, every request but session messages)
    and ``post`` (a session message: the lean client over plain HTTP, emulator/transport/lean.py)."""
    return request.param


async def _request(script, limit=LIMIT, how="request", **transport_kw):
    transport = HttpTransport(**transport_kw)
    async with HostilePeer(script) as peer:
        try:
            if how == "post":
                result = await transport.post(peer.url + "/dm", b"<SyncML/>", "application/vnd.syncml.dm+xml",
                                              max_body=limit)
            else:
                result = await transport.request("POST", peer.url + "/dm", b"<SyncML/>", max_body=limit)
        finally:
            await transport.aclose()
    return result, peer


def test_a_body_trickled_byte_by_byte_ends_at_the_request_deadline(how):
    trickled = 0

    async def trickle(ex: Exchange) -> None:
        nonlocal trickled
        await ex.head(200, {"Content-Type": "application/vnd.syncml.dm+xml", "Content-Length": "1000"})
        for _ in range(200):  # bounded: 200 bytes, 0.1 s apart, each well inside the read timeout
            await ex.send(b"<")
            trickled += 1
            await asyncio.sleep(0.1)

    result, _ = asyncio.run(_request(trickle, how=how, timeout=5, deadline=0.5))
    assert result.status == 0
    assert "did not finish within the deadline of 0.5 s" in result.error
    assert trickled < 200  # the device hung up; the read timeout alone (5 s per byte) never would


def test_the_deadline_is_not_hit_by_an_answer_that_finishes(how):
    async def prompt(ex: Exchange) -> None:
        await ex.answer(b"x" * 100)

    result, _ = asyncio.run(_request(prompt, how=how, timeout=5, deadline=5))
    assert (result.status, result.body) == (200, b"x" * 100)


@pytest.mark.parametrize("size,ok", [(LIMIT, True), (LIMIT + 1, False), (0, True)])
def test_max_body_is_exact(size, ok, how):
    async def answer(ex: Exchange) -> None:
        await ex.answer(b"a" * size)

    result, _ = asyncio.run(_request(answer, how=how))
    assert (result.status == 200) is ok and result.too_large is not ok
    if ok:
        assert len(result.body) == size


def test_a_150_mb_body_without_length_is_not_read_past_the_limit(how):
    """Chunked, so no Content-Length gives it away: the device must count while it reads."""

    async def flood(ex: Exchange) -> None:
        await ex.head(200, {"Content-Type": "application/vnd.syncml.dm+xml", "Transfer-Encoding": "chunked"})
        chunk = b"a" * 65536
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        for _ in range(150 * 16):  # 150 MB
            await ex.send(frame)

    result, peer = asyncio.run(_request(flood, how=how))
    assert result.too_large and "over the limit of 16384 bytes" in result.error
    read = int(result.error.rsplit("after ", 1)[1].split()[0])
    assert LIMIT < read <= LIMIT + raw_margin(LIMIT) + 65536 + 16
    assert peer.sent < 32 * 1024 * 1024  # socket buffers at most; the old code took all 150 MB


def test_a_declared_150_mb_body_is_refused_before_reading(how):
    async def flood(ex: Exchange) -> None:
        await ex.head(200, {"Content-Type": "application/vnd.syncml.dm+xml", "Content-Length": str(150 << 20)})
        for _ in range(150 * 16):
            await ex.send(b"a" * 65536)

    result, peer = asyncio.run(_request(flood, how=how))
    assert result.too_large and "Content-Length 157286400" in result.error and "after 0 bytes" in result.error
    assert peer.sent < 32 * 1024 * 1024


def test_a_gzip_bomb_is_not_unpacked_past_the_limit(how):
    bomb = gzip_bomb(200)  # 200 MiB of zeros in about 200 KB
    assert len(bomb) < 400_000

    async def explode(ex: Exchange) -> None:
        await ex.answer(bomb, "application/vnd.syncml.dm+xml", headers={"Content-Encoding": "gzip"})

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result, _ = asyncio.run(_request(explode, how=how, limit=1 << 20))
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.too_large and "decoded size" in result.error, result.error
    read = int(result.error.rsplit("after ", 1)[1].split()[0])
    assert read < len(bomb)  # it stopped inside the bomb
    assert grown_kb < 64 * 1024  # peak memory did not take the 200 MiB the old code unpacked


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_answer_within_the_limit_is_decoded(encoding, how):
    import zlib

    text = b"<SyncML>" + b"x" * 5000 + b"</SyncML>"
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    comp = zlib.compressobj(6, zlib.DEFLATED, wbits)
    packed = comp.compress(text) + comp.flush()

    async def answer(ex: Exchange) -> None:
        assert ex.headers["accept-encoding"] == "gzip, deflate"
        await ex.answer(packed, headers={"Content-Encoding": encoding})

    result, _ = asyncio.run(_request(answer, how=how))
    assert result.status == 200 and result.body == text


def test_an_encoding_the_device_did_not_offer_is_refused(how):
    async def answer(ex: Exchange) -> None:
        await ex.answer(b"\x28\xb5\x2f\xfd", headers={"Content-Encoding": "zstd"})

    result, _ = asyncio.run(_request(answer, how=how))
    assert result.status == 0 and "Content-Encoding 'zstd'" in result.error


# --- whole sessions: the engines turn the refusal into the right outcome and status ---------------


def _session(protocol: str, script):
    from emulator.device.profile import find_profile
    from emulator.device.virtual import VirtualDevice
    from emulator.events import EventBus
    from emulator.fleet.drive import SessionContext, drive
    from emulator.fleet.engines import make_engine
    from emulator.fleet.headless import HeadlessUi

    async def main():
        transport = HttpTransport(timeout=10)
        async with HostilePeer(script) as peer:
            dev = VirtualDevice(find_profile("smartphone"), 0, server=peer.url)
            account = dev.account(protocol=protocol)
            engine = make_engine(dev, account, "s1", server_uri=peer.url + "/dm")
            ctx = SessionContext(device_id=dev.id, session_id="s1", protocol=protocol, server=account.server_id,
                                 bus=EventBus(), transport=transport)
            try:
                return await drive(engine, ctx, HeadlessUi()), peer
            finally:
                await transport.aclose()

    return asyncio.run(main())


def test_dm12_session_refuses_a_gzip_bomb_package2():
    bomb = gzip_bomb(64)

    async def explode(ex: Exchange) -> None:
        await ex.answer(bomb, "application/vnd.syncml.dm+xml", headers={"Content-Encoding": "gzip"})

    done, _ = _session("dm12", explode)
    assert done.outcome == "failed" and done.status == 413
    assert "over our MaxMsgSize" in done.detail and "16384 bytes" in done.detail


def test_dm2_hget_of_a_huge_object_answers_413_and_the_session_goes_on():
    import json

    statuses: list[int] = []

    async def server(ex: Exchange) -> None:
        if ex.path.startswith("/repo"):
            await ex.head(200, {"Content-Type": "application/vnd.oma.dm.mo+json", "Transfer-Encoding": "chunked"})
            frame = b"10000\r\n" + b" " * 65536 + b"\r\n"
            for _ in range(150 * 16):  # 150 MB of JSON whitespace
                await ex.send(frame)
            return
        package = json.loads(ex.body)
        if "Status" in package:
            statuses.extend(s["sc"] for s in package["Status"])
            await ex.answer(b'{"CMD": [["END"]]}', "application/vnd.oma.dm.request+json")
            return
        cmd = json.dumps({"CMD": [["HGET", f"http://{ex.headers['host']}/repo/big",
                                   "urn:oma:mo:ext-dmemulator-wlan:1.0/new"]]}).encode()
        await ex.answer(cmd, "application/vnd.oma.dm.request+json")

    done, peer = _session("dm2", server)
    assert done.outcome == "completed", done
    assert statuses == [413]
    assert peer.sent < 48 * 1024 * 1024  # the device stopped reading near its 1 MiB limit


def test_a_push_channel_flooding_megabytes_is_refused_as_it_reads():
    from emulator.fleet.fleet import Fleet
    from emulator.transport.http import TlsConfig
    from emulator.transport.push import MAX_PUSH_BODY, PushPoller

    async def flood(ex: Exchange) -> None:
        await ex.head(200, {"Content-Type": "application/vnd.oma.dm.notification", "Transfer-Encoding": "chunked"})
        frame = b"10000\r\n" + b"\x00" * 65536 + b"\r\n"
        for _ in range(50 * 16):  # 50 MB
            await ex.send(frame)

    async def main():
        transport = HttpTransport(timeout=10)
        async with HostilePeer(flood) as peer:
            fleet = Fleet(server=peer.url, transport=transport)
            (dev,) = fleet.add("smartphone")
            poller = PushPoller(fleet, transport, server_uri=peer.url)
            try:
                took = await poller._poll_once(dev.id, peer.url + "/push/x", TlsConfig(), dev.account(protocol="dm2"))
            finally:
                await transport.aclose()
            return took, poller.delivered, peer.sent

    took, delivered, sent = asyncio.run(main())
    assert (took, delivered) == (False, 0)
    assert sent < MAX_PUSH_BODY + 32 * 1024 * 1024  # socket buffers at most, not the 50 MB


@pytest.mark.parametrize("value,ok", [("0.5", True), ("86400", True), ("0", False), ("nan", False), ("86401", False)])
def test_run_request_deadline_from_the_command_line(value, ok):
    import subprocess
    import sys

    from hostile_peer import PeerThread

    async def trickle(ex: Exchange) -> None:
        await ex.head(200, {"Content-Type": "application/vnd.syncml.dm+xml", "Content-Length": "1000"})
        for _ in range(100):  # 10 s at most: far past the deadline
            await ex.send(b"<")
            await asyncio.sleep(0.1)

    with PeerThread(trickle) as peer:
        cmd = [sys.executable, "-m", "emulator", "run", "--server", peer.url + "/dm12", "--profile", "smartphone",
               "--protocol", "dm12", "--request-deadline", value]
        if value == "86400":  # only the parsing: a deadline this long would wait for the whole trickle
            cmd += ["--help"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if not ok:
        assert proc.returncode == 2 and "--request-deadline" in proc.stderr
    elif value == "0.5":
        assert proc.returncode == 1
        assert "did not finish within the deadline of 0.5 s" in proc.stdout + proc.stderr
