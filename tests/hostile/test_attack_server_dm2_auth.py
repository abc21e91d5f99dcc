"""ATTACK: opening DM 2.0 sessions at the reference server in another device's name (issue 12,
"DM 2.0 authentication"; PROTOCOL.md 1.15: Basic, Digest and client certificates)."""

from __future__ import annotations

import asyncio

from hostile_kit import PACKAGE1, basic, own_auth, package1_headers, phone, post, serving

from emulator.fleet.fleet import Fleet
from emulator.protocol.dm2.digest import DigestClient
from emulator.server.state import ServerState


def test_no_credentials_or_another_scheme_get_401_with_both_challenges():
    async def main():
        async with serving() as server:
            dev = phone()
            url = server.url + "/dm2"
            none = await post(url, PACKAGE1, package1_headers(dev.id))
            bearer = await post(url, PACKAGE1, package1_headers(dev.id, "Bearer abc"))
            garbage = await post(url, PACKAGE1, package1_headers(dev.id, "Basic !!!"))
            own = await post(url, PACKAGE1, package1_headers(dev.id, own_auth(dev)))
            return none, bearer, garbage, own

    none, bearer, garbage, own = asyncio.run(main())
    assert none[0] == 401 and "no credentials" in none[1]
    challenges = none[2].getall("WWW-Authenticate")
    assert [c.split()[0] for c in challenges] == ["Digest", "Digest", "Basic"]
    assert "algorithm=SHA-256" in challenges[0] and 'realm="demo-dm2"' in challenges[0]
    assert bearer[0] == 401 and "'Bearer' is not accepted" in bearer[1]
    assert garbage[0] == 401
    assert own[0] == 200 and '"CMD"' in own[1]


def test_shared_secret_with_another_devices_user_is_refused():
    """Every smartphone holds the same secret: the user names which device it is."""

    async def main():
        async with serving() as server:
            victim, attacker = phone(0), phone(1)
            url = server.url + "/dm2"
            secret = attacker.account(protocol="dm2").client_secret
            attacker_user = attacker.account(protocol="dm2").client_user
            as_victim = await post(url, PACKAGE1, package1_headers(victim.id, basic(attacker_user, secret)))
            any_user = await post(url, PACKAGE1, package1_headers(victim.id, basic("admin", secret)))
            devid_user = await post(url, PACKAGE1, package1_headers(victim.id, basic(victim.id, secret)))
            victim_ok = await post(url, PACKAGE1, package1_headers(victim.id, own_auth(victim)))
            return as_victim, any_user, devid_user, victim_ok

    as_victim, any_user, devid_user, victim_ok = asyncio.run(main())
    assert as_victim[0] == 401 and "wrong user or secret" in as_victim[1]
    assert any_user[0] == 401 and devid_user[0] == 401
    assert victim_ok[0] == 200


def test_a_devid_no_profile_makes_is_bound_to_its_first_user():
    async def main():
        async with serving() as server:
            url = server.url + "/dm2"
            first = await post(url, PACKAGE1, package1_headers("IMEI:1", basic("alice", "demo-client-secret")))
            other = await post(url, PACKAGE1, package1_headers("IMEI:1", basic("mallory", "demo-client-secret")))
            again = await post(url, PACKAGE1, package1_headers("IMEI:1", basic("alice", "demo-client-secret")))
            alice_elsewhere = await post(url, PACKAGE1, package1_headers("IMEI:2", basic("alice", "demo-client-secret")))
            return first, other, again, alice_elsewhere

    first, other, again, alice_elsewhere = asyncio.run(main())
    assert first[0] == 200 and again[0] == 200
    assert other[0] == 401 and alice_elsewhere[0] == 401


def _digest(challenge: str, user: str, secret: str, uri: str = "/dm2") -> str:
    """What the emulator's own Digest client answers to one challenge."""
    client = DigestClient(user, secret)
    assert client.take(challenge) is not None
    answer = client.authorization("POST", uri)
    assert answer
    return answer


def test_digest_authentication_and_its_replays():
    async def main():
        async with serving() as server:
            dev = phone()
            account = dev.account(protocol="dm2")
            user, secret = account.client_user, account.client_secret
            url = server.url + "/dm2"
            out = {}
            for alg, n in (("sha", 0), ("md5", 1)):
                challenge = (await post(url, PACKAGE1, package1_headers(dev.id)))[2].getall("WWW-Authenticate")
                answer = _digest(challenge[n], user, secret)
                assert f"algorithm={'SHA-256' if n == 0 else 'MD5'}" in answer
                out[alg] = await post(url, PACKAGE1, package1_headers(dev.id, answer))
                out[alg + " replay"] = await post(url, PACKAGE1, package1_headers(dev.id, answer))
            challenge = (await post(url, PACKAGE1, package1_headers(dev.id)))[2].getall("WWW-Authenticate")[0]
            out["wrong secret"] = await post(url, PACKAGE1, package1_headers(dev.id, _digest(challenge, user, "guess")))
            out["other uri"] = await post(url, PACKAGE1, package1_headers(
                dev.id, _digest(challenge, user, secret, uri="/dm2/other")))
            out["other device's user"] = await post(url, PACKAGE1, package1_headers(
                dev.id, _digest(challenge, phone(1).account(protocol="dm2").client_user, secret)))
            forged = challenge.replace('nonce="', 'nonce="1')
            out["forged nonce"] = await post(url, PACKAGE1, package1_headers(dev.id, _digest(forged, user, secret)))
            return out

    out = asyncio.run(main())
    assert out["sha"][0] == 200 and out["md5"][0] == 200
    assert out["sha replay"][0] == 401 and "replayed" in out["sha replay"][1]
    assert out["md5 replay"][0] == 401
    assert out["wrong secret"][0] == 401 and "wrong user or secret" in out["wrong secret"][1]
    assert out["other uri"][0] == 401 and "uri" in out["other uri"][1]
    assert out["other device's user"][0] == 401
    assert out["forged nonce"][0] == 401 and "not issued" in out["forged nonce"][1]


def test_the_emulators_digest_client_runs_whole_sessions_against_the_server():
    """The device side (protocol/dm2/digest.py) and this server agree on every message."""

    async def main():
        async with serving() as server:
            fleet = Fleet(server=server.url)
            try:
                (dev,) = fleet.add("smartphone", 1)
                dev.tree.replace("./DM2/DMAcc/demo-dm2/Ext/HTTPAuth/Type", "digest")
                done = [await fleet.run_session(dev.id, "dm2") for _ in range(2)]
            finally:
                await fleet.aclose()
            return done

    done = asyncio.run(main())
    assert [d.outcome for d in done] == ["completed", "completed"], done


def test_a_digest_device_behind_nat_polls_its_push_channel_with_digest():
    async def main():
        state = ServerState(push_wait_s=5)
        async with serving(state) as server:
            fleet = Fleet(server=server.url)
            try:
                (dev,) = fleet.add("smartphone", 1)
                dev.tree.replace("./DM2/DMAcc/demo-dm2/Ext/HTTPAuth/Type", "digest")
                state.set_script(dev.id, [[["GET", "urn:oma:mo:oma-dm-devinfo:1.2//Mod"]]])
                poller = fleet.start_push(wait_s=5, recheck_s=0.05)
                for _ in range(200):  # bounded: until the device waits on its channel
                    if dev.id in poller.polling and state.device_addresses:
                        break
                    await asyncio.sleep(0.05)
                state.notify(dev.id)
                for _ in range(200):
                    if poller.delivered:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await fleet.aclose()
            return poller.delivered

    assert asyncio.run(main()) == 1


def test_a_client_certificate_authenticates_only_the_devid_it_names(tmp_path):
    import ssl

    import aiohttp

    from emulator.server.tls import make_server_identity, serve_tls_context
    from emulator.util.certs import issue_device_certs

    ca, cert, key = make_server_identity(tmp_path)
    mine, other = phone(0), phone(1)
    (cert_file, key_file), = issue_device_certs((ca, tmp_path / "ca.key"), [mine.id],
                                                directory=tmp_path / "devices").values()

    async def main():
        async with serving(ssl_context=serve_tls_context(cert, key, client_ca=ca)) as server:
            client = ssl.create_default_context(cafile=str(ca))
            client.load_cert_chain(cert_file, key_file)
            out = {}
            async with aiohttp.ClientSession() as http:
                for name, dev_id in (("own", mine.id), ("other", other.id)):
                    async with http.post(server.url + "/dm2", data=PACKAGE1, ssl=client,
                                         headers=package1_headers(dev_id)) as r:
                        out[name] = r.status
                plain = ssl.create_default_context(cafile=str(ca))  # no certificate at all
                async with http.post(server.url + "/dm2", data=PACKAGE1, ssl=plain,
                                     headers=package1_headers(mine.id)) as r:
                    out["none"] = r.status
            return out

    assert asyncio.run(main()) == {"own": 200, "other": 401, "none": 401}


def test_a_digest_devices_sub_push_answers_the_repositorys_challenge():
    """Uploads need the device's credentials: a SUB push kept without a (one-use) Digest answer gets
    a 401 challenge, answers it once, and is stored."""
    devinfo = "urn:oma:mo:oma-dm-devinfo:1.2"

    async def main():
        state = ServerState()
        async with serving(state) as server:
            fleet = Fleet(server=server.url)
            try:
                (dev,) = fleet.add("smartphone", 1)
                dev.tree.replace("./DM2/DMAcc/demo-dm2/Ext/HTTPAuth/Type", "digest")
                state.set_script(dev.id, [[["SUB", f"{devinfo}//Bearer", "${repo}/sub/bearer"]]])
                first = await fleet.run_session(dev.id, "dm2")
                dev.set_bearer("wlan0", up=True)  # a change inside the subscribed subtree
                state.set_script(dev.id, [[["GET", f"{devinfo}//Mod"]]])
                second = await fleet.run_session(dev.id, "dm2")
            finally:
                await fleet.aclose()
            return first, second, state.device(dev.id).uploads

    first, second, uploads = asyncio.run(main())
    assert first.outcome == "completed" and second.outcome == "completed", (first, second)
    assert [u.path.rsplit("/", 2)[-2:] for u in uploads] == [["sub", "bearer"]]
