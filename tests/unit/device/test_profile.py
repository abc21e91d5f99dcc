"""Device profiles: the shipped ones load and say what they promise; broken files name file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from emulator.device.identity import is_valid_imei, make_identity
from emulator.device.profile import (
    PROFILE_DIR,
    UnknownProfileError,
    fill,
    find_profile,
    list_profiles,
    load_profile,
)
from emulator.errors import FileFormatError
from emulator.protocol.flow import SessionLimits

SIX = {"smartphone", "home-gateway", "nbiot-sensor", "tablet-dual-env", "vehicle-telematics", "windows-laptop"}

MINIMAL = """\
title = "Minimal"
protocols = ["dm12"]

[devinfo]
Man = "Acme"
Mod = "M1"
"""


def top(extra: str, protocols: str = '["dm12"]') -> str:
    """MINIMAL with ``extra`` written at the top level (line 3), before any table header."""
    return MINIMAL.replace('["dm12"]\n', f"{protocols}\n{extra}")


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    f = tmp_path / name
    f.write_text(textwrap.dedent(text))
    return f


# --------------------------------------------------------------------------- shipped profiles


@pytest.mark.parametrize("file", sorted(PROFILE_DIR.glob("*.toml")), ids=lambda f: f.stem)
def test_every_shipped_profile_loads(file: Path) -> None:
    p = load_profile(file)
    assert p.title and p.description and p.protocols
    assert p.devinfo["Man"] and p.devinfo["Mod"]
    assert p.accounts or p.bootstrap, "a shipped profile must know at least one server (or its bootstrap server)"
    for a in p.accounts:
        assert a.server_uri.startswith("{server}/")  # the local demo server unless the user says otherwise
    ident = make_identity(p.identity, 0)
    assert ident.dev_id


def test_list_profiles_lists_the_six_with_titles() -> None:
    listed = list_profiles()
    names = {s.name for s in listed}
    assert names >= SIX
    for s in listed:
        assert s.error is None and s.title
    assert [s.name for s in listed] == sorted(names)


def test_profiles_say_what_they_promise() -> None:
    phone = find_profile("smartphone")
    assert {b.type for b in phone.bearers} == {"LTE", "5GNR", "WiFi"}
    assert set(phone.protocols) == {"dm2", "dm12"}
    assert phone.ui.has_screen and phone.ui.browser
    assert is_valid_imei(make_identity(phone.identity, 5).imei or "")

    gw = find_profile("home-gateway")
    assert {b.type for b in gw.bearers} == {"DSL", "Ethernet", "WiFi"}
    assert next(b for b in gw.bearers if b.type == "DSL").nat
    assert not gw.ui.has_screen

    sensor = find_profile("nbiot-sensor")
    assert sensor.max_msg_size == 2048 and sensor.encoding == "wbxml" and sensor.protocols == ("dm12",)
    assert [b.type for b in sensor.bearers] == ["NBIoT"]

    tablet = find_profile("tablet-dual-env")
    kinds = {e.kind: e for e in tablet.environments}
    assert set(kinds) == {"host", "guest"}
    assert kinds["guest"].own_identity and not kinds["host"].own_identity

    car = find_profile("vehicle-telematics")
    assert len(car.accounts) == 3
    assert len({a.priority for a in car.accounts}) == 3
    assert max(car.accounts, key=lambda a: a.priority).server_id == "oem"

    laptop = find_profile("windows-laptop")
    assert laptop.tree_style == "windows" and laptop.protocols == ("dm12",)
    paths = [n.path for n in laptop.extra_mos]
    assert any(p.startswith("./Vendor/MSFT/") for p in paths)
    assert any(p.startswith("./Device/Vendor/MSFT/") for p in paths)
    assert any(p.startswith("./User/Vendor/MSFT/") for p in paths)


def test_a_fleet_from_one_profile_has_distinct_ids() -> None:
    spec = find_profile("vehicle-telematics").identity
    assert len({make_identity(spec, i).dev_id for i in range(1000)}) == 1000


# --------------------------------------------------------------------------- finding


def test_find_by_stem_name_or_path(tmp_path: Path) -> None:
    f = write(tmp_path, 'name = "fancy"\n' + MINIMAL, "file-stem.toml")
    assert find_profile("file-stem", dirs=[tmp_path]).name == "fancy"
    assert find_profile("fancy", dirs=[tmp_path]).source == str(f)
    assert find_profile(str(f)).title == "Minimal"


def test_unknown_profile_lists_names(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, "alpha.toml")
    write(tmp_path, MINIMAL, "beta.toml")
    with pytest.raises(UnknownProfileError) as info:
        find_profile("gamma", dirs=[tmp_path])
    assert "alpha" in str(info.value) and "beta" in str(info.value)
    with pytest.raises(UnknownProfileError, match="smartphone"):
        find_profile("no-such-device")


def test_list_profiles_shows_a_broken_file_without_hiding_others(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, "good.toml")
    write(tmp_path, "title = \n", "bad.toml")
    listed = {s.name: s for s in list_profiles([tmp_path])}
    assert listed["good"].error is None and listed["good"].title == "Minimal"
    assert listed["bad"].error is not None and "bad.toml:1" in listed["bad"].error


def test_minimal_profile_defaults(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, MINIMAL + '\n[[accounts]]\nserver_id = "s1"\nprotocol = "dm12"\n'
                           'client_secret = "x"\n'))  # fmt: skip
    assert p.name == "p"  # the file stem
    assert p.encoding == "xml" and p.tree_style == "oma" and p.max_msg_size == 16384
    (acc,) = p.accounts
    assert acc.server_uri == "{server}/dm12" and acc.auth == "md5" and acc.name == "s1"
    assert acc.client_user == "{dev_id}"


def test_fill() -> None:
    assert fill("{server}/dm12", {"server": "http://127.0.0.1:8080"}) == "http://127.0.0.1:8080/dm12"
    assert fill("LAPTOP-{serial}", {"serial": "CNB14-00000001"}) == "LAPTOP-CNB14-00000001"


# --------------------------------------------------------------------------- broken files

BROKEN = [
    # (file text, line of the problem, words in the reason)
    ('title = "x"\nprotocols = ["dm12"]\nmax_msg_size = = 3\n', 3, "TOML syntax"),
    (top('colour = "red"\n'), 3, "unknown key 'colour'"),
    (MINIMAL + 'colour = "red"\n', 7, "no node 'colour' in DevInfo"),  # after [devinfo] it is a node name
    (MINIMAL + "\n[[bearers]]\nname = \"a\"\ntype = \"LTE\"\n\n[[bearers]]\nname = \"b\"\ntype = \"WiFi\"\n"
     "latncy_ms = 5\n", 15, "did you mean 'latency_ms'"),
    (MINIMAL.replace('["dm12"]', '["dm12"]\nmax_msg_size = "big"'), 3, "expected int"),
    (MINIMAL.replace('title = "Minimal"\n', ""), 1, "missing required key 'title'"),
    (MINIMAL + "\n[[bearers]]\nname = \"a\"\n", 8, "missing required key 'type'"),
    (MINIMAL + "\n[[bearers]]\nname = \"a\"\ntype = \"5G\"\n", 10, "'5G' is not one of"),
    (MINIMAL.replace('["dm12"]', '["dm3"]'), 2, "'dm3' is not one of"),
    (top('encoding = "json"\n'), 3, "'json' is not one of"),
    (MINIMAL + 'Mdo = "x"\n', 7, "did you mean 'Mod'"),
    (MINIMAL + 'DevId = "IMEI:1"\n', 7, "comes from [identity]"),
    (MINIMAL + "\n[devdetail]\nLrgObj = \"yes\"\n", 9, "node format bool"),
    (MINIMAL + "\n[devdetail.URI]\nMaxDepth = 3\n", 9, "node format chr"),
    (MINIMAL + "\n[identity]\nscheme = \"IMEI\"\ntac = \"123\"\n", 10, "8 digits"),
    (MINIMAL + "\n[identity]\nmac_prefix = \"00:11:22\"\n", 9, "locally administered"),
    (MINIMAL + "\n[[bearers]]\nname = \"a\"\ntype = \"LTE\"\nloss = 1.5\n", 11, "between 0.0 and 1.0"),
    (MINIMAL + "\n[[bearers]]\nname = \"a\"\ntype = \"LTE\"\n\n[[bearers]]\nname = \"a\"\ntype = \"DSL\"\n",
     13, "used twice"),
    (MINIMAL + "\n[[accounts]]\nserver_id = \"s\"\nprotocol = \"dm2\"\nclient_secret = \"x\"\n", 10,
     "not among the profile's protocols"),
    (MINIMAL + "\n[[accounts]]\nserver_id = \"s\"\nprotocol = \"dm12\"\nserver_uri = \"{host}/dm\"\n"
     "client_secret = \"x\"\n", 11, "unknown placeholder {host}"),
    (MINIMAL + "\n[[accounts]]\nserver_id = \"s\"\nprotocol = \"dm12\"\n", 8, "needs a client_secret"),
    (MINIMAL + "\n[[accounts]]\nserver_id = \"s\"\nprotocol = \"dm12\"\nclient_secret = \"x\"\n"
     "perms = [\"urn:oma:mo:oma-dm-devinfo:1.2\"]\n", 12, "only for dm2"),
    (MINIMAL + "\n[[accounts]]\nserver_id = \"s\"\nprotocol = \"dm12\"\nclient_secret = \"x\"\nnonce = \"*\"\n",
     12, "not base64"),
    (MINIMAL + "\n[[accounts]]\nserver_id = \"s\"\nprotocol = \"dm12\"\nclient_secret = \"x\"\n"
     "acl_scope = [\"DevInfo\"]\n", 12, "absolute DM URI"),
    (MINIMAL + "\n[[environments]]\nname = \"host\"\nkind = \"host\"\naccounts = [\"nobody\"]\n", 11,
     "no account 'nobody'"),
    (MINIMAL + "\n[[environments]]\nname = \"h\"\nkind = \"vm\"\n", 10, "'vm' is not one of"),
    (MINIMAL + "\n[ui]\nbrowser = true\n", 9, "needs has_screen"),
    (top('tree_style = "windows"\n'), 3, None),  # fine: dm12 is there
    (top('tree_style = "windows"\n', '["dm2"]'), 3, "needs the dm12 protocol"),
    (MINIMAL + "\n[[extra_mos]]\npath = \"./A\"\nformat = \"node\"\nvalue = \"x\"\n", 11, "has no value"),
    (MINIMAL + "\n[[extra_mos]]\npath = \"./A\"\nformat = \"string\"\n", 10, "'string' is not one of"),
    (top('identity = { scheme = "IMEI", tac = "12" }\n'), 3, "8 digits"),  # inline table: its line
    (top("bearers = 3\n"), 3, "array of tables"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "words"), BROKEN)
def test_broken_profile_names_file_and_line(tmp_path: Path, text: str, line: int, words: str | None) -> None:
    f = write(tmp_path, text)
    if words is None:
        load_profile(f)  # control case: the same shape without the mistake loads
        return
    with pytest.raises(FileFormatError) as info:
        load_profile(f)
    err = info.value
    assert err.path == str(f)
    assert err.line == line, f"{err}"
    assert words in err.reason
    assert f"{f}:{line}" in str(err)


def test_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "latin1.toml"
    f.write_bytes(b'title = "x"\nprotocols = ["dm12"]\n# caf\xe9\n')
    with pytest.raises(FileFormatError) as info:
        load_profile(f)
    assert info.value.line == 3


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="cannot read"):
        load_profile(tmp_path / "absent.toml")


# --------------------------------------------------------------------------- session limits


def test_session_limits_default_and_at_their_bounds(tmp_path: Path) -> None:
    assert load_profile(write(tmp_path, MINIMAL)).limits == SessionLimits(200, 600.0)
    lowest = load_profile(write(tmp_path, MINIMAL + "\n[limits]\nmax_messages = 1\nmax_session_seconds = 1\n"))
    assert lowest.limits == SessionLimits(1, 1.0)
    highest = MINIMAL + "\n[limits]\nmax_messages = 100000\nmax_session_seconds = 86400.0\n"
    assert load_profile(write(tmp_path, highest)).limits == SessionLimits(100_000, 86_400.0)


@pytest.mark.parametrize(("extra", "words"), [
    ("max_messages = 0", "0 must be between 1 and 100000"),
    ("max_messages = 100001", "100001 must be between 1 and 100000"),
    ("max_session_seconds = 0.5", "0.5 must be between 1 and 86400"),
    ("max_session_seconds = 86400.5", "86400.5 must be between 1 and 86400"),
    ("max_session_seconds = nan", "nan is not a number"),
    ("max_session_seconds = inf", "inf"),
    ('max_messages = "200"', "expected int"),
    ("max_messages = 2.5", "expected int"),
    ("max_msgs = 3", "unknown key 'max_msgs'"),
])  # fmt: skip
def test_session_limits_out_of_range_name_file_and_line(tmp_path: Path, extra: str, words: str) -> None:
    f = write(tmp_path, MINIMAL + f"\n[limits]\n{extra}\n")
    with pytest.raises(FileFormatError) as info:
        load_profile(f)
    assert info.value.line == 9 and words in info.value.reason, info.value
