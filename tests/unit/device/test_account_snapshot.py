"""A device keeps its accounts as a snapshot between sessions (VirtualDevice.accounts): every change a
read of the tree would see must show in it, and changes elsewhere must not cost a new read."""

from __future__ import annotations

import pytest

import emulator.device.virtual as virtual
from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.mo.accounts import configure_account, read_accounts, store_nonces
from emulator.tree import TreeError

SERVER = "http://127.0.0.1:8700"


@pytest.fixture
def dev() -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone"), 0, server=SERVER)


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """How many times the device read its accounts from the tree."""
    count: list[int] = []

    def counted(tree):
        count.append(1)
        return read_accounts(tree)

    monkeypatch.setattr(virtual, "read_accounts", counted)
    return count


def _fresh(dev: VirtualDevice) -> list:
    return read_accounts(dev.tree)


def test_changes_outside_the_accounts_keep_the_snapshot(dev, reads):
    dev.accounts()
    dev.tree.replace("./DevInfo/Lang", "fr-FR")
    dev.tree.set_node("./DevDetail/Ext/Counter", "1")
    assert dev.accounts() == _fresh(dev)
    assert len(reads) == 1  # the old cache (tree.version) read again after each change


def test_a_nonce_a_session_keeps_is_patched_in_without_a_read(dev, reads):
    acc = dev.account(protocol="dm12")
    store_nonces(dev.tree, acc, client_nonce=b"next-client", server_nonce=b"next-server")
    again = dev.account(protocol="dm12")
    assert (again.client_nonce, again.server_nonce) == (b"next-client", b"next-server")
    assert dev.accounts() == _fresh(dev)
    assert len(reads) == 1


@pytest.mark.parametrize("level,field", [("CLCRED", "client_nonce"), ("SRVCRED", "server_nonce"),
                                         ("NOTIFCRED", "notification_nonce")])
def test_each_nonce_leaf_lands_in_its_own_field(dev, level, field):
    acc = dev.account(protocol="dm12")
    dev.tree.set_node(f"{acc.path}/AppAuth/{level}/AAuthData", "AAECAw==")  # base64 text, as profiles write it
    assert getattr(dev.account(protocol="dm12"), field) == b"\x00\x01\x02\x03"
    assert dev.accounts() == _fresh(dev)


def test_any_other_account_leaf_drops_the_snapshot(dev, reads):
    acc = dev.account(protocol="dm12")
    dev.tree.replace(f"{acc.path}/AppAuth/CLCRED/AAuthSecret", "new-secret")
    assert dev.account(protocol="dm12").client_secret == "new-secret"
    dm2 = dev.account(protocol="dm2")
    configure_account(dev.tree, dm2, server_uri="http://127.0.0.1:9999/dm2")
    assert dev.account(protocol="dm2").server_uri == "http://127.0.0.1:9999/dm2"
    assert dev.accounts() == _fresh(dev)
    assert len(reads) == 3


def test_a_nonce_leaf_deleted_is_read_again(dev):
    acc = dev.account(protocol="dm12")
    store_nonces(dev.tree, acc, client_nonce=b"n1")
    dev.tree.delete(f"{acc.path}/AppAuth/CLCRED/AAuthData")
    assert dev.account(protocol="dm12").client_nonce == b""
    assert dev.accounts() == _fresh(dev)


def test_deleting_an_ancestor_of_the_accounts_takes_them_along(dev):
    assert dev.accounts("dm2")
    dev.tree.delete("./DM2/DMAcc")
    assert dev.accounts("dm2") == []
    assert [a.server_id for a in dev.accounts()] == [a.server_id for a in _fresh(dev)]


def test_inside_a_transaction_the_tree_is_read_and_a_rollback_leaves_the_snapshot_right(dev):
    acc = dev.account(protocol="dm12")
    before = dev.accounts()
    with pytest.raises(TreeError), dev.tree.transaction():
        dev.tree.replace(f"{acc.path}/Name", "renamed")
        assert dev.account(protocol="dm12").name == "renamed"  # the change inside is seen
        raise TreeError(500, "undo")
    assert dev.accounts() == before == _fresh(dev)


def test_a_committed_transaction_shows_its_change(dev):
    acc = dev.account(protocol="dm12")
    with dev.tree.transaction():
        dev.tree.replace(f"{acc.path}/Name", "renamed")
    assert dev.account(protocol="dm12").name == "renamed"


def test_a_swapped_tree_brings_its_own_accounts(dev):
    dev.accounts()
    other = VirtualDevice(find_profile("smartphone"), 1, server="http://127.0.0.1:8800").tree
    dev.use_tree(other)
    assert dev.accounts() == read_accounts(other)
    assert dev.account(protocol="dm12").server_uri.startswith("http://127.0.0.1:8800/")
