"""Campaigns of steps other than FUMO, end to end over real loopback HTTP (issue 15): the campaign is
posted to ``/admin/campaigns`` with the admin token, two phones run it (one over DM 1.2, one over
DM 2.0, the same campaign), and its progress is read back from ``/admin/campaigns/<id>``: a SCOMO
install/activate/remove, a LAWMO lock/unlock/wipe and a diagnostics read."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from session_kit import Bench, server_and_fleet

from emulator.mo.diagmon import BASES
from emulator.server.campaign_steps import ROOTS

PACKAGE_SIZE = 16384


async def _campaign(bench: Bench, spec: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    result = await bench.fleet.transport.request("POST", f"{bench.server.url}/admin/campaigns",
                                                 json.dumps(spec).encode(),
                                                 {**bench.admin, "Content-Type": "application/json"})
    return result.status, json.loads(result.body) if result.status == 200 else {"error": result.body.decode()}


async def _run(spec: dict[str, Any], *, packages: dict[str, int] | None = None) -> dict[str, Any]:
    """Post ``spec`` for two phones (``{dm12}``/``{dm2}`` in its devices), run a session of each over
    its protocol and wait until both runs ended; what the admin API then shows."""
    async with server_and_fleet() as bench:
        for name, size in (packages or {}).items():
            bench.server.state.packages.add(name, size, "2.4.0")
        one, two = bench.phones(2)
        spec = {**spec, "devices": [one.id, two.id]}
        status, posted = await _campaign(bench, spec)
        assert status == 200, posted
        firsts = await asyncio.gather(bench.fleet.run_session(one.id, "dm12"), bench.fleet.run_session(two.id, "dm2"))
        campaign = bench.server.state.campaigns.get(spec["id"])
        await bench.settle(until=lambda: all(r.ended for r in campaign.runs.values()) and len(campaign.runs) == 2)
        shown = await bench.fleet.transport.request("GET", f"{bench.server.url}/admin/campaigns/{spec['id']}",
                                                    headers=bench.admin)
        listed = await bench.fleet.transport.request("GET", f"{bench.server.url}/admin/campaigns", headers=bench.admin)
        page = await bench.fleet.transport.request("GET", f"{bench.server.url}/admin/campaigns?format=html",
                                                   headers=bench.admin)
        diag = {dev.id: bench.server.control.diagnostics(dev.id) for dev in (one, two)}
        return {"posted": posted, "firsts": firsts, "details": json.loads(shown.body), "devices": (one, two),
                "list": json.loads(listed.body)["campaigns"], "page": page.body.decode(), "diag": diag,
                "state": bench.server.state}


def _by_protocol(details: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["protocol"]: r for r in details["runs"]}


def test_a_scomo_install_activate_remove_campaign_runs_on_both_protocols():
    spec = {"id": "notes-2.4", "steps": [
        {"kind": "scomo.install", "package": "notes.bin", "name": "notes", "pkg_id": "com.acme.notes",
         "version": "2.4.0"},
        {"kind": "scomo.activate", "name": "notes"},
        {"kind": "scomo.remove", "name": "notes"}]}
    r = asyncio.run(_run(spec, packages={"notes.bin": PACKAGE_SIZE}))
    assert r["posted"]["states"]["pending"] == 2 and r["posted"]["steps"][0]["kind"] == "scomo.install"
    assert all(f.outcome == "completed" for f in r["firsts"]), [f.detail for f in r["firsts"]]
    runs = _by_protocol(r["details"])
    assert set(runs) == {"dm12", "dm2"}
    for run in runs.values():
        assert run["outcome"] == "completed", run
        assert run["results"] == [["scomo.install", 1200], ["scomo.activate", 1200], ["scomo.remove", 1200]], run
        assert run["state"] == "reported" and run["exec_status"] == 202
        assert set(run["time_in_state_s"]) >= {"sent", "accepted", "pending"}
    summary = r["details"]
    assert summary["states"] == {"pending": 0, "sent": 0, "accepted": 0, "refused": 0, "declined": 0, "reported": 2}
    assert summary["results"] == {"1200": 6} and summary["meanings"]["1200"] == "Request Succeeded"
    assert summary["step_results"] == [{"1200": 2}] * 3
    assert set(summary["time_in_state_s"]) >= {"sent", "accepted"}
    assert [c["id"] for c in r["list"]] == ["notes-2.4"]
    assert "scomo.install notes.bin 2.4.0, scomo.activate, scomo.remove" in r["page"]
    one, two = r["devices"]
    for dev, protocol in ((one, "dm12"), (two, "dm2")):
        root = ROOTS[("scomo", protocol)]
        assert not dev.tree.exists(f"{root}/Inventory/Deployed/notes")  # installed, activated, then removed
        assert dev.tree.value(f"{root}/Inventory/Delivered/notes/Ext/Size") == str(PACKAGE_SIZE)
    assert r["state"].packages.packages["notes.bin"].downloads >= 2  # each phone fetched it from the server


def test_a_lock_unlock_wipe_campaign_runs_on_both_protocols():
    spec = {"id": "lost-phones", "steps": [{"kind": "lawmo.lock"}, {"kind": "lawmo.unlock"},
                                           {"kind": "lawmo.wipe", "wipe": ["Contacts"]}]}
    r = asyncio.run(_run(spec))
    runs = _by_protocol(r["details"])
    for run in runs.values():
        assert run["outcome"] == "completed", run
        assert run["results"] == [["lawmo.lock", 1200], ["lawmo.unlock", 1200], ["lawmo.wipe", 1200]]
    assert r["details"]["results"] == {"1200": 6}
    for dev, protocol in zip(r["devices"], ("dm12", "dm2"), strict=True):
        root = ROOTS[("lawmo", protocol)]
        assert dev.tree.value(f"{root}/State") == "30"  # unlocked again
        assert dev.tree.children("./Data/Contacts") == [] and dev.tree.children("./Data/Photos") == ["IMG_0001"]


def test_a_diagnostics_read_campaign_runs_on_both_protocols():
    r = asyncio.run(_run({"id": "health", "steps": [{"kind": "diag.read"}]}))
    runs = _by_protocol(r["details"])
    for run in runs.values():
        assert (run["outcome"], run["results"]) == ("completed", [["diag.read", 200]]), run
        assert run["exec_status"] is None  # no Exec: the statuses ended the step
    one, two = r["devices"]
    read12 = r["diag"][one.id]["values"]
    assert read12["./DiagMon/Battery/Level"] == one.tree.value(f"{BASES['dm12']}/Battery/Level")
    assert {k for k in read12 if k.endswith("/Signal")} == {f"./DiagMon/Radio/{b}/Signal" for b in ("lte0", "nr0", "wlan0")}
    read2 = r["diag"][two.id]["values"]
    assert set(read2["urn:oma:mo:oma-diagmon:1.0//Radio"]["Radio"]) == {"lte0", "nr0", "wlan0"}
    assert int(read2["urn:oma:mo:oma-diagmon:1.0//Battery"]["Battery"]["Level"]) == int(
        two.tree.value(f"{BASES['dm2']}/Battery/Level") or 0)


def test_a_failing_step_ends_the_run_there_and_the_histogram_says_so():
    """A SCOMO install of a package the repository does not serve (a URL with nothing behind it):
    the device reports a download failure, activate and remove never go out."""
    spec = {"id": "broken", "steps": [{"kind": "scomo.install", "package": "ghost.bin", "name": "ghost"},
                                      {"kind": "scomo.activate", "name": "ghost"}]}

    async def main() -> dict[str, Any]:
        async with server_and_fleet() as bench:
            bench.server.state.packages.add("ghost.bin", 100)
            (dev,) = bench.phones()
            status, _ = await _campaign(bench, {**spec, "devices": [dev.id], "protocols": ["dm2"]})
            assert status == 200
            del bench.server.state.packages.packages["ghost.bin"]  # gone before the device fetches it
            await bench.fleet.run_session(dev.id, "dm2")
            campaign = bench.server.state.campaigns.get("broken")
            await bench.settle(until=lambda: all(r.ended for r in campaign.runs.values()))
            return campaign.details()

    details = asyncio.run(main())
    (run,) = details["runs"]
    assert run["state"] == "reported" and run["outcome"] == "failed at scomo.install: 1500", run
    assert details["results"] == {"1500": 1}
    assert len(run["results"]) == 1 and details["step_results"][1] == {}
