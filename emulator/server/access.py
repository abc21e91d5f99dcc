"""Who may use the reference server's non-session routes: the admin API, the push channel and uploads.

Why: ``/admin`` sets any device's script, reads what any device reported and makes the server POST
to a URL; ``/push/<DevID>`` hands out a device's notifications; a PUT on ``/repo`` stores data the
server keeps. None of that may be open to whoever reaches the port.

- ``/admin/*`` needs ``Authorization: Bearer <admin token>`` (``state.admin_token``: printed by
  ``dm-emulator server`` at start, or given with ``--admin-token`` / ``DM_EMULATOR_ADMIN_TOKEN``;
  the window drives its in-process server through the same control surface, without HTTP). ``?to=`` of
  ``/admin/notify`` must name an address a device authenticated from (:func:`known_target`).
- ``/push/<DevID>`` and PUT/POST on ``/repo/<DevID>/...`` need that device's own DM 2.0 credentials
  (:func:`device_problem`; the push channel also its DM 1.x ones or its factory bootstrap secret,
  :func:`push_problem`); a device writes only under its own ``<DevID>/`` and within its quota
  (``state.repo_quota_uploads`` uploads, ``state.repo_quota_bytes`` bytes, kept for the server's life).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.server.bootstrap import factory_ok
from emulator.server.dm2_auth import Verdict
from emulator.server.routes import ADMIN
from emulator.server.state import STATE_KEY, ServerState
from emulator.server.tls import peer_common_name


def _is_admin(path: str) -> bool:
    return path == ADMIN or path.startswith(ADMIN + "/")


@web.middleware
async def admin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse ``/admin`` requests without the admin token: 401 (none given) or 403 (a wrong one)."""
    if _is_admin(request.path):
        token = request.app[STATE_KEY].admin_token
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return web.Response(status=401, text="the admin API needs Authorization: Bearer <admin token> "
                                                 "(printed by dm-emulator server at start)",
                                headers={"WWW-Authenticate": 'Bearer realm="dm-emulator admin"'})
        if not token or not hmac.compare_digest(value.strip().encode(), token.encode()):
            return web.Response(status=403, text="wrong admin token")
    return await handler(request)


def device_problem(request: web.Request, dev_id: str) -> web.Response | None:
    """None when ``request`` authenticates as ``dev_id`` with one of the DM 2.0 authorities the server
    plays (the default one first); else the 401 to answer. Remembers where the device came from."""
    state = request.app[STATE_KEY]
    header = request.headers.get("Authorization")
    cn = peer_common_name(request.transport)
    verdict = None
    for server_id in dict.fromkeys((state.server_id, *(state.dm2_authorities or {}))):
        verdict = state.authenticate(header, server_id=server_id, dev_id=dev_id, method=request.method,
                                     uri=request.raw_path, peer_cn=cn)
        if verdict.user is not None:
            note_address(state, request)
            return None
    assert verdict is not None
    return unauthorized(state, state.server_id, verdict)


def push_problem(request: web.Request, dev_id: str) -> web.Response | None:
    """:func:`device_problem` for the push channel, which DM 1.3's HTTP push binding shares: a device
    may also wait there with a DM 1.x account (HTTP Digest in this server's one realm, or Basic, with
    the account's client credentials) or, factory-fresh, with its bootstrap secret (Basic user
    ``bootstrap``), for the bootstrap a server may push to it."""
    refused = device_problem(request, dev_id)
    if refused is None:
        return None
    state = request.app[STATE_KEY]
    header = request.headers.get("Authorization")
    if factory_ok(header, dev_id):
        return None
    authorities = state.dm12.config.authorities.values() if state.dm12 is not None else ()
    for authority in authorities:
        verdict = state.dm2_guard.check(authority, dev_id, header, method=request.method, uri=request.raw_path,
                                        realm=state.server_id)
        if verdict.user is not None:
            note_address(state, request)
            return None
    return refused


def unauthorized(state: ServerState, realm: str, verdict: Verdict) -> web.Response:
    """401 with the reason and a challenge for each scheme the server accepts (Digest, Basic)."""
    response = web.Response(status=401, text=f"wrong or missing credentials: {verdict.how}")
    for value in state.dm2_guard.challenges(realm, stale=verdict.stale):
        response.headers.add("WWW-Authenticate", value)
    return response


def note_address(state: ServerState, request: web.Request) -> None:
    """Remember the address an authenticated device came from (``/admin/notify?to=`` may target it)."""
    remote = request.remote
    if remote and remote not in state.device_addresses and len(state.device_addresses) < MAX_ADDRESSES:
        state.device_addresses.add(_normal(remote))  # an address in its normal form is looked up as is


MAX_ADDRESSES = 65536
"""Distinct device addresses remembered for ``/admin/notify?to=`` (more are not added)."""


def known_target(state: ServerState, to: str) -> bool:
    """Whether ``to`` (a listener URL) is at an address a device authenticated from: the admin API
    must not make the server POST wherever it is told (a request forgery relay)."""
    try:
        host = urlsplit(to).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return bool(state.device_addresses & {"127.0.0.1", "::1"})
    return _normal(host) in state.device_addresses


def _normal(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host.lower()
