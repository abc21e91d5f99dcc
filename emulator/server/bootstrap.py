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
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import replace
from urllib.parse import unquote

from aiohttp import web

from emulator.device.profile import AccountSpec, fill
from emulator.mo.bootstrap import BASIC_USER
from emulator.server.authorities import SecretPair, UserRule
from emulator.server.state import STATE_KEY, base_url
from emulator.tree import Tree
from emulator.tree.tnds import TNDS_XML, export_tnds

ROUTE = "/bootstrap"


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


def setup_bootstrap(app: web.Application) -> None:
    """Add ``GET /bootstrap/<DevID>``; the factory secrets are learnt once, at the first request."""
    known: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        dm12 = state.dm12
        if dm12 is None:
            return web.Response(status=404, text="this server plays no DM 1.x authority to bootstrap devices for")
        dev_id = unquote(request.match_info["dev"])
        if not known:
            known.extend(factory_secrets() or [""])
        given = _basic(request.headers.get("Authorization"))
        ok = given is not None and given[0] == BASIC_USER and any(
            s and hmac.compare_digest(given[1].encode(), fill(s, {"dev_id": dev_id}).encode()) for s in known)
        if not ok:
            return web.Response(status=401, text="a bootstrap needs the device's factory secret "
                                                 "(HTTP Basic: user bootstrap, the profile's bootstrap secret)",
                                headers={"WWW-Authenticate": 'Basic realm="dm-emulator bootstrap"'})
        config = dm12.config
        sid = config.server_id
        authority = dm12.authority(sid)
        pair = SecretPair(secrets.token_urlsafe(18), secrets.token_urlsafe(18))
        rule = UserRule(dev_id, pair, dev_id=dev_id, client_auth="sha256", server_auth="sha256")
        users = tuple(r for r in authority.users if r.dev_id != dev_id) + (rule,)
        config.authorities[sid] = replace(authority, users=users)
        dm12.nonces.pop((sid, dev_id), None)  # a new account: the factory nonces again
        state.bootstraps.append(dev_id)
        body = bootstrap_document(sid, f"{sid} (bootstrapped)", f"{base_url(request)}/dm12", dev_id, pair)
        return web.Response(status=200, body=body, headers={"Content-Type": TNDS_XML})

    app.router.add_get(ROUTE + "/{dev}", handle)
