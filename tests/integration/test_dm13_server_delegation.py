"""DM 1.3 server-to-server delegation over real HTTP: two reference servers and a DM 1.3 device.

Server A (``demo-dm12``, which manages the device) delegates ``./DevDetail`` to server B
(``partner-dm12``): A asks B (signed, server to server), B answers with the account the device is to
hold for it, A tells the device in a sessionless command, the device takes the account and the
delegation in one step, its first session with B completes, and B tells A. Forged, replayed,
oversize and malformed server-to-server messages change nothing (README "DM 1.3").
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from emulator.fleet.fleet import Fleet
from emulator.protocol.syncml import sessionless as sl
from emulator.server.app import start_server
from emulator.server.delegation import ROUTE, desk
from emulator.server.state import ServerState
from emulator.util.admin_token import admin_headers

A_ID, B_ID, SHARED = "demo-dm12", "partner-dm12", "a-and-b-share-this"


def _run(body, *, b_secret: str = SHARED):
    async def main():
        a_state, b_state = ServerState(), ServerState()
        a, b = await start_server(a_state), await start_server(b_state)
        fleet = Fleet(server=a.url)
        try:
            (dev,) = fleet.add("smartphone-dm13", 1)
            listener = await fleet.start_listener()
            assert (await fleet.run_session(dev.id, "dm12")).outcome == "completed"
            async with aiohttp.ClientSession(headers=admin_headers(a_state.admin_token)) as admin_a, \
                    aiohttp.ClientSession(headers=admin_headers(b_state.admin_token)) as admin_b:
                async with admin_a.post(f"{a.url}/admin/delegation/peers",
                                        json={"peers": [{"server_id": B_ID, "url": b.url, "secret": SHARED}]}) as r:
                    assert r.status == 200, await r.text()
                async with admin_b.post(f"{b.url}/admin/delegation/peers", json={
                        "server_id": B_ID, "peers": [{"server_id": A_ID, "url": a.url, "secret": b_secret}]}) as r:
                    assert r.status == 200, await r.text()
                return await body(a, b, fleet, listener.notify_url(dev.id), dev, admin_a, admin_b)
        finally:
            await fleet.aclose()
            await a.stop()
            await b.stop()

    return asyncio.run(asyncio.wait_for(main(), 60))


async def _settle(fleet: Fleet, *servers) -> None:
    while fleet._tasks or any(desk(s.state).tasks for s in servers):
        await asyncio.gather(*fleet._tasks, *(t for s in servers for t in desk(s.state).tasks),
                             return_exceptions=True)


def test_a_server_delegates_to_another_and_the_device_follows():
    async def body(a, b, fleet, to, dev, admin_a, admin_b):
        async with admin_a.post(f"{a.url}/admin/delegation/{dev.id}", params={"to": to},
                                json={"delegate": B_ID, "scope": "./DevDetail", "kind": "full"}) as r:
            asked = (r.status, await r.json() if r.status == 200 else await r.text())
        await _settle(fleet, a, b)
        acl_after = dev.tree.get_prop("./DevDetail", "ACL")
        account = dev.account(B_ID, "dm12")
        with_b = await fleet.run_session(dev.id, "dm12", server_id=B_ID)
        await _settle(fleet, a, b)
        async with admin_a.get(f"{a.url}/admin/delegations") as r:
            on_a = (await r.json())["delegations"]
        async with admin_b.get(f"{b.url}/admin/delegations") as r:
            on_b = (await r.json())["delegations"]
        return asked, acl_after, account, with_b, on_a, on_b, dev.delegations.active()

    (status, asked), acl, account, with_b, on_a, on_b, records = _run(body)
    assert status == 200 and asked["state"] == "sent to the device", asked
    assert account.server_uri.endswith(f"/dm12/{B_ID}") and account.auth == "sha256"
    assert "partner-dm12" in acl and "demo-dm12" not in acl  # full: A lost ./DevDetail
    assert [(r.delegator, r.delegate, r.scope, r.kind) for r in records] == [(A_ID, B_ID, "./DevDetail", "full")]
    assert with_b.outcome == "completed", with_b.detail  # the device authenticates B with the account B made
    (mine,) = on_a
    assert mine["role"] == "delegator" and mine["state"] == "completed" and mine["device_status"] == 200
    (theirs,) = on_b
    assert theirs["role"] == "delegate" and theirs["state"] == "taken over"


def _request(dev_id: str, *, secret: str = SHARED, sender: str = A_ID, msg_id: int = 1, request_id: str = "r1",
             pad: int = 0, body: bytes | None = None) -> bytes:
    data = body if body is not None else json.dumps({
        "request_id": request_id, "device": dev_id, "delegator": sender, "scope": "./DevDetail",
        "kind": "shared", "depth": 0}).encode() + b" " * pad
    return sl.seal(sl.KIND_DELEGATION_REQUEST, sender, sender, secret, data, msg_id=msg_id,
                   expiry=int(time.time()) + 300)


def test_the_delegate_refuses_forged_replayed_oversize_and_malformed_requests_and_provisions_nothing():
    async def body(a, b, fleet, to, dev, admin_a, admin_b):
        url = f"{b.url}{ROUTE}"
        bare = len(_request(dev.id))
        out = {}
        async with aiohttp.ClientSession() as http:
            async def post(raw: bytes) -> int:
                async with http.post(url, data=raw, headers={"Content-Type": sl.MEDIA_SESSIONLESS}) as r:
                    return r.status

            out["forged"] = await post(_request(dev.id, secret="guessed"))
            out["stranger"] = await post(_request(dev.id, sender="evil", secret=SHARED))
            out["malformed"] = await post(_request(dev.id, body=b"{not json"))
            out["over limit"] = await post(_request(dev.id, msg_id=2, pad=sl.MAX_MESSAGE + 1 - bare))
            provisioned_before = B_ID in b.state.dm12.config.authorities
            out["at limit"] = await post(_request(dev.id, msg_id=3, pad=sl.MAX_MESSAGE - bare))
            out["replay"] = await post(_request(dev.id, msg_id=3, pad=sl.MAX_MESSAGE - bare))
            out["same request again"] = await post(_request(dev.id, msg_id=4))
        return out, provisioned_before

    out, provisioned_before = _run(body)
    assert (out["forged"], out["stranger"], out["malformed"], out["over limit"]) == (401, 401, 400, 413)
    assert not provisioned_before  # nothing refused left an account behind
    assert out["at limit"] == 200 and out["replay"] == 403 and out["same request again"] == 409


def test_a_delegate_that_does_not_prove_itself_stops_the_delegation_before_the_device_is_told():
    async def body(a, b, fleet, to, dev, admin_a, admin_b):
        before = dev.tree.get_prop("./DevDetail", "ACL")
        async with admin_a.post(f"{a.url}/admin/delegation/{dev.id}", params={"to": to},
                                json={"delegate": B_ID, "scope": "./DevDetail", "kind": "full"}) as r:
            answer = (r.status, await r.text())
        forged_done = sl.seal(sl.KIND_DELEGATION_DONE, B_ID, B_ID, "guessed",
                              json.dumps({"request_id": "x", "device": dev.id}).encode(), msg_id=9,
                              expiry=int(time.time()) + 300)
        async with aiohttp.ClientSession() as http, \
                http.post(f"{a.url}{ROUTE}", data=forged_done, headers={"Content-Type": sl.MEDIA_SESSIONLESS}) as r:
            done_status = r.status
        return answer, before, dev.tree.get_prop("./DevDetail", "ACL"), done_status, dev.accounts("dm12")

    # B holds another secret for A: B refuses A's request (401), so A tells the device nothing
    (status, text), before, after, done_status, accounts = _run(body, b_secret="not-what-a-holds")
    assert status == 502 and "401" in text
    assert before == after and [a.server_id for a in accounts] == [A_ID]
    assert done_status == 401
