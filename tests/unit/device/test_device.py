"""Devices from profiles: identities in the tree, accounts readable by the engines, shared templates."""

from __future__ import annotations

import pytest

from emulator.device.build import template_tree
from emulator.device.identity import is_valid_imei
from emulator.device.profile import find_profile, list_profiles
from emulator.device.virtual import VirtualDevice
from emulator.events import EventBus, TreeChanged
from emulator.mo.accounts import store_nonces

SERVER = "http://127.0.0.1:8700"


@pytest.mark.parametrize("name", [s.name for s in list_profiles()])
def test_every_profile_builds_a_device_whose_tree_carries_its_identity(name):
    profile = find_profile(name)
    dev = VirtualDevice(profile, 7, server=SERVER)
    if "dm12" in profile.protocols:
        assert dev.tree.value("./DevInfo/DevId") == dev.id
        for acc in dev.accounts("dm12"):  # every DM 1.x server may read the identity
            assert dev.tree.get("./DevInfo/DevId", by=acc.server_id).value == dev.id
    if "dm2" in profile.protocols:
        assert dev.tree.value("./DM2/DevInfo/DevID") == dev.id
        assert dev.tree.info("./DM2/DevInfo").type == "urn:oma:mo:oma-dm-devinfo:1.2"
    accounts = dev.accounts()
    assert {a.server_id for a in accounts} == {a.server_id for a in profile.accounts}
    for acc in accounts:
        assert acc.server_uri.startswith(SERVER + "/"), acc
        assert "{" not in acc.client_user


def test_account_secrets_are_not_readable_by_servers():
    dev = VirtualDevice(find_profile("smartphone"), 0, server=SERVER)
    acc = dev.account(protocol="dm12")
    with pytest.raises(Exception) as e:
        dev.tree.get(f"{acc.path}/AppAuth/CLCRED/AAuthSecret", by=acc.server_id)
    assert e.value.status == 405
    # another server may not read the account at all
    with pytest.raises(Exception) as e:
        dev.tree.get(f"{acc.path}/ServerID", by="intruder")
    assert e.value.status == 425


def test_nonces_written_back_are_read_by_the_next_session():
    dev = VirtualDevice(find_profile("smartphone"), 0, server=SERVER)
    acc = dev.account(protocol="dm12")
    store_nonces(dev.tree, acc, client_nonce=b"next-client", server_nonce=b"next-server")
    again = dev.account(protocol="dm12")
    assert (again.client_nonce, again.server_nonce) == (b"next-client", b"next-server")


def test_a_thousand_devices_have_distinct_ids_and_share_the_template():
    profile = find_profile("smartphone")
    devices = [VirtualDevice(profile, i, server=SERVER) for i in range(1000)]
    assert len({d.id for d in devices}) == 1000
    assert all(is_valid_imei(d.id.removeprefix("IMEI:")) for d in devices[:50])
    template = template_tree(profile)
    shared = template.root.children["DevDetail"].children["FwV"]
    assert all(d.tree.root.children["DevDetail"].children["FwV"] is shared for d in devices)
    devices[1].tree.replace("./DevDetail/FwV", "9.9")
    assert devices[2].tree.value("./DevDetail/FwV") == template.value("./DevDetail/FwV") != "9.9"


def test_bearer_switch_shows_in_the_tree_and_events():
    bus = EventBus()
    seen: list[TreeChanged] = []
    bus.subscribe(seen.append, TreeChanged)
    dev = VirtualDevice(find_profile("smartphone"), 0, server=SERVER, bus=bus)
    assert dev.bearer == "lte0"
    dev.set_bearer("wlan0", up=True)
    assert dev.bearer == "wlan0"
    assert dev.tree.value("./DevDetail/Bearer/wlan0/State") == "up"
    assert dev.tree.value("./DM2/DevInfo/Bearer/wlan0/State") == "up"
    assert any(e.change.path == "./DevDetail/Bearer/wlan0/State" for e in seen)
    dev.set_bearer("wlan0", up=False)
    assert dev.bearer != "wlan0" and dev.bearers[dev.bearer].up
    with pytest.raises(Exception, match="no bearer"):
        dev.set_bearer("nope")


def test_acl_scope_into_extra_nodes_applies_and_a_scope_to_nowhere_is_refused():
    from dataclasses import replace

    from emulator.device.profile import ExtraNode
    from emulator.errors import FileFormatError

    base = find_profile("windows-laptop")
    acc = replace(base.accounts[0], acl_scope=("./Vendor/MSFT/DeviceStatus",))
    scoped = replace(base, accounts=(acc,), extra_mos=base.extra_mos + (ExtraNode("./Vendor/MSFT/DeviceStatus/Extra", value="1"),))
    dev = VirtualDevice(scoped, 0, server=SERVER)
    assert acc.server_id in dev.tree.get_prop("./Vendor/MSFT/DeviceStatus", "ACL")
    nowhere = replace(base, accounts=(replace(acc, acl_scope=("./Nowhere",)),))
    with pytest.raises(FileFormatError, match="acl_scope './Nowhere'"):
        VirtualDevice(nowhere, 0, server=SERVER)


def test_accounts_are_read_again_after_a_change_and_after_a_rollback():
    dev = VirtualDevice(find_profile("smartphone"), 0, server=SERVER)
    acc = dev.account(protocol="dm12")
    assert dev.account(protocol="dm12") is acc  # unchanged tree: the same snapshot
    dev.tree.replace(f"{acc.path}/Name", "Renamed")
    assert dev.account(protocol="dm12").name == "Renamed"
    dev.tree.begin()
    dev.tree.replace(f"{acc.path}/Name", "In a transaction")
    assert dev.account(protocol="dm12").name == "In a transaction"
    dev.tree.rollback()
    assert dev.account(protocol="dm12").name == "Renamed"
