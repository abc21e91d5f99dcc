"""Checking a live subtree against the DDF of its management object."""

from __future__ import annotations

from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.ddf import MODescription, NodeDesc, Violation, load_builtin, validate


class SubtreeView:
    """The tree seen from an MO instance root, in the shape ``ddf.validate`` asks for."""

    def __init__(self, tree: Tree, root_uri: str) -> None:
        self.tree = tree
        self.root = uris.split(root_uri)

    def children(self, path: tuple[str, ...]) -> list[str] | None:
        info = self.tree.info(self.root + path)
        return list(info.children) if info.children is not None else None

    def format(self, path: tuple[str, ...]) -> str:
        return self.tree.info(self.root + path).format


def check_subtree(tree: Tree, root_uri: str, desc: MODescription | NodeDesc | str | None = None) -> list[Violation]:
    """Violations of the instance at ``root_uri``; ``desc`` defaults to the DDF of the node's Type."""
    if desc is None or isinstance(desc, str):
        desc = load_builtin(desc or tree.info(root_uri).type)
    return validate(desc, SubtreeView(tree, root_uri))
