"""Writing nodes as their DDF describes them (format, MIME type, scope, AccessType): what a profile's
template tree and the managed objects a profile declares (:mod:`emulator.mo`) are built with, so a
node the device creates looks the same whoever creates it."""

from __future__ import annotations

from emulator.tree.ddf import NodeDesc
from emulator.tree.tree import Tree

MIME = "text/plain"
_EMPTY = {"int": "0", "bool": "false", "float": "0", "node": None}


def write_leaf(tree: Tree, desc: NodeDesc | None, uri: str, value: object, *, acl: str | None = None) -> None:
    """A leaf holding ``value`` (a bool as ``true``/``false``; None: no value)."""
    fmt = desc.format if desc is not None else "chr"
    if isinstance(value, bool):
        text: str | bytes | None = "true" if value else "false"
        fmt = "bool" if desc is None else fmt
    elif value is None:
        text = None
    else:
        text = value if isinstance(value, bytes) else str(value)
    tree.set_node(
        uri, text, format=fmt, type=(desc.mime[0] if desc is not None and desc.mime else MIME),
        permanent=desc is not None and desc.scope == "Permanent",
        access=desc.access if desc is not None and desc.access else None, acl=acl,
    )


def write_interior(tree: Tree, desc: NodeDesc | None, uri: str, *, mo_type: str = "", acl: str | None = None) -> None:
    """An interior node; ``mo_type`` makes it an MO root (its Type the MOID)."""
    tree.set_node(
        uri, format="node", type=mo_type or (desc.ddf_name or "" if desc is not None else ""),
        permanent=desc is not None and desc.scope == "Permanent",
        access=desc.access if desc is not None and desc.access else None, acl=acl,
    )


def write_values(tree: Tree, desc: NodeDesc, base: str, values: dict[str, object]) -> None:
    """A table of values below ``base`` following its DDF (nested tables = interior nodes)."""
    for key, value in values.items():
        child = desc.child(key)
        uri = f"{base}/{key}"
        if isinstance(value, dict):
            write_interior(tree, child, uri)
            if child is not None:
                write_values(tree, child, uri, value)
        else:
            write_leaf(tree, child, uri, value)


def fill_required(tree: Tree, desc: NodeDesc, base: str) -> None:
    """Create the named nodes the DDF requires that are not there yet, with their defaults."""
    for child in desc.children:
        if child.name is None or child.occurrence.min < 1:
            continue
        uri = f"{base}/{child.name}"
        if not tree.exists(uri):
            if child.format == "node":
                write_interior(tree, child, uri)
            else:
                write_leaf(tree, child, uri, child.default if child.default is not None else _EMPTY.get(child.format, ""))
        if child.format == "node":
            fill_required(tree, child, uri)
