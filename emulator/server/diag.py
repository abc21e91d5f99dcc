"""The reference server's DiagMon side: a diagnostics read, a trap setup and a log upload, for both
protocols, and the endpoint that receives the uploaded logs.

Scripts (set per device through :meth:`emulator.server.control.ServerControl.set_diag_script`, admin
``POST /admin/diag/<DevID>`` with ``{"script": "read"|"trap"|"upload", "protocol": "dm12"|"dm2", ...}``):

- ``read``: the battery, memory, each radio's signal and the error log's size (DM 1.2: Get of the
  leaves, the radios listed first with ``?list=Struct``; DM 2.0: GET of the interior nodes).
- ``trap``: arm one trap: ``trap`` (its name: Battery, Memory, Signal or a new one, DM 1.2 only),
  ``measure`` (e.g. ``Battery/Level``), ``condition`` (below/above), ``threshold`` (an integer).
  DM 1.2 Replaces (Adds, for a new trap) the leaves; DM 2.0 HGETs each leaf from the repository.
- ``upload``: make the device POST its error log to a one-time URL of this server (DM 1.2: Exec of
  ``ErrorLog/Upload`` with the URL as data and a Correlator; DM 2.0: the URL into ``UploadURL`` by
  HGET, then EXEC with the alert endpoint as ServerURI).

The upload endpoint ``POST|PUT /diag/upload/<token>`` takes one log per token (a token is made for
one device by the ``upload`` script and is its only credential: 404 for an unknown one, 410 once
used), at most :data:`LOG_MAX_BYTES` bytes (413 beyond, nothing kept), text only (415 otherwise).
What came in is kept per device (:class:`ReceivedLog`, newest :data:`LOGS_KEPT`).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulator.errors import EmulatorError
from emulator.protocol.dm2.moser import MOSerialization
from emulator.protocol.syncml.commands import Add, Command, Exec, Get, Item, Meta, Replace
from emulator.server.routes import DIAG
from emulator.server.state import STATE_KEY, ServerState, Step

UPLOAD = DIAG + "/upload"
MOID = "urn:oma:mo:oma-diagmon:1.0"
DM1_ROOT = "./DiagMon"
LOG_MAX_BYTES = 256 * 1024
"""Largest error log the upload endpoint takes (bytes); a larger one is answered 413 and not kept."""
LOGS_KEPT = 20
"""Uploaded logs kept per device (the oldest go first)."""
TOKENS_KEPT = 10000
"""Upload tokens the server remembers (unused ones beyond are forgotten, oldest first)."""
SCRIPTS = ("read", "trap", "upload")
PROTOCOLS = ("dm12", "dm2")
TRAP_DEFAULTS = {"Battery": "Battery/Level", "Memory": "Memory/Free"}


@dataclass(frozen=True, slots=True)
class ReceivedLog:
    """One error log a device uploaded."""

    dev_id: str
    token: str
    body: bytes
    ts: float


@dataclass(frozen=True, slots=True)
class TrapSpec:
    """A checked trap setup."""

    trap: str
    measure: str
    condition: str
    threshold: int


def check_trap(params: dict[str, Any]) -> TrapSpec:
    """The trap a script arms; EmulatorError (400) naming what is wrong."""
    trap = str(params.get("trap", "Battery"))
    if not trap or not trap.isalnum() or len(trap) > 32:
        raise EmulatorError(f"trap must be a name of 1-32 letters or digits, not {trap[:40]!r}", status=400)
    measure = str(params.get("measure", TRAP_DEFAULTS.get(trap, "")))
    names = measure.split("/")
    if not measure or names[0] not in ("Battery", "Memory", "Radio") or any(not n for n in names) or ".." in names:
        raise EmulatorError(f"measure must be Battery/Level, Memory/Free or Radio/<bearer>/Signal, not "
                            f"{measure[:60]!r}", status=400)
    condition = str(params.get("condition", "below"))
    if condition not in ("below", "above"):
        raise EmulatorError(f"condition must be below or above, not {condition[:40]!r}", status=400)
    raw = params.get("threshold")
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise EmulatorError(f"threshold must be an integer, not {str(raw)[:40]!r}", status=400)
    try:
        threshold = int(raw)
    except ValueError:
        raise EmulatorError(f"threshold must be an integer, not {str(raw)[:40]!r}", status=400) from None
    if abs(threshold) >= 10**12:
        raise EmulatorError("threshold must have fewer than 13 digits", status=400)
    return TrapSpec(trap, measure, condition, threshold)


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


# ------------------------------------------------------------------ DM 1.2 scripts


def dm12_script(name: str, params: dict[str, Any]) -> Any:
    """A DM 1.2 script (``Dm12Config.script`` shape: config -> [(step name, step)]); checked now."""
    from emulator.server.dm12 import Dm12Session

    if name == "read":
        def leaves(s: Dm12Session) -> list[Command]:
            gets: list[Command] = [Get(cmd_id="0", items=[Item(target=f"{DM1_ROOT}/{leaf}")]) for leaf in
                                   ("Battery/Level", "Battery/Status", "Memory/Total", "Memory/Free",
                                    "ErrorLog/Entries")]
            gets.append(Get(cmd_id="0", items=[Item(target=f"{DM1_ROOT}/Radio?list=Struct")]))
            return gets

        def radios(s: Dm12Session) -> list[Command]:
            prefix = f"{DM1_ROOT}/Radio/"
            found = sorted({k[len(prefix):].split("/")[0] for k in s.results if k.startswith(prefix)})
            out: list[Command] = [Get(cmd_id="0", items=[Item(target=f"{prefix}{r}/Signal")]) for r in found if r]
            return out

        return lambda config: [("diagnostics", leaves), ("radio signal", radios)]
    if name == "trap":
        spec = check_trap(params)

        def arm(s: Dm12Session) -> list[Command]:
            node = f"{DM1_ROOT}/Trap/{spec.trap}"
            values = (("Measure", spec.measure, "chr"), ("Condition", spec.condition, "chr"),
                      ("Threshold", str(spec.threshold), "int"), ("Enabled", "true", "bool"))
            if spec.trap in ("Battery", "Memory", "Signal"):
                return [Replace(cmd_id="0", meta=Meta(format=fmt, type="text/plain"),
                                items=[Item(target=f"{node}/{leaf}", data=value)]) for leaf, value, fmt in values]
            added: list[Command] = [Add(cmd_id="0", meta=Meta(format="node"), items=[Item(target=node)])]
            added += [Add(cmd_id="0", meta=Meta(format=fmt, type="text/plain"),
                          items=[Item(target=f"{node}/{leaf}", data=value)]) for leaf, value, fmt in values]
            return added

        return lambda config: [("arm trap", arm)]
    if name == "upload":
        def upload(s: Dm12Session) -> list[Command]:
            url = new_upload_url(s.server.state, s.dev_id, _origin(s.source))
            return [Exec(cmd_id="0", correlator=f"diag-{secrets.token_hex(4)}",
                         items=[Item(target=f"{DM1_ROOT}/ErrorLog/Upload", data=url)])]

        return lambda config: [("upload log", upload)]
    raise EmulatorError(f"unknown diagnostics script {name!r} (known: {', '.join(SCRIPTS)})", status=400)


def _origin(source: str) -> str:
    """The scheme and host of the URL a DM 1.2 device addressed (its session's Source)."""
    from urllib.parse import urlsplit

    parts = urlsplit(source)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""


# ------------------------------------------------------------------ DM 2.0 scripts


def dm2_script(state: ServerState, dev_id: str, name: str, params: dict[str, Any]) -> list[Step]:
    """A DM 2.0 script (steps of string commands); trap values go into the repository first."""
    root = f"{MOID}/"
    if name == "read":
        return [[["GET", f"{root}/Battery"], ["GET", f"{root}/Memory"], ["GET", f"{root}/Radio"],
                 ["GET", f"{root}/ErrorLog/Entries"]], [["END"]]]
    if name == "trap":
        spec = check_trap(params)
        if spec.trap not in ("Battery", "Memory", "Signal"):
            raise EmulatorError("over DM 2.0 the traps are Battery, Memory and Signal", status=400)
        step = []
        for leaf, value in (("Measure", spec.measure), ("Condition", spec.condition),
                            ("Threshold", spec.threshold), ("Enabled", True)):
            key = f"diag/{dev_id}/{spec.trap}-{leaf}"
            uri = f"{root}/Trap/{spec.trap}/{leaf}"
            state.put_repo(key, [MOSerialization(client_uri=uri, mo_data={leaf: value})])
            step.append(["HGET", "${base}/repo/" + key, uri])
        return [step, [["END"]]]
    if name == "upload":
        key = f"diag/{dev_id}/upload-url"
        return [[["HGET", "${base}/repo/" + key + "?${diag-upload:" + key + "}", f"{root}/ErrorLog/UploadURL"]],
                [["EXEC", f"{root}/ErrorLog/Upload", "${alerts}"]], [["END"]]]
    raise EmulatorError(f"unknown diagnostics script {name!r} (known: {', '.join(SCRIPTS)})", status=400)


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
