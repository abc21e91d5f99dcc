"""Edits of a device's tree made in the window, as whom they are made, and how each is undone.

An edit is made either **as the device** (a local change: no ACL, but the value must fit the node's
Format and its DDF, see :mod:`emulator.mo.edits`) or **as one of the device's servers** (the command
goes through the same tree the server's session gets, :meth:`VirtualDevice.managed_tree`: AccessType,
ACL, priority and delegation rules, and the refusal carries the DM status that server would get).
The window never checks an ACL itself.

Every edit runs inside a tree transaction: a refusal, wherever it comes from, leaves the tree exactly
as it was and no change event goes out. A successful edit returns an :class:`Edit` that can undo it
exactly: a Replace puts the old value back, an Add deletes what it created (implicit parents too), a
Delete grafts back a deep copy of the subtree taken before (values, Formats, ACLs, Scope, AccessType,
Title, TStamp, VerNo) at its place among its siblings. Undo and redo act as the device: they restore
what the window changed, whoever it was made as.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from emulator.device.virtual import VirtualDevice
from emulator.mo.edits import check_new_node, check_value
from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.node import Node

UI_SESSION = "window-edit"
"""The session name a window edit "as server X" claims MO instances under; released right after."""
PROTOCOL_NAMES = {"dm12": "DM 1.2", "dm2": "DM 2.0"}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who an edit is made as: the device itself (``server_id`` None) or one of its servers."""

    server_id: str | None = None
    protocol: str = ""

    @property
    def label(self) -> str:
        if self.server_id is None:
            return "the device"
        return f"server {self.server_id} ({PROTOCOL_NAMES.get(self.protocol, self.protocol)})"

    @property
    def by(self) -> str | None:
        return self.server_id


DEVICE = Actor()


def actors(dev: VirtualDevice) -> list[Actor]:
    """The device, then every server it has an account for (in the device's account order)."""
    return [DEVICE, *(Actor(a.server_id, a.protocol) for a in dev.accounts())]


@contextmanager
def acting(dev: VirtualDevice, actor: Actor) -> Iterator[Any]:
    """The tree as ``actor`` acts on it, inside one transaction (rolled back if the block raises)."""
    tree = dev.tree
    with tree.transaction():
        if actor.server_id is None:
            yield tree
            return
        account = dev.account(actor.server_id, actor.protocol or None)
        try:
            yield dev.managed_tree(account, UI_SESSION)
        finally:
            dev.conflicts.release(UI_SESSION)


def leaf_value(tree: Tree, path: str, text: str) -> str | bytes:
    """The editor's text as the leaf holds it: bytes for a bin leaf, text otherwise."""
    return text.encode("utf-8") if tree.info(path).format == "bin" else text


def count_nodes(tree: Tree, path: str) -> int:
    """Nodes in the subtree at ``path``, itself included (what a Delete there removes)."""
    return sum(1 for _ in tree.walk(path))


class Edit:
    """One change made in the window: ``apply`` (again, for redo) and ``revert`` (undo)."""

    device_id: str
    text: str

    def apply(self) -> None:
        raise NotImplementedError

    def revert(self) -> None:
        raise NotImplementedError


class ReplaceEdit(Edit):
    def __init__(self, dev: VirtualDevice, actor: Actor, path: str, value: str | bytes) -> None:
        self.dev, self.actor, self.path, self.value = dev, actor, path, value
        self.device_id = dev.id
        self.old = dev.tree.value(path)
        self.text = f"Replace {path} as {actor.label}"

    def apply(self) -> None:
        with acting(self.dev, self.actor) as tree:
            self.old = self.dev.tree.value(self.path)
            tree.replace(self.path, self.value, by=self.actor.by)
            check_value(self.dev.tree, self.path, self.value)  # after the server's checks: its status first

    def revert(self) -> None:
        self.dev.tree.replace(self.path, self.old)


class AddEdit(Edit):
    def __init__(self, dev: VirtualDevice, actor: Actor, path: str, fmt: str, value: str | bytes | None) -> None:
        self.dev, self.actor, self.path, self.fmt = dev, actor, path, fmt
        self.value = None if fmt in ("node", "null") else value
        self.device_id = dev.id
        self.created = path  # the topmost node the Add creates (an implicit parent, or the node)
        self.text = f"Add {path} as {actor.label}"

    def apply(self) -> None:
        tree = self.dev.tree
        segs = uris.split(self.path)
        depth = next((d for d in range(1, len(segs) + 1) if not tree.exists(segs[:d])), len(segs))
        self.created = uris.join(segs[:depth])
        with acting(self.dev, self.actor) as acting_tree:
            if self.fmt == "node":
                acting_tree.add(self.path, None, format="node", type="", by=self.actor.by)
            else:
                acting_tree.add(self.path, self.value, format=self.fmt, by=self.actor.by)
            check_new_node(tree, self.path, self.fmt, self.value)  # after the server's checks: its status first

    def revert(self) -> None:
        self.dev.tree.delete(self.created)


class DeleteEdit(Edit):
    def __init__(self, dev: VirtualDevice, actor: Actor, path: str) -> None:
        self.dev, self.actor, self.path = dev, actor, path
        self.device_id = dev.id
        self.saved: Node | None = None
        self.position: int | None = None
        self.text = f"Delete {path} as {actor.label}"

    def apply(self) -> None:
        tree = self.dev.tree
        segs = uris.split(self.path)
        saved = tree.snapshot(segs)
        siblings = tree.children(segs[:-1])
        with acting(self.dev, self.actor) as acting_tree:
            acting_tree.delete(self.path, by=self.actor.by)
        self.saved, self.position = saved, siblings.index(segs[-1])

    def revert(self) -> None:
        assert self.saved is not None
        saved, self.saved = self.saved, None  # grafted nodes belong to the tree now; a redo copies anew
        self.dev.tree.graft(self.path, saved, position=self.position)
