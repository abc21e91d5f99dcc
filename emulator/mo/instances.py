"""DM 2.0 MO instances over the management tree (PROTOCOL 1.10, 1.12, 1.16).

DM 2.0 addresses data per MO instance, not by tree path. In this tree an instance is an interior
node under ``./DM2`` whose Type is the MOID; its node name is the MIID (``./DM2/DevInfo`` is the
DevInfo instance with MIID ``DevInfo``). Instances may nest (``./DM2/DevInfo/Bearer``). This module
answers the questions the DM 2.0 engine and the UI ask about them:

- which instances of a MOID exist (``find_instances``) and which a server may see
  (``visible_instances``: any right in the effective ACL of the instance root, 1.16 item 3);
- an :class:`~emulator.tree.clienturi.InstanceView` over one instance for ClientURI
  resolution, which hides leaf values the server may not Get (so ``nv`` cannot probe a secret);
- where a new instance goes when a server creates one with HGET: ``./DM2/<MO name>/<MIID>`` with
  the MO name taken from the MOID (``urn:oma:mo:ext-acme-wlan:1.0`` -> ``ext-acme-wlan``) and the
  first free MIID ``i1``, ``i2``...; its root carries the MO root name of the serialization as Title;
- the cache validator of an instance (1.12): a hash over every node's name, format, value and
  VerNo, so any change inside the instance changes it;
- DEFAULT bindings (MOID -> ServerURI) kept under ``./DM2/Defaults/<n>/{MOID,ServerURI}``.

The index is recomputed by a walk on every question: a DM 2.0 subtree holds tens to hundreds of
nodes, and a cache would need a tree listener whose lifetime nobody owns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from emulator.tree import Acl, NodeInfo, Tree, TreeError
from emulator.tree import uri as uris
from emulator.tree.clienturi import MISSING, Missing
from emulator.util.masking import MASK_BYTES, is_secret_name

Path = tuple[str, ...]
DM2_BASE: Path = ("DM2",)
DEFAULTS_BASE: Path = ("DM2", "Defaults")
RIGHTS = ("Add", "Delete", "Exec", "Get", "Replace")


@dataclass(frozen=True, slots=True)
class Instance:
    """One MO instance: its MOID, MIID (node name) and tree path."""

    moid: str
    miid: str
    path: Path


def find_instances(tree: Tree, moid: str, *, base: Path = DM2_BASE) -> dict[str, Path]:
    """MIID -> path of every instance of ``moid`` below ``base``, in tree order.

    Two instances of one MOID with the same node name cannot both be addressed; the first in tree
    order wins and the other is left out (the device never creates such a pair itself).
    """
    found: dict[str, Path] = {}
    for path in tree.interiors_of_type(base, moid):
        if path:
            found.setdefault(path[-1], path)
    return found


def all_instances(tree: Tree, *, base: Path = DM2_BASE) -> list[Instance]:
    """Every interior node below ``base`` whose Type looks like an MOID (URN or DDF-style name)."""
    out: list[Instance] = []
    if not tree.exists(base):
        return out
    seen: set[tuple[str, str]] = set()
    for segs, typ in tree.interior_types(base):
        if segs and is_moid(typ) and (typ, segs[-1]) not in seen:
            seen.add((typ, segs[-1]))
            out.append(Instance(typ, segs[-1], segs))
    return out


def is_moid(text: str) -> bool:
    """``urn:oma:mo:...`` or a DDF-style ``org.example/1.0/Name``; a MIME type is not an MOID."""
    return text.startswith("urn:") or text.count("/") >= 2


def effective_acl(tree: Tree, path: Path) -> Acl:
    """The ACL that governs ``path``: its own, else the nearest ancestor's (PROTOCOL 3.4)."""
    return tree.effective_acl(path)


def may_access(tree: Tree, path: Path, server_id: str) -> bool:
    """True when the server holds any right on the instance rooted at ``path``."""
    acl = effective_acl(tree, path)
    return any(acl.allows(right, server_id) for right in RIGHTS)


def visible_instances(tree: Tree, moid: str, server_id: str | None) -> dict[str, Path]:
    """The instances of ``moid`` a server may see (all of them for the device itself)."""
    found = find_instances(tree, moid)
    if server_id is None:
        return found
    return {miid: path for miid, path in found.items() if may_access(tree, path, server_id)}


def exclusive_acl(server_id: str) -> str:
    """The ACL of an instance its creator owns alone (1.16 item 2)."""
    return "&".join(f"{right}={server_id}" for right in RIGHTS)


def is_secret_leaf(info: NodeInfo) -> bool:
    """A leaf no server may read over DM 2.0: its name says it holds a secret (the one definition,
    :func:`emulator.util.masking.is_secret_name`, that masks traffic and exports too)."""
    return info.children is None and is_secret_name(_split(info.path)[-1] if info.path != "." else "")


def server_get(tree: Tree, path: Path, by: str) -> NodeInfo:
    """DM Get for server ``by``: the tree's checks (AccessType 405, ACL 425) and then secrets stay on
    the device (405, as DM 1.2 answers a Get of AAuthSecret, whose DDF gives no Get)."""
    info = tree.get(path, by=by)
    if is_secret_leaf(info):
        raise TreeError(405, f"Get is not allowed on {info.path}: a secret never leaves the device",
                        uri=info.path)
    return info


class TreeInstanceView:
    """InstanceView of one instance for ClientURI resolution, as server ``by`` sees it.

    Node existence is not hidden (names are not secrets and a 404/403 difference is harmless),
    but a leaf value the server may not Get reads as None, so an ``nv`` constraint never matches it.
    """

    __slots__ = ("by", "root", "tree")

    def __init__(self, tree: Tree, root: Path, by: str | None = None) -> None:
        self.tree = tree
        self.root = root
        self.by = by

    def child_names(self, path: Path) -> list[str] | None:
        node = self.tree.lookup(self.root + path)
        return list(node.children) if node is not None and node.children is not None else None

    def value(self, path: Path) -> str | None | Missing:
        full = self.root + path
        node = self.tree.lookup(full)
        if node is None:
            return MISSING
        if node.children is not None:
            return None
        value = node.value  # (as it was before the server's read, which may measure first: DiagMon)
        if self.by is not None:
            try:
                server_get(self.tree, full, self.by)
            except TreeError:
                return None
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value


def instance_views(tree: Tree, moid: str, server_id: str | None) -> dict[str, TreeInstanceView]:
    """MIID -> view for every instance of ``moid`` the server may see: the input of ``resolve``."""
    return {
        miid: TreeInstanceView(tree, path, server_id)
        for miid, path in visible_instances(tree, moid, server_id).items()
    }


def moid_name(moid: str) -> str:
    """A node name for an MO's container: the name part of a URN MOID, else its last segment."""
    if moid.startswith("urn:"):
        parts = moid.split(":")
        name = parts[3] if len(parts) >= 5 else parts[-1]
    else:
        name = moid.rstrip("/").rsplit("/", 1)[-1]
    cleaned = "".join("_" if c in "/?*" or ord(c) < 0x20 else c for c in name)
    return cleaned or "MO"


def new_instance_path(tree: Tree, moid: str) -> tuple[Path, str]:
    """(path, MIID) for a new instance of ``moid``: ``./DM2/<MO name>/i<n>``, the first n free."""
    container = DM2_BASE + (moid_name(moid),)
    taken = set(find_instances(tree, moid))
    if tree.exists(container):
        taken.update(tree.children(container))
    n = 1
    while f"i{n}" in taken:
        n += 1
    return container + (f"i{n}",), f"i{n}"


def instance_validator(tree: Tree, root: Path) -> str:
    """The cache validator (CV) of the instance at ``root``: changes whenever anything inside does."""
    digest = hashlib.sha256()
    start = len(root)
    for info in tree.walk(root):
        rel = "/".join(_split(info.path)[start:]) if info.path != "." else ""
        value = info.value
        if value is not None and is_secret_leaf(info):  # its VerNo still changes the CV; no hash to brute-force
            value = MASK_BYTES
        raw = value if isinstance(value, bytes) else (value or "").encode("utf-8")
        marker = b"\x01" if value is None else b"\x02"
        digest.update(f"{rel}\x00{info.format}\x00{info.verno}\x00".encode())
        digest.update(marker + len(raw).to_bytes(8, "big") + raw)
    return digest.hexdigest()[:20]


def instance_of(tree: Tree, path: Path) -> Instance | None:
    """The innermost instance containing ``path`` (or rooted at it), None outside any instance."""
    for depth in range(len(path), 0, -1):
        prefix = path[:depth]
        if not tree.exists(prefix):
            continue
        info = tree.info(prefix)
        if info.children is not None and is_moid(info.type):
            return Instance(info.type, prefix[-1], prefix)
    return None


# --- DEFAULT bindings ------------------------------------------------------------------------


def defaults(tree: Tree) -> dict[str, str]:
    """MOID -> ServerURI of every DEFAULT a server gave (the place to fetch a missing MO from)."""
    out: dict[str, str] = {}
    if not tree.exists(DEFAULTS_BASE):
        return out
    for name in tree.children(DEFAULTS_BASE):
        moid = tree.value(DEFAULTS_BASE + (name, "MOID"))
        uri = tree.value(DEFAULTS_BASE + (name, "ServerURI"))
        if isinstance(moid, str) and isinstance(uri, str):
            out[moid] = uri
    return out


def set_default(tree: Tree, moid: str, server_uri: str) -> None:
    """Bind ``moid`` to ``server_uri``; one ServerURI per MOID, a new DEFAULT replaces the old."""
    entry: Path | None = None
    names: list[str] = tree.children(DEFAULTS_BASE) if tree.exists(DEFAULTS_BASE) else []
    for name in names:
        if tree.value(DEFAULTS_BASE + (name, "MOID")) == moid:
            entry = DEFAULTS_BASE + (name,)
            break
    if entry is None:
        if not tree.exists(DEFAULTS_BASE):
            tree.set_node(DEFAULTS_BASE, format="node")
        n = 1
        while str(n) in names:
            n += 1
        entry = DEFAULTS_BASE + (str(n),)
        tree.set_node(entry, format="node")
        tree.set_node(entry + ("MOID",), moid)
    tree.set_node(entry + ("ServerURI",), server_uri)


def _split(path: str) -> Path:
    return uris.split(path)
