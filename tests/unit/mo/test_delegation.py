"""Delegation between management authorities (README "Management authorities and delegation: the
rules"): shared, full, sub-delegation limits, revocation, the ACL guard, priority conflicts, DM 2.0
instances; every rule tested with its refusal. Commands go through the real SyncML and DM 2.0
executors, on the tree a session of that server gets (``device.managed_tree``)."""

from __future__ import annotations

import pytest

from emulator.device.profile import load_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import EmulatorError
from emulator.events import AlertRaised, EventBus
from emulator.fleet.fleet import Fleet
from emulator.mo.authorities import ConflictError
from emulator.mo.delegation import ALERT_REFUSED, DelegationError, DelegationRequest, parse_request
from emulator.mo.instances import find_instances
from emulator.protocol.dm2.executor import Actor, execute, read, status_of, store
from emulator.protocol.dm2.moser import MOSerialization
from emulator.protocol.syncml.commands import Exec, Get, Item, Meta, Replace
from emulator.protocol.syncml.executor import Executor
from emulator.store import Workspace

SERVER = "http://127.0.0.1:9"
APP_MOID = "urn:oma:mo:ext-test-app:1.0"
DMACC2 = "urn:oma:mo:oma-dm-dmacc:1.2"
ALL = "Add={ids}&Delete={ids}&Exec={ids}&Get={ids}&Replace={ids}"

PROFILE = """
name = "four-authorities"
title = "A device with four DM 1.x and three DM 2.0 authorities"
protocols = ["dm12", "dm2"]
[devinfo]
Man = "Acme"
Mod = "A1"
[[bearers]]
name = "eth0"
type = "Ethernet"
""" + "".join(f"""
[[accounts]]
server_id = "{sid}"
protocol = "dm12"
auth = "none"
priority = {prio}
""" for sid, prio in (("opA", 30), ("opB", 20), ("opC", 10), ("opD", 20))) + "".join(f"""
[[accounts]]
server_id = "{sid}"
protocol = "dm2"
auth = "none"
perms = [{perms}]
""" for sid, perms in (("dmX", f'"{DMACC2}", "{APP_MOID}"'), ("dmY", f'"{DMACC2}", "{APP_MOID}"'),
                       ("dmZ", f'"{DMACC2}"')))


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "four-authorities.toml"
    path.write_text(PROFILE)
    return load_profile(path)


@pytest.fixture
def dev(profile):
    """./Vendor/App belongs to opA (all rights); ./Vendor is opC's (Replace: it could rewrite child ACLs)."""
    d = VirtualDevice(profile, 0, server=SERVER, bus=EventBus())
    d.tree.set_node("./Vendor", format="node", acl="Get=opC&Replace=opC")
    d.tree.set_node("./Vendor/App", format="node", acl=ALL.format(ids="opA"))
    d.tree.set_node("./Vendor/App/Setting", "one")
    d.tree.set_node("./Vendor/App/Deep/Leaf", "deep")
    return d


def alerts(d: VirtualDevice) -> list[AlertRaised]:
    seen: list[AlertRaised] = []
    d.bus.subscribe(seen.append, AlertRaised)
    return seen


def run(d: VirtualDevice, server: str, *commands, session: str | None = None) -> list[int]:
    """Statuses of SyncML commands run by ``server`` in one session (holds released after)."""
    account = d.account(server)
    sid = session or f"s-{server}"
    ex = Executor(d.managed_tree(account, sid), server)
    gen = ex.run(list(commands), "1", final=True)
    try:
        next(gen)
    except StopIteration as stop:
        out = [s.code for s in stop.value if hasattr(s, "code")]
    else:
        raise AssertionError("the executor asked for user interaction")
    if session is None:
        d.conflicts.release(sid)
    return out


def get(uri: str) -> Get:
    return Get(cmd_id="1", items=[Item(target=uri)])


def put(uri: str, value: str) -> Replace:
    return Replace(cmd_id="1", meta=Meta(format="chr"), items=[Item(target=uri, data=value)])


def delegate(server: str, data: str) -> Exec:
    return Exec(cmd_id="1", items=[Item(target=f"./DMAcc/{server}/Ext/Delegate", data=data)])


def revoke(server: str, data: str) -> Exec:
    return Exec(cmd_id="1", items=[Item(target=f"./DMAcc/{server}/Ext/Revoke", data=data)])


LEAF = "./Vendor/App/Setting"


# --- shared and full ------------------------------------------------------------------------------


def test_shared_delegation_gives_the_delegate_the_delegators_rights_and_keeps_them(dev):
    assert run(dev, "opB", get(LEAF)) == [425]
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App")) == [200]
    assert run(dev, "opB", get(LEAF), put(LEAF, "two")) == [200, 200]
    assert run(dev, "opA", get(LEAF)) == [200]
    assert run(dev, "opC", get(LEAF)) == [425]  # a third authority gains nothing
    assert dev.tree.value(LEAF) == "two"
    (record,) = dev.delegations.active()
    assert (record.delegator, record.delegate, record.kind, record.depth) == ("opA", "opB", "shared", 0)


def test_full_delegation_hides_the_scope_from_the_delegator_and_everyone_else(dev):
    dev.tree.replace_prop("./Vendor/App/Deep", "ACL", "Get=opA+opC")  # opC could read one branch
    assert run(dev, "opC", get("./Vendor/App/Deep/Leaf")) == [200]
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App&kind=full")) == [200]
    assert run(dev, "opA", get(LEAF), get("./Vendor/App/Deep/Leaf")) == [425, 425]
    assert run(dev, "opC", get("./Vendor/App/Deep/Leaf")) == [425]  # DM-HLF-025: nobody else either
    assert run(dev, "opB", get(LEAF), get("./Vendor/App/Deep/Leaf")) == [200, 200]
    # the delegate holds exactly what the delegator held: Get only on Deep
    assert dev.tree.info("./Vendor/App/Deep").acl == "Get=opB"
    assert dev.tree.info("./Vendor/App").acl == ALL.format(ids="opB")


def test_delegation_of_an_inherited_acl_does_not_leak_to_the_ancestors(dev):
    dev.tree.set_node("./Shared", format="node", acl=ALL.format(ids="opA+opC"))
    dev.tree.set_node("./Shared/Sub/Leaf", "x")  # Sub and Leaf inherit from ./Shared
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Shared/Sub&kind=full")) == [200]
    assert run(dev, "opB", get("./Shared/Sub/Leaf")) == [200]
    assert run(dev, "opC", get("./Shared/Sub/Leaf")) == [425]
    assert dev.tree.info("./Shared").acl == ALL.format(ids="opA+opC")  # the parent is untouched
    assert run(dev, "opC", Get(cmd_id="1", items=[Item(target="./Shared")])) == [200]


# --- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("server", "data", "status", "why"), [
    ("opC", "delegate=opB&scope=./Vendor/App", 425, "does not control"),  # no Replace on the scope
    ("opA", "delegate=opZ&scope=./Vendor/App", 404, "no management authority"),
    ("opA", "delegate=opA&scope=./Vendor/App", 400, "itself"),
    ("opA", "delegate=opB", 400, "no scope"),
    ("opA", "delegate=opB&scope=./Vendor/App&kind=partial", 400, "kind"),
    ("opA", "delegate=opB&scope=./Vendor/App&depth=-1", 400, "depth"),
    ("opA", "delegate=opB&scope=./Vendor/Nothing", 404, "no node"),
    ("opA", "delegate=opB&scope=./DMAcc/opA", 403, "credentials"),
])
def test_refused_delegations_answer_their_status_and_raise_an_alert(dev, server, data, status, why):
    seen = alerts(dev)
    before = dev.tree.info("./Vendor/App").acl
    assert run(dev, server, delegate(server, data)) == [status]
    assert dev.tree.info("./Vendor/App").acl == before
    assert not dev.delegations.active()
    refused = [a for a in seen if a.alert_type == ALERT_REFUSED]
    assert len(refused) == 1 and why in refused[0].detail and refused[0].data["status"] == status
    assert why in dev.delegations.refusals[-1]


def test_a_server_cannot_delegate_in_another_servers_name(dev):
    # the Delegate node of opA's account is executable by opA only (its ACL)
    assert run(dev, "opB", delegate("opA", "delegate=opB&scope=./Vendor/App")) == [425]
    assert not dev.delegations.active()


def test_the_same_delegation_twice_is_refused(dev):
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App")) == [200]
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App")) == [418]


def test_request_parsing_takes_repeated_prohibited_and_rejects_repeated_fields():
    req = parse_request(b"delegate=b&scope=./X&kind=full&depth=2&prohibited=c&prohibited=d")
    assert req == DelegationRequest("b", "./X", "full", 2, frozenset({"c", "d"}))
    with pytest.raises(DelegationError) as e:
        parse_request("delegate=b&delegate=c&scope=./X")
    assert e.value.status == 400


# --- sub-delegation (DM-HLF-024, 026) ----------------------------------------------------------------


def test_sub_delegation_needs_depth(dev):
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App&kind=full")) == [200]
    assert run(dev, "opB", delegate("opB", "delegate=opD&scope=./Vendor/App")) == [425]
    assert "no further sub-delegation" in dev.delegations.refusals[-1]
    assert run(dev, "opD", get(LEAF)) == [425]


def test_sub_delegation_within_depth_and_never_to_a_prohibited_authority(dev):
    data = "delegate=opB&scope=./Vendor/App&kind=full&depth=1&prohibited=opC"
    assert run(dev, "opA", delegate("opA", data)) == [200]
    assert run(dev, "opB", delegate("opB", "delegate=opC&scope=./Vendor/App")) == [425]
    assert "prohibited" in dev.delegations.refusals[-1]
    # a narrower scope inside the delegated one, asking for more depth than is left: capped to 0
    assert run(dev, "opB", delegate("opB", "delegate=opD&scope=./Vendor/App/Deep&depth=5")) == [200]
    sub = dev.delegations.active()[-1]
    assert (sub.depth, sub.prohibited, sub.parent) == (0, frozenset({"opC"}), 1)
    assert run(dev, "opD", get("./Vendor/App/Deep/Leaf"), get(LEAF)) == [200, 425]
    # one level was allowed, and it is used up
    assert run(dev, "opD", delegate("opD", "delegate=opA&scope=./Vendor/App/Deep")) == [425]


def test_a_delegate_cannot_grant_by_acl_what_delegate_would_refuse(dev):
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App&kind=full")) == [200]
    acl_of_app = "./Vendor/App?prop=ACL"
    assert run(dev, "opB", put(acl_of_app, ALL.format(ids="opB+opD"))) == [425]
    assert "use Ext/Delegate" in dev.delegations.refusals[-1]
    assert run(dev, "opB", put(acl_of_app, "Get=opB&Replace=opB")) == [200]  # narrowing its own is fine


def test_a_fully_delegated_scope_cannot_be_taken_over_through_the_parent(dev):
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App&kind=full")) == [200]
    takeover = put("./Vendor/App?prop=ACL", ALL.format(ids="opC"))
    # plain DM 1.x would let opC (Replace on ./Vendor) rewrite the child's ACL ...
    assert dev.tree.replace_prop("./Vendor/App", "ACL", "Get=opB", by="opC") == 200
    dev.tree.replace_prop("./Vendor/App", "ACL", ALL.format(ids="opB"))
    # ... the device refuses it inside a fully delegated scope
    assert run(dev, "opC", takeover) == [425]
    assert "fully delegated" in dev.delegations.refusals[-1]
    assert dev.tree.info("./Vendor/App").acl == ALL.format(ids="opB")


# --- revocation ---------------------------------------------------------------------------------------


def test_revoking_a_full_delegation_puts_the_acls_back(dev):
    before = {p: dev.tree.info(p).acl for p in ("./Vendor/App", "./Vendor/App/Deep")}
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App&kind=full")) == [200]
    add_new = Replace(cmd_id="1", meta=Meta(format="chr"), items=[Item(target=LEAF, data="by B")])
    assert run(dev, "opB", add_new) == [200]
    assert run(dev, "opC", revoke("opC", "id=1")) == [425]  # not its delegation
    assert run(dev, "opA", revoke("opA", "delegate=opB&scope=./Vendor/App")) == [200]
    assert {p: dev.tree.info(p).acl for p in before} == before
    assert run(dev, "opA", get(LEAF)) == [200] and run(dev, "opB", get(LEAF)) == [425]
    assert dev.tree.value(LEAF) == "by B"  # the delegate's work stays, its access goes
    assert run(dev, "opA", revoke("opA", "id=1")) == [404]


def test_revocation_cascades_to_sub_delegations(dev):
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App&kind=full&depth=1")) == [200]
    assert run(dev, "opB", delegate("opB", "delegate=opD&scope=./Vendor/App")) == [200]
    assert run(dev, "opD", get(LEAF)) == [200]
    revoked = dev.delegations.revoke("opA", 1)
    assert [r.id for r in revoked] == [2, 1]
    assert run(dev, "opD", get(LEAF)) == [425] and run(dev, "opB", get(LEAF)) == [425]
    assert run(dev, "opA", get(LEAF)) == [200]
    assert dev.tree.info("./Vendor/App").acl == ALL.format(ids="opA")


def test_revoking_one_shared_delegation_keeps_the_others(dev):
    dev.tree.replace_prop("./Vendor/App", "ACL", ALL.format(ids="opA").replace("Get=opA", "Get=opA+opD"))
    assert run(dev, "opA", delegate("opA", "delegate=opB&scope=./Vendor/App")) == [200]
    assert run(dev, "opA", delegate("opA", "delegate=opD&scope=./Vendor/App")) == [200]
    dev.delegations.revoke(None, 1)  # the user revokes from the window
    assert run(dev, "opB", get(LEAF)) == [425]
    assert run(dev, "opD", get(LEAF), put(LEAF, "d")) == [200, 200]  # kept: its own Get and #2's rights


def test_records_survive_a_workspace_restart_and_still_limit(profile, tmp_path):
    with Workspace.open(tmp_path / "ws") as ws:
        fleet = Fleet(server=SERVER, workspace=ws)
        (d,) = fleet.add(profile, 1)
        d.tree.set_node("./Vendor/App/Setting", "one", acl=None)
        d.tree.replace_prop("./Vendor/App", "ACL", ALL.format(ids="opA"))
        d.delegations.delegate("opA", DelegationRequest("opB", "./Vendor/App", "full", 0))
        fleet.save(d)
        again = fleet.reload(d.id, profile)
    (record,) = again.delegations.active()
    assert (record.delegator, record.delegate, record.kind) == ("opA", "opB", "full")
    assert run(again, "opB", get(LEAF)) == [200] and run(again, "opA", get(LEAF)) == [425]
    assert run(again, "opB", delegate("opB", "delegate=opD&scope=./Vendor/App")) == [425]


# --- priority (DM-HLF-014) -----------------------------------------------------------------------------


def test_the_higher_priority_wins_a_conflict_and_the_lower_gets_409(dev):
    dev.tree.replace_prop("./Vendor/App", "ACL", ALL.format(ids="opA+opB+opC"))
    seen = alerts(dev)
    assert run(dev, "opB", put(LEAF, "B"), session="b") == [200]  # opB (20) holds ./Vendor/App
    assert run(dev, "opC", put(LEAF, "C"), session="c") == [409]  # lower (10): refused
    assert run(dev, "opA", put(LEAF, "A"), session="a") == [200]  # higher (30): takes it over
    assert run(dev, "opB", put("./Vendor/App/Deep/Leaf", "B2"), session="b") == [409]
    assert dev.tree.value(LEAF) == "A"
    assert run(dev, "opB", get(LEAF), session="b") == [200]  # reading is never a conflict
    dev.conflicts.release("a")  # opA's session ended
    assert run(dev, "opB", put(LEAF, "B3"), session="b") == [200]
    kinds = [a.alert_type for a in seen]
    assert kinds.count("urn:dmemulator:priority:conflict") == 2
    assert kinds.count("urn:dmemulator:priority:preempted") == 1


def test_equal_priorities_first_holder_keeps_it_until_the_window_passes(dev):
    dev.tree.replace_prop("./Vendor/App", "ACL", ALL.format(ids="opB+opD"))
    now = [1000.0]
    dev.tree.clock = lambda: now[0]
    assert run(dev, "opB", put(LEAF, "B"), session="b") == [200]
    assert run(dev, "opD", put(LEAF, "D"), session="d") == [409]
    now[0] += dev.conflicts.window_s + 1  # opB's session went quiet: its hold lapsed
    assert run(dev, "opD", put(LEAF, "D"), session="d") == [200]
    with pytest.raises(ConflictError):
        dev.managed_tree(dev.account("opB"), "b").replace(LEAF, "B", by="opB")


# --- DM 2.0 instances --------------------------------------------------------------------------------


def _create(d: VirtualDevice, server: str) -> str:
    acc = d.account(server)
    (uri,) = store(d.tree, Actor(server, frozenset(acc.perms)), [MOSerialization(
        client_uri=f"{APP_MOID}//", mo_data={"App": {"Url": f"https://{server}.example/", "Level": 3}})], None)
    return uri


def _dm2(d: VirtualDevice, server: str, fn, *args) -> int:
    acc = d.account(server)
    tree = d.managed_tree(acc, f"s-{server}")
    try:
        result = fn(tree, *args, Actor(server, frozenset(acc.perms)))
    except EmulatorError as exc:
        return status_of(exc)
    finally:
        d.conflicts.release(f"s-{server}")
    return result[0] if isinstance(result, tuple) else 200


def test_dm2_authorities_manage_their_own_instances_of_one_mo(dev):
    x, y = _create(dev, "dmX"), _create(dev, "dmY")  # DM-HLF-011
    assert x != y and len(find_instances(dev.tree, APP_MOID)) == 2
    assert _dm2(dev, "dmX", read, f"{x}Url") == 200
    assert _dm2(dev, "dmX", read, f"{y}Url") == 404  # another authority's instance is as good as absent
    assert _dm2(dev, "dmZ", read, f"{x}Url") == 403  # not granted the MO at bootstrap (DM-HLF-009)


def test_dm2_exec_delegates_an_instance_shared_then_full(dev):
    x = _create(dev, "dmX")
    ask = f"{DMACC2}/dmX/Ext/Delegate?delegate=dmY&scope={x.rstrip('/')}"
    assert _dm2(dev, "dmY", read, f"{x}Url") == 404
    assert _dm2(dev, "dmX", execute, ask) == 200
    assert _dm2(dev, "dmY", read, f"{x}Url") == 200
    # revoked by EXEC too, naming the scope with its trailing "/" (the record keeps one spelling)
    assert _dm2(dev, "dmX", execute, f"{DMACC2}/dmX/Ext/Revoke?delegate=dmY&scope={x}") == 200
    assert _dm2(dev, "dmY", read, f"{x}Url") == 404 and not dev.delegations.active()
    assert _dm2(dev, "dmX", execute, ask + "&kind=full") == 200
    assert _dm2(dev, "dmX", read, f"{x}Url") == 404  # the delegator no longer sees the instance
    assert _dm2(dev, "dmY", read, f"{x}Url") == 200


def test_dm2_delegation_cannot_widen_a_bootstrap_grant(dev):
    x = _create(dev, "dmX")
    ask = f"{DMACC2}/dmX/Ext/Delegate?delegate=dmZ&scope={x.rstrip('/')}"
    assert _dm2(dev, "dmX", execute, ask) == 403
    assert "was not granted" in dev.delegations.refusals[-1]
    # and an instance the delegator cannot see cannot be delegated (404, nothing revealed)
    y = _create(dev, "dmY")
    assert _dm2(dev, "dmX", execute, f"{DMACC2}/dmX/Ext/Delegate?delegate=dmY&scope={y.rstrip('/')}") == 404
    # a policy refusal (425 in DM 1.x) answers 403 in DM 2.0 (PROTOCOL 1.19 item 9): depth exhausted
    assert _dm2(dev, "dmX", execute, f"{DMACC2}/dmX/Ext/Delegate?delegate=dmY&scope={x.rstrip('/')}&kind=full") == 200
    assert _dm2(dev, "dmY", execute, f"{DMACC2}/dmY/Ext/Delegate?delegate=dmX&scope={x.rstrip('/')}") == 403
    assert "no further sub-delegation" in dev.delegations.refusals[-1]
