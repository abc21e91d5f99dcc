"""A virtual device: identity + management tree + authorities + bearers + environments.

The device owns no protocol: engines read and change it through its tree (with ACLs for the acting
server) and report through its event bus. Its tree is a fork of its profile's template, so a device
costs only what makes it different.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from emulator.events import DeviceStateChanged, EventBus, TreeChanged
from emulator.identity import Identity
from emulator.mo.accounts import Account, read_accounts
from emulator.mo.build import device_tree, write_bearer
from emulator.profile import BearerSpec, Profile
from emulator.transport.http import NO_SHAPING, Shaping
from emulator.tree import Tree

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
        s = self.spec
        return Shaping(latency_ms=s.latency_ms, jitter_ms=s.jitter_ms, loss=s.loss)


class VirtualDevice:
    def __init__(self, profile: Profile, index: int = 0, *, server: str, bus: EventBus | None = None,
                 tree: Tree | None = None) -> None:
        identity, built = device_tree(profile, index, server=server)
        self.profile = profile
        self.index = index
        self.identity: Identity = identity
        self.id = identity.dev_id
        self.server = server
        self.tree = tree or built
        self.bus = bus or EventBus()
        self.state = "idle"
        self.detail = ""
        self.last_result = ""
        self.bearers: dict[str, Bearer] = {b.name: Bearer(b, b.up, b.nat) for b in profile.bearers}
        self.bearer: str = next((b.name for b in self.bearers.values() if b.up), "")
        self._unsubscribe = self.tree.subscribe(self._on_tree_change)

    def _on_tree_change(self, change) -> None:
        self.bus.publish(TreeChanged(self.id, change))

    def __repr__(self) -> str:
        return f"<VirtualDevice {self.id} ({self.profile.name}) {self.state}>"

    # ------------------------------------------------------------------ authorities

    def accounts(self, protocol: str | None = None) -> list[Account]:
        return [a for a in read_accounts(self.tree) if protocol is None or a.protocol == protocol]

    def account(self, server_id: str | None = None, protocol: str | None = None) -> Account:
        """The named account, or the highest-priority one of the protocol; clear error if none."""
        from emulator.errors import EmulatorError

        for acc in self.accounts(protocol):
            if server_id is None or acc.server_id == server_id:
                return acc
        what = f"server {server_id!r}" if server_id else f"a {protocol or 'DM'} server"
        raise EmulatorError(f"device {self.id} has no account for {what}", status=404)

    # ------------------------------------------------------------------ state and bearers

    def set_state(self, state: str, detail: str = "") -> None:
        if state not in STATES:
            raise ValueError(f"unknown device state {state!r}")
        self.state, self.detail = state, detail
        self.bus.publish(DeviceStateChanged(self.id, state, detail))

    @property
    def shaping(self) -> Shaping:
        bearer = self.bearers.get(self.bearer)
        return bearer.shaping if bearer else NO_SHAPING

    @property
    def behind_nat(self) -> bool:
        bearer = self.bearers.get(self.bearer)
        return bool(bearer and bearer.nat)

    def set_bearer(self, name: str, *, up: bool | None = None, nat: bool | None = None,
                   make_current: bool = True) -> None:
        """Change a bearer (switch to it, bring it up or down, toggle NAT); the tree follows."""
        if name not in self.bearers:
            from emulator.errors import EmulatorError

            raise EmulatorError(f"device {self.id} has no bearer {name!r} (has {', '.join(self.bearers)})")
        b = self.bearers[name]
        b = replace(b, up=b.up if up is None else up, nat=b.nat if nat is None else nat)
        self.bearers[name] = b
        spec = replace(b.spec, up=b.up, nat=b.nat)
        for base in ("./DevDetail/Bearer", "./DM2/DevInfo/Bearer"):
            if self.tree.exists(base):
                write_bearer(self.tree, f"{base}/{name}", spec)
        if make_current and b.up:
            self.bearer = name
        elif self.bearer == name and not b.up:
            self.bearer = next((x.name for x in self.bearers.values() if x.up), "")
