"""ATTACK: the reference server's admin API, push channel and data repository (issue 12, "Admin,
push and repository"; "Bad input")."""

from __future__ import annotations

import asyncio
import json

from hostile_kit import basic, own_auth, phone, post, serving

from emulator.protocol.dm2 import media
from emulator.server.state import ServerState
from emulator.util.admin_token import admin_headers

MO = json.dumps([{"ClientURI": "urn:oma:mo:oma-dm-devinfo:1.2//", "MOData": {"DevInfo": {"Mod": "x"}}}]).encode()
DEEP = b"[" * 100_000 + b"]" * 100_000


def test_admin_api_needs_the_admin_token():
    async def main():
        async with serving() as server:
            admin = server.url + "/admin"
            token = server.state.admin_token
            out = {
                "no token": await post(admin + "/script/IMEI:1", b'{"flow": "terms"}'),
                "wrong token": await post(admin + "/script/IMEI:1", b'{"flow": "terms"}', admin_headers("guess")),
                "basic": await post(admin + "/devices", b"", {"Authorization": basic("admin", token)}, method="GET"),
                "read secrets": await post(admin + "/devices/IMEI:1", b"", method="GET"),
                "notify": await post(admin + "/notify/IMEI:1"),
                "faults": await post(admin + "/faults", b'{"kind": "drop"}'),
                "right token": await post(admin + "/devices", b"", admin_headers(token), method="GET"),
            }
            return out, server.state

    out, state = asyncio.run(main())
    assert out["no token"][0] == 401 and "Bearer" in out["no token"][2]["WWW-Authenticate"]
    assert out["wrong token"][0] == 403
    assert out["basic"][0] == 401 and out["read secrets"][0] == 401
    assert out["notify"][0] == 401 and out["faults"][0] == 401
    assert out["right token"][0] == 200
    assert "IMEI:1" not in state.dm2_scripts and len(state.faults) == 0


def test_admin_notify_posts_only_to_addresses_devices_came_from():
    async def main():
        async with serving() as server:
            notify = server.url + "/admin/notify/IMEI:1"
            headers = admin_headers(server.state.admin_token)
            elsewhere = await post(notify + "?to=http://192.0.2.10:8080/notify/IMEI:1&protocol=dm2", b"", headers)
            before = await post(notify + "?to=http://127.0.0.1:9/notify/IMEI:1", b"", headers)
            dev = phone()
            await post(server.url + "/push/" + dev.id + "?wait=0", b"",
                       {"Authorization": own_auth(dev)}, method="GET")  # a device authenticates from loopback
            after = await post(notify + "?to=http://127.0.0.1:9/notify/IMEI:1", b"", headers)
            return elsewhere, before, after

    elsewhere, before, after = asyncio.run(main())
    assert elsewhere[0] == 403 and "address a device authenticated from" in elsewhere[1]
    assert before[0] == 403
    assert after[0] == 502  # allowed now: nothing listens there, and the server says so


def test_push_channel_hands_a_notification_only_to_its_device():
    async def main():
        async with serving(ServerState(push_wait_s=0.2)) as server:
            victim, thief = phone(0), phone(1)
            server.state.notify(victim.id)
            url = f"{server.url}/push/{victim.id}"
            anonymous = await post(url, b"", method="GET")
            other = await post(url, b"", {"Authorization": own_auth(thief)}, method="GET")
            own = await post(url, b"", {"Authorization": own_auth(victim)}, method="GET")
            return anonymous, other, own

    anonymous, other, own = asyncio.run(main())
    assert anonymous[0] == 401 and other[0] == 401
    assert own[0] == 200 and own[2]["Content-Type"] == media.NOTIFICATION


def test_uploads_need_the_devices_credentials_stay_in_its_folder_and_respect_its_quota():
    async def main():
        state = ServerState()
        state.repo_quota_uploads, state.repo_quota_bytes = 3, 4 * len(MO) - 1
        async with serving(state) as server:
            dev, other = phone(0), phone(1)
            mine = {"Content-Type": media.MO_JSON, media.HEADER_DEVID: dev.id, "Authorization": own_auth(dev)}
            repo = f"{server.url}/repo"
            out = {
                "anonymous": await post(f"{repo}/{dev.id}/x", MO, {"Content-Type": media.MO_JSON}, method="PUT"),
                "other's": await post(f"{repo}/{dev.id}/x", MO, {**mine, "Authorization": own_auth(other)},
                                      method="PUT"),
                "shared item": await post(f"{repo}/demo/bookmark", MO, mine, method="PUT"),
                "another folder": await post(f"{repo}/{other.id}/x", MO, mine, method="PUT"),
            }
            out["uploads"] = [(await post(f"{repo}/{dev.id}/n{n}", MO, mine, method="PUT"))[0] for n in range(4)]
            state.repo_quota_uploads = 10  # now the byte quota is the one that stops it
            out["bytes"] = await post(f"{repo}/{dev.id}/big", MO, mine, method="PUT")
            at_limit = MO.replace(b'"x"', b'""')  # one byte shorter: exactly what is left of the quota
            assert len(at_limit) == len(MO) - 1
            out["at limit"] = await post(f"{repo}/{dev.id}/small", at_limit, mine, method="PUT")
            return out, state

    out, state = asyncio.run(main())
    assert out["anonymous"][0] == 401 and out["other's"][0] == 401
    assert out["shared item"][0] == 403 and out["another folder"][0] == 403
    assert state.repo["demo/bookmark"][1] != MO  # what every device fetches is unchanged
    assert out["uploads"] == [204, 204, 204, 507]  # the quota: 3 uploads accepted, the 4th refused
    assert out["bytes"][0] == 507 and "bytes" in out["bytes"][1]  # one byte past the quota
    assert out["at limit"][0] == 204


def test_deeply_nested_or_broken_json_to_every_json_entry_gets_400_with_a_reason():
    async def main():
        async with serving() as server:
            admin = admin_headers(server.state.admin_token)
            dev = phone()
            own = {media.HEADER_DEVID: dev.id, "Authorization": own_auth(dev)}
            base = server.url
            out = {}
            for name, url, headers, method in (
                ("script", f"{base}/admin/script/IMEI:1", admin, "POST"),
                ("faults", f"{base}/admin/faults", admin, "POST"),
                ("accounts", f"{base}/admin/accounts", admin, "POST"),
                ("package 1", f"{base}/dm2", {**own, "Content-Type": media.INITIATION}, "POST"),
                ("upload", f"{base}/repo/{dev.id}/x", {**own, "Content-Type": media.MO_JSON}, "PUT"),
            ):
                out[name] = await post(url, DEEP, headers, method=method)
                out[name + " text"] = await post(url, b'{"a": 1e999999}', headers, method=method)
            return out

    out = asyncio.run(main())
    for name, (status, text, _) in out.items():
        assert status == 400, (name, status, text)
        assert "Traceback" not in text and len(text) < 500, (name, text)
    assert all("deeper than" in out[name][1] for name in ("script", "faults", "accounts"))


def test_deep_or_huge_xml_and_wbxml_to_the_dm12_route_get_400():
    deep_xml = b"<SyncML>" + b"<a>" * 50_000 + b"</a>" * 50_000 + b"</SyncML>"
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><SyncML>&c;</SyncML>')
    deep_wbxml = b"\x02\x9f\x53\x6a\x00" + b"\x6d" * 50_000 + b"\x01" * 50_000

    async def main():
        async with serving() as server:
            out = {}
            for name, body, ctype in (("deep xml", deep_xml, "application/vnd.syncml.dm+xml"),
                                      ("entities", bomb, "application/vnd.syncml.dm+xml"),
                                      ("deep wbxml", deep_wbxml, "application/vnd.syncml.dm+wbxml")):
                out[name] = await post(server.url + "/dm12", body, {"Content-Type": ctype})
            return out

    for name, (status, text, _) in asyncio.run(main()).items():
        assert status == 400, (name, status, text)
        assert "Traceback" not in text and len(text) < 500, (name, text)
