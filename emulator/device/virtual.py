"""A virtual device: identity + management tree + authorities + bearers + environments.

The device owns no protocol: engines read and change it through its tree (with ACLs for the acting
server) and report through its event bus. Its tree is a fork of its profile's template, so a device
costs only what makes it different.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace
from typing import Any

from emulator.device.apps import AppRegistry, Fetch
from emulator.device.build import device_tree, template_tree, write_bearer
from emulator.device.environments import Environment, install_identities, install_template
from emulator.device.identity import Identity
from emulator.device.profile import BearerSpec, Profile
from emulator.errors import EmulatorError
from emulator.events import AlertRaised, DeviceStateChanged, EventBus, TreeChanged
from emulator.mo import connmo, diagmon
from emulator.mo.accounts import (
    DM1_ROOT,
    DM2_ROOT,
    Account,
    decode_nonce,
    pick_account,
    read_accounts,
    with_field,
)
from emulator.mo.authorities import Conflicts, ManagedTree
from emulator.mo.behaviours import DeviceBehaviours
from emulator.mo.delegation import DELEGATE_LEAF, REVOKE_LEAF, Delegations, install_nodes
from emulator.transport.shaping import NO_SHAPING, Shaping
from emulator.tree import Tree
from emulator.tree.tree import TreeEvent

STATES = ("idle", "in session", "waiting for UI", "error")


@dataclass(frozen=True, slots=True)
class Bearer:
    """A bearer's live state; the spec is the profile's, ``up``/``nat`` may change while the device lives."""

    spec: BearerSpec
    up: bool
    nat: bool

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def shaping(self) -> Shaping:
        """NO_SHAPING itself for a bearer that does nothing to traffic: asked for every message, and the
        transport takes its quickest path for it."""
        s = self.spec
        if not (s.latency_ms or s.jitter_ms or s.loss or s.bandwidth_kbps):
            return NO_SHAPING
        return Shaping(latency_ms=s.latency_ms, jitter_ms=s.jitter_ms, loss=s.loss, bandwidth_kbps=s.bandwidth_kbps)


_prepared: weakref.WeakSet[Tree] = weakref.WeakSet()

_ACCOUNT_ROOTS = (DM1_ROOT, DM2_ROOT)
_NONCE_FIELDS = {"CLCRED": "client_nonce", "SRVCRED": "server_nonce", "NOTIFCRED": "notification_nonce"}
"""AppAuth level -> the Account field its ``AAuthData`` holds (DM 1.x; see mo.accounts._read_dm1)."""


_ACCOUNT_ANCESTORS = frozenset({""} | {r[:i] for r in _ACCOUNT_ROOTS for i, ch in enumerate(r) if ch == "/"})
"""``.``, ``./DM2``: deleting or renaming one of these takes accounts along."""


def _touches_accounts(path: str) -> bool:
    """A change at ``path`` may change what :func:`read_accounts` reads: it is inside an account
    root, or it is one of their ancestors (a delete or rename of ``./DM2`` takes the accounts along).
    Runs on every tree change, so it errs on the safe side cheaply (``./DMAccX`` counts too)."""
    return path.startswith(_ACCOUNT_ROOTS) or path in _ACCOUNT_ANCESTORS


def _with_nonce(accounts: list[Account], change: TreeEvent) -> list[Account] | None:
    """The accounts with the nonce ``change`` wrote patched in, when it is nothing but the value of
    one DM 1.x account's ``AppAuth/<level>/AAuthData``; None (read them again) for anything else."""
    if change.kind not in ("replace", "add") or change.prop is not None:
        return None
    base, _, leaf = change.path.rpartition("/AppAuth/")
    level, _, name = leaf.partition("/")
    field = _NONCE_FIELDS.get(level)
    if field is None or name != "AAuthData":
        return None
    for i, acc in enumerate(accounts):
        if acc.protocol == "dm12" and acc.path == base:
            patched = list(accounts)
            patched[i] = with_field(acc, field, decode_nonce(change.new))
            return patched
    return None


def _prepare(tree: Tree, profile: Profile) -> None:
    """What every device of a profile shares beyond build.py's layout: the accounts' delegation nodes
    and the environments' ACLs (see :mod:`emulator.mo.delegation`, :mod:`emulator.device.environments`)."""
    if tree in _prepared:
        return
    install_nodes(tree)
    install_template(tree, profile.environments)
    _prepared.add(tree)


class VirtualDevice:
    fetch: Fetch | None = None  # given by the device's fleet

    def __init__(self, profile: Profile, index: int = 0, *, server: str, bus: EventBus | None = None,
                 tree: Tree | None = None) -> None:
        _prepare(template_tree(profile), profile)
        identity, built = device_tree(profile, index, server=server)
        self.profile = profile
        self.index = index
        self.identity: Identity = identity
        self.id = identity.dev_id
        self.server = server
        self.tree = tree or built
        self._accounts: list[Account] | None = None  # see accounts(): kept until an account changes
        self.bus = bus or EventBus()
        self.state = "idle"
        self.detail = ""
        self.last_result = ""
        self.bearers: dict[str, Bearer] = {b.name: Bearer(b, b.up, b.nat) for b in profile.bearers}
        self.bearer: str = next((b.name for b in self.bearers.values() if b.up), "")
        self.bearer_generation = 0  # moves when the current bearer changes: connections in flight are lost
        self._delegations: Delegations | None = None
        self._conflicts: Conflicts | None = None
        self._apps: AppRegistry | None = None
        self._environments: dict[str, Environment] | None = None
        self.behaviours = DeviceBehaviours(profile.behaviours, seed=f"{profile.name}:{index}")
        self.behaviours.device = self  # what a managed object needs of its device (LAWMO's factory reset)
        self.preferred = self.bearer  # ConnMO PrefConRef: the bearer the next session should use
        self.connectivity: list[connmo.Change] = []  # server writes that take effect when the session ends
        self.partial_objects: dict[str, Any] = {}  # ServerID -> a DM 1.2 large object a cut session left
        self._unsubscribe = self.tree.subscribe(self._on_tree_change)
        self._attach_tree()

    def _on_tree_change(self, change: TreeEvent) -> None:
        if self._accounts is not None and _touches_accounts(change.path):
            self._accounts = _with_nonce(self._accounts, change)
        if self.behaviours.behaviours:
            self.behaviours.on_change(self.tree, change)
        if change.by is not None:
            found = connmo.server_change(change)
            if found is not None:
                self.connectivity.append(found)
            elif "/Trap/" in change.path and (diag := self.diagnostics) is not None:
                diag.note_server_write(self.tree, change.path, change.by)
        if self.bus.wants(TreeChanged):
            self.bus.publish(TreeChanged(self.id, change))

    def __repr__(self) -> str:
        return f"<VirtualDevice {self.id} ({self.profile.name}) {self.state}>"

    def _attach_tree(self) -> None:
        """Device behaviour that lives on its tree: delegation EXECs, environment identities."""
        tree = self.tree
        for root in (DM1_ROOT, DM2_ROOT):
            tree.on_exec("/".join((root, "*", *DELEGATE_LEAF)), lambda t, r: self.delegations.exec_delegate(t, r))
            tree.on_exec("/".join((root, "*", *REVOKE_LEAF)), lambda t, r: self.delegations.exec_revoke(t, r))
        self.behaviours.attach(tree)
        if any(e.own_identity for e in self.profile.environments):
            install_identities(tree, self.profile.environments, self.id)

    def use_tree(self, tree: Tree) -> None:
        """Swap in another tree (a workspace restore); listeners and behaviours follow it."""
        self._unsubscribe()
        self.tree = tree
        self._accounts = None
        self._unsubscribe = tree.subscribe(self._on_tree_change)
        _prepare(tree, self.profile)  # a tree stored by an older version may lack the nodes
        self._attach_tree()
        if self._apps is not None:
            self._apps.retarget()

    def factory_reset(self) -> None:
        """LAWMO FactoryReset: the profile's tree again. The accounts the profile provisions survive as
        they are now (a server that changed their credentials keeps them working); accounts, MO
        instances and data added since, local app registrations and delegations go."""
        _, fresh = device_tree(self.profile, self.index, server=self.server)
        old = self.tree
        for acc in self.profile.accounts:
            base = f"{DM1_ROOT if acc.protocol == 'dm12' else DM2_ROOT}/{acc.server_id}"
            if old.exists(base) and fresh.exists(base):
                fresh.delete(base)
                for info in old.walk(base):
                    fresh.set_node(info.path, info.value if info.children is None else None, format=info.format,
                                   type=info.type, acl=info.acl or None, permanent=info.permanent,
                                   access=info.access, title=info.title, tstamp=info.tstamp, verno=info.verno)
        self._delegations = None
        self._apps = None
        self.use_tree(fresh)

    # ------------------------------------------------------------------ authorities, apps, environments

    @property
    def delegations(self) -> Delegations:
        if self._delegations is None:
            self._delegations = Delegations(self)
        return self._delegations

    @property
    def conflicts(self) -> Conflicts:
        if self._conflicts is None:
            self._conflicts = Conflicts()
        return self._conflicts

    @property
    def apps(self) -> AppRegistry:
        if self._apps is None:
            self._apps = AppRegistry(self)
        return self._apps

    def managed_tree(self, account: Account, session_id: str) -> ManagedTree:
        """The tree for one session of ``account``: priority and delegation rules on top of the ACLs."""
        return ManagedTree(self.tree, server_id=account.server_id, priority=account.priority, session=session_id,
                           conflicts=self.conflicts, delegations=self.delegations, bus=self.bus, device_id=self.id,
                           on_read=self._before_read if self.diagnostics is not None else None)

    @property
    def environments(self) -> list[Environment]:
        if self._environments is None:
            self._environments = {e.name: Environment(self, e) for e in self.profile.environments}
        return list(self._environments.values())

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        known = ", ".join(e.name for e in self.environments) or "none"
        raise EmulatorError(f"device {self.id} has no environment {name!r} (has {known})", status=404)

    def session_target(self, account: Account) -> VirtualDevice | Environment:
        """Who a session with ``account`` runs as: the environment with its own identity that the
        account manages, else the device."""
        for env in self.environments if self.profile.environments else ():
            if env.own_identity and account.server_id in env.spec.accounts:
                return env
        return self

    def record_data(self) -> dict[str, Any]:
        """What the workspace keeps besides the tree (delegation records, app registrations)."""
        data: dict[str, Any] = {}
        if self._delegations is not None and self._delegations.records:
            data["delegations"] = self._delegations.to_data()
        if self._apps is not None and self._apps.apps:
            data["apps"] = self._apps.to_data()
        return data

    def restore_data(self, data: dict[str, Any]) -> None:
        if data.get("delegations"):
            self.delegations.load(data["delegations"])
        if data.get("apps"):
            self.apps.load(data["apps"])

    # ------------------------------------------------------------------ authorities

    def accounts(self, protocol: str | None = None) -> list[Account]:
        """The DMAcc accounts, read again only after a change under an account root.

        Every session needs them and reading them is a few dozen tree reads, while what changes
        between sessions is mostly elsewhere (DiagMon readings, a session's writes) or is the DM 1.2
        nonce a session keeps: that one is patched in (:func:`_with_nonce`); any other change under
        ``./DMAcc`` or ``./DM2/DMAcc`` drops the snapshot. Changes reach us as the tree's events, so
        inside a transaction (whose events wait for the commit, or vanish with a rollback) the tree
        is read directly (a snapshot taken before it still holds once it rolls back).
        """
        accounts = self._accounts
        if self.tree.in_transaction:
            accounts = read_accounts(self.tree)
        elif accounts is None:
            accounts = self._accounts = read_accounts(self.tree)
        return [a for a in accounts if protocol is None or a.protocol == protocol]

    def account(self, server_id: str | None = None, protocol: str | None = None) -> Account:
        """The named account, or the highest-priority one of the protocol; clear error if none."""
        return pick_account(self.accounts(protocol), server_id, protocol, f"device {self.id}")

    # ------------------------------------------------------------------ state and bearers

    def set_state(self, state: str, detail: str = "") -> None:
        if state not in STATES:
            raise ValueError(f"unknown device state {state!r}")
        self.state, self.detail = state, detail
        if self.bus.wants(DeviceStateChanged):
            self.bus.publish(DeviceStateChanged(self.id, state, detail))

    @property
    def shaping(self) -> Shaping:
        bearer = self.bearers.get(self.bearer)
        return bearer.shaping if bearer else NO_SHAPING

    @property
    def dm_version(self) -> str:
        """The DM 1.x version the device implements ("1.2" or "1.3", its profile's)."""
        return self.profile.dm_version

    @property
    def behind_nat(self) -> bool:
        bearer = self.bearers.get(self.bearer)
        return bool(bearer and bearer.nat)

    def set_bearer(self, name: str, *, up: bool | None = None, nat: bool | None = None,
                   make_current: bool = True) -> None:
        """Change a bearer (switch to it, bring it up or down, toggle NAT); the tree follows."""
        if name not in self.bearers:
            raise EmulatorError(f"device {self.id} has no bearer {name!r} (has {', '.join(self.bearers)})")
        b = self.bearers[name]
        before = (self.bearer, b.up, b.nat)
        b = replace(b, up=b.up if up is None else up, nat=b.nat if nat is None else nat)
        self.bearers[name] = b
        spec = replace(b.spec, up=b.up, nat=b.nat)
        for base in connmo.BEARER_BASES:
            if self.tree.exists(base):
                write_bearer(self.tree, f"{base}/{name}", spec)
        if make_current and b.up:
            self.bearer = name
        elif self.bearer == name and not b.up:
            self.bearer = self._fallback()
        if self.bearer != before[0] or (name == before[0] and (b.up, b.nat) != before[1:]):
            self.bearer_generation += 1
        self._write_connectivity()

    def _fallback(self) -> str:
        """The bearer to use when the current one goes: the preferred one if up, else the first up."""
        pref = self.bearers.get(self.preferred)
        if pref is not None and pref.up:
            return pref.name
        return next((x.name for x in self.bearers.values() if x.up), "")

    def _write_connectivity(self) -> None:
        for base in (connmo.DM1_BASE, connmo.DM2_BASE):
            if self.tree.exists(base):
                for b in self.bearers.values():
                    connmo.write_nap(self.tree, base, b.name, b.spec.type, b.up, b.spec.address)
                connmo.write_active(self.tree, base, self.bearer)

    def apply_connectivity(self) -> list[str]:
        """Carry out what servers wrote into the connectivity objects (ConnMO State/PrefConRef, a bearer
        MO's State) since the last call: called when the session that wrote them ends
        (:mod:`emulator.mo.connmo`). Returns what changed, in words (for the log and the traffic)."""
        changes, self.connectivity = self.connectivity, []
        said: list[str] = []
        before = self.bearer
        for change in changes:
            if change.bearer not in self.bearers:
                continue
            if change.kind == "preferred":
                self.preferred = change.bearer
                said.append(f"preferred bearer {change.bearer}")
            else:
                self.set_bearer(change.bearer, up=change.up, make_current=False)
                said.append(f"bearer {change.bearer} {'up' if change.up else 'down'}")
        if changes:  # the preferred bearer, when it is up, carries the next session
            pref = self.bearers.get(self.preferred)
            if pref is not None and pref.up and self.bearer != pref.name:
                self.set_bearer(pref.name)
        if said and self.bearer != before:
            said.append(f"now on {self.bearer or 'no bearer (offline)'}")
        if said and (diag := self.diagnostics) is not None:
            diag.log(self.tree, self.tree.clock(), "connectivity: " + ", ".join(said))
        return said

    @property
    def diagnostics(self) -> diagmon.Diagnostics | None:
        """The device's DiagMon side; None when its profile declares no DiagMon (it then has no
        DiagMon subtree and never samples)."""
        return diagmon.of(self.behaviours)

    def sample_diagnostics(self, now: float) -> list[diagmon.TrapFired]:
        """Measure now (battery, memory, radio signal per bearer), write the DiagMon values and
        return the traps that just fired; each is told on the bus and becomes an operation that sends
        its TrapNotification (the driver continues it). Nothing without a DiagMon."""
        diag = self.diagnostics
        if diag is None:
            return []
        radios = diagmon.radios_of([(b.name, b.spec.type, b.up) for b in self.bearers.values()])
        fired = diag.sample(self.tree, now, radios)
        for trap in fired:
            self.bus.publish(AlertRaised(self.id, "diagnostics trap", f"{trap.source}: {trap.text}",
                                         {"server": trap.server_id, "protocol": trap.protocol}))
            self.behaviours.start_operation(diag.trap_operation(trap))
        return fired

    def _before_read(self, uri: str | tuple[str, ...]) -> None:
        """A server reads ``uri``: when that reads DiagMon values older than ``SAMPLE_GAP_S``, the
        device measures first (what a real device does when asked, not around every session)."""
        diag = self.diagnostics
        if diag is not None and diag.covers(uri):
            now = self.tree.clock()
            if diag.due(now):
                self.sample_diagnostics(now)
