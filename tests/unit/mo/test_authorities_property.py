"""Property: whatever sequence of commands several servers send, no server ever reads or changes a
node outside what it was granted.

"Granted" is a model written here from the rules in the README ("Management authorities and
delegation: the rules"), independently of the device code: per scope, the ACL (who may do which
command), the delegations in force with their limits, and the leaves. Random sequences of Get,
Replace, Add, Delete, ACL Replace, Delegate and Revoke, sent by four DM 1.x servers through the real
SyncML executor on each session's tree, must get exactly the status the model predicts, and after
every command each server must be able to read exactly the leaves the model says it may.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.device.profile import load_profile
from emulator.device.virtual import VirtualDevice
from emulator.events import EventBus
from emulator.protocol.syncml.commands import Add, Delete, Exec, Get, Item, Meta, Replace
from emulator.protocol.syncml.executor import Executor
from emulator.tree import Acl, TreeError
from emulator.tree.acl import COMMANDS

SERVERS = ("opA", "opB", "opC", "opD")
SCOPES = ("A", "B", "C")
VENDOR = {"Get": {"opD"}, "Replace": {"opD"}}  # ./Vendor: opD could rewrite its children's ACLs
INITIAL = {
    "A": {c: {"opA"} for c in COMMANDS},
    "B": {**{c: {"opB"} for c in COMMANDS}, "Get": {"opB", "opC"}},
    "C": {"Get": {"*"}, "Replace": {"opC"}, "Add": {"opC"}, "Delete": {"opC"}},
}

PROFILE = """
name = "property-authorities"
title = "Four DM 1.x authorities"
protocols = ["dm12"]
[devinfo]
Man = "Acme"
Mod = "P"
""" + "".join(f"""
[[accounts]]
server_id = "{s}"
protocol = "dm12"
auth = "none"
""" for s in SERVERS)

Grants = dict[str, set[str]]


def text(grants: Grants) -> str:
    return Acl({c: frozenset(ids) for c, ids in grants.items()}).text


@dataclass
class Rec:
    id: int
    delegator: str
    delegate: str
    scope: str
    kind: str
    depth: int
    prohibited: frozenset[str]
    parent: int | None
    before: Grants


@dataclass
class Model:
    acl: dict[str, Grants] = field(default_factory=lambda: {k: {c: set(v) for c, v in g.items()}
                                                             for k, g in INITIAL.items()})
    leaves: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {"L1": "one", "L2": "two"}
                                                                      for k in SCOPES})
    records: dict[int, Rec] = field(default_factory=dict)
    next_id: int = 1

    def effective(self, scope: str) -> Grants:
        own = {c: ids for c, ids in self.acl[scope].items() if ids}
        return own or VENDOR

    def allows(self, scope: str, cmd: str, server: str) -> bool:
        ids = self.effective(scope).get(cmd, set())
        return "*" in ids or server in ids

    def descendants(self, rid: int) -> list[Rec]:
        out: list[Rec] = []
        for r in list(self.records.values()):
            if r.parent == rid:
                out += [*self.descendants(r.id), r]
        return out

    # one method per command, each returning the status the rules give

    def leaf_op(self, cmd: str, s: str, scope: str, leaf: str, value: str = "") -> int:
        exists = leaf in self.leaves[scope]
        if cmd == "Add":
            if exists:
                return 418
            if not self.allows(scope, "Add", s):
                return 425
            self.leaves[scope][leaf] = value
            return 200
        if not exists:
            return 404
        if not self.allows(scope, cmd, s):
            return 425
        if cmd == "Replace":
            self.leaves[scope][leaf] = value
        elif cmd == "Delete":
            del self.leaves[scope][leaf]
        return 200

    def set_acl(self, s: str, scope: str, new: Grants) -> int:
        for r in self.records.values():
            if r.kind == "full" and r.scope == scope and s not in {r.delegate} | {d.delegate for d in self.descendants(r.id)}:
                return 425
        if any(r.delegate == s and r.scope == scope for r in self.records.values()):
            known = {i for ids in self.effective(scope).values() for i in ids}
            if {i for ids in new.values() for i in ids} - known:
                return 425
        if not (self.allows(scope, "Replace", s) or s == "opD"):  # own Replace, or Replace on ./Vendor
            return 425
        self.acl[scope] = {c: set(ids) for c, ids in new.items()}
        return 200

    def delegate(self, s: str, scope: str, t: str, kind: str, depth: int, prohibited: frozenset[str]) -> int:
        if t == s:
            return 400
        if t not in SERVERS:
            return 404
        if not self.allows(scope, "Replace", s):
            return 425
        if any((r.delegator, r.delegate, r.scope) == (s, t, scope) for r in self.records.values()):
            return 418
        limits = [r for r in self.records.values() if r.delegate == s and r.scope == scope]
        parent = None
        if limits:
            left = min(r.depth for r in limits)
            inherited = frozenset().union(*(r.prohibited for r in limits))
            if left <= 0 or t in inherited:
                return 425
            depth, prohibited, parent = min(depth, left - 1), prohibited | inherited, max(r.id for r in limits)
        before = {c: set(ids) for c, ids in self.acl[scope].items()}
        current = self.effective(scope)
        if kind == "full":
            new = {c: {t} for c in COMMANDS if "*" in current.get(c, ()) or s in current.get(c, ())}
        else:
            new = {c: ids | {t} if s in ids else set(ids) for c, ids in current.items()}
        self.acl[scope] = new
        self.records[self.next_id] = Rec(self.next_id, s, t, scope, kind, depth, prohibited, parent, before)
        self.next_id += 1
        return 200

    def revoke(self, s: str, rid: int) -> int:
        rec = self.records.get(rid)
        if rec is None:
            return 404
        chain, r = set(), rec
        while r is not None:
            chain.add(r.delegator)
            r = self.records.get(r.parent) if r.parent is not None else None
        if s not in chain:
            return 425
        for r in [*self.descendants(rid), rec]:
            if r.kind == "full":
                self.acl[r.scope] = {c: set(ids) for c, ids in r.before.items()}
            else:
                now = self.acl[r.scope]
                new = {c: ids - ({r.delegate} - r.before.get(c, set())) for c, ids in now.items()}
                new = {c: ids for c, ids in new.items() if ids}
                if not any(r.before.values()) and new == VENDOR:
                    new = {}
                self.acl[r.scope] = new
            del self.records[r.id]
        return 200


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "property-authorities.toml"
    path.write_text(PROFILE)
    return load_profile(path)


def device(profile) -> VirtualDevice:
    dev = VirtualDevice(profile, 0, server="http://127.0.0.1:9", bus=EventBus())
    dev.tree.set_node("./Vendor", format="node", acl=text(VENDOR))
    for scope, grants in INITIAL.items():
        dev.tree.set_node(f"./Vendor/{scope}", format="node", acl=text(grants))
        for leaf, value in (("L1", "one"), ("L2", "two")):
            dev.tree.set_node(f"./Vendor/{scope}/{leaf}", value)
    return dev


def send(dev: VirtualDevice, server: str, command) -> tuple[int, str | None]:
    """One command in one session of ``server``: its status (and the value a Get returned)."""
    ex = Executor(dev.managed_tree(dev.account(server), f"s-{server}"), server)
    gen = ex.run([command], "1", final=True)
    try:
        next(gen)
    except StopIteration as stop:
        replies = stop.value
    dev.conflicts.release(f"s-{server}")
    status = next(r.code for r in replies if hasattr(r, "code"))
    data = next((r.items[0].data for r in replies if type(r).__name__ == "Results"), None)
    return status, data


OWNERS = {"A": "opA", "B": "opB", "C": "opC"}
acls = st.dictionaries(st.sampled_from(COMMANDS), st.sets(st.sampled_from((*SERVERS, "*")), min_size=1, max_size=2),
                       min_size=1, max_size=3)
leaf_ops = st.tuples(st.sampled_from(("Get", "Get", "Replace", "Add", "Delete")), st.sampled_from(SERVERS),
                     st.sampled_from(SCOPES), st.sampled_from(("L1", "L1", "L2", "L3")), st.sampled_from(("x", "y")))
acl_ops = st.tuples(st.just("ACL"), st.sampled_from(SERVERS), st.sampled_from(SCOPES), acls)
delegations = st.sampled_from(SCOPES).flatmap(lambda scope: st.tuples(
    st.just("Delegate"), st.sampled_from((OWNERS[scope], *SERVERS)), st.just(scope),
    st.sampled_from((*SERVERS, *SERVERS, "opZ")), st.sampled_from(("shared", "full")), st.integers(0, 2),
    st.frozensets(st.sampled_from(SERVERS), max_size=2)))
revocations = st.tuples(st.just("Revoke"), st.sampled_from(SERVERS), st.integers(1, 4))
ops = st.one_of(leaf_ops, leaf_ops, leaf_ops, acl_ops, delegations, delegations, delegations, revocations)


def command(op: tuple) -> tuple[str, object]:
    kind, server = op[0], op[1]
    if kind in ("Get", "Replace", "Add", "Delete"):
        uri = f"./Vendor/{op[2]}/{op[3]}"
        item = Item(target=uri, data=None if kind in ("Get", "Delete") else op[4])
        cls = {"Get": Get, "Replace": Replace, "Add": Add, "Delete": Delete}[kind]
        meta = Meta(format="chr", type="text/plain") if kind in ("Replace", "Add") else None
        return server, cls(cmd_id="1", items=[item], **({"meta": meta} if meta else {}))
    if kind == "ACL":
        return server, Replace(cmd_id="1", items=[Item(target=f"./Vendor/{op[2]}?prop=ACL", data=text(op[3]))])
    if kind == "Delegate":
        _, _, scope, target, how, depth, prohibited = op
        data = f"delegate={target}&scope=./Vendor/{scope}&kind={how}&depth={depth}"
        data += "".join(f"&prohibited={p}" for p in sorted(prohibited))
        return server, Exec(cmd_id="1", items=[Item(target=f"./DMAcc/{server}/Ext/Delegate", data=data)])
    return server, Exec(cmd_id="1", items=[Item(target=f"./DMAcc/{server}/Ext/Revoke", data=f"id={op[2]}")])


def predict(model: Model, op: tuple) -> int:
    kind, server = op[0], op[1]
    if kind in ("Get", "Replace", "Add", "Delete"):
        return model.leaf_op(kind, server, op[2], op[3], op[4])
    if kind == "ACL":
        return model.set_acl(server, op[2], op[3])
    if kind == "Delegate":
        return model.delegate(server, op[2], op[3], op[4], op[5], op[6])
    return model.revoke(server, op[2])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ops, min_size=1, max_size=30))
def test_no_server_ever_acts_outside_its_grant(profile, sequence):
    dev = device(profile)
    model = Model()
    for step, op in enumerate(sequence):
        expected_value = model.leaves[op[2]].get(op[3]) if op[0] == "Get" else None
        expected = predict(model, op)
        status, data = send(dev, *command(op))
        assert status == expected, f"step {step}: {op} -> {status}, rules say {expected}"
        if op[0] == "Get" and status == 200:
            assert data == expected_value
        for server in SERVERS:  # nobody can read a leaf the rules do not give them, and everybody can read theirs
            for scope in SCOPES:
                for leaf, value in model.leaves[scope].items():
                    allowed = model.allows(scope, "Get", server)
                    try:
                        got = dev.tree.get(f"./Vendor/{scope}/{leaf}", by=server).value
                    except TreeError as exc:
                        assert exc.status == 425 and not allowed, (step, op, server, scope, leaf)
                    else:
                        assert allowed and got == value, (step, op, server, scope, leaf)
    assert {r.id for r in dev.delegations.active()} == set(model.records)
