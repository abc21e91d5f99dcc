"""ATTACK: the admin API's campaign and per-device job routes (``POST /admin/campaigns``,
``/admin/flow/<DevID>``, ``/admin/diag/<DevID>``; issue 15). Each bad request gets its 4xx with the
reason, and nothing changes: the campaign list, the package repository and the data repository
are the same after it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hostile_kit import post, serving

from emulator.server.admin import MAX_ADMIN_BODY
from emulator.server.campaign_steps import MAX_TEXT
from emulator.server.campaigns import MAX_STEPS
from emulator.server.state import ServerState
from emulator.util.admin_token import admin_headers

LAWMO = [{"kind": "lawmo.lock"}]
BAD_CAMPAIGNS: dict[str, tuple[bytes, int, str]] = {
    # name: (body, status, a word of the reason)
    "broken JSON": (b'{"id": "a", "steps": [', 400, "invalid JSON"),
    "not UTF-8": (b'{"id": "\xff"}', 400, "UTF-8"),
    "a JSON list": (json.dumps([{"id": "a", "steps": LAWMO}]).encode(), 400, "JSON object"),
    "a JSON string": (b'"lawmo.lock"', 400, "JSON object"),
    "null": (b"null", 400, "JSON object"),
    "nested too deep": (b'{"steps": ' + b"[" * 100 + b"]" * 100 + b"}", 400, "deeper"),
    "an empty object": (b"{}", 400, "steps"),
    "unknown key": (json.dumps({"id": "a", "steps": LAWMO, "colour": "red"}).encode(), 400, "colour"),
    "firmware keys with steps": (json.dumps({"id": "a", "steps": LAWMO, "package": "fw"}).encode(), 400, "package"),
    "unknown key in a step": (json.dumps({"id": "a", "steps": [{"kind": "lawmo.lock", "force": True}]}).encode(),
                              400, "force"),
    "no such step kind": (json.dumps({"id": "a", "steps": [{"kind": "fumo.rollback"}]}).encode(), 400,
                          "unknown kind"),
    "a step without a kind": (json.dumps({"id": "a", "steps": [{"name": "x"}]}).encode(), 400, "unknown kind"),
    "a step that is a string": (json.dumps({"id": "a", "steps": ["lawmo.lock"]}).encode(), 400, "JSON object"),
    "no steps": (json.dumps({"id": "a", "steps": []}).encode(), 400, "steps"),
    "steps not a list": (json.dumps({"id": "a", "steps": {"kind": "lawmo.lock"}}).encode(), 400, "steps"),
    "one step too many": (json.dumps({"id": "a", "steps": LAWMO * (MAX_STEPS + 1)}).encode(), 400, "steps"),
    "missing package (firmware form)": (json.dumps({"id": "a", "version": "1"}).encode(), 400, "package"),
    "missing package (fumo step)": (json.dumps({"id": "a", "steps": [{"kind": "fumo"}]}).encode(), 400, "package"),
    "missing package (scomo step)": (json.dumps({"id": "a", "steps": [{"kind": "scomo.install"}]}).encode(), 400,
                                     "package"),
    "a package not in the repository": (json.dumps({"id": "a", "steps": [{"kind": "fumo", "package": "nope"}]}).encode(),
                                        404, "nope"),
    "a bad package size": (json.dumps({"id": "a", "package": "fw9", "size": -1}).encode(), 400, "size"),
    "a later step bad after a package to make": (json.dumps({"id": "a", "steps": [
        {"kind": "fumo", "package": "fw9", "size": 1000}, {"kind": "diag.trap", "threshold": "high"}]}).encode(),
        400, "threshold"),
    "a version one character too long": (json.dumps({"id": "a", "steps": [
        {"kind": "fumo", "package": "fw1", "version": "v" * (MAX_TEXT + 1)}]}).encode(), 400, "version"),
    "an unknown FUMO operation": (json.dumps({"id": "a", "package": "fw1", "operation": "Rollback"}).encode(), 400,
                                  "operation"),
    "a wipe outside the list": (json.dumps({"id": "a", "steps": [{"kind": "lawmo.wipe", "wipe": ["../DMAcc"]}]}).encode(),
                                400, "wipe"),
    "devices matching nothing": (json.dumps({"id": "a", "devices": [], "steps": LAWMO}).encode(), 400, "devices"),
    "an empty DevID": (json.dumps({"id": "a", "devices": [""], "steps": LAWMO}).encode(), 400, "devices"),
    "devices neither list nor *": (json.dumps({"id": "a", "devices": "all", "steps": LAWMO}).encode(), 400, "devices"),
    "a DevID too long": (json.dumps({"id": "a", "devices": ["x" * 257], "steps": LAWMO}).encode(), 400, "devices"),
    "no protocol": (json.dumps({"id": "a", "protocols": [], "steps": LAWMO}).encode(), 400, "protocols"),
    "an unknown protocol": (json.dumps({"id": "a", "protocols": ["dm3"], "steps": LAWMO}).encode(), 400, "protocols"),
    "a bad id": (json.dumps({"id": "../up", "steps": LAWMO}).encode(), 400, "campaign id"),
    "an id that is a number": (json.dumps({"id": 7, "steps": LAWMO}).encode(), 400, "campaign id"),
    "the same id again": (json.dumps({"id": "kept", "package": "fw1", "size": 77}).encode(), 409, "already"),
}


def _snapshot(state: ServerState) -> tuple[Any, ...]:
    """What a refused request must leave as it was."""
    return (sorted(state.campaigns.campaigns), {n: (p.size, p.version) for n, p in state.packages.packages.items()},
            sorted(state.repo))


def test_bad_campaigns_get_their_4xx_and_change_nothing():
    async def main() -> tuple[dict[str, tuple[int, str]], tuple[Any, ...], tuple[Any, ...], tuple[int, str]]:
        async with serving() as server:
            url, headers = server.url + "/admin/campaigns", admin_headers(server.state.admin_token)
            server.state.packages.add("fw1", 1000, "1.0")
            kept = await post(url, json.dumps({"id": "kept", "package": "fw1"}).encode(), headers)
            before = _snapshot(server.state)
            out = {}
            for name, (body, _, _) in BAD_CAMPAIGNS.items():
                status, text, _ = await post(url, body, headers)
                out[name] = status, text
            return out, before, _snapshot(server.state), kept[:2]

    out, before, after, kept = asyncio.run(main())
    assert kept[0] == 200, kept
    for name, (_, status, word) in BAD_CAMPAIGNS.items():
        assert out[name][0] == status, (name, out[name])
        assert word.lower() in out[name][1].lower(), (name, out[name])
        assert "Traceback" not in out[name][1]
    assert after == before  # nothing added, no package generated or replaced, nothing put in the repository


def test_the_body_limit_takes_exactly_its_size_and_refuses_one_byte_more():
    def padded(campaign_id: str, size: int) -> bytes:
        body = json.dumps({"id": campaign_id, "steps": LAWMO}).encode()
        return body + b" " * (size - len(body))

    async def main() -> tuple[tuple[int, str], tuple[int, str], list[str]]:
        async with serving() as server:
            url, headers = server.url + "/admin/campaigns", admin_headers(server.state.admin_token)
            at = await post(url, padded("at-limit", MAX_ADMIN_BODY), headers)
            over = await post(url, padded("over-limit", MAX_ADMIN_BODY + 1), headers)
            return at[:2], over[:2], sorted(server.state.campaigns.campaigns)

    at, over, ids = asyncio.run(main())
    assert at[0] == 200, at
    assert over[0] == 413 and str(MAX_ADMIN_BODY) in over[1], over
    assert ids == ["at-limit"]


def test_exact_limits_of_a_campaign_are_taken():
    """MAX_STEPS steps, a version of MAX_TEXT characters: accepted (one more of either is refused above)."""
    async def main() -> tuple[int, str, dict[str, Any]]:
        async with serving() as server:
            url, headers = server.url + "/admin/campaigns", admin_headers(server.state.admin_token)
            server.state.packages.add("fw1", 1000, "1.0")
            status, text, _ = await post(url, json.dumps({"id": "long", "steps": [
                {"kind": "fumo", "package": "fw1", "version": "v" * MAX_TEXT}, *LAWMO * (MAX_STEPS - 1)]}).encode(),
                headers)
            return status, text, server.state.campaigns.get("long").summary() if status == 200 else {}

    status, text, summary = asyncio.run(main())
    assert status == 200, text
    assert len(summary["steps"]) == MAX_STEPS and summary["version"] == "v" * MAX_TEXT


def test_the_campaign_routes_need_the_admin_token():
    async def main() -> tuple[dict[str, int], tuple[Any, ...], tuple[Any, ...]]:
        async with serving() as server:
            admin = server.url + "/admin"
            before = _snapshot(server.state)
            body = json.dumps({"id": "a", "steps": LAWMO}).encode()
            flow = b'{"flow": "lawmo", "protocol": "dm12"}'
            out = {
                "post campaign, no token": (await post(admin + "/campaigns", body))[0],
                "post campaign, wrong token": (await post(admin + "/campaigns", body, admin_headers("guess")))[0],
                "list, no token": (await post(admin + "/campaigns", method="GET"))[0],
                "one, wrong token": (await post(admin + "/campaigns/a", b"", admin_headers("guess"), method="GET"))[0],
                "flow, no token": (await post(admin + "/flow/IMEI:1", flow))[0],
                "flow, wrong token": (await post(admin + "/flow/IMEI:1", flow, admin_headers("guess")))[0],
                "diag, no token": (await post(admin + "/diag/IMEI:1", b'{"script": "read"}'))[0],
                "alerts, no token": (await post(admin + "/alerts", method="GET"))[0],
            }
            return out, before, _snapshot(server.state)

    out, before, after = asyncio.run(main())
    for name, status in out.items():
        assert status == (403 if "wrong" in name else 401), (name, status)
    assert after == before


BAD_JOBS: dict[str, tuple[str, bytes, int]] = {
    # name: (route under /admin, body, status)
    "flow: broken JSON": ("/flow/IMEI:1", b'{"flow": ', 400),
    "flow: a JSON list": ("/flow/IMEI:1", b'[{"flow": "lawmo"}]', 400),
    "flow: unknown flow": ("/flow/IMEI:1", b'{"flow": "fumo"}', 400),
    "flow: unknown key": ("/flow/IMEI:1", b'{"flow": "lawmo", "colour": "red"}', 400),
    "flow: unknown protocol": ("/flow/IMEI:1", b'{"flow": "lawmo", "protocol": "dm3"}', 400),
    "flow: bad wipe": ("/flow/IMEI:1", b'{"flow": "lawmo", "wipe": ["../x"]}', 400),
    "flow: empty wipe": ("/flow/IMEI:1", b'{"flow": "lawmo", "wipe": []}', 400),
    "flow: scomo without a URL": ("/flow/IMEI:1", b'{"flow": "scomo"}', 400),
    "flow: a number for a string": ("/flow/IMEI:1", b'{"flow": "scomo", "package_url": 5}', 400),
    "diag: broken JSON": ("/diag/IMEI:1", b'{"script"', 400),
    "diag: a JSON list": ("/diag/IMEI:1", b'["read"]', 400),
    "diag: unknown script": ("/diag/IMEI:1", b'{"script": "format"}', 400),
    "diag: unknown key": ("/diag/IMEI:1", b'{"script": "read", "deep": true}', 400),
    "diag: garbage threshold": ("/diag/IMEI:1", b'{"script": "trap", "threshold": "twenty"}', 400),
    "diag: unknown protocol": ("/diag/IMEI:1", b'{"script": "read", "protocol": "dm3"}', 400),
}


def test_bad_flow_and_diagnostics_jobs_get_400_and_change_nothing():
    async def main() -> tuple[dict[str, tuple[int, str]], tuple[Any, ...], tuple[Any, ...], dict[str, int]]:
        async with serving() as server:
            admin, headers = server.url + "/admin", admin_headers(server.state.admin_token)
            before = _snapshot(server.state)
            out = {}
            for name, (route, body, _) in BAD_JOBS.items():
                status, text, _ = await post(admin + route, body, headers)
                out[name] = status, text
            after = _snapshot(server.state)
            missing = {
                "no such campaign": (await post(admin + "/campaigns/nothing", b"", headers, method="GET"))[0],
                "no flow yet": (await post(admin + "/flow/IMEI:1?protocol=dm12", b"", headers, method="GET"))[0],
            }
            return out, before, after, missing

    out, before, after, missing = asyncio.run(main())
    for name, (_, _, status) in BAD_JOBS.items():
        assert out[name][0] == status, (name, out[name])
        assert out[name][1] and "Traceback" not in out[name][1], name
    assert after == before
    assert missing == {"no such campaign": 404, "no flow yet": 404}
