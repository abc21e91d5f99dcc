"""DM 1.3 virtual (MOID-based) URIs in a DM 1.x executor (emulator/mo/virtual_uri.py): what a DM 1.3
device answers for each shape, the hostile edges (dots, empty segments, percent-encoding, the exact
DevDetail/URI limits and one over, nothing or several nodes named), each refusal leaving the tree as it
was; a DM 1.2 device answers the same URIs as it always did (404 / 400)."""

from __future__ import annotations

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.mo import virtual_uri
from emulator.protocol.syncml.commands import (
    Add,
    Command,
    Copy,
    Delete,
    Exec,
    Get,
    Item,
    Meta,
    Replace,
    Results,
    Status,
)
from emulator.protocol.syncml.executor import Executor
from emulator.tree import Tree
from emulator.tree.tnds import export_tnds
from emulator.tree.uri import UriLimits

ME = "demo-dm12"
FUMO = "urn:oma:mo:oma-fumo:1.0"
DMACC = "urn:oma:mo:oma-dm-dmacc:1.0"
CHR = Meta(format="chr", type="text/plain")


def _tree(*, second: bool = False) -> Tree:
    tree = VirtualDevice(find_profile("smartphone"), 0, server="http://s").tree
    if second:  # a second FUMO instance beside ./FwUpdate/fw
        tree.set_node("./FwUpdate/fw2", format="node", type=FUMO, acl="Get=*&Replace=*")
        tree.set_node("./FwUpdate/fw2/PkgName", "two")
        tree.set_node("./FwUpdate/fw2/State", "10")
    tree.set_node("./FwUpdate/fw/PkgName", "one")
    tree.set_node("./FwUpdate/fw/Ext/Notes", format="node", acl=f"Add={ME}&Get=*&Replace={ME}&Delete={ME}&Exec={ME}")
    return tree


def _run(tree: Tree, cmd: Command, version: str = "1.3") -> tuple[list[int], list[Item]]:
    gen = Executor(tree, ME, dm_version=version).run([cmd], "1", final=True)
    try:
        next(gen)
    except StopIteration as done:
        out = done.value
    else:  # pragma: no cover - no command here asks the user
        raise AssertionError("the executor asked for user interaction")
    codes = [c.code for c in out if isinstance(c, Status)]
    items = [i for c in out if isinstance(c, Results) for i in c.items]
    return codes, items


def _get(tree: Tree, uri: str, version: str = "1.3") -> tuple[list[int], list[Item]]:
    return _run(tree, Get(cmd_id="1", items=[Item(target=uri)]), version)


def _snapshot(tree: Tree) -> bytes:
    return export_tnds(tree, ".", by=None)


# ------------------------------------------------------------------------------------------ reading


def test_single_instance_form_reads_through_the_moid_and_answers_the_real_uri():
    codes, items = _get(_tree(), f"{DMACC}//{ME}/ServerID")
    assert codes == [200]
    assert [(i.source, i.data) for i in items] == [(f"./DMAcc/{ME}/ServerID", ME)]


def test_wildcard_reads_every_instance_and_miid_reads_one():
    tree = _tree(second=True)
    codes, items = _get(tree, f"{FUMO}/*/PkgName")
    assert codes == [200]
    assert [(i.source, i.data) for i in items] == [("./FwUpdate/fw/PkgName", "one"), ("./FwUpdate/fw2/PkgName", "two")]
    assert [i.data for i in _get(tree, f"{FUMO}/fw2/PkgName")[1]] == ["two"]


def test_xname_selects_the_instance_whose_leaf_has_the_value():
    codes, items = _get(_tree(second=True), f"{FUMO}/(x)/State?nv=(x)/PkgName:two")
    assert codes == [200] and [i.source for i in items] == ["./FwUpdate/fw2/State"]


def test_enhanced_structural_query_answers_the_structure_of_every_instance():
    tree = _tree(second=True)
    codes, items = _get(tree, f"{FUMO}/*?list=Struct")
    sources = [i.source for i in items]
    assert codes == [200]
    assert sources[0] == "./FwUpdate/fw" and "./FwUpdate/fw2" in sources and "./FwUpdate/fw2/PkgName" in sources
    assert all(i.data is None for i in items)  # structure only
    codes, items = _get(tree, f"{FUMO}/fw2?list=StructData")
    assert dict((i.source, i.data) for i in items)["./FwUpdate/fw2/PkgName"] == "two"
    codes, items = _get(tree, f"{FUMO}/*?list=TNDS+Value")
    assert codes == [200] and [i.source for i in items] == ["./FwUpdate/fw?list=TNDS+Value",
                                                           "./FwUpdate/fw2?list=TNDS+Value"]
    assert "<Value>two</Value>" in items[1].data and "<ACL>" not in items[1].data
    assert _get(tree, f"{FUMO}/fw/PkgName?prop=Format")[1][0].data == "chr"


@pytest.mark.parametrize(("uri", "status"), [
    (f"{FUMO}//State", 404),  # empty instance with two instances: unresolvable
    (f"{FUMO}/nope/State", 404),
    (f"{FUMO}/*/Nope", 404),
    (f"{FUMO}/(x)/State?nv=(x)/PkgName:three", 404),
    ("urn:oma:mo:ext-unknown:1.0//Node", 404),  # an MO the device has no instance of
    (f"{FUMO}/fw/../State", 400),
    (f"{FUMO}/fw/./State", 400),
    (f"{FUMO}/../fw/State", 400),
    (f"{FUMO}/fw/%2E%2E", 400),  # percent-encoded dots are dots
    (f"{FUMO}/%2e/State", 400),
    (f"{FUMO}/fw//State", 400),  # an empty segment inside the path
    (f"{FUMO}/fw/St%zzate", 400),  # a malformed escape
    (f"{FUMO}/fw/State#frag", 400),
    (f"{FUMO}/(xy)/State?nv=(xy)/PkgName:one", 400),
    (f"{FUMO}/(x)/State", 400),  # an x-name without nv
    (FUMO, 400),  # a bare MOID
    (f"{FUMO}/fw/State?foo=1", 406),  # unknown query field, as for a tree URI
    (f"{FUMO}/fw/State?prop=ACL&list=Struct", 406),
    (f"{FUMO}/fw?list=TNDS+Value-ACL", 406),
    (f"{FUMO}/fw?list=Bogus", 406),
    (f"{FUMO}/fw/State?cv=abc", 406),  # DM 2.0's cache validator means nothing in DM 1.x
])
def test_unresolvable_and_malformed_virtual_uris_get_their_status(uri, status):
    tree = _tree(second=True)
    assert _get(tree, uri) == ([status], [])


def test_one_trailing_slash_is_ignored_as_in_a_clienturi():
    assert [i.source for i in _get(_tree(), f"{FUMO}/fw/State/")[1]] == ["./FwUpdate/fw/State"]


def test_percent_encoded_names_are_decoded_once():
    tree = _tree()
    tree.set_node("./FwUpdate/fw/Ext/a b%", "odd")
    codes, items = _get(tree, f"{FUMO}/fw/Ext/a%20b%25")
    assert codes == [200] and items[0].data == "odd"


def test_what_the_server_may_not_read_is_refused_alone_and_left_out_of_a_pattern():
    tree = _tree(second=True)
    tree.replace_prop("./FwUpdate/fw2/PkgName", "ACL", "Get=someone-else")
    assert _get(tree, f"{FUMO}/fw2/PkgName") == ([425], [])
    codes, items = _get(tree, f"{FUMO}/*/PkgName")
    assert codes == [200] and [i.source for i in items] == ["./FwUpdate/fw/PkgName"]


def test_nv_never_matches_a_value_the_server_may_not_get():
    tree = _tree()
    secret = tree.value(f"./DMAcc/{ME}/AppAuth/CLCRED/AAuthSecret")
    uri = f"{DMACC}//(x)/ServerID?nv=(x)/AppAuth/CLCRED/AAuthSecret:{secret}"
    assert _get(tree, uri) == ([404], [])


# ------------------------------------------------------------------------------------------ limits


def _limited(tot: int = 0, seg: int = 0) -> Tree:
    tree = _tree()
    tree.limits = UriLimits(0, tot, seg)
    return tree


def test_max_tot_len_counts_the_virtual_uri_exactly():
    uri = f"{FUMO}/fw/PkgName"
    assert _get(_limited(tot=len(uri)), uri)[0] == [200]
    assert _get(_limited(tot=len(uri) - 1), uri) == ([414], [])
    # the query does not count, as for a tree URI
    assert _get(_limited(tot=len(uri)), uri + "?prop=Format")[0] == [200]


def test_max_seg_len_counts_each_decoded_segment_but_not_the_moid():
    uri = f"{FUMO}/fw/PkgName"  # the MOID (23) is no segment; the node it names, ./FwUpdate/fw/PkgName: 8 at most
    assert _get(_limited(seg=8), uri)[0] == [200]
    assert _get(_limited(seg=7), uri) == ([414], [])
    tree = _limited(seg=8)
    tree.set_node("./FwUpdate/fw/Ext/a b", "v")
    assert _get(tree, f"{FUMO}/fw/Ext/a%20b")[0] == [200]  # "a b" is 3 once decoded
    assert _get(tree, f"{FUMO}/fw/Ext/{'n' * 8}") == ([404], [])
    assert _get(tree, f"{FUMO}/fw/Ext/{'n' * 9}") == ([414], [])


def test_a_very_long_virtual_uri_is_refused_at_the_limit_and_changes_nothing():
    tree = _limited(tot=255, seg=64)
    before = _snapshot(tree)
    long_name = "n" * 65
    codes, _ = _run(tree, Add(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/fw/Ext/Notes/{long_name}", data="x")]))
    assert codes == [414] and _snapshot(tree) == before
    codes, _ = _run(tree, Add(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/fw/Ext/Notes/{'n' * 64}", data="x")]))
    assert codes == [200] and tree.value(f"./FwUpdate/fw/Ext/Notes/{'n' * 64}") == "x"
    huge = f"{FUMO}/fw/Ext/" + "/".join(["seg"] * 100)
    assert _get(tree, huge) == ([414], [])


# ------------------------------------------------------------------------------------------ writing


def test_replace_delete_add_and_exec_go_to_the_one_node_named():
    tree = _tree()
    assert _run(tree, Replace(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/fw/PkgName", data="new")]))[0] == [200]
    assert tree.value("./FwUpdate/fw/PkgName") == "new"
    assert _run(tree, Add(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}//Ext/Notes/Note", data="hi")]))[0] == [200]
    assert tree.value("./FwUpdate/fw/Ext/Notes/Note") == "hi"
    assert _run(tree, Delete(cmd_id="1", items=[Item(target=f"{FUMO}/fw/Ext/Notes/Note")]))[0] == [200]
    assert not tree.exists("./FwUpdate/fw/Ext/Notes/Note")
    ran: list[str] = []
    tree.set_node("./FwUpdate/fw/Ext/Go", "")
    tree.on_exec("./FwUpdate/fw/Ext/Go", lambda _tree, req: ran.append(req.path) or 200)
    assert _run(tree, Exec(cmd_id="1", items=[Item(target=f"{FUMO}/fw/Ext/Go")]))[0] == [200]
    assert ran == ["./FwUpdate/fw/Ext/Go"]
    tree.set_node("./FwUpdate/fw/Ext/From", "copied")
    copy = Copy(cmd_id="1", items=[Item(target=f"{FUMO}/fw/Ext/Notes/To", source=f"{FUMO}/fw/Ext/From")])
    assert _run(tree, copy)[0] == [200] and tree.value("./FwUpdate/fw/Ext/Notes/To") == "copied"


@pytest.mark.parametrize(("cmd", "status"), [
    (Replace(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/*/PkgName", data="x")]), 406),  # several nodes
    (Delete(cmd_id="1", items=[Item(target=f"{FUMO}/*/PkgName")]), 406),
    (Replace(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}//PkgName", data="x")]), 404),  # two instances
    (Add(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/*/New", data="x")]), 406),  # several parents
    (Add(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/fw/Ext/Notes/*", data="x")]), 400),  # a wildcard to create
    (Add(cmd_id="1", meta=Meta(format="node"), items=[Item(target=f"{FUMO}/fw3")]), 405),  # a new instance
    (Add(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/fw/Nope/New", data="x")]), 404),
    (Add(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/fw/PkgName", data="x")]), 418),
    (Add(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/fw/Ext/Notes/%2E%2E", data="x")]), 400),
    (Replace(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/fw/PkgName?list=Struct", data="x")]), 400),
])
def test_writes_need_exactly_one_node_and_leave_the_tree_as_it_was_otherwise(cmd, status):
    tree = _tree(second=True)
    before = _snapshot(tree)
    assert _run(tree, cmd)[0] == [status]
    assert _snapshot(tree) == before


def test_resolution_is_the_same_for_the_module_and_the_executor():
    tree = _tree(second=True)
    found = virtual_uri.resolve_virtual(tree, f"{FUMO}/*/State?list=Struct", by=ME)
    assert found.paths == (("FwUpdate", "fw", "State"), ("FwUpdate", "fw2", "State")) and found.query == "list=Struct"
    assert virtual_uri.instances(tree, FUMO) == {"fw": ("FwUpdate", "fw"), "fw2": ("FwUpdate", "fw2")}  # not ./DM2's


# ------------------------------------------------------------------------------------------ DM 1.2


@pytest.mark.parametrize(("uri", "status"), [
    (f"{DMACC}//{ME}/ServerID", 400),  # an empty segment in a tree URI
    (f"{FUMO}/fw/PkgName", 404),  # a relative tree URI naming no node
    (f"{FUMO}/*?list=Struct", 404),
])
def test_a_dm12_device_answers_virtual_uris_as_it_always_did(uri, status):
    assert _get(_tree(), uri, "1.2") == ([status], [])


def test_a_dm12_device_does_not_write_through_a_virtual_uri():
    tree = _tree()
    before = _snapshot(tree)
    codes, _ = _run(tree, Replace(cmd_id="1", meta=CHR, items=[Item(target=f"{FUMO}/fw/PkgName", data="x")]), "1.2")
    assert codes == [404] and _snapshot(tree) == before
