"""Whether a value or a new node fits where it goes: the node's Format and the DDF of its MO.

The tree itself stores any text in any leaf (a server's Replace carries its own Format, and TNDS
import checks its own document). An edit made by hand on the device (the window's value editor, its
Add node dialog) has no message to check it, so it is checked here against what the device knows:
the Format the node has and, inside an MO instance whose DDF ships with the emulator, the Format the
DDF gives that node. A refusal is a :class:`TreeError` with status 400 and a sentence that says what
the node holds and what was wrong; nothing changes.
"""

from __future__ import annotations

from emulator.mo.instances import instance_of
from emulator.tree import Tree, TreeError
from emulator.tree import uri as uris
from emulator.tree.ddf import NodeDesc, describe, find_builtin
from emulator.tree.formats import value_problem

Path = tuple[str, ...]


def described(tree: Tree, uri: str | Path) -> tuple[str, NodeDesc] | None:
    """(MOID, description) of the node at ``uri`` (which may not exist yet) from its MO's shipped DDF;
    None outside any instance, for an MO without a shipped DDF, or below an open node (Ext)."""
    segs = uri if isinstance(uri, tuple) else uris.split(uri)
    inst = instance_of(tree, segs)
    if inst is None:
        return None
    desc = find_builtin(inst.moid)
    if desc is None:
        return None
    node = describe(desc, segs[len(inst.path):])
    return (inst.moid, node) if node is not None else None


def check_value(tree: Tree, uri: str | Path, value: str | bytes | None) -> None:
    """Refuse (400) a value for the existing leaf ``uri`` that fits neither its Format nor its DDF's."""
    info = tree.info(uri)
    shown = info.path
    if info.children is not None:
        raise TreeError(405, f"{shown} is an interior node: it holds no value", uri=shown)
    problem = value_problem(info.format, value)
    if problem:
        raise TreeError(400, f"{shown} holds {info.format}: {problem}", uri=shown)
    found = described(tree, uri)
    if found is not None and found[1].format not in ("node", info.format.lower()):
        moid, desc = found
        problem = value_problem(desc.format, value)
        if problem:
            raise TreeError(400, f"the DDF of {moid} gives {shown} Format {desc.format}: {problem}", uri=shown)


def check_new_node(tree: Tree, uri: str | Path, fmt: str, value: str | bytes | None) -> None:
    """Refuse (400) a new node whose Format or value does not fit: its own Format, and the DDF's when
    the DDF describes that place (a leaf where the DDF has an interior node, another Format)."""
    fmt = fmt.lower()
    shown = uris.join(uri) if isinstance(uri, tuple) else uri
    if fmt != "node":
        problem = value_problem(fmt, value)
        if problem:
            raise TreeError(400, f"{shown} (Format {fmt}): {problem}", uri=shown)
    found = described(tree, uri)
    if found is not None and found[1].format != fmt:
        moid, desc = found
        what = "an interior node" if desc.format == "node" else f"a leaf of Format {desc.format}"
        raise TreeError(400, f"the DDF of {moid} describes {shown} as {what}, not Format {fmt}", uri=shown)
