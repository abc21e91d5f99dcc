"""Tree nodes, kept small and shareable.

A node is owned by the tree (or transaction) whose token it carries; any other tree sees it as
immutable and copies it before a change (path copying). That is how a thousand devices made from one
profile share the profile's nodes, and how a transaction rolls back in O(1).
"""

from __future__ import annotations

from emulator.tree.acl import EMPTY, Acl

# flags: bit 0 = permanent (Scope), bits 1..6 = the DDF AccessType the node allows
PERMANENT = 1
ACCESS_BITS = {"Add": 2, "Copy": 4, "Delete": 8, "Exec": 16, "Get": 32, "Replace": 64}
ACCESS_ALL = sum(ACCESS_BITS.values())


def access_flags(access: frozenset[str] | set[str] | tuple[str, ...]) -> int:
    return sum(ACCESS_BITS[a] for a in access)


_ACCESS_NAMES = [frozenset(a for a, bit in ACCESS_BITS.items() if f & bit) for f in range(128)]


def access_names(flags: int) -> frozenset[str]:
    return _ACCESS_NAMES[flags & 127]


class NodeMeta:
    """Properties most nodes never set: created on the first change so template nodes stay light."""

    __slots__ = ("title", "tstamp", "verno")

    def __init__(self, title: str = "", tstamp: float | None = None, verno: int = 0) -> None:
        self.title = title
        self.tstamp = tstamp
        self.verno = verno

    def copy(self) -> NodeMeta:
        return NodeMeta(self.title, self.tstamp, self.verno)


class Node:
    __slots__ = ("value", "format", "type", "acl", "children", "flags", "meta", "owner")

    def __init__(
        self,
        value: str | bytes | None,
        format: str,
        type: str,
        acl: Acl = EMPTY,
        children: dict[str, Node] | None = None,
        flags: int = ACCESS_ALL,
        meta: NodeMeta | None = None,
        owner: object = None,
    ) -> None:
        self.value = value
        self.format = format
        self.type = type
        self.acl = acl
        self.children = children
        self.flags = flags
        self.meta = meta
        self.owner = owner

    @property
    def is_interior(self) -> bool:
        return self.children is not None

    @property
    def kids(self) -> dict[str, Node]:
        """The children of a node the caller knows is interior (a path's parent, a node it just made).

        A leaf here is a bug in the tree code, not bad input: it raises TypeError, never a DM status.
        """
        children = self.children
        if children is None:
            raise TypeError("a leaf node has no children")
        return children

    def copy(self, owner: object) -> Node:
        return Node(
            self.value,
            self.format,
            self.type,
            self.acl,
            dict(self.children) if self.children is not None else None,
            self.flags,
            self.meta.copy() if self.meta is not None else None,
            owner,
        )

    def size(self) -> int:
        v = self.value
        if v is None:
            return 0
        return len(v) if isinstance(v, bytes) else len(v.encode("utf-8"))


def descend(node: Node, segs: tuple[str, ...]) -> Node | None:
    """The node at ``segs`` below ``node``, or None (missing, or a leaf on the way): the one walk
    down a path for readers that need no ACL (the device's own reads; a reader that looks at several
    leaves of one subtree finds the subtree once and descends from it). Read only: a node found here
    may be shared with other trees (see :meth:`emulator.tree.Tree._writable`)."""
    for seg in segs:
        children = node.children
        if children is None:
            return None
        child = children.get(seg)
        if child is None:
            return None
        node = child
    return node
