"""A DM 2.0 session finds the instances of an MO once per tree state (executor.resolve_targets keeps
them on the session's Actor): a package of GETs walks the tree once, and any change is seen."""

from __future__ import annotations

import pytest

import emulator.protocol.dm2.executor as executor
from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.protocol.dm2.executor import Actor, parse, resolve_targets
from emulator.tree import Tree
from emulator.tree.acl import EMPTY
from emulator.tree.clienturi import ResolveError
from emulator.tree.node import Node

DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.2"


@pytest.fixture
def dev() -> VirtualDevice:
    return VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:9")


@pytest.fixture
def walks(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = executor.instance_views

    def counted(tree, moid, server_id):
        seen.append(moid)
        return real(tree, moid, server_id)

    monkeypatch.setattr(executor, "instance_views", counted)
    return seen


def _actor(dev: VirtualDevice) -> Actor:
    acc = dev.account(protocol="dm2")
    return Actor(acc.server_id, frozenset(acc.perms))


def _miids(dev: VirtualDevice, actor: Actor, uri: str = f"{DEVINFO}/*/Mod") -> list[str]:
    return [t.miid for t in resolve_targets(dev.tree, parse(uri), actor)]


def test_a_second_get_on_the_same_mo_does_not_walk_the_tree_again(dev, walks):
    actor = _actor(dev)
    first = _miids(dev, actor)
    assert _miids(dev, actor, f"{DEVINFO}/*/FwV") == first
    assert walks == [DEVINFO]  # the old code walked once per GET


def test_a_new_instance_is_found_after_the_tree_changed(dev, walks):
    actor = _actor(dev)
    before = _miids(dev, actor)
    dev.tree.set_node("./DM2/Second", None, format="node", type=DEVINFO)
    dev.tree.set_node("./DM2/Second/Mod", "other")
    assert _miids(dev, actor) == [*before, "Second"]
    assert len(walks) == 2


def test_an_instance_the_server_may_no_longer_see_is_gone_after_an_acl_change(dev):
    actor = _actor(dev)
    (miid,) = _miids(dev, actor)
    dev.tree.replace_prop(f"./DM2/{miid}", "ACL", "Get=someone-else")
    with pytest.raises(ResolveError):  # no node matches: the server sees no instance now
        _miids(dev, actor)


def test_another_tree_is_never_answered_from_the_first_ones_instances(dev):
    actor = _actor(dev)
    _miids(dev, actor)
    other = VirtualDevice(find_profile("smartphone"), 1, server="http://127.0.0.1:9")
    other.tree.delete("./DM2/DevInfo")
    with pytest.raises(ResolveError):
        resolve_targets(other.tree, parse(f"{DEVINFO}/*/Mod"), actor)


def test_a_graft_inside_a_transaction_moves_the_tree_version():
    tree = Tree()
    tree.begin()
    before = tree.version
    tree.graft("./A", Node(None, "node", "", EMPTY, {}))
    assert tree.version > before
    tree.rollback()
