"""Scenario events for delegation and local apps, and access expectations: what they read into, and
that every mistake is found before anything runs, with its file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from emulator.errors import FileFormatError
from emulator.scenarios.model import find_scenario, load_scenario

EXAMPLE = find_scenario("delegation").read_text()

BASE = """\
[[devices]]
name = "cars"
profile = "vehicle-telematics"

[[events]]
at = "1s"
do = "delegate"
delegator = "insurer"
delegate = "fleet"
scope = "./DevInfo"
kind = "full"
depth = 2
prohibited = ["oem"]

[[events]]
at = "2s"
do = "revoke"
delegate = "fleet"
scope = "./DevInfo"

[[events]]
at = "1s"
do = "app"
app = "dash"
grants = ["./DevDetail"]
write_grants = ["urn:oma:mo:ext-dmemulator-wlan:1.0/*"]

[[events]]
at = "1s"
do = "app_write"
app = "dash"
uri = "./DevDetail/FwV"
value = "x"
expect = "refused"

[[expect]]
server = "fleet"
cannot_get = "./DevInfo/Man"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent(text))
    return p


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def fails(tmp_path: Path, text: str) -> FileFormatError:
    path = write(tmp_path, text)
    with pytest.raises(FileFormatError) as info:
        load_scenario(path)
    assert info.value.path == str(path)
    return info.value


def test_local_events_read_into_the_timeline(tmp_path):
    sc = load_scenario(write(tmp_path, BASE))
    delegate, app, write_ev, revoke = sc.events  # sorted by time, file order at the same time
    assert (delegate.action, delegate.delegator, delegate.delegate, delegate.scope) == (
        "delegate", "insurer", "fleet", "./DevInfo")
    assert (delegate.kind, delegate.depth, delegate.prohibited, delegate.expect) == ("full", 2, {"oem"}, "ok")
    assert app.grants == ("./DevDetail",) and app.write_grants == ("urn:oma:mo:ext-dmemulator-wlan:1.0/*",)
    assert (write_ev.action, write_ev.uri, write_ev.value, write_ev.expect) == (
        "app_write", "./DevDetail/FwV", "x", "refused")
    assert revoke.action == "revoke" and revoke.by is None  # None: the device's user revokes
    (e,) = sc.expectations
    assert (e.server, e.cannot_get, e.can_get) == ("fleet", "./DevInfo/Man", None)
    assert e.describe() == "all devices: fleet cannot Get ./DevInfo/Man"


def test_shipped_example_reads():
    sc = load_scenario(find_scenario("delegation"))
    assert {g.profile.name for g in sc.groups} == {"vehicle-telematics"}
    actions = [e.action for e in sc.events]
    assert {"delegate", "revoke", "app", "app_read", "app_write"} <= set(actions)
    assert any(e.expect == "refused" for e in sc.events)
    assert {e.server for e in sc.expectations if e.server} == {"oem", "fleet", "insurer"}


@pytest.mark.parametrize(
    ("old", "new", "needle", "words"),
    [
        ('delegate = "fleet"\nscope = "./DevInfo"\nkind', 'delegate = "dealer"\nscope = "./DevInfo"\nkind',
         'delegate = "dealer"', "has no server 'dealer' (its authorities: oem, fleet, insurer)"),
        ('delegator = "insurer"', 'delegator = "bank"', "bank", "has no server 'bank'"),
        ('prohibited = ["oem"]', 'prohibited = ["oem", "nsa"]', "prohibited", "has no server 'nsa'"),
        ('prohibited = ["oem"]', 'prohibited = "oem"', "prohibited", "expected a list of strings"),
        ('kind = "full"', 'kind = "half"', "half", "'half' is not one of shared, full"),
        ('depth = 2', 'depth = "2"', "depth", "expected int"),
        ('depth = 2', 'depth = -1', "depth", "must be at least 0"),
        ('scope = "./DevInfo"\nkind', 'scope = "./DevInfo/Nope"\nkind', "Nope", "has no node ./DevInfo/Nope"),
        ('scope = "./DevInfo"\nkind', 'scope = "DevInfo"\nkind', 'scope = "DevInfo"', "neither a DM URI"),
        ('do = "revoke"\n', 'do = "revoke"\nkind = "shared"\n', 'kind = "shared"', "revoke takes no 'kind'"),
        ('do = "revoke"\n', 'do = "revoke"\nby = "dealer"\n', "dealer", "has no server 'dealer'"),
        ('expect = "refused"', 'expect = "denied"', "denied", "'denied' is not one of ok, refused"),
        ('grants = ["./DevDetail"]', 'grants = "./DevDetail"', 'grants = "', "expected a list of strings"),
        ('grants = ["./DevDetail"]', 'grants = ["DevDetail"]', 'grants = ["DevDetail"]', "neither a DM URI"),
        ('app = "dash"\ngrants', 'app = "my dash"\ngrants', "my dash", "cannot name an application"),
        ('app = "dash"\nuri', 'app = "board"\nuri', 'app = "board"', "no app 'board' registered before"),
        ('value = "x"', 'value = ["x"]', 'value = ["x"]', "expected a string, number or boolean"),
        ('cannot_get = "./DevInfo/Man"', 'cannot_get = "./DevInfo/Man"\ncan_get = "./DevInfo"', "[[expect]]",
         "exactly one thing"),
        ('server = "fleet"\ncannot_get', 'cannot_get', "cannot_get", "cannot_get needs server"),
        ('server = "fleet"\ncannot_get', 'server = "fleets"\ncannot_get', "fleets", "has no server 'fleets'"),
        ('server = "fleet"\ncannot_get = "./DevInfo/Man"', 'server = "fleet"\nstatus = "completed"',
         'server = "fleet"', "server goes with can_get or cannot_get"),
    ],
)
def test_mistakes_name_their_line(tmp_path, old, new, needle, words):
    assert old in BASE
    text = BASE.replace(old, new, 1)
    err = fails(tmp_path, text)
    assert words in err.reason, err
    assert err.line == line_of(text, needle), err


def test_missing_key_points_at_the_event(tmp_path):
    text = BASE.replace('value = "x"\n', "")
    err = fails(tmp_path, text)
    assert "app_write needs 'value'" in err.reason
    assert err.line == line_of(text, 'do = "app_write"') - 2  # its [[events]] header


def test_app_used_before_it_is_registered(tmp_path):
    """The app event at 1 s comes after the read at 500 ms: the read would find no app."""
    text = BASE.replace('at = "1s"\ndo = "app_write"', 'at = "500ms"\ndo = "app_write"')
    err = fails(tmp_path, text)
    assert err.line == line_of(text, 'at = "500ms"') + 2  # the app key of that event
    assert "no app 'dash' registered before this event" in err.reason


def test_server_the_other_group_lacks(tmp_path):
    """A ServerID must be an authority of every group the event applies to."""
    text = BASE.replace('name = "cars"\nprofile = "vehicle-telematics"\n',
                        'name = "cars"\nprofile = "vehicle-telematics"\n\n[[devices]]\nname = "phones"\n'
                        'profile = "smartphone"\n')
    err = fails(tmp_path, text)
    assert "group 'phones' (smartphone) has no server 'insurer'" in err.reason
    assert err.line == line_of(text, 'delegator = "insurer"')
