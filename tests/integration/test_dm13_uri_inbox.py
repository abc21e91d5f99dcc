"""DM 1.3 virtual URIs, the enhanced structural query and the placing Inbox, against the reference
server over real loopback HTTP (README "DM 1.3" feature table).

The server's scripted session (``ServerState.dm12_scripts``, one package per step) sends a DM 1.3
device commands addressed by MOID and MOs added to ./Inbox; the device answers each as
emulator/mo/virtual_uri.py and emulator/mo/inbox.py say, and a DM 1.2 device of the same server answers
the very same commands as it always did.
"""

from __future__ import annotations

import asyncio
from typing import Any

from emulator.fleet.fleet import Fleet
from emulator.protocol.syncml.commands import Add, Command, Get, Item, Meta, Replace
from emulator.server.app import start_server
from emulator.server.state import ServerState
from emulator.tree.tnds import TNDS_XML
from emulator.tree.uri import UriLimits

FUMO = "urn:oma:mo:oma-fumo:1.0"
DMACC = "urn:oma:mo:oma-dm-dmacc:1.0"
TNDS = Meta(format="xml", type=TNDS_XML)
CHR = Meta(format="chr", type="text/plain")
LONG = "urn:oma:mo:oma-dm-devdetail:1.0//Ext/DMFeatures/feature-discovery"
MODEM = (f"<MgmtTree xmlns='syncml:dmddf1.2'><VerDTD>1.2</VerDTD><Node><NodeName>modem</NodeName><RTProperties>"
         f"<Format><node/></Format><Type><DDFName>{FUMO}</DDFName></Type></RTProperties><Node><NodeName>PkgName"
         "</NodeName><RTProperties><Format><chr/></Format></RTProperties><Value>modem-fw</Value></Node></Node>"
         "</MgmtTree>")
ACCOUNT = (f"<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>DMAcc</NodeName><RTProperties><Format><node/></Format>"
           f"<Type><DDFName>{DMACC}</DDFName></Type></RTProperties><Node><NodeName>intruder</NodeName>"
           "<RTProperties><Format><node/></Format></RTProperties></Node></Node></MgmtTree>")


def _get(uri: str) -> Get:
    return Get(cmd_id="0", items=[Item(target=uri)])


def _add(target: str, data: str | None, meta: Meta = TNDS) -> Add:
    return Add(cmd_id="0", meta=meta, items=[Item(target=target, data=data)])


def _script(config: Any) -> list[tuple[str, Any]]:
    def virtual(s: Any) -> list[Command]:
        return [
            _get("urn:oma:mo:oma-dm-dmacc:1.0//(x)/ServerID?nv=(x)/ServerID:demo-dm12"),
            _get(f"{FUMO}/*?list=StructData"),  # the enhanced structural query
            _get(f"{FUMO}//?list=TNDS+Value+Type"),
            Replace(cmd_id="0", meta=CHR, items=[Item(target=f"{FUMO}/fw/PkgName", data="X6-BL-3.02.00")]),
            _get(f"{FUMO}/fw/%2E%2E/State"),
            _get("urn:oma:mo:ext-none:1.0//Node"),
            _get(LONG),  # exactly MaxTotLen
            _get(LONG + "/"),  # the same node, one character over
        ]

    def inbox(s: Any) -> list[Command]:
        return [
            _add("./Inbox", MODEM),
            _add("./Inbox", ACCOUNT),  # ./DMAcc's ACL gives this server no Add
            _add("./Inbox", "<MgmtTree><Node>"),
            _add("./Inbox/gadget", None, Meta(format="node", type="urn:oma:mo:ext-acme-gadget:1.0")),
        ]

    def after(s: Any) -> list[Command]:
        return [
            _get(f"{FUMO}/*/PkgName"),  # now two instances
            Replace(cmd_id="0", meta=CHR, items=[Item(target=f"{FUMO}/*/PkgName", data="x")]),
            _get(f"{FUMO}//State"),  # the empty instance names no one instance any more
        ]

    return [("virtual", virtual), ("inbox", inbox), ("after", after)]


async def _session(profile: str) -> tuple[Any, Any, Any, list[str]]:
    server = await start_server(ServerState())
    fleet = Fleet(server=server.url)
    try:
        (dev,) = fleet.add(profile, 1)
        dev.tree.limits = UriLimits(0, len(LONG), 0)
        before = dev.tree.children("./DMAcc")
        server.state.dm12_scripts[dev.id] = _script
        done = await fleet.run_session(dev.id, "dm12")
        (session,) = server.state.dm12_sessions[dev.id]
        return done, session, dev, before
    finally:
        await fleet.aclose()
        await server.stop()


def _codes(session: Any) -> list[tuple[str, str, int]]:
    return [(r.step, r.cmd, r.code) for r in session.script_statuses()]


def test_dm13_device_answers_virtual_uris_and_places_inbox_mos_over_http():
    done, session, dev, dmacc_before = asyncio.run(_session("smartphone-dm13"))
    assert done.outcome == "completed", done.detail
    assert session.ver_proto == "DM/1.3"
    assert _codes(session) == [
        ("virtual", "Get", 200), ("virtual", "Get", 200), ("virtual", "Get", 200), ("virtual", "Replace", 200),
        ("virtual", "Get", 400), ("virtual", "Get", 404), ("virtual", "Get", 200), ("virtual", "Get", 414),
        ("inbox", "Add", 200), ("inbox", "Add", 425), ("inbox", "Add", 400), ("inbox", "Add", 406),
        ("after", "Get", 200), ("after", "Replace", 406), ("after", "Get", 404),
    ]
    results = session.results
    # each node is answered under its real URI: the server learns where the device keeps the MO
    assert results["./DMAcc/demo-dm12/ServerID"] == "demo-dm12"
    assert results["./FwUpdate/fw/State"] == "10"  # from the StructData query
    assert "<DDFName>urn:oma:mo:oma-fumo:1.0</DDFName>" in results["./FwUpdate/fw?list=TNDS+Value+Type"]
    assert results["./DevDetail/Ext/DMFeatures/feature-discovery"] == "true"
    assert results["./FwUpdate/fw/PkgName"] == "X6-BL-3.02.00"  # the Replace went through the MOID
    assert results["./FwUpdate/modem/PkgName"] == "modem-fw"  # the Inbox put it beside fw
    tree = dev.tree
    assert tree.info("./FwUpdate/modem").type == FUMO
    assert tree.children("./Inbox") == [] and not tree.exists("./Inbox/gadget")
    assert dmacc_before == ["demo-dm12"] == tree.children("./DMAcc")  # the refused account left no trace


def test_dm12_device_of_the_same_server_answers_the_same_commands_as_before():
    done, session, dev, _ = asyncio.run(_session("smartphone"))
    assert done.outcome == "completed", done.detail
    assert session.ver_proto == "DM/1.2"
    assert _codes(session) == [
        ("virtual", "Get", 406), ("virtual", "Get", 404), ("virtual", "Get", 400), ("virtual", "Replace", 404),
        ("virtual", "Get", 404), ("virtual", "Get", 400), ("virtual", "Get", 400), ("virtual", "Get", 400),
        ("inbox", "Add", 200), ("inbox", "Add", 200), ("inbox", "Add", 400), ("inbox", "Add", 200),
        ("after", "Get", 404), ("after", "Replace", 404), ("after", "Get", 400),
    ]
    tree = dev.tree
    assert tree.exists("./Inbox/modem/PkgName") and not tree.exists("./FwUpdate/modem")  # kept in the Inbox
    assert tree.value("./FwUpdate/fw/PkgName") != "X6-BL-3.02.00"
