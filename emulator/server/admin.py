"""``/admin/...``: the reference server's control surface (:mod:`emulator.server.control`) over HTTP.

- ``POST /admin/notify/<DevID>[?req_mos=1][&server_id=ID][&protocol=dm2|dm12]``: queue a notification
  for the push channel (``dm12``: a DM 1.x Package 0, DM 1.3's HTTP push binding); with ``&to=<listener
  URL>`` POST it to a reachable device's notification listener instead (200 when the listener took
  it, 502 with its answer if not).
- ``POST /admin/bootstrap/<DevID>[?sec=USERPIN]``: server-initiated bootstrap (DM 1.3): a new DM 1.x
  account for the device, queued on its push channel as a MAC'd bootstrap message.
- ``POST /admin/sessionless/<DevID>?to=<listener URL>`` with JSON ``{"commands": [{"cmd": "Get",
  "target": "./DevInfo/Mod"}, ...], "server_id": ..., "lifetime": 600}``: a DM 1.3 sessionless command
  message POSTed to the device's listener (200 when it ran them, 502 with its answer if not);
  ``GET /admin/sessionless/reports[?device=<DevID>]``: the sessionless reports taken
  (:mod:`emulator.server.sessionless`).
- ``POST /admin/delegation/peers`` with JSON ``{"server_id": <this server's>, "peers": [{"server_id",
  "url", "secret"}]}``: the DM servers this one delegates to or takes delegations from;
  ``POST /admin/delegation/<DevID>?to=<listener URL>`` with JSON ``{"delegate", "scope", "kind",
  "depth"}``: delegate part of a device to a peer (DM 1.3 server-to-server delegation, 502 when the
  peer refuses); ``GET /admin/delegations``: this server's delegations, either side
  (:mod:`emulator.server.delegation`).
- ``POST /admin/script/<DevID>`` with JSON ``{"steps": [...]}`` or ``{"flow": "plan"}``: set the DM 2.0
  script (``*`` = every device without its own).
- ``POST /admin/flow/<DevID>`` with JSON ``{"flow": "lawmo"|"scomo"|"reset", "protocol": "dm2"|"dm12",
  ...}`` (``wipe``, ``package_url``, ``package``, ``pkg_id``, ``version``, ``environment``): a
  one-device campaign of LAWMO or SCOMO steps (:func:`emulator.server.campaigns.flow_campaign`);
  ``GET /admin/flow/<DevID>?protocol=dm2``: where it is.
- ``POST /admin/diag/<DevID>`` with JSON ``{"script": "read"|"trap"|"upload", "protocol": "dm12"|"dm2",
  ...}`` (a trap: ``trap``, ``measure``, ``condition``, ``threshold``): a one-device campaign of one
  ``diag.*`` step; ``GET /admin/diag/<DevID>``: the values, DiagMon alerts and logs seen.
- ``GET /admin/devices``: the devices seen and the sessions open; ``GET /admin/devices/<DevID>``:
  what the server saw of one device, as JSON.
- ``GET /admin/accounts``, ``POST /admin/accounts`` (a JSON account or list, the keys of an accounts
  file, all or none added): accounts of clients the server did not ship (:mod:`emulator.server.accounts`).
- ``POST /admin/campaigns`` (JSON: id, devices, protocols, steps; or the firmware form package, size,
  version, devices, descriptor, operation: see :mod:`emulator.server.campaigns`): start a campaign;
  ``GET /admin/campaigns``: every campaign's progress (``?format=html``: the admin page);
  ``GET /admin/campaigns/<id>``: one, per device; ``GET /admin/alerts``: the generic alerts received.

Every JSON body is at most :data:`MAX_ADMIN_BODY` bytes (413 beyond).
- ``GET /admin/faults``, ``POST /admin/faults`` (a JSON fault or list, all or none installed),
  ``DELETE /admin/faults``: the faults of :mod:`emulator.server.faults`.

Each handler only translates HTTP to a :class:`ServerControl` call and back; the rules are there.
Every request needs the admin token (:mod:`emulator.server.access`, checked before any handler), and
``?to=`` must be at an address a device authenticated from: over HTTP, the server must not become a
relay that POSTs wherever it is told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from emulator.errors import DecodeError, EmulatorError, TooLargeError
from emulator.protocol.dm2 import jsonsafe
from emulator.server.access import known_target
from emulator.server.control import ServerControl
from emulator.server.notify_out import check_target
from emulator.server.routes import ADMIN
from emulator.server.state import STATE_KEY

Handler = Callable[[web.Request], Awaitable[web.Response]]
MAX_ADMIN_BODY = jsonsafe.DEFAULT_MAX_SIZE
"""Largest JSON body an admin request may carry (1 MiB: a campaign for 100,000 devices fits)."""
CONTROL_KEY = web.AppKey("control", ServerControl)
"""Where :func:`setup_admin` keeps the control surface on the aiohttp application."""


def _problem(exc: EmulatorError) -> web.Response:
    return web.Response(status=exc.status, text=str(exc))


def _json(body: bytes, what: str) -> object:
    """An admin request's JSON, read as hardened as a DM 2.0 package (depth, size, numbers): 413
    over :data:`MAX_ADMIN_BODY`, 400 with the reason for anything else, never a traceback."""
    try:
        return jsonsafe.loads(body, what=what, max_size=MAX_ADMIN_BODY)
    except TooLargeError as exc:
        raise EmulatorError(f"{exc}", status=413) from None
    except DecodeError as exc:
        raise EmulatorError(f"expected JSON: {exc}", status=400) from None


def _answers(handler: Callable[[web.Request, ServerControl], Awaitable[web.Response]]) -> Handler:
    """A handler given the app's control surface; an EmulatorError becomes its status and text."""

    async def handle(request: web.Request) -> web.Response:
        try:
            return await handler(request, request.app[CONTROL_KEY])
        except EmulatorError as exc:
            return _problem(exc)

    return handle


async def notify(request: web.Request, control: ServerControl) -> web.Response:
    dev_id = request.match_info["dev"]
    req_mos = request.query.get("req_mos", "").lower() in ("1", "true", "yes")
    protocol = request.query.get("protocol", "dm2")
    to = request.query.get("to")
    if to is not None and not known_target(control.state, check_target(to)):
        raise EmulatorError(f"?to={to!r} is not at an address a device authenticated from: over HTTP the "
                            "server notifies only device listeners it has seen", status=403)
    notice = await control.notify(dev_id, protocol, listener=to, req_mos=req_mos,
                                  server_id=request.query.get("server_id"))
    if notice.sent is None:
        return web.json_response({"device": dev_id, "protocol": protocol, "channel": "push",
                                  "notification_id": notice.notification_id, "req_mos": req_mos})
    sent = notice.sent
    return web.json_response({"device": dev_id, "protocol": protocol, "to": to, "delivered": sent.delivered,
                              "listener_status": sent.status, "detail": sent.detail,
                              "notification_id": sent.notification_id}, status=200 if sent.delivered else 502)


async def bootstrap(request: web.Request, control: ServerControl) -> web.Response:
    dev_id = request.match_info["dev"]
    server_id = control.push_bootstrap(dev_id, request.query.get("sec", "USERPIN"))
    return web.json_response({"device": dev_id, "server_id": server_id, "channel": "push"})


async def sessionless_send(request: web.Request, control: ServerControl) -> web.Response:
    dev_id = request.match_info["dev"]
    to = request.query.get("to")
    if to is None:
        raise EmulatorError("?to=<the device's notification listener URL> is missing", status=400)
    if not known_target(control.state, check_target(to)):
        raise EmulatorError(f"?to={to!r} is not at an address a device authenticated from: over HTTP the "
                            "server sends only to device listeners it has seen", status=403)
    spec = _json(await request.read() or b"{}", "sessionless commands")
    if not isinstance(spec, dict) or set(spec) - {"commands", "server_id", "lifetime"}:
        raise EmulatorError('expected {"commands": [...], "server_id": ..., "lifetime": ...}', status=400)
    server_id = spec.get("server_id")
    if server_id is not None and not isinstance(server_id, str):
        raise EmulatorError("server_id must be text", status=400)
    answer = await control.sessionless(dev_id, spec.get("commands"), listener=to, server_id=server_id,
                                       lifetime=spec.get("lifetime", 600))
    return web.json_response(answer, status=200 if answer["delivered"] else 502)


async def delegation_peers(request: web.Request, control: ServerControl) -> web.Response:
    from emulator.server.delegation import set_peers

    return web.json_response(set_peers(control.state, _json(await request.read() or b"{}", "peers")))


async def delegation_start(request: web.Request, control: ServerControl) -> web.Response:
    from emulator.server.delegation import delegate

    to = request.query.get("to")
    if to is None:
        raise EmulatorError("?to=<the device's notification listener URL> is missing", status=400)
    if not known_target(control.state, check_target(to)):
        raise EmulatorError(f"?to={to!r} is not at an address a device authenticated from", status=403)
    spec = _json(await request.read() or b"{}", "delegation")
    return web.json_response(await delegate(control.state, request.match_info["dev"], spec, listener=to))


async def delegations_list(request: web.Request, control: ServerControl) -> web.Response:
    from emulator.server.delegation import records

    return web.json_response({"delegations": records(control.state)})


async def sessionless_reports(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response({"reports": control.sessionless_reports(request.query.get("device"))})


async def script(request: web.Request, control: ServerControl) -> web.Response:
    dev_id = request.match_info["dev"]
    spec = _json(await request.read() or b"{}", "script")
    if not isinstance(spec, dict):
        raise EmulatorError('expected {"steps": [...]} or {"flow": "<name>"}', status=400)
    if "flow" in spec:
        steps = control.set_script(dev_id, flow=str(spec["flow"]))
    else:
        steps = control.set_script(dev_id, steps=spec.get("steps"))
    return web.json_response({"device": dev_id, "steps": len(steps)})


async def flow_start(request: web.Request, control: ServerControl) -> web.Response:
    spec = _json(await request.read() or b"{}", "flow")
    if not isinstance(spec, dict) or not isinstance(spec.get("flow"), str):
        raise EmulatorError('expected {"flow": "lawmo" or "scomo", "protocol": "dm2" or "dm12", ...}', status=400)
    params = {k: v for k, v in spec.items() if k not in ("flow", "protocol")}
    protocol = spec.get("protocol", "dm2")
    if not isinstance(protocol, str):
        raise EmulatorError("protocol must be dm2 or dm12", status=400)
    return web.json_response(control.start_flow(request.match_info["dev"], spec["flow"], protocol, **params))


async def flow_get(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response(control.flow(request.match_info["dev"], request.query.get("protocol", "dm2")))


async def devices(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response({"devices": control.devices(), "sessions": control.sessions()})


async def device(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response(control.device_report(request.match_info["dev"]))


async def diag_set(request: web.Request, control: ServerControl) -> web.Response:
    spec = _json(await request.read() or b"{}", "diagnostics script")
    if not isinstance(spec, dict) or not isinstance(spec.get("script"), str):
        raise EmulatorError('expected {"script": "read"|"trap"|"upload", "protocol": ..., ...}', status=400)
    params = {k: v for k, v in spec.items() if k not in ("script", "protocol")}
    unknown = set(params) - {"trap", "measure", "condition", "threshold"}
    if unknown:
        raise EmulatorError(f"unknown keys: {', '.join(sorted(unknown))}", status=400)
    control.set_diag_script(request.match_info["dev"], spec["script"], str(spec.get("protocol", "dm2")), **params)
    return web.json_response({"device": request.match_info["dev"], "script": spec["script"]})


async def diag_get(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response(control.diagnostics(request.match_info["dev"]))


async def faults_list(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response(control.faults())


async def faults_add(request: web.Request, control: ServerControl) -> web.Response:
    spec = _json(await request.read() or b"[]", "faults")
    return web.json_response(control.add_faults(spec))


async def accounts_list(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response({"accounts": control.accounts()})


async def accounts_add(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response({"accounts": control.add_accounts_json(_json(await request.read() or b"[]",
                                                                          "accounts"))})


async def campaigns_list(request: web.Request, control: ServerControl) -> web.Response:
    if request.query.get("format") == "html":
        from emulator.server.campaigns import campaign_html

        page = campaign_html(list(control.state.campaigns.campaigns.values()))
        return web.Response(text=page, content_type="text/html", charset="utf-8")
    return web.json_response({"campaigns": control.campaigns()})


async def campaigns_add(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response(control.add_campaign(_json(await request.read() or b"{}", "campaign")))


async def campaign_one(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response(control.campaign(request.match_info["id"]).details())


async def alerts_list(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response({"alerts": control.generic_alerts()})


async def faults_clear(request: web.Request, control: ServerControl) -> web.Response:
    return web.json_response({"removed": control.clear_faults()})


def setup_admin(app: web.Application) -> ServerControl:
    """Mount ``/admin/...`` on a server whose state is ``app[STATE_KEY]``; its control surface back."""
    control = app[CONTROL_KEY] = ServerControl(app[STATE_KEY])
    app.router.add_post(ADMIN + "/notify/{dev}", _answers(notify))
    app.router.add_post(ADMIN + "/bootstrap/{dev}", _answers(bootstrap))
    app.router.add_post(ADMIN + "/script/{dev}", _answers(script))
    app.router.add_get(ADMIN + "/sessionless/reports", _answers(sessionless_reports))
    app.router.add_post(ADMIN + "/delegation/peers", _answers(delegation_peers))
    app.router.add_post(ADMIN + "/delegation/{dev}", _answers(delegation_start))
    app.router.add_get(ADMIN + "/delegations", _answers(delegations_list))
    app.router.add_post(ADMIN + "/sessionless/{dev}", _answers(sessionless_send))
    app.router.add_post(ADMIN + "/flow/{dev}", _answers(flow_start))
    app.router.add_get(ADMIN + "/flow/{dev}", _answers(flow_get))
    app.router.add_get(ADMIN + "/devices", _answers(devices))
    app.router.add_get(ADMIN + "/devices/{dev}", _answers(device))
    app.router.add_post(ADMIN + "/diag/{dev}", _answers(diag_set))
    app.router.add_get(ADMIN + "/diag/{dev}", _answers(diag_get))
    app.router.add_get(ADMIN + "/faults", _answers(faults_list))
    app.router.add_post(ADMIN + "/faults", _answers(faults_add))
    app.router.add_delete(ADMIN + "/faults", _answers(faults_clear))
    app.router.add_get(ADMIN + "/campaigns", _answers(campaigns_list))
    app.router.add_post(ADMIN + "/campaigns", _answers(campaigns_add))
    app.router.add_get(ADMIN + "/campaigns/{id}", _answers(campaign_one))
    app.router.add_get(ADMIN + "/alerts", _answers(alerts_list))
    app.router.add_get(ADMIN + "/accounts", _answers(accounts_list))
    app.router.add_post(ADMIN + "/accounts", _answers(accounts_add))
    return control
