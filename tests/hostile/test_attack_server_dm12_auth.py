"""ATTACK: DM 1.2 authentication at the reference server (issue 12: lockout, failed authentication
ends, MsgIDs, nonces; PROTOCOL.md 2.3, 2.9)."""

from __future__ import annotations

import asyncio

from hostile_kit import dm12_md5, dm12_package, header_status, post_dm12, serving

from emulator.fleet.fleet import Fleet
from emulator.protocol.syncml import auth, codes
from emulator.protocol.syncml.commands import Chal, Status


def test_bad_credentials_posted_for_a_devid_do_not_lock_the_device_out():
    """Every failed check used to rotate the device's nonce: the honest device was challenged again."""

    async def main():
        async with serving() as server:
            fleet = Fleet(server=server.url)
            try:
                (dev,) = fleet.add("smartphone", 1)
                first = await fleet.run_session(dev.id, "dm12")
                for n in range(5):  # an attacker's sessions with wrong digests, and one with none
                    cred = dm12_md5(dev.id, "guess", b"\x00" * 16) if n else None
                    await post_dm12(server.url + "/dm12", dm12_package(dev.id, f"evil{n}", 1, cred=cred))
                second = await fleet.run_session(dev.id, "dm12")
            finally:
                await fleet.aclose()
            return first, second, server.state.dm12_sessions[dev.id]

    first, second, sessions = asyncio.run(main())
    assert first.outcome == "completed" and second.outcome == "completed"
    honest = sessions[-1]
    assert honest.outcome == "completed"
    assert not [e for e in honest.events if e.startswith("client challenged")], honest.events


def test_failed_authentication_ends_without_a_further_challenge_and_never_restarts():
    async def main():
        async with serving() as server:
            url = server.url + "/dm12"
            dev_id = "IMEI:354679100000001"
            bad = dm12_md5(dev_id, "guess", b"\x00" * 16)
            answers = [await post_dm12(url, dm12_package(dev_id, "S1", n, cred=bad)) for n in (1, 2, 3)]
            after = await post_dm12(url, dm12_package(dev_id, "S1", 4, cred=bad))
            restart = await post_dm12(url, dm12_package(dev_id, "S1", 1, cred=bad))
            restart_any = await post_dm12(url, dm12_package(dev_id, "S1", 7, cred=bad))
            return answers, after, restart, restart_any

    answers, after, restart, restart_any = asyncio.run(main())
    codes_seen = [header_status(m).code for _, m in answers]
    assert codes_seen == [401, 401, 401]
    assert [header_status(m).chal is not None for _, m in answers] == [True, True, False]  # limit 2 challenges
    assert after[0] == 400 and "did not authenticate" in after[1]
    assert restart[0] == 400 and "did not authenticate" in restart[1]
    assert restart_any[0] == 400


def test_a_message_whose_msgid_does_not_follow_is_refused():
    async def main():
        async with serving() as server:
            url = server.url + "/dm12"
            dev_id = "IMEI:354679100000001"
            starts_late = await post_dm12(url, dm12_package(dev_id, "S2", 5))
            first = await post_dm12(url, dm12_package(dev_id, "S3", 1))
            skipped = await post_dm12(url, dm12_package(dev_id, "S3", 3))
            repeated = await post_dm12(url, dm12_package(dev_id, "S3", 1))
            follows = await post_dm12(url, dm12_package(dev_id, "S3", 2))
            return starts_late, first, skipped, repeated, follows

    starts_late, first, skipped, repeated, follows = asyncio.run(main())
    assert starts_late[0] == 400 and "starts at MsgID 1" in starts_late[1]
    assert first[0] == 200
    assert skipped[0] == 400 and "does not follow" in skipped[1]
    assert repeated[0] == 200  # MsgID 1 again: the device gave the session up and starts anew
    assert follows[0] == 200


def test_the_server_signs_with_the_latest_nonce_even_from_an_unauthenticated_client():
    """PROTOCOL.md 2.9: use the latest nonce received, even from a peer not yet authenticated."""

    async def main():
        async with serving() as server:
            url = server.url + "/dm12"
            dev_id = "IMEI:354679100000001"
            _, first = await post_dm12(url, dm12_package(dev_id, "S4", 1))
            ours = first.header.cred  # the server's Cred, made with the factory nonce
            refuse = header_status(first)
            new_nonce = b"client-fresh-nonce"
            status = Status(cmd_id="1", msg_ref="1", cmd_ref="0", cmd="SyncHdr", code=codes.INVALID_CREDENTIALS,
                            chal=Chal(type=codes.AUTH_MD5, format="b64", next_nonce=auth.encode_nonce(new_nonce)))
            _, second = await post_dm12(url, dm12_package(dev_id, "S4", 2, server_status=status))
            return ours, refuse, second.header.cred, new_nonce, server

    ours, refuse, again, new_nonce, server = asyncio.run(main())
    assert refuse.code == 407 and ours is not None and again is not None
    pair = server.state.dm12.authority().candidates(dev_id="IMEI:354679100000001")[0]
    assert auth.verify_md5(again.data, "demo-dm12", pair.server, new_nonce)
    assert again.data != ours.data
