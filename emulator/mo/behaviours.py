"""What the device does when a server executes one of the demo objects' operations.

The reference server's UI flows create instances (Wi-Fi settings, a firmware update, a data plan)
with an ``Ops`` node, then EXEC one operation; a real device would connect, flash or activate. The
emulated one records the outcome in the instance's ``State`` leaf, and a firmware update also moves
the device's firmware version, so a demonstrator sees the result in the tree.
"""

from __future__ import annotations

from emulator.tree import Tree
from emulator.tree import uri as uris
from emulator.tree.tree import ExecRequest

FW_LEAVES = ("./DevDetail/FwV", "./DM2/DevInfo/FwV")


def _instance_root(path: str) -> tuple[str, ...]:
    return uris.split(path)[:-2]  # .../<instance>/Ops/<op>


def _set_state(tree: Tree, root: tuple[str, ...], state: str) -> None:
    tree.set_node(root + ("State",), state)


def connect(tree: Tree, req: ExecRequest) -> int:
    _set_state(tree, _instance_root(req.path), "connected")
    return 200


def update(tree: Tree, req: ExecRequest) -> int:
    root = _instance_root(req.path)
    version = tree.value(root + ("PkgVersion",))
    if version is None and tree.exists(root):
        for child in tree.children(root):  # the MOData may nest one level (FwUpdate/PkgVersion)
            version = tree.value(root + (child, "PkgVersion")) or version
    if not version:
        _set_state(tree, root, "failed: no PkgVersion")
        return 500
    for leaf in FW_LEAVES:
        if tree.exists(leaf):
            tree.set_node(leaf, version, permanent=tree.info(leaf).permanent)
    _set_state(tree, root, "updated")
    return 200


def activate(tree: Tree, req: ExecRequest) -> int:
    _set_state(tree, _instance_root(req.path), "active")
    return 200


def register(tree: Tree) -> None:
    """Install the behaviours on a (template) tree; forks inherit them."""
    tree.on_exec("./DM2/*/*/Ops/Connect", connect)
    tree.on_exec("./DM2/*/*/Ops/Update", update)
    tree.on_exec("./DM2/*/*/Ops/Activate", activate)
