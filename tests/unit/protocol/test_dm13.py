"""DM 1.3 on the device side, by hand: SHA256 credentials, versions, what a DM 1.2 device refuses.

The end-to-end checks against the reference server are in tests/integration/test_dm13_session.py.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from test_syncml_client import Peer

from emulator.device.profile import PROFILE_DIR, find_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import FileFormatError, SessionError
from emulator.protocol.actions import SendMessage, SessionDone
from emulator.protocol.syncml import auth, codes
from emulator.protocol.syncml.client import SyncMLClient
from emulator.protocol.syncml.commands import Chal, Cred, Get, Item
from emulator.protocol.syncml.message import parse_message


def test_sha256_credential_is_the_md5_construction_with_sha256():
    """Worked by hand with hashlib: B64(H(B64(H("user:pass")) ":" nonce)), H = SHA-256."""
    inner = base64.b64encode(hashlib.sha256(b"bruce:OhBehave").digest())
    expected = base64.b64encode(hashlib.sha256(inner + b":" + b"Nonce").digest()).decode()
    assert auth.sha256_digest("bruce", "OhBehave", b"Nonce") == expected
    assert len(base64.b64decode(expected)) == 32
    assert auth.verify_sha256(expected, "bruce", "OhBehave", [b"other", b"Nonce"])
    assert not auth.verify_sha256(expected, "bruce", "OhBehave!", b"Nonce")
    assert auth.md5_digest("bruce", "OhBehave", b"Nonce") != expected  # a different scheme, not a relabel


def test_version_refusal_depends_on_the_version_a_side_implements():
    assert codes.version_refusal("1.2", "DM/1.3", "1.3") is None
    assert codes.version_refusal("1.2", "DM/1.2", "1.3") is None  # a 1.3 device talks to a 1.2 server
    assert codes.version_refusal("1.3", "DM/1.3", "1.3") is None  # VerDTD 1.3 tolerated from a 1.3 peer
    code, why = codes.version_refusal("1.2", "DM/1.3", "1.2")
    assert code == codes.PROTOCOL_VERSION_NOT_SUPPORTED and "DM 1.2" in why
    assert codes.version_refusal("1.3", "DM/1.2", "1.2")[0] == codes.DTD_VERSION_NOT_SUPPORTED


def test_dm12_device_refuses_a_dm13_message_whole_with_513():
    peer = Peer()
    done = peer.send([Get(cmd_id="0", items=[Item(target="./DevInfo/Mod")])], ver_proto="DM/1.3")
    reply = peer.reply()
    statuses = [c for c in reply.commands if c.name == "Status"]
    assert [(s.cmd, s.code) for s in statuses] == [("SyncHdr", 513), ("Get", 215)]
    assert not any(c.name == "Results" for c in reply.commands)  # the Get did not run
    end = peer.engine.next_action()
    assert isinstance(done, SendMessage) and isinstance(end, SessionDone)
    assert end.outcome == "failed" and end.status == 513


def test_dm12_device_refuses_a_sha256_challenge_with_406():
    peer = Peer()
    chal = Chal(type=codes.AUTH_SHA256, format="b64", next_nonce=auth.encode_nonce(b"n1"))
    done = peer.send(code=401, chal=chal)
    assert isinstance(done, SessionDone) and done.status == codes.OPTIONAL_FEATURE_NOT_SUPPORTED
    assert "DM 1.3 scheme" in done.detail


def test_dm12_device_answers_a_sha256_server_cred_with_its_own_md5_challenge():
    peer = Peer()
    cred = Cred(type=codes.AUTH_SHA256, format="b64",
                data=auth.sha256_digest("demo-dm12", "demo-server-secret", peer.account.server_nonce))
    peer.send([Get(cmd_id="0", items=[Item(target="./DevInfo/Mod")])], cred=cred)
    head = peer.reply().commands[0]
    assert head.code == codes.INVALID_CREDENTIALS and head.chal.type == codes.AUTH_MD5


def _dm13_peer() -> Peer:
    peer = Peer.__new__(Peer)
    peer.device = VirtualDevice(find_profile("smartphone-dm13"), 0, server="http://dm.test")
    peer.account = peer.device.account(protocol="dm12")
    peer.engine = SyncMLClient(peer.device.tree, peer.account, dev_id=peer.device.id, session_id="5A",
                               dm_version="1.3", nonce_factory=lambda: b"fresh-nonce")
    peer.msg_id = 0
    first = peer.engine.next_action()
    peer.first = first
    peer.last = parse_message(first.body, first.content_type)
    return peer


def test_dm13_device_sends_dm13_and_sha256_and_accepts_a_sha256_server():
    peer = _dm13_peer()
    hdr = peer.reply().header
    assert hdr.ver_proto == "DM/1.3" and hdr.cred.type == codes.AUTH_SHA256
    assert auth.verify_sha256(hdr.cred.data, peer.device.id, "demo-client-secret", peer.account.client_nonce)
    cred = Cred(type=codes.AUTH_SHA256, format="b64",
                data=auth.sha256_digest("demo-dm12", "demo-server-secret", peer.account.server_nonce))
    peer.send([Get(cmd_id="0", items=[Item(target="./DevDetail/Ext/DMFeatures?list=Struct")])], cred=cred,
              ver_proto="DM/1.3")
    head, status, *_ = peer.reply().commands
    assert head.code == codes.AUTH_ACCEPTED and head.chal.type == codes.AUTH_SHA256
    assert head.chal.next_nonce == auth.encode_nonce(b"fresh-nonce")  # replay: the next session's nonce is new
    assert status.code == 200
    # an md5 Cred (a downgrade) is not taken for a sha256 account
    peer2 = _dm13_peer()
    md5 = Cred(type=codes.AUTH_MD5, format="b64",
               data=auth.md5_digest("demo-dm12", "demo-server-secret", peer2.account.server_nonce))
    peer2.send([], cred=md5, ver_proto="DM/1.3")
    assert peer2.reply().commands[0].code == codes.INVALID_CREDENTIALS


def test_a_dm12_engine_will_not_run_a_sha256_account():
    device = VirtualDevice(find_profile("smartphone-dm13"), 0, server="http://dm.test")
    with pytest.raises(SessionError, match="DM 1.3 scheme"):
        SyncMLClient(device.tree, device.account(protocol="dm12"), dev_id=device.id, session_id="1")


@pytest.mark.parametrize(("extra", "words"), [
    ('dm_version = "1.4"\n', "dm_version"),
    ('dm13_features = ["sha256-auth"]\n', 'dm13_features needs dm_version = "1.3"'),
    ('dm_version = "1.3"\ndm13_features = ["teleport"]\n', "'teleport' is not one of"),
    ('dm_version = "1.3"\ndm13_features = ["session-bearer"]\n', "sha256-auth feature"),
])
def test_profile_dm13_keys_are_checked(tmp_path, extra, words):
    text = (PROFILE_DIR / "smartphone-dm13.toml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("dm_version", "dm13_features")))
    text = text.replace('protocols = ["dm12"]\n', 'protocols = ["dm12"]\n' + extra)
    path = tmp_path / "p.toml"
    path.write_text(text)
    from emulator.device.profile import load_profile

    with pytest.raises(FileFormatError, match=words.replace("(", r"\(")):
        load_profile(path)


# ------------------------------------------------------------------------------ extended notification


def _n(**ext_kw):
    from emulator.protocol.syncml.notification import (
        Extension,
        build_notification,
        encode_extension,
        parse_notification,
    )

    raw = build_notification("demo-dm12", "s", b"n", session_id=1, version=13,
                             vendor=encode_extension(Extension(**ext_kw)))
    return parse_notification(raw)


def test_extension_round_trips_and_limits_hold_at_exact_values():
    from emulator.protocol.syncml.notification import (
        MAX_EXT_VALUE,
        MAX_REQUESTED_MOS,
        Extension,
        parse_extension,
    )

    ext = parse_extension(_n(expiry=1_900_000_000, reason="r" * MAX_EXT_VALUE,
                             requested=tuple(f"./M{i}" for i in range(MAX_REQUESTED_MOS))))
    assert ext == Extension(1_900_000_000, "r" * MAX_EXT_VALUE, tuple(f"./M{i}" for i in range(MAX_REQUESTED_MOS)))
    assert not ext.expired(1_900_000_000) and ext.expired(1_900_000_001)
    with pytest.raises(ValueError):
        _n(reason="r" * (MAX_EXT_VALUE + 1))
    with pytest.raises(ValueError):
        _n(requested=tuple(f"./M{i}" for i in range(MAX_REQUESTED_MOS + 1)))
    with pytest.raises(ValueError):
        _n(expiry=1 << 32)


def test_extension_is_only_read_from_version_13_and_malformed_fields_are_refused():
    from emulator.errors import DecodeError
    from emulator.protocol.syncml.notification import (
        EXT_MAGIC,
        build_notification,
        parse_extension,
        parse_notification,
    )

    plain = parse_notification(build_notification("demo-dm12", "s", b"n", session_id=1))
    assert parse_extension(plain) is None
    v12 = parse_notification(build_notification("demo-dm12", "s", b"n", session_id=1, vendor=EXT_MAGIC + b"\x02\x01x"))
    assert parse_extension(v12) is None  # version 11: the vendor part is not ours to read
    for bad in (b"\x02", b"\x02\x05ab", b"\x01\x02\x00\x00", b"\x02\x01\xff"):
        n = parse_notification(build_notification("demo-dm12", "s", b"n", session_id=1, version=13,
                                                  vendor=EXT_MAGIC + bad))
        with pytest.raises(DecodeError):
            parse_extension(n)
    unknown = parse_notification(build_notification("demo-dm12", "s", b"n", session_id=1, version=13,
                                                    vendor=EXT_MAGIC + b"\x09\x02zz\x02\x01y"))
    assert parse_extension(unknown).reason == "y"  # an unknown field is skipped by its length
