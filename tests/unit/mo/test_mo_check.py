"""Device trees built from profiles conform to their DDFs, and departures are reported."""

from __future__ import annotations

import pytest

from emulator.device.profile import find_profile, list_profiles
from emulator.device.virtual import VirtualDevice
from emulator.mo.check import check_subtree


@pytest.mark.parametrize("name", [s.name for s in list_profiles()])
def test_standard_objects_of_every_profile_conform_to_their_ddf(name):
    dev = VirtualDevice(find_profile(name), 0, server="http://127.0.0.1:1")
    checked = 0
    for uri in ("./DevInfo", "./DevDetail", "./DM2/DevInfo", "./DM2/SessionInfo"):
        if dev.tree.exists(uri):
            assert check_subtree(dev.tree, uri) == [], uri
            checked += 1
    for b in dev.profile.behaviours:  # the managed objects it declares (FUMO, LAWMO, SCOMO), as built
        if b.mo:
            assert check_subtree(dev.tree, b.node) == [], b.node
    for acc in dev.accounts("dm2"):
        assert check_subtree(dev.tree, acc.path) == [], acc.path
    assert checked >= 1


def test_departures_from_the_ddf_are_reported():
    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:1")
    tree = dev.tree
    tree.delete("./DevInfo/Man")  # required leaf gone
    tree.set_node("./DevInfo/Surprise", "x")  # unknown node
    tree.set_node("./DevInfo/DmV", format="node")  # a leaf turned interior
    kinds = {(v.path, v.kind) for v in check_subtree(tree, "./DevInfo")}
    assert (("Man",), "missing") in kinds
    assert (("Surprise",), "unknown") in kinds
    assert (("DmV",), "format") in kinds
