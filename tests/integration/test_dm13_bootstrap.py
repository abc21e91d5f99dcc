"""DM 1.3 client-initiated bootstrap over real HTTP: a factory-fresh device GETs its first account from
the reference server acting as bootstrap server, then is managed with it, in one run (README "DM 1.3")."""

from __future__ import annotations

import asyncio

from emulator.fleet.fleet import Fleet
from emulator.mo import bootstrap
from emulator.mo.accounts import find_account
from emulator.server.app import start_server
from emulator.server.state import ServerState


def _run(body):
    async def main():
        server = await start_server(ServerState())
        fleet = Fleet(server=server.url)
        try:
            (dev,) = fleet.add("smartphone-dm13-fresh", 1)
            return await body(server, fleet, dev)
        finally:
            await fleet.aclose()
            await server.stop()

    return asyncio.run(asyncio.wait_for(main(), 60))


def test_factory_fresh_device_is_bootstrapped_then_managed_in_one_run():
    async def body(server, fleet, dev):
        assert not dev.accounts("dm12") and bootstrap.pending(dev.tree) is not None
        first = await fleet.run_session(dev.id, "dm12")
        second = await fleet.run_session(dev.id, "dm12")
        return first, second, server.state, dev

    first, second, state, dev = _run(body)
    assert first.outcome == second.outcome == "completed", (first.detail, second.detail)
    assert state.bootstraps == [dev.id]  # once: the second session used the account it got
    account = find_account(dev.tree, "demo-dm12", "dm12")
    assert account is not None and account.auth == "sha256" and account.client_user == dev.id
    assert dev.tree.value("./BootConfig/1/State") == "done"
    s1, s2 = state.dm12_sessions[dev.id]
    assert s1.scheme == s2.scheme == "sha256" and s1.client_ok and s1.server_accepted
    assert s1.ver_proto == "DM/1.3"
    # initial access rights: the device's decision, its own account and the profile's acl_scope only
    tree = dev.tree
    assert tree.get_prop("./DMAcc/demo-dm12", "ACL") == "Delete=demo-dm12&Get=demo-dm12&Replace=demo-dm12"
    assert "demo-dm12" in tree.get_prop("./DevDetail", "ACL")
    assert "demo-dm12" not in tree.get_prop(".", "ACL")
    assert all(not i.acl for i in tree.walk("./DMAcc/demo-dm12") if i.path != "./DMAcc/demo-dm12")


def test_a_wrong_factory_secret_is_refused_and_nothing_is_kept():
    async def body(server, fleet, dev):
        dev.tree.set_node("./BootConfig/1/Secret", "not-the-factory-secret")
        before = [(i.path, i.value, i.acl) for i in dev.tree.walk(".")]
        done = await fleet.run_session(dev.id, "dm12")
        return done, before, [(i.path, i.value, i.acl) for i in dev.tree.walk(".")], server.state

    done, before, after, state = _run(body)
    assert done.outcome == "failed" and "HTTP 401" in done.detail
    assert before == after and state.bootstraps == [] and not state.dm12_sessions
