"""A :class:`Tree` as rows of the ``nodes`` table, and back.

Rows are written in pre-order (``seq``), so reading them back in ``seq`` order meets every parent
before its children and keeps sibling order, which ``walk()`` and a DM Get of an interior node show.
A row whose parent is missing means a damaged file: loading refuses it rather than inventing the
parent.

Loading over a *template* (the device's profile tree) keeps every node that did not change shared
with the template, which is how thousands of devices made from one profile stay light after a
reload as they were before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from emulator.errors import StoreError
from emulator.tree import NodeInfo, Tree, TreeError
from emulator.tree import uri as uris
from emulator.tree.node import PERMANENT, Node, access_flags, access_names

Segments = tuple[str, ...]


class NodeRow(NamedTuple):
    """The columns of ``nodes`` after ``device_id``, in the order :data:`COLUMNS` names them."""

    path: str
    seq: int
    value: str | bytes | None
    value_is_bytes: bool
    format: str
    type: str
    acl: str
    flags: int
    title: str
    tstamp: float | None
    verno: int


COLUMNS = ", ".join(NodeRow._fields)


def node_flags(info: NodeInfo) -> int:
    return access_flags(info.access) | (PERMANENT if info.permanent else 0)


def tree_rows(tree: Tree) -> Iterator[NodeRow]:
    """Every node of ``tree``, root first, in pre-order."""
    for seq, info in enumerate(tree.walk()):
        value = info.value
        yield NodeRow(
            info.path,
            seq,
            value,
            isinstance(value, bytes),
            info.format,
            info.type,
            info.acl,
            node_flags(info),
            info.title,
            info.tstamp,
            info.verno,
        )


def build_tree(rows: Iterable[NodeRow], *, template: Tree | None = None, where: str = "") -> Tree:
    """The tree the rows describe (in ``seq`` order). ``where`` names the source in error messages.

    With a ``template`` the result is a fork of it, changed only where the rows differ: unchanged
    nodes stay shared, and the template's exec handlers, URI limits and clock come along.
    """
    parsed = [(_segments(row, where), _clean(row, where)) for row in rows]
    children: dict[Segments, list[str]] = {}
    for segs, row in parsed:
        if segs and segs[:-1] not in children:
            raise StoreError(f"{where}: node {row.path} has no parent node: the stored tree is damaged")
        if segs in children:
            raise StoreError(f"{where}: node {row.path} is stored twice: the stored tree is damaged")
        if segs:
            children[segs[:-1]].append(segs[-1])
        children[segs] = []
    if () not in children:
        raise StoreError(f"{where}: no root node stored: the stored tree is damaged")

    tree = template.fork() if template is not None else Tree()
    before = _snapshot(tree)
    # what the base holds and the rows do not: delete the top-most such nodes (the rest goes with them)
    gone = [segs for segs in before if segs and segs not in children and segs[:-1] in children]
    for segs in gone:
        tree.delete(segs)
    if gone:  # a delete touches the parent's TStamp/VerNo: compare against the tree as it is now
        before = _snapshot(tree)

    try:
        for segs, row in parsed:
            info = before.get(segs)
            if info is None or not _same(info, row):
                _put(tree, segs, row)
        if template is not None:
            for segs, row in parsed:
                names = children[segs]
                if row.format == "node" and tree.children(segs) != names:
                    _put(tree, segs, row)
                    node = _owned_node(tree, segs)
                    kids = node.kids
                    node.children = {name: kids[name] for name in names}
    except TreeError as e:
        raise StoreError(f"{where}: the stored tree cannot be rebuilt: {e}") from e
    return tree


def _segments(row: NodeRow, where: str) -> Segments:
    try:
        return uris.split(row.path)
    except TreeError as e:
        raise StoreError(f"{where}: bad stored path {row.path!r}: {e}") from e


def _clean(row: NodeRow, where: str) -> NodeRow:
    """The row with its value of the right kind (bytes or text), whatever SQLite handed back."""
    value = row.value
    if row.format == "node":
        value = None
    elif row.value_is_bytes and isinstance(value, str):
        value = value.encode("utf-8")
    elif not row.value_is_bytes and isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise StoreError(f"{where}: node {row.path} holds bytes marked as text: {e}") from e
    elif value is not None and not isinstance(value, str | bytes):
        value = str(value)  # a number a foreign writer stored: the tree keeps DM text
    return row._replace(value=value, tstamp=None if row.tstamp is None else float(row.tstamp))


def _snapshot(tree: Tree) -> dict[Segments, NodeInfo]:
    return {uris.split(info.path): info for info in tree.walk()}


def _same(info: NodeInfo, row: NodeRow) -> bool:
    return (
        info.is_leaf == (row.format != "node")
        and type(info.value) is type(row.value)
        and info.value == row.value
        and info.format == row.format
        and info.type == row.type
        and info.acl == row.acl
        and node_flags(info) == row.flags
        and info.title == row.title
        and info.tstamp == row.tstamp
        and info.verno == row.verno
    )


def _put(tree: Tree, segs: Segments, row: NodeRow) -> None:
    tree.set_node(
        segs,
        row.value,
        format=row.format,
        type=row.type,
        acl=row.acl,
        permanent=bool(row.flags & PERMANENT),
        access=access_names(row.flags),
        title=row.title,
        tstamp=row.tstamp,
        verno=row.verno,
    )


def _owned_node(tree: Tree, segs: Segments) -> Node:
    node = tree.root
    for seg in segs:
        node = node.kids[seg]
    return node
