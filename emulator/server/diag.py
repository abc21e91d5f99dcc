"""The reference server's DiagMon side: the endpoint that receives uploaded error logs, and the
one-time URLs it hands out.

The diagnostics steps themselves (read, arm a trap, make the device upload its log, for both
protocols) are campaign steps (:mod:`emulator.server.campaign_steps`: ``diag.read``, ``diag.trap``,
``diag.upload``); ``POST /admin/diag/<DevID>`` makes a one-device campaign of one of them
(:meth:`emulator.server.control.ServerControl.set_diag_script`).

The upload endpoint ``POST|PUT /diag/upload/<token>`` takes one log per token (a token is made for
one device by the ``diag.upload`` step and is its only credential: 404 for an unknown one, 410 once
used), at most :data:`LOG_MAX_BYTES` bytes (413 beyond, nothing kept), text only (415 otherwise).
What came in is kept per device (:class:`ReceivedLog`, newest :data:`LOGS_KEPT`).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from emulator.protocol.dm2.moser import MOSerialization
from emulator.server.campaign_steps import DIAG_MOID as MOID
from emulator.server.routes import DIAG
from emulator.server.state import STATE_KEY, ServerState

UPLOAD = DIAG + "/upload"
LOG_MAX_BYTES = 256 * 1024
"""Largest error log the upload endpoint takes (bytes); a larger one is answered 413 and not kept."""
LOGS_KEPT = 20
"""Uploaded logs kept per device (the oldest go first)."""
TOKENS_KEPT = 10000
"""Upload tokens the server remembers (unused ones beyond are forgotten, oldest first)."""
SCRIPTS = ("read", "trap", "upload")


@dataclass(frozen=True, slots=True)
class ReceivedLog:
    """One error log a device uploaded."""

    dev_id: str
    token: str
    body: bytes
    ts: float


def new_upload_url(state: ServerState, dev_id: str, base: str) -> str:
    """A one-time URL where ``dev_id`` may upload its log."""
    tokens = _tokens(state)
    token = secrets.token_urlsafe(18)
    tokens[token] = dev_id
    while len(tokens) > TOKENS_KEPT:
        tokens.pop(next(iter(tokens)))
    return f"{base.rstrip('/')}{UPLOAD}/{token}"


def _tokens(state: ServerState) -> dict[str, str]:
    return state.extra.setdefault("diag_tokens", {})


def received_logs(state: ServerState, dev_id: str) -> list[ReceivedLog]:
    """The logs ``dev_id`` uploaded, oldest first."""
    logs: dict[str, list[ReceivedLog]] = state.extra.setdefault("diag_logs", {})
    return logs.setdefault(dev_id, [])


def fill_upload(state: ServerState, dev_id: str, base: str, key: str) -> str:
    """``${diag-upload:<key>}`` in a DM 2.0 script: a fresh upload URL, put in the repository at
    ``key`` as the UploadURL leaf's value (the placeholder itself becomes a harmless query)."""
    url = new_upload_url(state, dev_id, base)
    state.put_repo(key, [MOSerialization(client_uri=f"{MOID}//ErrorLog/UploadURL", mo_data={"UploadURL": url})])
    return "t=" + url.rsplit("/", 1)[-1]


# ------------------------------------------------------------------ the upload endpoint


async def upload(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    token = request.match_info["token"]
    tokens = _tokens(state)
    dev_id = tokens.get(token)
    if dev_id is None:
        if token in state.extra.get("diag_used", {}):
            return web.Response(status=410, text="this upload URL was used already")
        return web.Response(status=404, text="no upload is expected at this URL")
    limit = state.extra.get("diag_log_max_bytes", LOG_MAX_BYTES)
    if request.content_length is not None and request.content_length > limit:
        return web.Response(status=413, text=f"a log of {request.content_length} bytes (at most {limit})")
    ctype = request.headers.get("Content-Type", "text/plain").split(";")[0].strip().lower()
    if not ctype.startswith("text/") and ctype != "application/octet-stream":
        return web.Response(status=415, text=f"the log must be text, not {ctype}")
    try:  # (the app's body deadline may have read it already: read() gives what it kept)
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.Response(status=413, text=f"a log of more than {limit} bytes")
    if len(body) > limit:
        return web.Response(status=413, text=f"a log of {len(body)} bytes (at most {limit})")
    del tokens[token]
    used: dict[str, None] = state.extra.setdefault("diag_used", {})
    used[token] = None
    while len(used) > TOKENS_KEPT:
        used.pop(next(iter(used)))
    logs = received_logs(state, dev_id)
    logs.append(ReceivedLog(dev_id, token, body, time.time()))
    del logs[:-LOGS_KEPT]
    return web.Response(status=201, text=f"stored {len(body)} bytes")


def setup_diag(app: web.Application) -> None:
    app.router.add_post(UPLOAD + "/{token}", upload)
    app.router.add_put(UPLOAD + "/{token}", upload)
