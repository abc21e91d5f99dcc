"""What LAWMO and SCOMO share on top of :mod:`emulator.mo.operations`: their knobs, the failure draw,
and building nodes the way their DDFs describe them.

Knobs (``[behaviours.settings]``, the same words as FUMO's):

- ``fail``: result code (as text) -> probability that an operation ends with it; one draw per
  operation from the device's seeded generator (so a fleet fails the same devices from run to run),
  the probabilities adding up to at most 1; a code the operation cannot end with (a 1409 activate
  failure drawn for an install) leaves that operation alone;
- ``consent``: what the emulated user answers when the device asks before an operation (``accept``,
  ``decline``: the operation ends with 1401 User Cancelled).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.mo.operations import DeviceRandom
from emulator.tree import Tree
from emulator.tree.ddf import NodeDesc

USER_CANCELLED = 1401
CONSENT = ("accept", "decline")
MAX_SECONDS = 3600.0 * 24


def check_fail(value: object, codes: frozenset[int], mo: str) -> str | None:
    """What is wrong with a ``fail`` table (None: fine)."""
    assert isinstance(value, dict)
    total = 0.0
    for code, p in value.items():
        if not str(code).isdigit() or int(code) not in codes:
            return f"{code!r} is no {mo} failure result code ({min(codes)}-{max(codes)}, see the README)"
        if not isinstance(p, int | float) or isinstance(p, bool) or not 0 <= p <= 1:
            return f"probability of {code} must be a number from 0 to 1"
        total += float(p)
    if total > 1:
        return f"probabilities add up to {total:g}, more than 1"
    return None


def check_common(name: str, value: object, codes: frozenset[int], mo: str) -> str | None:
    """The checks of the shared knobs (``fail``, ``consent``, any ``*_s`` duration)."""
    if name == "fail":
        return check_fail(value, codes, mo)
    if name == "consent" and value not in CONSENT:
        return "expected accept or decline"
    if name.endswith("_s") and not 0 <= float(value) <= MAX_SECONDS:  # type: ignore[arg-type]
        return f"expected 0 to {MAX_SECONDS:g} seconds"
    return None


def draw_failure(settings: Mapping[str, object], rng: DeviceRandom) -> int:
    """The result code chance gives one operation (0: none), by the ``fail`` knob."""
    fail = settings["fail"]
    assert isinstance(fail, dict)
    x = rng.random()
    for code, p in sorted(fail.items()):
        if x < float(p):
            return int(code)
        x -= float(p)
    return 0


def node(tree: Tree, uri: str, desc: NodeDesc | None, *, mo_type: str = "") -> None:
    """An interior node as its DDF describes it (kept as it is when it exists)."""
    if not tree.exists(uri):
        tree.set_node(uri, format="node", type=mo_type,
                      access=desc.access if desc is not None and desc.access else None)


def leaf(tree: Tree, uri: str, desc: NodeDesc | None, value: str | None) -> None:
    """A leaf as its DDF describes it (format, access), holding ``value``."""
    tree.set_node(uri, value, format=desc.format if desc is not None else "chr", type="text/plain",
                  access=desc.access if desc is not None and desc.access else None)


def sub(desc: NodeDesc | None, *names: str) -> NodeDesc | None:
    """The description of a node below ``desc`` (``"x"`` for the unnamed placeholder)."""
    for name in names:
        if desc is None:
            return None
        desc = desc.child(name)
    return desc


def set_int(tree: Tree, uri: str, value: int) -> None:
    """A State/Status leaf the device moves itself (no ACL, its DDF format and access kept)."""
    if tree.exists(uri):
        info = tree.info(uri)
        tree.set_node(uri, str(value), format=info.format, type=info.type, access=info.access)


class MoInstance:
    """One declared instance on one device: its root, its knobs (``settings``, which a scenario may
    change through ``DeviceBehaviours.configure``), the device's seeded generator. Subclasses register
    their Exec handlers in :meth:`attach`."""

    def __init__(self, behaviours: Any, root: str, settings: dict[str, object], rng: DeviceRandom) -> None:
        self.behaviours = behaviours
        self.root = root
        self.settings = settings
        self.rng = rng

    def attach(self, tree: Tree) -> None:
        raise NotImplementedError

    @classmethod
    def attach_declared(cls, behaviours: Any, tree: Tree, declared: Any, rng: DeviceRandom) -> None:
        """A kind's ``attach`` (:class:`emulator.mo.operations.MoKind`): the instance for ``declared``
        on this device, kept in ``behaviours.mo_state`` by its root."""
        instance = cls(behaviours, declared.node, dict(declared.settings), rng)
        behaviours.mo_state[declared.node] = instance
        instance.attach(tree)


def dm12_object_acl(profile: Any, root: str) -> str | None:
    """The ACL of a DM 1.2 object root the device's DM 1.x servers manage (everyone reads, they
    change); None under ``./DM2`` (its instances inherit ``./DM2``'s) or with no DM 1.x server."""
    ids = "+".join(a.server_id for a in profile.accounts if a.protocol == "dm12")
    if root.startswith("./DM2/") or not ids:
        return None
    return f"Get=*&Add={ids}&Replace={ids}&Delete={ids}&Exec={ids}"


def protocol_of(root: str) -> str:
    """Which protocol reaches an object declared at ``root``: ``dm2`` under ``./DM2``, else ``dm12``."""
    return "dm2" if root == "./DM2" or root.startswith("./DM2/") else "dm12"
