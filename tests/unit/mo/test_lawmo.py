"""LAWMO on a device, sans network: Exec answers 202, the run locks / wipes / resets and reports the
LAWMO result code; hostile inputs change nothing; a locked device refuses local apps."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.device.apps import AppAccessError
from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.mo import lawmo
from emulator.mo.check import check_subtree
from emulator.tree import TreeError

SERVER = "demo-dm12"


SHIPPED = Path(__file__).resolve().parents[3] / "profiles" / "smartphone.toml"
DM2_ROOT = "./DM2/oma-lawmo/LAWMO"
LAWMO_SETTINGS = ('[behaviours.settings]\noperation_s = 0.2\nwipe = { Contacts = "./Data/Contacts", '
                  'Photos = "./Data/Photos" }\npartial_lock_apps = ["dialer"]\n')


def variant(tmp_path: Path, settings_toml: str) -> Path:
    """The shipped smartphone with the settings of both its LAWMO instances replaced by ``settings_toml``."""
    text = SHIPPED.read_text()
    assert text.count(LAWMO_SETTINGS) == 2
    path = tmp_path / "lawmo-phone.toml"
    path.write_text(text.replace('name = "smartphone"', 'name = "lawmo-phone"', 1)
                    .replace(LAWMO_SETTINGS, "[behaviours.settings]\n" + settings_toml))
    return path


def _device(tmp_path: Path | None = None, settings_toml: str = "") -> VirtualDevice:
    prof = find_profile(str(variant(tmp_path, settings_toml))) if tmp_path else find_profile("smartphone")
    return VirtualDevice(prof, 0, server="http://127.0.0.1:1")


def _finish(dev: VirtualDevice) -> list:
    """Run the device's pending operations to their end (no clock: waits are skipped); their runs."""
    runs = []
    for job in dev.behaviours.take_jobs():
        while job.run.next(None) is not None:
            pass
        runs.append(job.run)
    return runs


@pytest.mark.parametrize(("root", "server"), [("./LAWMO", "demo-dm12"), (DM2_ROOT, "demo-dm2")])
def test_lock_partial_lock_unlock_move_the_state_of_every_instance(root, server):
    dev = _device()
    for op, state in (("FullyLock", 10), ("PartiallyLock", 20), ("UnLock", 30)):
        assert dev.tree.exec(f"{root}/Operations/{op}", by=server, correlator="c1") == 202
        (run,) = _finish(dev)
        assert run.result == 1200
        (alert,) = run.alerts
        assert (alert.type, alert.format, alert.data, alert.source, alert.correlator) == (
            lawmo.ALERT_TYPE, "int", "1200", f"{root}/Operations/{op}", "c1")
        assert dev.tree.value("./LAWMO/State") == dev.tree.value(f"{DM2_ROOT}/State") == str(state)
    assert check_subtree(dev.tree, root) == []


def test_locked_device_refuses_local_apps_and_partial_lock_keeps_the_listed_ones():
    dev = _device()
    maps = dev.apps.register("maps", ["./Data/Contacts"])
    dialer = dev.apps.register("dialer", ["./Data/Contacts"])
    assert maps.read("./Data/Contacts/1").startswith("Alice")
    dev.tree.exec("./LAWMO/Operations/PartiallyLock", by=SERVER)
    _finish(dev)
    with pytest.raises(AppAccessError, match="partially locked"):
        maps.read("./Data/Contacts/1")
    assert dialer.read("./Data/Contacts/1").startswith("Alice")
    dev.tree.exec("./LAWMO/Operations/FullyLock", by=SERVER)
    _finish(dev)
    with pytest.raises(AppAccessError, match="fully locked"):
        dialer.read("./Data/Contacts/1")
    dev.tree.exec("./LAWMO/Operations/UnLock", by=SERVER)
    _finish(dev)
    assert maps.read("./Data/Contacts/1").startswith("Alice")


def test_wipe_deletes_the_items_marked_to_be_wiped_only():
    dev = _device()
    dev.tree.replace("./LAWMO/AvailableWipeList/Contacts/ToBeWiped", "true", by=SERVER)
    assert dev.tree.exec("./LAWMO/Operations/Wipe", by=SERVER) == 202
    (run,) = _finish(dev)
    assert run.result == 1200
    assert dev.tree.children("./Data/Contacts") == []
    assert dev.tree.children("./Data/Photos") == ["IMG_0001"]


def test_wipe_with_nothing_chosen_is_not_performed():
    dev = _device()
    dev.tree.exec("./LAWMO/Operations/Wipe", by=SERVER)
    (run,) = _finish(dev)
    assert run.result == 1406
    assert dev.tree.children("./Data/Contacts") == ["1", "2"]


def test_wipe_of_an_unknown_list_entry_is_refused_and_changes_nothing():
    dev = _device()
    version = dev.tree.version
    assert dev.tree.exec("./LAWMO/Operations/Wipe", "Contacts,Music", by=SERVER) == 404
    assert dev.behaviours.take_jobs() == []
    assert dev.tree.children("./Data/Contacts") == ["1", "2"]
    assert dev.tree.version == version + 1  # the exec event only
    with pytest.raises(TreeError) as err:  # the list is the device's: a server adds no entry
        dev.tree.add("./LAWMO/AvailableWipeList/Music/ToBeWiped", "true", format="bool", by=SERVER)
    assert err.value.status == 405
    with pytest.raises(TreeError) as err:
        dev.tree.replace("./LAWMO/AvailableWipeList/Music/ToBeWiped", "true", by=SERVER)
    assert err.value.status == 404


def test_factory_reset_keeps_profile_accounts_and_drops_added_ones():
    dev = _device()
    tree = dev.tree
    tree.add("./DMAcc/rogue/ServerID", "rogue", by=None)
    tree.replace("./DMAcc/demo-dm12/AppAuth/CLCRED/AAuthData", b"\x01\x02\x03\x04", by=None)
    tree.set_node("./Data/Contacts/3", "Carol")
    dev.tree.exec("./LAWMO/Operations/FullyLock", by=SERVER)
    _finish(dev)
    dev.tree.exec("./LAWMO/Operations/FactoryReset", by=SERVER, correlator="fr")
    (run,) = _finish(dev)
    assert run.result == 1200 and run.alerts[0].correlator == "fr"
    assert dev.tree is not tree
    assert not dev.tree.exists("./DMAcc/rogue")
    assert {a.server_id for a in dev.accounts()} == {"demo-dm12", "demo-dm2"}
    assert dev.tree.value("./DMAcc/demo-dm12/AppAuth/CLCRED/AAuthData") == b"\x01\x02\x03\x04"
    assert dev.tree.children("./Data/Contacts") == ["1", "2"]
    assert dev.tree.value("./LAWMO/State") == "30"
    # the reset device still carries out LAWMO
    assert dev.tree.exec(f"{DM2_ROOT}/Operations/FullyLock", by="demo-dm2") == 202
    _finish(dev)
    assert dev.tree.value("./LAWMO/State") == "10"


def test_declared_failure_and_declined_consent_change_nothing(tmp_path):
    dev = _device(tmp_path, 'fail = { 1402 = 1.0 }\nconsent = "decline"\nwipe = { Contacts = "./Data/Contacts" }\n')
    dev.tree.exec(f"{DM2_ROOT}/Operations/FullyLock", by="demo-dm2")
    (run,) = _finish(dev)
    assert (run.result, run.alerts[0].mark) == (1402, "critical")
    assert dev.tree.value(f"{DM2_ROOT}/State") == "30"
    dev.tree.exec(f"{DM2_ROOT}/Operations/UnLock", by="demo-dm2")
    assert _finish(dev)[0].result == 1200  # 1402 only fails a full lock
    dev.tree.replace(f"{DM2_ROOT}/LAWMOConfig/NotifyUser", "true", by="demo-dm2")
    dev.tree.exec(f"{DM2_ROOT}/Operations/PartiallyLock", by="demo-dm2")
    assert _finish(dev)[0].result == 1401
    assert dev.tree.value(f"{DM2_ROOT}/State") == "30"


@pytest.mark.parametrize(("text", "error"), [
    ('fail = { 1200 = 0.5 }', "no LAWMO failure result code"),
    ('fail = { 1402 = 1.5 }', "from 0 to 1"),
    ('fail = { 1402 = 0.6, 1400 = 0.6 }', "more than 1"),
    ('consent = "maybe"', "accept or decline"),
    ('components = []', "no setting 'components'"),
    ('wipe = { "a/b" = "./X" }', "cannot be a list item name"),
    ('wipe = { Music = "Music" }', "starting with ./"),
    ('operation_s = -1', "expected 0 to"),
])
def test_bad_declarations_name_their_line(tmp_path, text, error):
    from emulator.errors import FileFormatError

    with pytest.raises(FileFormatError, match=error) as err:
        find_profile(str(variant(tmp_path, f"{text}\n")))
    assert err.value.line is not None
