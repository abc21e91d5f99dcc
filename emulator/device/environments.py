"""Operating environments of a device (DM-HLF-006): a host OS and its guests or containers.

Each environment has its subtree ``./OpEnv/<name>`` (its ``Name``, ``Kind``, ``ClientID`` and what
its servers put there) and the accounts the profile lists for it. One that has its own identity
(``own_identity = true``) is managed as a DM client of its own: its sessions carry its ``ClientID``
as DevId / ``OMADM-DevID`` and its accounts' user names, while it shares the device's tree and
bearers. :class:`Environment` is that client as the engines and the fleet see it: it has what a
:class:`~emulator.device.virtual.VirtualDevice` offers a session (``id``, ``tree``, ``profile``, ``accounts``,
``account``, ``shaping``...).

Rules the device applies (also in the README): an environment's subtree gets an ACL giving its own
accounts every right, and accepts new nodes (so a host server cannot reach into a guest it does not
manage, and the guest's server keeps its settings in its subtree); a session with an account that belongs to an environment with its own
identity runs as that environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from emulator.device.profile import EnvSpec, Profile
from emulator.events import EventBus
from emulator.mo.accounts import DM1_ROOT, DM2_ROOT, Account, pick_account
from emulator.transport.shaping import Shaping
from emulator.tree import Tree

if TYPE_CHECKING:
    from emulator.mo.authorities import ManagedTree

OPENV_ROOT = "./OpEnv"
RIGHTS = ("Add", "Delete", "Exec", "Get", "Replace")


def subtree_of(name: str) -> str:
    return f"{OPENV_ROOT}/{name}"


def install_template(tree: Tree, environments: tuple[EnvSpec, ...]) -> None:
    """Give each environment's subtree to its accounts, who may add their settings there (the DDF
    makes it Get-only); idempotent, a template-level change."""
    for env in environments:
        uri = subtree_of(env.name)
        if not env.accounts or not tree.exists(uri) or tree.info(uri).acl:
            continue
        info = tree.info(uri)
        ids = "+".join(env.accounts)
        tree.set_node(uri, format="node", type=info.type, permanent=info.permanent, access=info.access | {"Add"},
                      acl="&".join(f"{r}={ids}" for r in RIGHTS))


def install_identities(tree: Tree, environments: tuple[EnvSpec, ...], host_id: str) -> None:
    """Accounts of an environment with its own identity log in as that environment (per device).

    Only user names the profile left at the default (the device's own id) change: a profile that
    gives an explicit user keeps it.
    """
    for env in environments:
        if not env.own_identity:
            continue
        client_id = tree.value(f"{subtree_of(env.name)}/ClientID")
        if not isinstance(client_id, str) or not client_id:
            continue
        for sid in env.accounts:
            for leaf in (f"{DM1_ROOT}/{sid}/AppAuth/CLCRED/AAuthName", f"{DM2_ROOT}/{sid}/Ext/HTTPAuth/Name"):
                if tree.exists(leaf) and tree.value(leaf) == host_id:
                    tree.replace(leaf, client_id)


class Host(Protocol):
    """What an environment shares with its device (a VirtualDevice is one)."""

    @property
    def id(self) -> str: ...

    @property
    def tree(self) -> Tree: ...

    @property
    def profile(self) -> Profile: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def bearer(self) -> str: ...

    @property
    def shaping(self) -> Shaping: ...

    def accounts(self, protocol: str | None = None) -> list[Account]: ...

    def managed_tree(self, account: Account, session_id: str) -> ManagedTree: ...


@dataclass(eq=False)
class Environment:
    """One operating environment as a DM client (see the module doc)."""

    device: Host
    spec: EnvSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def own_identity(self) -> bool:
        return self.spec.own_identity

    @property
    def path(self) -> str:
        return subtree_of(self.spec.name)

    @property
    def client_id(self) -> str:
        """The environment's own DevId when it has one, else the device's."""
        if self.spec.own_identity:
            value = self.device.tree.value(f"{self.path}/ClientID")
            if isinstance(value, str) and value:
                return value
        return self.device.id

    @property
    def id(self) -> str:
        return self.client_id

    # what a session needs, shared with the device
    @property
    def tree(self) -> Tree:
        return self.device.tree

    @property
    def profile(self) -> Profile:
        return self.device.profile

    @property
    def bus(self) -> EventBus:
        return self.device.bus

    @property
    def bearer(self) -> str:
        return self.device.bearer

    @property
    def shaping(self) -> Shaping:
        return self.device.shaping

    def accounts(self, protocol: str | None = None) -> list[Account]:
        return [a for a in self.device.accounts(protocol) if a.server_id in self.spec.accounts]

    def account(self, server_id: str | None = None, protocol: str | None = None) -> Account:
        return pick_account(self.accounts(protocol), server_id, protocol, f"environment {self.name} of {self.device.id}")

    def values(self) -> dict[str, str]:
        """The leaves of the environment's subtree (relative path -> text), for the window."""
        out: dict[str, str] = {}
        tree = self.device.tree
        if not tree.exists(self.path):
            return out
        prefix = len(self.path) + 1
        for info in tree.walk(self.path):
            if info.children is None:
                value = info.value
                out[info.path[prefix:]] = value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")
        return out

    def __repr__(self) -> str:
        return f"<Environment {self.name} of {self.device.id} as {self.client_id}>"
