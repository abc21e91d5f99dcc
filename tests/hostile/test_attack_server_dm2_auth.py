"""ATTACK: opening DM 2.0 sessions at the reference server in another device's name (issue 12,
"DM 2.0 authentication"; PROTOCOL.md 1.15: Basic, Digest and client certificates)."""

from __future__ import annotations

import asyncio

from hostile_kit import PACKAGE1, basic, own_auth, package1_headers, phone, post, serving

from emulator.server.dm2_auth import digest_authorization


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


def test_digest_authentication_and_its_replays():
    async def main():
        async with serving() as server:
            dev = phone()
            account = dev.account(protocol="dm2")
            url = server.url + "/dm2"
            out = {}
            for alg, n in (("sha", 0), ("md5", 1)):
                challenge = (await post(url, PACKAGE1, package1_headers(dev.id)))[2].getall("WWW-Authenticate")
                value = challenge[n]
                answer = digest_authorization(value, account.client_user, account.client_secret,
                                              method="POST", uri="/dm2")
                out[alg] = await post(url, PACKAGE1, package1_headers(dev.id, answer))
                out[alg + " replay"] = await post(url, PACKAGE1, package1_headers(dev.id, answer))
            wrong = digest_authorization(challenge[0], account.client_user, "guess", method="POST", uri="/dm2", nc=5)
            out["wrong secret"] = await post(url, PACKAGE1, package1_headers(dev.id, wrong))
            other_uri = digest_authorization(challenge[0], account.client_user, account.client_secret,
                                             method="POST", uri="/dm2/other", nc=6)
            out["other uri"] = await post(url, PACKAGE1, package1_headers(dev.id, other_uri))
            forged = challenge[0].replace('nonce="', 'nonce="1')
            out["forged nonce"] = await post(url, PACKAGE1, package1_headers(dev.id, digest_authorization(
                forged, account.client_user, account.client_secret, method="POST", uri="/dm2")))
            return out

    out = asyncio.run(main())
    assert out["sha"][0] == 200 and out["md5"][0] == 200
    assert out["sha replay"][0] == 401 and "replayed" in out["sha replay"][1]
    assert out["md5 replay"][0] == 401
    assert out["wrong secret"][0] == 401 and "wrong user or secret" in out["wrong secret"][1]
    assert out["other uri"][0] == 401 and "uri" in out["other uri"][1]
    assert out["forged nonce"][0] == 401 and "not issued" in out["forged nonce"][1]
