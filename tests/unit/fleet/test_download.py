"""The device-side download engine over real loopback HTTP: Range pieces from the reference server's
package repository, the size limits at their exact values, a server that ignores Range, a bearer
switch that cuts a piece in flight (resumed with Range where it stopped), and the answers a hostile
server may give, each named by its outcome."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from emulator.mo.operations import Fetched
from emulator.server.packages import REPO_KEY, PackageRepo, parse_range, setup_packages
from emulator.transport.download import PIECE, check_url, download
from emulator.transport.http import HttpTransport
from emulator.transport.link import BearerLink
from emulator.transport.shaping import NO_SHAPING


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def _with_repo(body: Callable[[str, PackageRepo, HttpTransport], Awaitable[Any]],
               extra: Callable[[web.Application], None] | None = None) -> Any:
    async def main():
        app = web.Application()
        repo = PackageRepo()
        setup_packages(app, repo)
        if extra is not None:
            extra(app)
        runner, base = await _serve(app)
        transport = HttpTransport()
        try:
            return await body(base, repo, transport)
        finally:
            await transport.aclose()
            await runner.cleanup()

    return asyncio.run(main())


def test_a_package_comes_in_range_pieces_with_progress():
    seen: list[tuple[int, int, int]] = []

    async def body(base, repo, transport):
        pkg = repo.add("fw", 2 * PIECE + 100, "v2")
        got = await download(transport, f"{base}/packages/fw", max_size=10 << 20, progress=lambda *a: seen.append(a))
        return pkg, got

    pkg, got = _with_repo(body)
    assert got.ok and got.size == got.total == pkg.size
    assert got.digest == hashlib.sha256(pkg.data).hexdigest() and got.body is None
    assert got.requests == 3 and not got.range_ignored
    assert [d for d, _, _ in seen][:3] == [PIECE, 2 * PIECE, pkg.size]


def test_max_size_is_accepted_and_one_byte_more_is_refused_on_the_first_piece():
    async def body(base, repo, transport):
        repo.add("fw", 1000)
        exact = await download(transport, f"{base}/packages/fw", max_size=1000, piece=100)
        over = await download(transport, f"{base}/packages/fw", max_size=999, piece=100)
        return exact, over

    exact, over = _with_repo(body)
    assert exact.ok and exact.size == 1000
    assert over.outcome == "too large" and over.requests == 1, over  # known from Content-Range at once


def test_a_server_that_ignores_range_gives_the_whole_package_which_is_taken():
    async def body(base, repo, transport):
        pkg = repo.add("fw", 3000, ranges=False)
        return pkg, await download(transport, f"{base}/packages/fw", max_size=5000, piece=1000)

    pkg, got = _with_repo(body)
    assert got.ok and got.size == 3000 and got.range_ignored and got.requests == 1
    assert got.digest == pkg.sha256


class _Device:
    """What a BearerLink reads of a device: its bearer of the moment."""

    def __init__(self) -> None:
        self.bearer = "lte0"
        self.bearer_generation = 0
        self.bearers = {"lte0": object(), "wlan0": object()}
        self.shaping = NO_SHAPING


def test_a_bearer_switch_cuts_a_piece_and_the_download_resumes_where_it_stopped():
    device = _Device()
    ranges: list[str] = []

    def extra(app: web.Application) -> None:
        @web.middleware
        async def switch(request: web.Request, handler):
            ranges.append(request.headers.get("Range", ""))
            if len(ranges) == 2:  # the second piece is in flight when the device changes bearer
                device.bearer, device.bearer_generation = "wlan0", device.bearer_generation + 1
            return await handler(request)

        app.middlewares.append(switch)

    async def body(base, repo, transport):
        pkg = repo.add("fw", 2500)
        got = await download(BearerLink(transport, device), f"{base}/packages/fw", max_size=10_000, piece=1000,
                             resume_wait_s=0)
        return pkg, got

    pkg, got = _with_repo(body, extra)
    assert got.ok and got.resumed == 1 and got.digest == pkg.sha256
    assert ranges == ["bytes=0-999", "bytes=1000-1999", "bytes=1000-1999", "bytes=2000-2499"]


def test_no_answer_is_resumed_at_most_max_resumes_times_then_network():
    async def main():
        transport = HttpTransport(connect_timeout=2)
        try:
            return await download(transport, "http://127.0.0.1:9/fw", max_size=100, max_resumes=2, resume_wait_s=0)
        finally:
            await transport.aclose()

    got: Fetched = asyncio.run(main())
    assert got.outcome == "network" and got.requests == 3 and got.resumed == 2


def _hostile(handler) -> Fetched:
    def extra(app: web.Application) -> None:
        app.router.add_get("/hostile", handler)

    async def body(base, repo, transport):
        return await download(transport, f"{base}/hostile", max_size=10_000, piece=1000, expect_size=2000)

    return _with_repo(body, extra)


def test_hostile_answers_are_named():
    async def garbled(request):
        return web.Response(status=206, body=b"x" * 1000, headers={"Content-Range": "bytes 5-1004/2000"})

    async def no_range(request):
        return web.Response(status=206, body=b"x" * 1000)

    async def wrong_size(request):
        first = int(request.headers["Range"].split("=")[1].split("-")[0])
        return web.Response(status=206, body=b"x" * 1000, headers={"Content-Range": f"bytes {first}-{first + 999}/3000"})

    async def gone(request):
        return web.Response(status=404)

    async def short(request):  # no Range support and fewer bytes than announced
        return web.Response(body=b"x" * 1500)

    assert _hostile(garbled).outcome == "bad answer"
    assert _hostile(no_range).outcome == "bad answer"
    assert _hostile(wrong_size).outcome == "size mismatch"
    assert (_hostile(gone).outcome, _hostile(gone).status) == ("http error", 404)
    assert _hostile(short).outcome == "size mismatch"


def test_urls_a_device_will_not_fetch():
    for url in ("ftp://example.com/fw", "http:///fw", "not a url", "http://exa mple.com/fw", "http://h:99999/x",
                "javascript:alert(1)", ""):
        assert check_url(url), url
    assert check_url("https://fota.example.com:8443/fw.bin?x=1") is None

    async def main():
        transport = HttpTransport()
        try:
            return await download(transport, "file:///etc/passwd", max_size=100)
        finally:
            await transport.aclose()

    got = asyncio.run(main())
    assert got.outcome == "bad url" and got.requests == 0


def test_range_headers_the_repository_understands():
    assert parse_range("bytes=0-99", 1000) == (0, 99)
    assert parse_range("bytes=900-", 1000) == (900, 999)
    assert parse_range("bytes=-100", 1000) == (900, 999)
    assert parse_range("bytes=990-2000", 1000) == (990, 999)
    assert parse_range("bytes=1000-", 1000) == "unsatisfiable"
    assert parse_range("bytes=0-1,5-6", 1000) is None  # several ranges: the whole package
    assert parse_range("items=0-1", 1000) is None
    assert parse_range("bytes=5-1", 1000) is None
    assert parse_range("bytes=a-b", 1000) is None
    assert REPO_KEY is not None
