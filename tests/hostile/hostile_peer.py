"""A hostile HTTP peer on loopback: raw sockets, so it can do what no well-behaved server library does
(trickle a body byte by byte, promise 150 MB, send a gzip bomb) and count what it managed to send."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Script = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Exchange:
    """One request the peer received, and the writer to answer it with (counting bytes)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    writer: asyncio.StreamWriter
    peer: HostilePeer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()
        self.peer.sent += len(data)

    async def head(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def answer(self, body: bytes, ctype: str = "application/octet-stream", status: int = 200,
                     headers: dict[str, str] | None = None) -> None:
        await self.head(status, {"Content-Type": ctype, "Content-Length": str(len(body)), **(headers or {})})
        await self.send(body)


@dataclass
class HostilePeer:
    """``async with HostilePeer(script) as peer``: ``peer.url`` serves every request with ``script``."""

    script: Script
    sent: int = 0  # body and header bytes the peer got into the socket
    requests: list[Exchange] = field(default_factory=list)
    _server: asyncio.base_events.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> HostilePeer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                exchange = Exchange(method, path, headers, body, writer, self)
                self.requests.append(exchange)
                await self.script(exchange)
        except (ConnectionError, asyncio.IncompleteReadError):
            return  # the device hung up: what a device under attack should do
        finally:
            writer.close()


def gzip_bomb(decoded_mb: int) -> bytes:
    """``decoded_mb`` MiB of zeros, gzip-compressed (about 1/1000 of that on the wire)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [comp.compress(block) for _ in range(decoded_mb)]
    parts.append(comp.flush())
    return b"".join(parts)


class PeerThread:
    """A :class:`HostilePeer` on its own event loop in a thread, for blocking clients (httpx):
    ``with PeerThread(script) as peer: ... peer.url ... peer.sent``."""

    def __init__(self, script: Script) -> None:
        import threading

        self.peer = HostilePeer(script)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.peer:
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> HostilePeer:
        self._thread.start()
        self._ready.wait(10)
        return self.peer

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
