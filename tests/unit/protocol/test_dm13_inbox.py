"""The DM 1.3 Inbox (emulator/mo/inbox.py) through a DM 1.x executor: an MO added to ./Inbox is put
where the device keeps that MO (beside its FUMO instance, below ./DMAcc), as the server and under the
ACLs of that place; every refusal (malformed or WBXML TNDS, no MOID, an MO the device does not keep, an
ACL that forbids, a node that exists) leaves the tree exactly as it was. A DM 1.2 device keeps what it
is given under ./Inbox, as before."""

from __future__ import annotations

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.protocol.syncml.commands import Add, Atomic, Command, Copy, Get, Item, Meta, Replace, Status
from emulator.protocol.syncml.executor import Executor
from emulator.tree import Tree
from emulator.tree.tnds import TNDS_WBXML, TNDS_XML, export_tnds

ME = "demo-dm12"
FUMO = "urn:oma:mo:oma-fumo:1.0"
DMACC = "urn:oma:mo:oma-dm-dmacc:1.0"
TNDS = Meta(format="xml", type=TNDS_XML)


def _tree(*, accounts: bool = False) -> Tree:
    tree = VirtualDevice(find_profile("smartphone"), 0, server="http://s").tree
    if accounts:  # the device's owner lets this server add DM accounts
        tree.replace_prop("./DMAcc", "ACL", f"Get=*&Add={ME}")
    return tree


def _run(tree: Tree, *cmds: Command, version: str = "1.3") -> list[int]:
    gen = Executor(tree, ME, dm_version=version).run(list(cmds), "1", final=True)
    try:
        next(gen)
    except StopIteration as done:
        return [c.code for c in done.value if isinstance(c, Status)]
    raise AssertionError("the executor asked for user interaction")  # pragma: no cover


def _add(target: str, data: str | None, meta: Meta = TNDS) -> Add:
    return Add(cmd_id="1", meta=meta, items=[Item(target=target, data=data)])


def _fumo(name: str | None = "fw2", *, value: str = "pkg", extra: str = "") -> str:
    node_name = f"<NodeName>{name}</NodeName>" if name is not None else ""
    return (f"<MgmtTree xmlns='syncml:dmddf1.2'><VerDTD>1.2</VerDTD><Node>{node_name}{extra}"
            f"<RTProperties><Format><node/></Format><Type><DDFName>{FUMO}</DDFName></Type></RTProperties>"
            f"<Node><NodeName>PkgName</NodeName><RTProperties><Format><chr/></Format></RTProperties>"
            f"<Value>{value}</Value></Node></Node></MgmtTree>")


ACCOUNT = (f"<Node><NodeName>DMAcc</NodeName><RTProperties><Format><node/></Format><Type><DDFName>{DMACC}"
           "</DDFName></Type></RTProperties><Node><NodeName>acme</NodeName><RTProperties><Format><node/></Format>"
           "</RTProperties><Node><NodeName>ServerID</NodeName><RTProperties><Format><chr/></Format></RTProperties>"
           "<Value>acme</Value></Node></Node></Node>")


def _both() -> str:
    return _fumo().replace("</MgmtTree>", ACCOUNT + "</MgmtTree>")


def _snapshot(tree: Tree) -> bytes:
    return export_tnds(tree, ".", by=None)


def test_a_fumo_tnds_goes_beside_the_devices_fumo_instance_and_is_the_servers():
    tree = _tree()
    assert _run(tree, _add("./Inbox", _fumo())) == [200]
    assert tree.value("./FwUpdate/fw2/PkgName") == "pkg"
    info = tree.info("./FwUpdate/fw2")
    assert info.type == FUMO  # an MO instance: the server finds it by its MOID
    assert info.acl == f"Add={ME}&Delete={ME}&Exec={ME}&Get={ME}&Replace={ME}"
    assert tree.children("./Inbox") == []  # nothing stays in the Inbox


def test_a_tnds_without_nodename_is_named_by_the_device():
    tree = _tree()
    assert _run(tree, _add("./Inbox", _fumo(None)), _add("./Inbox", _fumo(None, value="b"))) == [200, 200]
    assert tree.value("./FwUpdate/i1/PkgName") == "pkg" and tree.value("./FwUpdate/i2/PkgName") == "b"


def test_a_dmacc_tnds_brings_accounts_below_dmacc_when_the_acl_lets_the_server_add():
    tree = _tree(accounts=True)
    doc = f"<MgmtTree><VerDTD>1.2</VerDTD>{ACCOUNT}</MgmtTree>"
    assert _run(tree, _add("./Inbox", doc)) == [200]
    assert tree.value("./DMAcc/acme/ServerID") == "acme"
    assert tree.info("./DMAcc/acme").acl == f"Add={ME}&Delete={ME}&Exec={ME}&Get={ME}&Replace={ME}"


def test_several_mos_in_one_tnds_are_placed_together():
    tree = _tree(accounts=True)
    assert _run(tree, _add("./Inbox", _both())) == [200]
    assert tree.exists("./FwUpdate/fw2") and tree.exists("./DMAcc/acme")


def test_meta_type_moid_adds_one_instance_or_entry_with_its_content():
    tree = _tree(accounts=True)
    content = ("<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>ServerID</NodeName><RTProperties><Format><chr/>"
               "</Format></RTProperties><Value>beta</Value></Node></MgmtTree>")
    assert _run(tree, _add("./Inbox/beta", content, Meta(format="node", type=DMACC))) == [200]
    assert tree.value("./DMAcc/beta/ServerID") == "beta"
    assert _run(tree, _add("./Inbox/fw9", None, Meta(format="node", type=FUMO))) == [200]
    assert tree.info("./FwUpdate/fw9").type == FUMO and tree.children("./FwUpdate/fw9") == []
    assert _run(tree, _add("./Inbox", None, Meta(format="node", type=FUMO))) == [200]
    assert tree.info("./FwUpdate/i1").type == FUMO


@pytest.mark.parametrize(("cmd", "status"), [
    (_add("./Inbox", "<MgmtTree><VerDTD>1.2</VerDTD><Node>"), 400),  # not XML
    (_add("./Inbox", ""), 400),
    (_add("./Inbox", "<MgmtTree><VerDTD>1.2</VerDTD></MgmtTree>"), 400),  # no node
    (_add("./Inbox", _fumo().replace(f"<Type><DDFName>{FUMO}</DDFName></Type>", "")), 400),  # no MOID
    (_add("./Inbox", _fumo(extra="<Path>DMAcc</Path>")), 400),  # the device places it, not the server
    (_add("./Inbox", _fumo("..")), 400),
    (_add("./Inbox", _fumo().replace("<Value>pkg</Value>", "<Value>pkg</Value><Node/>")), 400),  # a leaf with a child
    (_add("./Inbox", "<!DOCTYPE x [<!ENTITY a 'b'>]><MgmtTree/>"), 400),  # entities refused
    (_add("./Inbox", "<Other/>"), 415),
    (_add("./Inbox", _fumo(), Meta(format="b64", type=TNDS_WBXML)), 415),
    (_add("./Inbox/x", "hello", Meta(format="chr", type="text/plain")), 415),  # no MO
    (_add("./Inbox/x", None, Meta(format="node")), 415),
    (_add("./Inbox", _fumo().replace(FUMO, "urn:oma:mo:ext-unknown:1.0")), 406),  # an MO it does not keep
    (_add("./Inbox/x", None, Meta(format="node", type="urn:oma:mo:oma-fumo:9.9")), 406),
    (_add("./Inbox", _fumo("fw")), 418),  # ./FwUpdate/fw exists
    (_add("./Inbox", _both()), 425),  # the DMAcc ACL gives this server no Add: the FUMO is not placed either
    (_add("./Inbox/x", _fumo()), 404),  # a TNDS goes to ./Inbox itself
    (_add("./Inbox/a/b", None, Meta(format="node", type=FUMO)), 404),  # nothing stays in the Inbox
    (_add("./Inbox?list=Struct", _fumo()), 400),
    (Copy(cmd_id="1", items=[Item(target="./Inbox/x", source="./FwUpdate/fw")]), 405),
    (Get(cmd_id="1", items=[Item(target="./Inbox")]), 405),
    (Replace(cmd_id="1", meta=TNDS, items=[Item(target="./Inbox", data=_fumo())]), 405),
])
def test_what_the_inbox_cannot_place_is_refused_and_changes_nothing(cmd, status):
    tree = _tree()
    before = _snapshot(tree)
    assert _run(tree, cmd) == [status]
    assert _snapshot(tree) == before


def test_the_destination_acl_decides_not_the_inboxs():
    tree = _tree()
    tree.replace_prop("./FwUpdate", "ACL", "Get=*&Add=someone-else")
    before = _snapshot(tree)
    assert tree.info(".").acl.startswith("Add=*")  # anyone may Add to ./Inbox ...
    assert _run(tree, _add("./Inbox", _fumo())) == [425]  # ... but not beside the FUMO instance
    assert _snapshot(tree) == before


def test_an_atomic_that_fails_after_an_inbox_add_takes_it_back():
    tree = _tree()
    before = _snapshot(tree)
    atomic = Atomic(cmd_id="1", commands=[_add("./Inbox", _fumo()),
                                          Replace(cmd_id="2", meta=Meta(format="chr"),
                                                  items=[Item(target="./Nope", data="x")])])
    assert _run(tree, atomic) == [507, 216, 404]
    assert _snapshot(tree) == before


def test_a_dm12_device_keeps_what_it_is_given_under_the_inbox():
    tree = _tree()
    assert _run(tree, _add("./Inbox", _fumo()), version="1.2") == [200]
    assert tree.value("./Inbox/fw2/PkgName") == "pkg" and not tree.exists("./FwUpdate/fw2")
    assert _run(tree, _add("./Inbox", _fumo(None)), version="1.2") == [415]  # placement by Type: not in 1.2
