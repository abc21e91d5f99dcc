"""Device-side downloads: a package (firmware, software, a descriptor) fetched over HTTP(S) through
the device's current bearer, in HTTP Range pieces, so a cut resumes where it stopped (DM-HLF-021).

The transport is the session's :class:`~emulator.transport.link.BearerLink` (any
:class:`~emulator.transport.base.AsyncTransport` does): the bearer's latency and bandwidth apply to
every piece (a 50 MB image over a 1 Mbit/s bearer takes about 420 s), a bearer switch or outage
fails the piece in flight, and the download asks for the rest with ``Range: bytes=<done>-``. What
is checked, and how each failure is named (:data:`emulator.mo.operations.FETCH_OUTCOMES`):

- the URL: http or https with a host, else ``bad url`` (nothing is sent);
- the size: the total a ``Content-Range`` announces, or a whole answer, over ``max_size`` (the
  device's MaxObjSize or free memory) is ``too large``, found on the first piece rather than after
  the whole download; a total other than ``expect_size`` (a descriptor's) is ``size mismatch``;
- the answer: 206 whose Content-Range does not start where asked, or is not a range at all, is
  ``bad answer``; any other status than 200/206 is ``http error`` (with the status);
- a server that ignores Range (200 with the whole object) is taken as the whole object: bytes
  already received are dropped and the download starts over from this answer (``range_ignored``);
- no answer (refused, timed out, the bearer cut it): wait ``resume_wait_s`` and resume, at most
  ``max_resumes`` times, then ``network``.

Limits (documented in docs/security.md, "Device", tested at their values): pieces of
:data:`PIECE` bytes; :data:`MAX_RESUMES` resumptions; :data:`MAX_DOWNLOAD` bytes whatever the
caller asks. Only the size and SHA-256 of what was received are kept unless ``keep`` (a
descriptor), so a thousand devices downloading 50 MB hold no 50 GB.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from emulator.mo.operations import Fetched
from emulator.transport.base import AsyncTransport
from emulator.transport.http import TlsConfig

PIECE = 256 * 1024
"""Bytes asked for per request (a cut loses at most one piece)."""
MAX_RESUMES = 8
"""Resumptions after a failed piece before the download is given up (``network``)."""
RESUME_WAIT_S = 2.0
"""Seconds between a failed piece and the next try (a bearer coming back, a server restarting)."""
MAX_DOWNLOAD = 1 << 30
"""Largest object any download accepts (1 GiB), whatever ``max_size`` says."""
MAX_KEPT = 1 << 20
"""Most bytes kept in memory for a ``keep_types`` answer (1 MiB)."""
MAX_UPLOAD = 16 << 20
"""Largest body :func:`send` sends (16 MiB)."""

Progress = Callable[[int, int, int], None]
"""``progress(done, total, resumed)``: bytes received, bytes announced (0: unknown), resumptions."""

_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def check_url(url: str) -> str | None:
    """What is wrong with a download URL (None: fine): http(s) with a host, nothing else."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"{url[:80]!r} is not an http(s) URL"
    if not parts.hostname:
        return f"{url[:80]!r} names no host"
    if any(c.isspace() for c in url) or any(ord(c) < 0x20 for c in url):
        return f"{url[:80]!r} holds white space or control characters"
    return None


async def download(transport: AsyncTransport, url: str, *, max_size: int, expect_size: int | None = None,
                   keep: bool = False, keep_types: tuple[str, ...] = (), rate_kbps: float = 0.0,
                   tls: TlsConfig | None = None, piece: int = PIECE,
                   max_resumes: int = MAX_RESUMES, resume_wait_s: float = RESUME_WAIT_S,
                   progress: Progress | None = None,
                   sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> Fetched:  # fmt: skip
    """Fetch ``url`` in Range pieces (see the module doc); never raises for what the network or the
    server does: the outcome says it. ``keep_types``: content types whose bodies are kept (at most
    :data:`MAX_KEPT` bytes: a descriptor, not a package); ``rate_kbps``: a further limit on the rate
    (the package server's), as a pause after each piece."""
    wrong = check_url(url)
    if wrong:
        return Fetched("bad url", error=wrong)
    limit = min(max_size, MAX_DOWNLOAD)
    if expect_size is not None and expect_size > limit:
        return Fetched("too large", total=expect_size,
                       error=f"{url}: announced {expect_size} bytes, more than the {limit} the device accepts")
    tls = tls or TlsConfig()
    hasher = hashlib.sha256()
    kept = bytearray()
    done = total = resumed = requests = 0
    status = 0
    content_type = ""
    ignored = by_type = False

    def result(outcome: str, error: str = "") -> Fetched:
        if progress is not None:
            progress(done, total, resumed)
        return Fetched(outcome, status, done, total, hasher.hexdigest(), bytes(kept) if keep else None,
                       content_type, resumed, ignored, requests, error)

    while True:
        last = done + piece - 1
        if total:
            last = min(last, total - 1)
        headers = {"Range": f"bytes={done}-{last}", "Accept-Encoding": "identity"}
        answer = await transport.request("GET", url, b"", headers, tls=tls, max_body=limit)
        requests += 1
        status = answer.status
        if status == 0:
            if answer.too_large:
                return result("too large", f"{url}: more than the {limit} bytes the device accepts")
            if resumed >= max_resumes:
                return result("network", f"{answer.error} (gave up after {resumed} resumptions)")
            resumed += 1
            if progress is not None:
                progress(done, total, resumed)
            await sleep(resume_wait_s)
            continue
        content_type = answer.headers.get("content-type", content_type)
        if not keep and keep_types and content_type.split(";")[0].strip().lower() in keep_types:
            keep = by_type = True
        if by_type and max(done, total) + len(answer.body) > MAX_KEPT:
            return result("too large", f"{url}: a {content_type} of more than {MAX_KEPT} bytes")
        if rate_kbps > 0 and answer.body:
            await sleep(len(answer.body) * 8 / rate_kbps / 1000)
        if status == 206:
            match = _RANGE.match(answer.headers.get("content-range", ""))
            if match is None:
                return result("bad answer", f"{url}: 206 without a valid Content-Range")
            first, end, whole = int(match[1]), int(match[2]), match[3]
            if first != done or end < first or end - first + 1 != len(answer.body):
                return result("bad answer", f"{url}: asked for bytes from {done}, got {first}-{end} "
                                            f"holding {len(answer.body)} bytes")
            if whole != "*":
                if total and int(whole) != total:
                    return result("bad answer", f"{url}: the object changed size ({total} -> {whole})")
                total = int(whole)
            if total > limit:
                return result("too large", f"{url}: {total} bytes, more than the {limit} the device accepts")
            if expect_size is not None and total and total != expect_size:
                return result("size mismatch", f"{url}: {total} bytes where {expect_size} were announced")
            hasher.update(answer.body)
            if keep:
                kept.extend(answer.body)
            done += len(answer.body)
            if done > limit:
                return result("too large", f"{url}: more than the {limit} bytes the device accepts")
            if progress is not None:
                progress(done, total, resumed)
            if (total and done >= total) or not answer.body:
                break
            continue
        if status == 200:  # the server ignored Range: this answer is the whole object
            ignored = ignored or done > 0 or len(answer.body) > piece
            hasher = hashlib.sha256(answer.body)
            kept = bytearray(answer.body if keep else b"")
            done = total = len(answer.body)
            break
        if status == 416 and total and done == total:
            break
        return result("http error", f"{url}: HTTP {status}")
    if expect_size is not None and done != expect_size:
        return result("size mismatch", f"{url}: {done} bytes where {expect_size} were announced")
    return result("completed")


async def send(transport: AsyncTransport, method: str, url: str, body: bytes, content_type: str, *,
               tls: TlsConfig | None = None, max_answer: int = 64 * 1024, max_resumes: int = 2,
               resume_wait_s: float = RESUME_WAIT_S,
               sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> Fetched:  # fmt: skip
    """One request outside any session (DLOTA install-notify, a log upload), tried again after no
    answer at most ``max_resumes`` times; the answer's body is kept (up to ``max_answer`` bytes)."""
    wrong = check_url(url)
    if wrong:
        return Fetched("bad url", error=wrong)
    if len(body) > MAX_UPLOAD:
        return Fetched("too large", error=f"{len(body)} bytes to send, more than {MAX_UPLOAD}")
    tries = 0
    while True:
        answer = await transport.request(method, url, body, {"Content-Type": content_type}, tls=tls or TlsConfig(),
                                         max_body=max_answer)
        if answer.status or answer.too_large or tries >= max_resumes:
            break
        tries += 1
        await sleep(resume_wait_s)
    if answer.status == 0:
        return Fetched("too large" if answer.too_large else "network", requests=tries + 1, resumed=tries,
                       error=answer.error)
    outcome = "completed" if 200 <= answer.status < 300 else "http error"
    return Fetched(outcome, answer.status, len(body), len(body), hashlib.sha256(body).hexdigest(), answer.body,
                   answer.headers.get("content-type", ""), tries, False, tries + 1,
                   "" if outcome == "completed" else f"{method} {url}: HTTP {answer.status}")
