"""The DM 1.3 sessionless envelope and its freshness rules, at their exact limits (README "DM 1.3")."""

from __future__ import annotations

import pytest

from emulator.errors import DecodeError
from emulator.protocol.syncml import sessionless as sl

BODY = b"<SyncML/>"


def _sealed(body: bytes = BODY, **kw) -> bytes:
    options = {"msg_id": 1, "expiry": 1000, **kw}
    return sl.seal(sl.KIND_COMMAND, "srv", "srv", "secret", body, **options)


def test_round_trip_and_mac():
    env = sl.open_envelope(_sealed())
    assert (env.kind, env.msg_id, env.expiry, env.sender, env.body) == (sl.KIND_COMMAND, 1, 1000, "srv", BODY)
    assert env.session_id == "1"
    assert sl.verify(env, "srv", "secret")
    assert not sl.verify(env, "srv", "secreT") and not sl.verify(env, "other", "secret")


def test_size_limit_is_exact():
    bare = len(_sealed())
    assert len(sl.open_envelope(_sealed(BODY + b" " * (sl.MAX_MESSAGE - bare))).body) > 0
    with pytest.raises(DecodeError) as over:
        sl.open_envelope(_sealed(BODY + b" " * (sl.MAX_MESSAGE + 1 - bare)))
    assert over.value.status == 413


@pytest.mark.parametrize(("raw", "why"), [
    (b"", "no DMSL header"),
    (b"XXXX" + bytes(20), "no DMSL header"),
    (b"DMSL" + bytes((12, 1)) + bytes(60), "version 12"),
    (b"DMSL" + bytes((13, 6)) + bytes(60), "kind 6"),
    (b"DMSL" + bytes((13, 1)) + bytes(8) + bytes((0,)) + bytes(40), "runs past the end"),
    (b"DMSL" + bytes((13, 1)) + bytes(8) + bytes((50,)) + b"srv" + bytes(10), "runs past the end"),
    (b"DMSL" + bytes((13, 1)) + bytes(8) + bytes((1,)) + b"\xff" + bytes(32) + b"x", "not UTF-8"),
    (b"DMSL" + bytes((13, 1)) + bytes(8) + bytes((3,)) + b"srv" + bytes(32), "no body"),
])
def test_malformed_envelopes_are_refused_by_name(raw, why):
    with pytest.raises(DecodeError, match=why):
        sl.open_envelope(raw)


def test_tampering_anywhere_breaks_the_mac():
    raw = bytearray(_sealed())
    for at in (5, 7, 11, len(raw) - 2):  # kind, msg id, expiry, body
        changed = bytearray(raw)
        changed[at] ^= 0x01
        try:
            env = sl.open_envelope(bytes(changed))
        except DecodeError:
            continue
        assert not sl.verify(env, "srv", "secret")


def test_guard_expiry_lifetime_and_replay_at_their_edges():
    guard = sl.ReplayGuard()
    now = 5000.0
    env = lambda msg_id, expiry: sl.open_envelope(_sealed(msg_id=msg_id, expiry=expiry))  # noqa: E731
    assert "expired" in guard.refusal(env(1, 5000), now)  # expiring now is expired
    assert guard.refusal(env(2, 5001), now) == ""
    assert guard.refusal(env(3, 5000 + sl.MAX_LIFETIME_S), now) == ""  # exactly the farthest expiry taken
    assert "ahead" in guard.refusal(env(4, 5001 + sl.MAX_LIFETIME_S), now)
    assert "replayed" in guard.refusal(env(2, 5001), now)
    assert guard.refusal(env(2, 8000), 5002.0) == ""  # forgotten once it expired: a new message may reuse the id


def test_guard_memory_is_bounded():
    guard = sl.ReplayGuard(max_remembered=2)
    taken = [guard.refusal(sl.open_envelope(_sealed(msg_id=n, expiry=2000)), 1000.0) for n in range(3)]
    assert taken[:2] == ["", ""] and "still in force" in taken[2]
