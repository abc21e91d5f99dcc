"""Every shipped profile runs a whole session with every one of its authorities against the reference
server alone (`create_app()` with nothing configured), over loopback HTTP through the fleet.

The server learns its authorities from the same profiles (emulator.server.authorities); these tests
check it plays each one with the right credentials, and refuses what no shipped account holds.
"""

from __future__ import annotations

import asyncio
import base64

from aiohttp import web

from emulator.device.profile import find_profile, list_profiles
from emulator.fleet.fleet import Fleet
from emulator.protocol.dm2.client import check_notification
from emulator.protocol.dm2.messages import ALERT_CLIENT_INITIATED, Alert, Initiation, encode_initiation
from emulator.server.app import start_server
from emulator.server.authorities import SecretPair
from emulator.server.state import ServerState
from emulator.transport.http import HttpTransport


async def _serve(state: ServerState) -> tuple[web.AppRunner, str]:
    server = await start_server(state)
    return server.runner, server.url


class _Delays:
    """Bearer shaping (the NB-IoT sensor waits 1.6 s a request) recorded instead of waited for."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def _identities(dev) -> set[str]:
    """The DevIds a device uses: its own, and those of guest environments with their own identity."""
    envs = [e.name for e in dev.profile.environments if e.own_identity]
    return {dev.id, *(str(dev.tree.value(f"./OpEnv/{name}/ClientID")) for name in envs)}


def _shipped() -> list:
    summaries = list_profiles()
    assert not [s for s in summaries if s.error], [s.error for s in summaries if s.error]
    return [find_profile(s.path) for s in summaries]


def test_every_shipped_profile_completes_a_session_with_every_authority():
    profiles = _shipped()
    plan: list[tuple[str, str, str]] = []  # (profile, protocol, server id)
    for p in profiles:
        for protocol in p.protocols:
            accounts = [a for a in p.accounts if a.protocol == protocol]
            if not accounts and protocol == "dm12" and p.bootstrap is not None:
                plan.append((p.name, protocol, "demo-dm12"))  # its account comes from the bootstrap server
                continue
            assert accounts, f"{p.name} speaks {protocol} but has no account for it"
            plan.extend((p.name, protocol, a.server_id) for a in accounts)
    # the shipped set covers what this test is about: shared and own authorities, every scheme used
    assert {"work-mdm", "insurer", "oem", "fleet", "demo-mdm"} <= {sid for _, _, sid in plan}
    assert {a.auth for p in profiles for a in p.accounts} >= {"md5", "hmac", "basic"}

    async def main():
        state = ServerState(show_hold_s=0.2, push_wait_s=0.2)
        runner, base = await _serve(state)
        delays = _Delays()
        fleet = Fleet(server=base, transport=HttpTransport(sleep=delays))
        try:
            devices = {p.name: fleet.add(p, 1)[0] for p in profiles}

            async def sessions_of(name: str) -> list:
                dev = devices[name]  # one device talks to one authority at a time, as a real one does
                return [(protocol, sid, await fleet.run_session(dev.id, protocol, server_id=sid))
                        for n, protocol, sid in plan if n == name]

            results = await asyncio.gather(*(sessions_of(p.name) for p in profiles))
        finally:
            await fleet.aclose()
            await runner.cleanup()
        return devices, dict(zip([p.name for p in profiles], results, strict=True)), state, delays

    devices, results, state, delays = asyncio.run(main())
    failed = [(name, protocol, sid, done.detail) for name, runs in results.items()
              for protocol, sid, done in runs if done.outcome != "completed"]
    assert not failed, failed
    assert sum(len(runs) for runs in results.values()) == len(plan)
    for name, runs in results.items():
        dev = devices[name]
        for protocol, sid, _ in runs:
            account = dev.account(sid, protocol)
            if protocol == "dm12":
                # the server played that very authority and its session ran the script to the end
                ours = [s for dev_id in _identities(dev) for s in state.dm12_sessions.get(dev_id, [])
                        if s.server_id == sid]
                assert [s.outcome for s in ours] == ["completed"], (name, sid, [s.events for s in ours])
                assert ours[0].scheme == account.auth
                assert (ours[0].secrets.client, ours[0].secrets.server) == (account.client_secret,
                                                                            account.server_secret)
            else:
                # the device's Basic credentials were checked against that authority's secrets
                assert state.dm2_secrets[(sid, dev.id)].client == account.client_secret, (name, sid)
        dm2_runs = sum(1 for protocol, _, _ in runs if protocol == "dm2")
        assert state.device(dev.id).completed >= dm2_runs
    # the profiles' bearers were shaped (recorded, not waited for): the sensor's 1.6 s latency too
    assert delays.seconds and max(delays.seconds) >= 1.2


def test_authorities_refuse_what_no_shipped_account_holds():
    async def main():
        state = ServerState(show_hold_s=0.2, push_wait_s=0.2)
        runner, base = await _serve(state)
        fleet = Fleet(server=base, transport=HttpTransport(sleep=_Delays()))
        try:
            (laptop,) = fleet.add("windows-laptop", 1)
            acc = laptop.account(protocol="dm12")
            laptop.tree.replace(f"{acc.path}/AppAuth/CLCRED/AAuthSecret", "not-a-shipped-secret")
            wrong_dm12 = await fleet.run_session(laptop.id, "dm12")
            (car,) = fleet.add("vehicle-telematics", 1)
            fleet_acc = car.account("fleet", "dm2")
            car.tree.replace(f"{fleet_acc.path}/Ext/HTTPAuth/Secret", "oem-secret")  # another authority's
            wrong_dm2 = await fleet.run_session(car.id, "dm2", server_id="fleet")
            t = fleet.transport
            unknown12 = await t.post(base + "/dm12/nobody", b"<SyncML/>", "application/vnd.syncml.dm+xml")
            init = {"Content-Type": "application/vnd.oma.dm.initiation+json", "OMADM-DevID": "IMEI:1"}
            unknown2 = await t.request("POST", base + "/dm2/nobody", b'{"Alert":[]}', init)
            package1 = encode_initiation(Initiation(alerts=[Alert(ALERT_CLIENT_INITIATED)]))
            basic = "Basic " + base64.b64encode(b"IMEI:1:fleet-secret").decode()
            right2 = await t.request("POST", base + "/dm2/fleet", package1, {**init, "Authorization": basic})
        finally:
            await fleet.aclose()
            await runner.cleanup()
        return wrong_dm12, wrong_dm2, unknown12, unknown2, right2, state, laptop

    wrong_dm12, wrong_dm2, unknown12, unknown2, right2, state, laptop = asyncio.run(main())
    assert wrong_dm12.outcome == "failed" and "refused our credentials" in wrong_dm12.detail
    [session] = state.dm12_sessions[laptop.id]
    assert session.server_id == "demo-mdm" and session.outcome.startswith("failed")
    assert wrong_dm2.outcome == "failed" and wrong_dm2.status == 401
    assert unknown12.status == 404 and b"nobody" in unknown12.body and b"insurer" in unknown12.body
    assert unknown2.status == 404
    # a user-id with ':' (DevIDs such as IMEI:1) and the fleet operator's shipped secret: let in
    assert right2.status == 200, right2.body
    assert state.dm2_secrets[("fleet", "IMEI:1")] == SecretPair("fleet-secret", "")


def test_notifications_from_another_authority_verify_on_the_device():
    async def main():
        state = ServerState(show_hold_s=0.2, push_wait_s=0.2)
        runner, base = await _serve(state)
        fleet = Fleet(server=base, transport=HttpTransport(sleep=_Delays()))
        try:
            (car,) = fleet.add(find_profile("vehicle-telematics"), 1)
            for sid in ("oem", "fleet"):
                state.notify(car.id, server_id=sid, now=1000)
            queued = [state.push_queue(car.id).get_nowait() for _ in range(2)]
        finally:
            await fleet.aclose()
            await runner.cleanup()
        return car, queued

    car, queued = asyncio.run(main())
    accounts = car.accounts("dm2")
    decisions = [check_notification(raw, accounts, None, 1000) for raw in queued]
    assert [d.accepted for d in decisions] == [True, True], [d.reason for d in decisions]
    assert [d.notification.server_id for d in decisions if d.notification] == ["oem", "fleet"]
