"""The reference DM server as one aiohttp application: ``create_app(state)``.

Mounts the DM 2.0 side (:mod:`emulator.server.dm2`: sessions, data repository, push channel), the
web UI flows (:mod:`emulator.server.ui_flows`, under ``/ui/``), the DM 1.2/1.3 side
(:mod:`emulator.server.dm12`), the fault middleware and the admin API (:mod:`emulator.server.admin`).
Used by ``dm-emulator server``, the desktop demo and the integration tests. A caller drives the
running server through its control surface (``RunningServer.control``, the same one ``/admin/...``
uses); tests may also read ``state`` to check what devices did.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Collection
from dataclasses import dataclass

from aiohttp import web

from emulator.errors import EmulatorError
from emulator.server.access import admin_guard
from emulator.server.admin import CONTROL_KEY, setup_admin
from emulator.server.bootstrap import setup_bootstrap
from emulator.server.control import ServerControl
from emulator.server.delegation import setup_delegation
from emulator.server.diag import setup_diag
from emulator.server.dm2 import setup_dm2
from emulator.server.dm12 import setup_dm12
from emulator.server.fault_middleware import setup_faults
from emulator.server.lean_http import Lane
from emulator.server.limits import LIMITS_KEY, LimitedSite, ServerLimits, body_deadline
from emulator.server.packages import setup_packages
from emulator.server.sessionless import setup_sessionless
from emulator.server.state import STATE_KEY, ServerState
from emulator.server.ui_flows import setup_ui

MAX_BODY = 4 << 20
"""Largest request body accepted (a DM package or an uploaded MO is far smaller)."""

_HOME = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Reference DM server</title>
<link rel="stylesheet" href="/ui/static/style.css"></head><body><main class="card">
<h1>Reference DM server</h1>
<ul>
<li>DM 2.0 sessions: <code>POST /dm2</code> (or <code>/dm20</code>), push long-poll <code>GET /push/&lt;DevID&gt;</code></li>
<li>DM 1.2/1.3 sessions: <code>POST /dm12</code></li>
<li>Other authorities of the shipped profiles: <code>POST /dm12/&lt;ServerID&gt;</code>, <code>POST /dm2/&lt;ServerID&gt;</code></li>
<li>Data repository: <code>/repo/...</code> (devices upload under <code>/repo/&lt;DevID&gt;/</code> with their own credentials)</li>
<li>Packages (firmware, software): <code>/packages/&lt;name&gt;</code> (HTTP Range), descriptors <code>/packages/&lt;name&gt;/dd</code></li>
<li>Admin API (<code>Authorization: Bearer &lt;admin token&gt;</code>, printed at start): notify a device <code>POST /admin/notify/&lt;DevID&gt;</code>, campaigns <code>/admin/campaigns</code>, scripts, faults, accounts</li>
<li>DiagMon log uploads: <code>POST /diag/upload/&lt;token&gt;</code> (one-time URLs the diagnostics upload script gives a device)</li>
<li><a href="/ui/">Web pages shown on devices</a></li>
</ul></main></body></html>"""


async def _home(request: web.Request) -> web.Response:
    return web.Response(text=_HOME, content_type="text/html", charset="utf-8")


def create_app(state: ServerState | None = None) -> web.Application:
    """The whole reference server; ``app[STATE_KEY]`` is ``state`` (a new one when None)."""
    state = state if state is not None else ServerState()
    app = web.Application(client_max_size=MAX_BODY, middlewares=[admin_guard, body_deadline])
    app[STATE_KEY] = state
    app.router.add_get("/", _home)
    setup_dm2(app)
    setup_ui(app)
    setup_dm12(app, state)
    setup_bootstrap(app)
    setup_sessionless(app)
    setup_delegation(app)
    setup_diag(app)
    setup_faults(app, state)
    state.packages.base_url = lambda: state.base_url
    setup_packages(app, state.packages)
    setup_admin(app)
    return app


@dataclass
class RunningServer:
    """A reference server listening in the current event loop."""

    runner: web.AppRunner
    state: ServerState
    url: str
    site: LimitedSite | None = None

    @property
    def control(self) -> ServerControl:
        """What a caller may do with this server (notify, scripts, faults, reports)."""
        return self.runner.app[CONTROL_KEY]

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_server(state: ServerState | None = None, *, host: str = "127.0.0.1", port: int = 0,
                       ssl_context: ssl.SSLContext | None = None, handle_signals: bool = False,
                       limits: ServerLimits | None = None, app: web.Application | None = None,
                       lean_paths: Collection[str] = ()) -> RunningServer:
    """Listen on host:port (0: a free port) in the running loop: the one way the command, the
    window's demo, the bench and the tests start the server. A port that cannot be bound is an
    EmulatorError. ``limits``: the connection limits (:mod:`emulator.server.limits`; None: the
    defaults). ``app``: one made by :func:`create_app` (and added to); None: a new one on ``state``.
    ``lean_paths``: more literal POST routes of ``app`` served on the lean path, as the session routes are."""
    limits = limits or ServerLimits()
    app = app if app is not None else create_app(state)
    app[LIMITS_KEY] = limits
    state = app[STATE_KEY]
    lane = Lane(app, idle_s=limits.idle_s, body_s=limits.body_s, max_body=MAX_BODY, also=lean_paths)
    app.on_shutdown.append(lane.shutdown)
    runner = web.AppRunner(app, handle_signals=handle_signals, access_log=None, keepalive_timeout=limits.idle_s)
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.setblocking(False)
        site = LimitedSite(runner, sock, ssl_context=ssl_context, limits=limits, lane=lane)
        await site.start()
    except OSError as exc:
        sock.close()
        await runner.cleanup()
        raise EmulatorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    shown = f"[{host}]" if ":" in host else host
    url = f"{'https' if ssl_context else 'http'}://{shown}:{sock.getsockname()[1]}"
    if not state.base_url and host not in ("0.0.0.0", "::"):
        state.base_url = url
    return RunningServer(runner, state, url, site)
