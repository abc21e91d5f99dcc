"""Reading the accounts from the tree (mo.accounts.read_accounts): each account's node is found once and
its leaves read below it; every field must still come from where the DMAcc layouts put it, including
the parts a server adds or changes (a renamed address entry, a Perm without MOID, TLS settings, bytes)."""

from __future__ import annotations

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.mo import diagmon
from emulator.mo.accounts import read_accounts


@pytest.fixture
def dev() -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:8700")


def test_dm1_fields_come_from_their_leaves(dev):
    t = dev.tree
    base = dev.account(protocol="dm12").path
    t.delete(f"{base}/AppAddr/1")
    t.set_node(f"{base}/AppAddr/primary", format="node")
    t.set_node(f"{base}/AppAddr/primary/Addr", "https://first.example/dm")
    t.set_node(f"{base}/AppAddr/second", format="node")
    t.set_node(f"{base}/AppAddr/second/Addr", "https://second.example/dm")
    t.set_node(f"{base}/AppAuth/CLCRED/AAuthName", b"user-bytes", format="bin")
    t.set_node(f"{base}/AppAuth/SRVCRED/AAuthData", "AAECAw==")  # base64 text, as profiles write it
    t.set_node(f"{base}/Ext/Priority", "70")
    t.set_node(f"{base}/Ext/ServerAuth", " Transport ")
    t.set_node(f"{base}/Ext/Strict", "yes")
    t.set_node(f"{base}/Ext/TLS/CAFile", "ca.pem")
    t.set_node(f"{base}/Ext/TLS/Verify", "Off")
    acc = next(a for a in read_accounts(t) if a.path == base)
    assert acc.server_uri == "https://first.example/dm"  # the first address entry, whatever its name
    assert acc.client_user == "user-bytes"
    assert acc.server_nonce == b"\x00\x01\x02\x03"
    assert (acc.priority, acc.server_auth, acc.strict) == (70, "transport", True)
    assert (acc.ca_file, acc.verify, acc.client_cert) == ("ca.pem", False, "")
    assert read_accounts(t)[0].path == base  # highest priority first


def test_dm2_fields_and_perms(dev):
    t = dev.tree
    acc = dev.account(protocol="dm2")
    t.set_node(f"{acc.path}/Perm/99", format="node")  # an entry without MOID is left out
    t.set_node(f"{acc.path}/Ext/UIResume", "client")
    again = next(a for a in read_accounts(t) if a.path == acc.path)
    assert again.perms == acc.perms and acc.perms
    assert again.ui_resume == "client"
    assert (again.server_id, again.server_uri, again.client_user) == (acc.server_id, acc.server_uri, acc.client_user)
    t.delete(f"{acc.path}/Perm")
    assert next(a for a in read_accounts(t) if a.path == acc.path).perms == ()


def test_an_account_root_that_is_a_leaf_or_missing_has_no_accounts(dev):
    t = dev.tree
    t.delete("./DM2/DMAcc")
    t.set_node("./DM2/DMAcc", "not a node")
    assert {a.protocol for a in read_accounts(t)} == {"dm12"}
    t.delete("./DMAcc")
    assert {a.protocol for a in read_accounts(t)} == set()


def test_armed_follows_each_traps_enabled_leaf(dev):
    diag = diagmon.of(dev.behaviours)
    assert diag is not None and not diag.armed(dev.tree)
    dev.tree.replace("./DM2/DiagMon/Trap/Memory/Enabled", "true")
    assert diag.armed(dev.tree)
    dev.tree.replace("./DM2/DiagMon/Trap/Memory/Enabled", b"false")
    dev.tree.set_node("./DiagMon/Trap/New", format="node")  # a trap with no Enabled leaf is off
    assert not diag.armed(dev.tree)
    dev.tree.set_node("./DiagMon/Trap/New/Enabled", b"true", format="bin")
    assert diag.armed(dev.tree)
    dev.tree.delete("./DiagMon/Trap")
    dev.tree.delete("./DM2/DiagMon/Trap")
    assert not diag.armed(dev.tree)
