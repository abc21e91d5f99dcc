"""DM 2.0 instance index over the tree: finding instances, visibility by ACL, ClientURI resolution
through tree views (the PROTOCOL 1.10 left/right examples), new-instance placement, cache
validators and DEFAULT bindings."""

from __future__ import annotations

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.mo import instances as inst
from emulator.tree import Tree
from emulator.tree.clienturi import MISSING, ResolveError, parse_client_uri, resolve

MOID = "urn:oma:mo:moid:1.0"
ME = "srv-a"
OTHER = "srv-b"


def _two_instances(tree: Tree | None = None) -> Tree:
    """The 1.10 figure: instances left and right with ID, Setting, Data/<n>/{Value,Date}."""
    tree = tree or Tree()
    tree.set_node("./DM2", format="node", acl=f"Get={ME}+{OTHER}&Add={ME}&Replace={ME}&Delete={ME}&Exec={ME}")
    for miid, ident, dates in (("left", "GPS", ("12.1", "12.2")), ("right", "WLAN", ("12.2", "12.3"))):
        base = f"./DM2/test/{miid}"
        tree.set_node(base, format="node", type=MOID)
        tree.set_node(f"{base}/ID", ident)
        tree.set_node(f"{base}/Setting", f"{miid}-setting")
        for n, date in enumerate(dates, 1):
            tree.set_node(f"{base}/Data/{n}/Value", f"{miid}-v{n}")
            tree.set_node(f"{base}/Data/{n}/Date", date)
    return tree


def test_find_instances_in_a_profile_tree_including_nested_ones():
    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://s")
    tree = dev.tree
    assert inst.find_instances(tree, "urn:oma:mo:oma-dm-devinfo:1.2") == {"DevInfo": ("DM2", "DevInfo")}
    assert inst.find_instances(tree, "urn:oma:mo:oma-dm-dmacc:1.2") == {"demo-dm2": ("DM2", "DMAcc", "demo-dm2")}
    assert inst.find_instances(tree, "com.dmemulator/1.0/Bearer") == {"Bearer": ("DM2", "DevInfo", "Bearer")}
    assert inst.find_instances(tree, "urn:oma:mo:nothing:1.0") == {}
    moids = {i.moid for i in inst.all_instances(tree)}
    assert {"urn:oma:mo:oma-dm-devinfo:1.2", "urn:oma:mo:oma-sessioninfomo:1.0",
            "com.dmemulator/1.0/Bearer"} <= moids
    assert "text/plain" not in moids  # interior nodes with a MIME type are not instances
    assert inst.find_instances(Tree(), MOID) == {}  # no ./DM2 at all


def test_visibility_follows_the_effective_acl_of_the_instance_root():
    tree = _two_instances()
    tree.replace_prop("./DM2/test/right", "ACL", f"Get={OTHER}&Replace={OTHER}")
    assert set(inst.visible_instances(tree, MOID, ME)) == {"left"}
    assert set(inst.visible_instances(tree, MOID, OTHER)) == {"left", "right"}  # Get via ./DM2
    assert set(inst.visible_instances(tree, MOID, "srv-c")) == set()
    assert set(inst.visible_instances(tree, MOID, None)) == {"left", "right"}  # the device itself
    assert inst.effective_acl(tree, ("DM2", "test", "right", "ID")).allows("Get", OTHER)
    assert not inst.effective_acl(tree, ("DM2", "test", "right", "ID")).allows("Get", ME)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{MOID}/left/", [("left", ())]),
        (f"{MOID}/(x)/Data/(y)/Value?nv=(x)/ID:GPS&nv=(y)/Date:12.2", [("left", ("Data", "2", "Value"))]),
        (f"{MOID}/*/Setting", [("left", ("Setting",)), ("right", ("Setting",))]),
        (f"{MOID}/*/Data/*/Value", [("left", ("Data", "1", "Value")), ("left", ("Data", "2", "Value")),
                                    ("right", ("Data", "1", "Value")), ("right", ("Data", "2", "Value"))]),
        (f"{MOID}/(x)/Setting?nv=(x)/ID:WLAN", [("right", ("Setting",))]),
    ],
)
def test_protocol_resolution_examples_on_tree_views(text, expected):
    tree = _two_instances()
    assert resolve(parse_client_uri(text), inst.instance_views(tree, MOID, ME)) == expected


@pytest.mark.parametrize("text", [f"{MOID}//", f"{MOID}/(x)/ID?nv=(x)/ID:none", f"{MOID}/left/Nope"])
def test_unresolvable_examples_are_404(text):
    tree = _two_instances()
    with pytest.raises(ResolveError) as e:
        resolve(parse_client_uri(text), inst.instance_views(tree, MOID, ME))
    assert e.value.status == 404


def test_view_hides_values_the_server_may_not_get_so_nv_cannot_probe_them():
    tree = _two_instances()
    tree.replace_prop("./DM2/test/left/ID", "ACL", f"Get={OTHER}")
    view = inst.TreeInstanceView(tree, ("DM2", "test", "left"), ME)
    assert view.value(("ID",)) is None  # exists, value hidden
    assert view.value(("Nope",)) is MISSING
    assert view.value(("Setting",)) == "left-setting"
    assert view.child_names(("Data",)) == ["1", "2"]
    assert view.child_names(("ID",)) is None
    with pytest.raises(ResolveError):
        resolve(parse_client_uri(f"{MOID}/(x)/Setting?nv=(x)/ID:GPS"), inst.instance_views(tree, MOID, ME))
    # the owner of the value may still select by it
    found = resolve(parse_client_uri(f"{MOID}/(x)/Setting?nv=(x)/ID:GPS"), inst.instance_views(tree, MOID, OTHER))
    assert found == [("left", ("Setting",))]


@pytest.mark.parametrize(
    ("moid", "name"),
    [
        ("urn:oma:mo:ext-acme-wlan:1.0", "ext-acme-wlan"),
        ("urn:oma:mo:oma-dm-devinfo:1.2", "oma-dm-devinfo"),
        ("org.example/1.0/Thing", "Thing"),
        ("urn:x", "x"),
    ],
)
def test_mo_names_for_containers(moid, name):
    assert inst.moid_name(moid) == name


def test_new_instance_path_takes_the_first_free_miid():
    tree = Tree()
    assert inst.new_instance_path(tree, MOID) == (("DM2", "moid", "i1"), "i1")
    tree.set_node("./DM2/moid/i1", format="node", type=MOID)
    tree.set_node("./DM2/moid/i3", format="node", type=MOID)
    assert inst.new_instance_path(tree, MOID) == (("DM2", "moid", "i2"), "i2")
    tree.set_node("./DM2/elsewhere/i2", format="node", type=MOID)  # MIIDs are unique per MOID
    assert inst.new_instance_path(tree, MOID) == (("DM2", "moid", "i4"), "i4")


def test_cache_validator_changes_exactly_when_the_instance_changes():
    tree = _two_instances()
    left = ("DM2", "test", "left")
    first = inst.instance_validator(tree, left)
    assert inst.instance_validator(tree, left) == first
    right_before = inst.instance_validator(tree, ("DM2", "test", "right"))
    tree.replace("./DM2/test/right/Setting", "changed")
    assert inst.instance_validator(tree, left) == first  # another instance changed
    assert inst.instance_validator(tree, ("DM2", "test", "right")) != right_before
    tree.replace("./DM2/test/left/Setting", "changed")
    second = inst.instance_validator(tree, left)
    assert second != first
    tree.add("./DM2/test/left/New", "x")
    assert inst.instance_validator(tree, left) != second
    tree.replace("./DM2/test/left/Setting", "left-setting")  # same value as at first: VerNo moved on
    assert inst.instance_validator(tree, left) != first


def test_instance_of_finds_the_innermost_instance():
    dev = VirtualDevice(find_profile("smartphone"), 0, server="http://s")
    found = inst.instance_of(dev.tree, ("DM2", "DevInfo", "Bearer", "lte0", "Type"))
    assert found is not None and found.moid == "com.dmemulator/1.0/Bearer" and found.miid == "Bearer"
    assert inst.instance_of(dev.tree, ("DM2", "DevInfo", "FwV")).miid == "DevInfo"
    assert inst.instance_of(dev.tree, ("DM2",)) is None


def test_defaults_bind_one_server_uri_per_moid():
    tree = Tree()
    assert inst.defaults(tree) == {}
    inst.set_default(tree, MOID, "https://a.example/one")
    inst.set_default(tree, "urn:oma:mo:two:1.0", "https://a.example/two")
    inst.set_default(tree, MOID, "https://a.example/new")
    assert inst.defaults(tree) == {MOID: "https://a.example/new", "urn:oma:mo:two:1.0": "https://a.example/two"}
    assert tree.children("./DM2/Defaults") == ["1", "2"]


def test_exclusive_acl_gives_every_right_to_the_creator_only():
    from emulator.tree import Acl

    acl = Acl.parse(inst.exclusive_acl(ME))
    assert all(acl.allows(right, ME) for right in inst.RIGHTS)
    assert not any(acl.allows(right, OTHER) for right in inst.RIGHTS)
