"""What the reference server learns from profiles, and how an explicit DM 1.2 config overrides it."""

from __future__ import annotations

import base64

import pytest

from emulator.device.profile import load_profile
from emulator.server.authorities import Authority, SecretPair, UnknownAuthorityError, learn_authorities
from emulator.server.dm12 import Dm12Config, Dm12Server
from emulator.server.state import ServerState

PROFILE = """title = "{name}"
protocols = ["dm12", "dm2"]
[devinfo]
Man = "M"
Mod = "X"
"""

ACCOUNT = """[[accounts]]
server_id = "{sid}"
protocol = "{protocol}"
auth = "{auth}"
client_secret = "{client}"
server_secret = "{server}"
"""


def _profile(tmp_path, name: str, *accounts: dict[str, str]):
    text = PROFILE.format(name=name) + "".join(ACCOUNT.format(**a) for a in accounts)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _acc(sid: str, auth: str, client: str, server: str = "s", protocol: str = "dm12") -> dict[str, str]:
    return {"sid": sid, "auth": auth, "client": client, "server": server, "protocol": protocol}


def test_shared_server_id_keeps_every_pair_and_the_most_used_scheme_first(tmp_path):
    _profile(tmp_path, "a", _acc("shared", "hmac", "a-secret", "a-server"), _acc("own", "basic", "o"))
    _profile(tmp_path, "b", _acc("shared", "md5", "b-secret", "b-server"))
    _profile(tmp_path, "c", _acc("shared", "md5", "b-secret", "b-server"),
             _acc("shared2", "basic", "x", protocol="dm2"))
    (tmp_path / "broken.toml").write_text("title = 1\n")  # skipped, as `dm-emulator profiles` lists it
    learnt = learn_authorities("dm12", dirs=[tmp_path])
    assert set(learnt) == {"shared", "own"}  # the dm2 account is not a DM 1.2 authority
    shared = learnt["shared"]
    assert shared.schemes == ("md5", "hmac")  # md5 twice, hmac once
    assert shared.secrets == (SecretPair("b-secret", "b-server"), SecretPair("a-secret", "a-server"))
    assert shared.scheme_for("hmac") == "hmac" and shared.scheme_for("basic") == "md5"
    assert shared.scheme_for(None) == "md5"
    # the pair that matched a device before is tried first
    assert shared.candidates(SecretPair("a-secret", "a-server"))[0] == SecretPair("a-secret", "a-server")
    assert set(learn_authorities("dm2", [load_profile(tmp_path / "c.toml")])) == {"shared2"}


def test_secret_templates_are_filled_with_what_the_server_knows():
    authority = Authority("t", "dm12", ("md5",), (SecretPair("{dev_id}-secret", "srv-{dev_id}"),))
    assert authority.candidates(dev_id="IMEI:1") == [SecretPair("IMEI:1-secret", "srv-IMEI:1")]


def test_explicit_config_plays_only_what_it_says_and_the_default_learns_the_shipped_profiles():
    explicit = Dm12Server(Dm12Config(auth="hmac", client_secret="c", server_secret="s"))
    assert explicit.authority() == Authority("demo-dm12", "dm12", ("hmac",), (SecretPair("c", "s"),))
    with pytest.raises(UnknownAuthorityError) as info:
        explicit.authority("insurer")
    assert info.value.status == 404
    shipped = Dm12Server()
    for sid in ("demo-dm12", "work-mdm", "insurer", "demo-mdm"):
        assert shipped.authority(sid).server_id == sid
    assert {"md5", "hmac"} <= set(shipped.authority().schemes)  # the phone's md5, the sensor's hmac
    # learnt, with what is given explicitly winning over what was learnt
    mixed = Dm12Config.shipped(client_secret="only-this",
                               authorities={"insurer": Authority("insurer", "dm12", ("basic",), ())})
    assert mixed.authority().secrets == (SecretPair("only-this", "demo-server-secret"),)
    assert mixed.authority("insurer").schemes == ("basic",)
    assert mixed.authority("work-mdm") == shipped.authority("work-mdm")
    assert Dm12Config.shipped(exec_uri="./X").authority() == shipped.authority()  # not a credential


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_dm2_basic_credentials_against_learnt_tables():
    learnt = ServerState(dm2_authorities=learn_authorities("dm2"))
    assert learnt.authenticate(_basic("TCU1:oem-secret"), server_id="oem", dev_id="IMEI:1").user == "TCU1"
    assert learnt.dm2_secrets[("oem", "IMEI:1")] == SecretPair("oem-secret", "")
    assert learnt.authenticate(_basic("TCU1:fleet-secret"), server_id="oem", dev_id="IMEI:1").user is None
    assert learnt.authenticate(_basic(":oem-secret"), server_id="oem", dev_id="IMEI:2").user is None  # no user
    assert learnt.authenticate(None, server_id="oem", dev_id="IMEI:1").user is None  # no credentials: refused
    assert learnt.authenticate(_basic("TCU1:oem-secret"), server_id="nobody", dev_id="IMEI:1").user is None
    assert learnt.dm2_authority("nobody") is None
    with pytest.raises(UnknownAuthorityError):
        learnt.notify("IMEI:1", server_id="nobody")


def test_first_notification_to_a_never_seen_device_uses_its_profiles_secret():
    """home-gateway and smartphone share ServerID demo-dm12 with different secrets: the server must
    sign a new device's first Package 0 with the pair its profile's identity scheme points to."""
    from emulator.device.profile import find_profile
    from emulator.device.virtual import VirtualDevice
    from emulator.protocol.syncml.client import check_notification
    from emulator.server.dm12 import Dm12Config, Dm12Server
    from emulator.server.state import ServerState

    for name in ("home-gateway", "smartphone"):
        dev = VirtualDevice(find_profile(name), 3, server="http://127.0.0.1:9")
        server = Dm12Server(Dm12Config.shipped(), ServerState(base_url="http://127.0.0.1:9"))
        raw = server.build_package0(dev.id)
        verdict, _ = check_notification(raw, dev.account(protocol="dm12"))
        assert verdict == "ok", name


def test_expected_is_remembered_per_devid_and_a_changed_authority_starts_afresh():
    """expected() is asked on every message, so an Authority remembers it per DevId; accounts and
    delegations make a new Authority (dataclasses.replace), which must not answer from the old memory."""
    from dataclasses import replace

    from emulator.server.authorities import UserRule

    authority = learn_authorities("dm12")["demo-dm12"]
    dev_id = "IMEI:354679100000018"
    learnt = authority.expected(dev_id)
    assert learnt and all(user == dev_id for user, _ in learnt)
    assert authority.expected(dev_id) == learnt
    own = SecretPair("own-client", "own-server")
    changed = replace(authority, users=(*authority.users, UserRule("someone", own, dev_id=dev_id)))
    assert changed.expected(dev_id) == [("someone", own)]  # the added account wins
    assert authority.expected(dev_id) == learnt  # the old one is unchanged


def test_expected_memory_is_bounded(monkeypatch):
    from emulator.server import authorities

    monkeypatch.setattr(authorities, "EXPECTED_KEPT", 3)
    authority = learn_authorities("dm2")["demo-dm2"]
    for n in range(7):
        authority.expected(f"IMEI:3546791000000{n:02d}")
    assert 1 <= len(authority._expected) <= 3


def test_trace_identity_gives_the_index_and_the_identity_make_identity_makes():
    from emulator.device.identity import IdentitySpec, index_of, make_identity, trace_identity

    spec = IdentitySpec(scheme="IMEI", tac="35467910", prefix="R5CW", width=7)
    made = make_identity(spec, 41)
    assert trace_identity(spec, made.dev_id) == (41, made)
    assert index_of(spec, made.dev_id) == 41
    assert trace_identity(spec, made.dev_id[:-1] + str((int(made.dev_id[-1]) + 1) % 10)) is None  # bad Luhn digit
    assert trace_identity(IdentitySpec(scheme="UUID"), "urn:uuid:" + make_identity(IdentitySpec(), 0).uuid) is None
