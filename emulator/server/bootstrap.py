"""The reference server as a DM 1.3 bootstrap server: ``GET /bootstrap/<DevID>`` (README "DM 1.3").

A factory-fresh DM 1.3 device asks here for its first management account (client-initiated
bootstrap, ERELD 4.3), authenticated with HTTP Basic: user ``bootstrap`` (a DevID such as
``IMEI:...`` cannot be a Basic user, RFC 7617; the path names the device), password = the factory
bootstrap secret of its profile (``[bootstrap] secret``, learnt from the shipped profiles as the DM
authorities are, :mod:`emulator.server.authorities`). The answer is a TNDS document
(``application/vnd.syncml.dmtnds+xml``) describing one ``./DMAcc/<ServerID>`` account of the DM 1.x
authority this server plays on ``/dm12`` (its ``server_id``), with secrets made for this device
alone and auth-SHA256 both ways; the DM 1.x side is told the same account at once, so the device's
first management session authenticates. 401 for a device that cannot prove its factory secret,
404 when the DM 1.x side is not set up; a repeated bootstrap gives the device fresh secrets.

The same account goes out in a server-initiated bootstrap (:meth:`emulator.server.control.
ServerControl.push_bootstrap`: :func:`provision`, wrapped by :mod:`emulator.protocol.syncml.bootstrap`
and queued on the device's push channel), and ``GET /.well-known/dm-bootstrap`` answers bootstrap
server discovery with this server's ``/bootstrap`` URL.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import replace
from functools import lru_cache
from urllib.parse import unquote

from aiohttp import web

from emulator.device.profile import AccountSpec, fill
from emulator.mo.bootstrap import BASIC_USER
from emulator.server.authorities import SecretPair, UserRule
from emulator.server.state import STATE_KEY, ServerState, base_url
from emulator.tree import Tree
from emulator.tree.tnds import TNDS_XML, export_tnds

ROUTE = "/bootstrap"
DISCOVERY = "/.well-known/dm-bootstrap"
"""Bootstrap server discovery (RFC 8615 well-known URI, README "DM 1.3"): where a device asks the
network it is attached to for its bootstrap server."""


def factory_secrets() -> list[str]:
    """The factory bootstrap secrets of the shipped profiles (templates such as ``{dev_id}`` allowed)."""
    from emulator.server.authorities import readable_profiles

    return sorted({p.bootstrap.secret for p in readable_profiles() if p.bootstrap is not None})


def _basic(header: str | None) -> tuple[str, str] | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:  # the user has no ':' (RFC 7617); the password may
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError):
        return None
    return (user, password) if sep else None


def bootstrap_document(server_id: str, name: str, server_uri: str, dev_id: str, pair: SecretPair) -> bytes:
    """The TNDS of one DM 1.x account for ``dev_id``, built as a device's profile account is."""
    from emulator.device.build import write_dm1_account

    tree = Tree()
    tree.set_node("./DMAcc", format="node")
    write_dm1_account(tree, AccountSpec(server_id=server_id, name=name, server_uri=server_uri, protocol="dm12",
                                        auth="sha256", client_user=dev_id, client_secret=pair.client,
                                        server_secret=pair.server, nonce="AAAAAA=="))
    return export_tnds(tree, f"./DMAcc/{server_id}", mask_secrets=False)


@lru_cache(maxsize=1)
def _known_secrets() -> tuple[str, ...]:
    return tuple(factory_secrets()) or ("",)


def factory_secret_for(dev_id: str) -> str:
    """The factory secret a device of a shipped profile holds (its DevID's profile first), '' if none:
    the key of the USERPIN MAC of a pushed bootstrap."""
    from emulator.server.authorities import dev_id_prefix, readable_profiles

    boots = [p for p in readable_profiles() if p.bootstrap is not None]
    owner = next((p for p in boots if dev_id.startswith(dev_id_prefix(p.identity) or "\x00")), None)
    owner = owner or (boots[0] if len(boots) == 1 else None)
    return fill(owner.bootstrap.secret, {"dev_id": dev_id}) if owner is not None and owner.bootstrap else ""


def factory_ok(header: str | None, dev_id: str) -> bool:
    """HTTP Basic ``bootstrap:<factory secret of dev_id>``: a factory-fresh device proving who it is."""
    given = _basic(header)
    return given is not None and given[0] == BASIC_USER and any(
        s and hmac.compare_digest(given[1].encode(), fill(s, {"dev_id": dev_id}).encode()) for s in _known_secrets())


def provision(state: ServerState, dev_id: str, base: str, *, keep: bool = False) -> tuple[str, bytes]:
    """Make a DM 1.x account for ``dev_id`` on the ``/dm12`` side: (ServerID, its TNDS document).

    Fresh secrets for this device alone; the DM 1.x authority learns them at once, so the device's
    first session authenticates. ``keep``: the pairs the device may hold already stay valid too (a
    pushed bootstrap the device may refuse must not lock out the account it has)."""
    dm12 = state.dm12
    config = dm12.config
    sid = config.server_id
    authority = dm12.authority(sid)
    pair = SecretPair(secrets.token_urlsafe(18), secrets.token_urlsafe(18))
    rule = UserRule(dev_id, pair, dev_id=dev_id, client_auth="sha256", server_auth="sha256")
    others = tuple(r for r in authority.users if r.dev_id != dev_id)
    held: tuple[UserRule, ...] = ()
    if keep:
        held = tuple(r for r in authority.users if r.dev_id == dev_id) or tuple(
            UserRule(user, old, dev_id=dev_id) for user, old in authority.expected(dev_id) or ())
    config.authorities[sid] = replace(authority, users=others + held + (rule,))
    if not keep:
        dm12.nonces.pop((sid, dev_id), None)  # a new account: the factory nonces again
    state.bootstraps.append(dev_id)
    return sid, bootstrap_document(sid, f"{sid} (bootstrapped)", f"{base}/dm12", dev_id, pair)


def setup_bootstrap(app: web.Application) -> None:
    """Add ``GET /bootstrap/<DevID>`` and ``GET /.well-known/dm-bootstrap`` (bootstrap server
    discovery: the URL of ``/bootstrap``, ``text/uri-list``)."""

    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        if state.dm12 is None:
            return web.Response(status=404, text="this server plays no DM 1.x authority to bootstrap devices for")
        dev_id = unquote(request.match_info["dev"])
        if not factory_ok(request.headers.get("Authorization"), dev_id):
            return web.Response(status=401, text="a bootstrap needs the device's factory secret "
                                                 "(HTTP Basic: user bootstrap, the profile's bootstrap secret)",
                                headers={"WWW-Authenticate": 'Basic realm="dm-emulator bootstrap"'})
        _sid, body = provision(state, dev_id, base_url(request))
        return web.Response(status=200, body=body, headers={"Content-Type": TNDS_XML})

    async def discover(request: web.Request) -> web.Response:
        if request.app[STATE_KEY].dm12 is None:
            return web.Response(status=404, text="this server is no bootstrap server")
        return web.Response(text=f"{base_url(request)}{ROUTE}\r\n", content_type="text/uri-list")

    app.router.add_get(ROUTE + "/{dev}", handle)
    app.router.add_get(DISCOVERY, discover)
