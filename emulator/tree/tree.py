"""The management tree and its operations (PROTOCOL.md 2.4, 3.2-3.4).

Every change goes through :class:`Tree`, which checks the ACL for the acting server, answers with the
DM status code the command would produce (raising :class:`TreeError` on refusal), keeps TStamp/VerNo,
and reports the change as a :class:`TreeEvent`. ``by=None`` (``LOCAL``) is the device itself: no ACL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from emulator.tree import uri as uris
from emulator.tree.acl import EMPTY, ROOT_DEFAULT, Acl
from emulator.tree.errors import TreeError
from emulator.tree.node import (
    ACCESS_ALL,
    ACCESS_BITS,
    PERMANENT,
    Node,
    NodeMeta,
    access_flags,
    access_names,
    descend,
)

LOCAL = None
Path = tuple[str, ...]
Value = str | bytes | None
PROPERTIES = ("ACL", "Format", "Name", "Size", "Title", "TStamp", "Type", "VerNo")


@dataclass(slots=True)
class TreeEvent:
    """One change: ``kind`` is add, replace, delete, rename, prop or exec; ``by`` the server id or app."""

    kind: str
    path: str
    old: Value = None
    new: Value = None
    by: str | None = None
    prop: str | None = None


@dataclass(slots=True)
class NodeInfo:
    """A snapshot of one node, safe to hand to other layers and threads (not frozen: Get is hot)."""

    path: str
    name: str
    value: Value
    format: str
    type: str
    acl: str
    children: tuple[str, ...] | None
    title: str
    tstamp: float | None
    verno: int
    permanent: bool
    access: frozenset[str]

    @property
    def is_leaf(self) -> bool:
        return self.children is None

    @property
    def size(self) -> int:
        v = self.value
        if v is None:
            return 0
        return len(v) if isinstance(v, bytes) else len(v.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class ExecRequest:
    path: str
    data: Value
    by: str | None
    correlator: str | None
    reply_to: str | None = None  # DM 2.0 EXEC's ServerURI: where an asynchronous result goes


ExecHandler = Callable[["Tree", ExecRequest], int]
Listener = Callable[[TreeEvent], None]
ValueCheck = Callable[["Tree", str, Value], str | None]
"""``check(tree, path, value)``: why a server may not write ``value`` there (answered 400), or None."""


def format_tstamp(ts: float | None) -> str:
    """ISO 8601 basic UTC, as DM wants it (``20010711T163817Z``)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


class Tree:
    """One device's management tree. Cheap to :meth:`fork`: forks share nodes until they change them."""

    def __init__(
        self,
        *,
        root: Node | None = None,
        limits: uris.UriLimits = uris.NO_LIMITS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = object()
        self.root = root or Node(None, "node", "", ROOT_DEFAULT, {}, ACCESS_ALL | PERMANENT, None, self._token)
        # no limit at all is NO_LIMITS itself: every lookup then skips the check (a profile's zeros)
        self.limits = limits if (limits.max_depth or limits.max_tot_len or limits.max_seg_len) else uris.NO_LIMITS
        self.clock = clock
        self._listeners: list[Listener] = []
        self._exec: dict[Path, ExecHandler] = {}
        self._exec_patterns: list[tuple[Path, ExecHandler]] = []
        self._checks: list[tuple[Path, ValueCheck]] = []
        self._tx: list[tuple[Node, object, int]] = []
        self.version = 0  # moves with every change and rollback: lets readers cache what they derive
        self._pending: list[TreeEvent] = []

    # ------------------------------------------------------------------ sharing and transactions

    def fork(self) -> Tree:
        """A new tree with the same content; both copy nodes before changing them from now on."""
        self._token = object()
        twin = Tree(root=self.root, limits=self.limits, clock=self.clock)
        twin._exec = dict(self._exec)
        twin._exec_patterns = list(self._exec_patterns)
        twin._checks = list(self._checks)
        return twin

    def begin(self) -> None:
        """Open a (nestable) transaction: nothing changed from here on is visible in the saved root."""
        self._tx.append((self.root, self._token, len(self._pending)))
        self._token = object()

    def commit(self) -> None:
        self._tx.pop()
        if not self._tx:
            self._flush()

    def rollback(self) -> None:
        """Put the tree back exactly as it was at :meth:`begin` and forget its events."""
        self.root, self._token, mark = self._tx.pop()
        del self._pending[mark:]
        self.version += 1

    def transaction(self) -> _Transaction:
        """``with tree.transaction():`` commits at the end, rolls back if the block raises."""
        return _Transaction(self)

    @property
    def in_transaction(self) -> bool:
        return bool(self._tx)

    # ------------------------------------------------------------------ events and exec handlers

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: TreeEvent) -> None:
        self.version += 1
        if self._tx:
            self._pending.append(event)
        else:
            for listener in tuple(self._listeners):
                listener(event)

    def _flush(self) -> None:
        events, self._pending = self._pending, []
        for event in events:
            for listener in tuple(self._listeners):
                listener(event)

    def on_exec(self, uri: str, handler: ExecHandler) -> None:
        """Register the device behaviour behind an executable node; ``*`` segments match any name.

        A later registration wins over an earlier pattern, so a test or scenario can override a default.
        """
        segs = uris.split(uri)
        if "*" in segs:
            self._exec_patterns.insert(0, (segs, handler))
        else:
            self._exec[segs] = handler

    def on_value(self, uri: str, check: ValueCheck) -> None:
        """Register what a leaf may hold when a *server* writes it (Replace, Add); ``*`` segments match
        any name. A value the check refuses is answered 400 and nothing changes: a device that acts on
        the value (a threshold, a bearer state) never sees one it cannot act on. Device-side writes
        (``by`` None) are not checked."""
        self._checks.insert(0, (uris.split(uri), check))

    def _check_value(self, segs: Path, value: Value, uri: str | Path) -> None:
        for pattern, check in self._checks:
            if len(pattern) == len(segs) and all(p in ("*", s) for p, s in zip(pattern, segs, strict=True)):
                why = check(self, uris.join(segs), value)
                if why is not None:
                    raise TreeError(400, f"{_show(uri)}: {why}", uri=_show(uri))

    def _exec_handler(self, segs: Path) -> ExecHandler | None:
        handler = self._exec.get(segs)
        if handler is not None:
            return handler
        for pattern, h in self._exec_patterns:
            if len(pattern) == len(segs) and all(p in ("*", s) for p, s in zip(pattern, segs, strict=True)):
                return h
        return None

    # ------------------------------------------------------------------ lookups

    def _segments(self, uri: str | Path) -> Path:
        if isinstance(uri, tuple):
            return uri
        segs = uris.split(uri)
        if self.limits is not uris.NO_LIMITS:
            uris.check_limits(segs, self.limits, uri)
        return segs

    def _locate(self, segs: Path, uri: str | Path) -> tuple[Node, Acl, Acl]:
        """The node, its effective ACL and its parent's effective ACL; 404 if missing."""
        node = self.root
        acl = node.acl or ROOT_DEFAULT
        parent_acl = acl
        for seg in segs:
            children = node.children
            child = children.get(seg) if children is not None else None
            if child is None:
                raise TreeError(404, f"node {_show(uri)} not found", uri=_show(uri))
            parent_acl = acl
            node = child
            if child.acl.text:  # (an ACL with no entry has no text: no call to Acl.__bool__ per level)
                acl = child.acl
        return node, acl, parent_acl

    def _writable(self, segs: Path) -> list[Node]:
        """Nodes root..target, each owned by this tree (copied if shared); the target must exist."""
        token = self._token
        node = self.root
        if node.owner is not token:
            node = self.root = node.copy(token)
        path = [node]
        for seg in segs:
            child = node.kids[seg]
            if child.owner is not token:
                child = child.copy(token)
                node.kids[seg] = child
            path.append(child)
            node = child
        return path

    def _find(self, segs: Path) -> Node | None:
        return descend(self.root, segs)

    def lookup(self, uri: str | Path) -> Node | None:
        """The node at ``uri`` for the device's own read (no ACL), None if missing: a reader of several
        leaves of one subtree (an account, a trap) finds it once and goes on with :func:`descend`.
        Read only: the node may be shared with other trees."""
        return descend(self.root, self._segments(uri))

    def effective_acl(self, uri: str | Path) -> Acl:
        """The ACL that governs ``uri``: its own, else the nearest ancestor's (PROTOCOL 3.4); 404 if missing."""
        return self._locate(self._segments(uri), uri)[1]

    def exists(self, uri: str | Path) -> bool:
        return self._find(self._segments(uri)) is not None

    def info(self, uri: str | Path, *, by: str | None = LOCAL) -> NodeInfo:
        """Everything about one node; needs Get for a server."""
        segs = self._segments(uri)
        node, acl, _ = self._locate(segs, uri)
        if by is not None and not acl.allows("Get", by):
            raise TreeError(425, f"{by} may not Get {_show(uri)}", uri=_show(uri))
        return self._info(segs, node)

    def _info(self, segs: Path, node: Node) -> NodeInfo:
        meta = node.meta
        return NodeInfo(
            path=uris.join(segs),
            name=segs[-1] if segs else ".",
            value=node.value,
            format=node.format,
            type=node.type,
            acl=node.acl.text,
            children=tuple(node.children) if node.children is not None else None,
            title=meta.title if meta else "",
            tstamp=meta.tstamp if meta else None,
            verno=meta.verno if meta else 0,
            permanent=bool(node.flags & PERMANENT),
            access=access_names(node.flags),
        )

    def get(self, uri: str | Path, *, by: str | None = LOCAL) -> NodeInfo:
        """DM Get: the leaf value, or for an interior node its child names (``NodeInfo.children``)."""
        segs = self._segments(uri)
        node, acl, _ = self._locate(segs, uri)
        if by is not None and not node.flags & ACCESS_BITS["Get"]:
            raise TreeError(405, f"Get is not allowed on {_show(uri)}", uri=_show(uri))
        if by is not None and not acl.allows("Get", by):
            raise TreeError(425, f"{by} may not Get {_show(uri)}", uri=_show(uri))
        return self._info(segs, node)

    def value(self, uri: str | Path, default: Value = None) -> Value:
        """The device's own read of a leaf (no ACL); ``default`` if missing."""
        try:
            node = descend(self.root, self._segments(uri))
        except TreeError:  # a malformed URI, or one past the URI limits: nothing there
            return default
        return default if node is None else node.value

    def children(self, uri: str | Path = ".") -> list[str]:
        node, _, _ = self._locate(self._segments(uri), uri)
        return list(node.children) if node.children is not None else []

    def walk(self, uri: str | Path = ".", *, by: str | None = LOCAL) -> Iterator[NodeInfo]:
        """Pre-order over a subtree; for a server only the nodes it may Get (their subtrees still visited)."""
        segs = self._segments(uri)
        node, acl, _ = self._locate(segs, uri)
        stack: list[tuple[Path, Node, Acl]] = [(segs, node, acl)]
        while stack:
            path, n, eff = stack.pop()
            if by is None or eff.allows("Get", by):
                yield self._info(path, n)
            if n.children:
                for name in reversed(list(n.children)):
                    child = n.children[name]
                    stack.append((path + (name,), child, child.acl or eff))

    def interior_types(self, uri: str | Path = ".") -> Iterator[tuple[Path, str]]:
        """(path, Type) of every interior node under ``uri``, pre-order, no ACL: the device's own cheap
        scan for MO instances (DM 2.0 addresses objects by the MOID in their Type)."""
        segs = self._segments(uri)
        top = self._find(segs)
        if top is None or top.children is None:
            return
        stack: list[tuple[Path, Node]] = [(segs, top)]
        while stack:
            path, n = stack.pop()
            yield path, n.type
            for name, child in reversed(n.kids.items()):
                if child.children is not None:
                    stack.append((path + (name,), child))

    def interiors_of_type(self, uri: str | Path, type: str) -> list[Path]:
        """Paths of the interior nodes at and under ``uri`` whose Type is ``type``, pre-order, no ACL:
        a DM 2.0 session's question "where are the instances of this MO" (:mod:`emulator.mo.instances`).

        Most of a device's subtree is shared with its profile's template or was left by a committed
        transaction, and no tree changes such a node again (each copies a node it does not own before
        changing it, see :meth:`_writable`): a shared subtree's answer is worked out once per process
        (:data:`_TYPED`, by node) and only the device's own nodes are walked each time."""
        segs = self._segments(uri)
        top = self._find(segs)
        if top is None or top.children is None:
            return []
        live = [self._token, *(token for _, token, _ in self._tx)]  # tokens whose nodes may still change
        out: list[Path] = []
        stack: list[tuple[Path, Node]] = [(segs, top)]
        while stack:
            path, node = stack.pop()
            if node.owner not in live:
                out.extend([path + rel for rel in _typed_below(node, type)])
                continue
            if node.type == type:
                out.append(path)
            stack.extend([(path + (name,), kid) for name, kid in reversed(node.kids.items()) if kid.children is not None])
        return out

    def __len__(self) -> int:
        count = 0
        stack = [self.root]
        while stack:
            n = stack.pop()
            count += 1
            if n.children:
                stack.extend(n.children.values())
        return count

    # ------------------------------------------------------------------ changes

    def _touch(self, node: Node) -> NodeMeta:
        """Stamp a change on ``node``; returns its properties, created on the first change."""
        meta = node.meta
        if meta is None:
            meta = node.meta = NodeMeta()
        meta.tstamp = self.clock()
        meta.verno = (meta.verno + 1) & 0xFFFF
        return meta

    def add(
        self,
        uri: str | Path,
        value: Value = None,
        *,
        format: str = "chr",
        type: str = "text/plain",
        by: str | None = LOCAL,
    ) -> int:
        """DM Add: creates a node and any missing interior ancestors (implicit add); 418 if it exists."""
        segs = self._segments(uri)
        if not segs:
            raise TreeError(418, "the root always exists", uri=".")
        fmt = format.lower()
        # find the deepest existing ancestor
        node = self.root
        acl = node.acl or ROOT_DEFAULT
        depth = 0
        for seg in segs:
            if node.children is None:
                raise TreeError(405, f"{_show(uris.join(segs[:depth]))} is a leaf: no children", uri=_show(uri))
            child = node.children.get(seg)
            if child is None:
                break
            node = child
            if child.acl.text:
                acl = child.acl
            depth += 1
        else:
            raise TreeError(418, f"node {_show(uri)} already exists", uri=_show(uri))
        if by is not None and not node.flags & ACCESS_BITS["Add"]:
            raise TreeError(405, f"Add is not allowed under {_show(uris.join(segs[:depth]))}", uri=_show(uri))
        if by is not None and not acl.allows("Add", by):
            raise TreeError(425, f"{by} may not Add under {_show(uris.join(segs[:depth]))}", uri=_show(uri))
        for seg in segs[depth:]:
            _check_name(seg, uri)
        if by is not None and self._checks and fmt != "node":
            self._check_value(segs, value, uri)
        # interior nodes added by a server without Replace on their parent become its own (PROTOCOL 2.4)
        own = EMPTY
        if by is not None and not acl.allows("Replace", by):
            own = Acl.parse(f"Add={by}&Delete={by}&Replace={by}")
        chain = self._writable(segs[:depth])
        parent = chain[-1]
        now_events: list[TreeEvent] = []
        for i in range(depth, len(segs)):
            last = i == len(segs) - 1
            is_node = (not last) or fmt == "node"
            new = Node(
                None if is_node else value,
                "node" if is_node else fmt,
                ("" if not last else type) if is_node else type,
                own if is_node else EMPTY,
                {} if is_node else None,
                ACCESS_ALL,
                None,
                self._token,
            )
            self._touch(new)
            parent.kids[segs[i]] = new
            now_events.append(TreeEvent("add", uris.join(segs[: i + 1]), None, new.value, by))
            parent = new
        for ev in now_events:
            self._emit(ev)
        return 200

    def replace(
        self,
        uri: str | Path,
        value: Value,
        *,
        format: str | None = None,
        type: str | None = None,
        by: str | None = LOCAL,
    ) -> int:
        """DM Replace of a leaf value; never creates (404). Interior nodes take TNDS, not values (405)."""
        segs = self._segments(uri)
        node, acl, _ = self._locate(segs, uri)
        if node.children is not None:
            raise TreeError(405, f"{_show(uri)} is an interior node: Replace needs TNDS", uri=_show(uri))
        if by is not None and not node.flags & ACCESS_BITS["Replace"]:
            raise TreeError(405, f"Replace is not allowed on {_show(uri)}", uri=_show(uri))
        if by is not None and not acl.allows("Replace", by):
            raise TreeError(425, f"{by} may not Replace {_show(uri)}", uri=_show(uri))
        fmt = format.lower() if format else None
        if fmt == "node":
            raise TreeError(405, f"{_show(uri)} is a leaf: cannot become interior", uri=_show(uri))
        if node.flags & PERMANENT and ((fmt and fmt != node.format) or (type and type != node.type)):
            raise TreeError(405, f"Format/Type of permanent node {_show(uri)} cannot change", uri=_show(uri))
        if by is not None and self._checks:
            self._check_value(segs, value, uri)
        target = self._writable(segs)[-1]
        old = target.value
        target.value = value
        if fmt:
            target.format = fmt
        if type:
            target.type = type
        self._touch(target)
        self._emit(TreeEvent("replace", uris.join(segs), old, value, by))
        return 200

    def delete(self, uri: str | Path, *, by: str | None = LOCAL) -> int:
        """DM Delete of a node and its whole subtree; permanent nodes and the root answer 405."""
        segs = self._segments(uri)
        if not segs:
            raise TreeError(405, "the root cannot be deleted", uri=".")
        node, acl, _ = self._locate(segs, uri)
        if by is not None:
            if node.flags & PERMANENT or not node.flags & ACCESS_BITS["Delete"]:
                raise TreeError(405, f"{_show(uri)} cannot be deleted", uri=_show(uri))
            if not acl.allows("Delete", by):
                raise TreeError(425, f"{by} may not Delete {_show(uri)}", uri=_show(uri))
        parent = self._writable(segs[:-1])[-1]
        del parent.kids[segs[-1]]
        self._touch(parent)
        self._emit(TreeEvent("delete", uris.join(segs), node.value, None, by))
        return 200

    def copy(self, source: str | Path, target: str | Path, *, by: str | None = LOCAL) -> int:
        """DM Copy: leaf to leaf; needs Get on the source and Add or Replace on the target."""
        src_segs = self._segments(source)
        node, acl, _ = self._locate(src_segs, source)
        if node.children is not None:
            raise TreeError(405, f"Copy source {_show(source)} is not a leaf", uri=_show(source))
        if by is not None and not acl.allows("Get", by):
            raise TreeError(425, f"{by} may not Get {_show(source)}", uri=_show(source))
        if self.exists(target):
            return self.replace(target, node.value, format=node.format, type=node.type, by=by)
        return self.add(target, node.value, format=node.format, type=node.type, by=by)

    def exec(
        self, uri: str | Path, data: Value = None, *, by: str | None = LOCAL, correlator: str | None = None,
        reply_to: str | None = None,
    ) -> int:
        """DM Exec: runs the handler the device registered for the node; its return is the status."""
        segs = self._segments(uri)
        node, acl, _ = self._locate(segs, uri)
        if not node.flags & ACCESS_BITS["Exec"]:
            raise TreeError(405, f"{_show(uri)} is not executable", uri=_show(uri))
        if by is not None and not acl.allows("Exec", by):
            raise TreeError(425, f"{by} may not Exec {_show(uri)}", uri=_show(uri))
        handler = self._exec_handler(segs)
        if handler is None:
            raise TreeError(405, f"{_show(uri)} has no executable behaviour", uri=_show(uri))
        path = uris.join(segs)
        status = handler(self, ExecRequest(path, data, by, correlator, reply_to))
        self._emit(TreeEvent("exec", path, None, data, by))
        return status

    # ------------------------------------------------------------------ properties (?prop=)

    def get_prop(self, uri: str | Path, name: str, *, by: str | None = LOCAL) -> str:
        segs = self._segments(uri)
        node, acl, _ = self._locate(segs, uri)
        if name not in PROPERTIES:
            raise TreeError(406, f"unsupported property {name!r}", uri=_show(uri))
        if by is not None and not acl.allows("Get", by):
            raise TreeError(425, f"{by} may not Get {_show(uri)}?prop={name}", uri=_show(uri))
        meta = node.meta
        match name:
            case "ACL":
                return node.acl.text
            case "Format":
                return node.format
            case "Name":
                return segs[-1] if segs else "."
            case "Size":
                if node.children is not None:
                    raise TreeError(406, "Size is a leaf property", uri=_show(uri))
                return str(node.size())
            case "Title":
                return meta.title if meta else ""
            case "TStamp":
                return format_tstamp(meta.tstamp if meta else None)
            case "Type":
                return node.type
            case _:  # VerNo
                return str(meta.verno if meta else 0)

    def replace_prop(self, uri: str | Path, name: str, value: str, *, by: str | None = LOCAL) -> int:
        """Replace ACL, Name (rename) or Title; the other properties belong to the device (405)."""
        segs = self._segments(uri)
        node, acl, parent_acl = self._locate(segs, uri)
        if name not in PROPERTIES:
            raise TreeError(406, f"unsupported property {name!r}", uri=_show(uri))
        path = uris.join(segs)
        if name == "ACL":
            new_acl = Acl.parse(value)
            if by is not None:
                own = node.children is not None and acl.allows("Replace", by)
                if not (own or (segs and parent_acl.allows("Replace", by))):
                    raise TreeError(425, f"{by} may not Replace the ACL of {_show(uri)}", uri=path)
            if not segs and not new_acl.allows("Add", "*") and by is not None:
                raise TreeError(405, "the root keeps Add=*", uri=".")
            target = self._writable(segs)[-1]
            old = target.acl.text
            target.acl = new_acl
            self._touch(target)
            self._emit(TreeEvent("prop", path, old, new_acl.text, by, "ACL"))
            return 200
        if by is not None and not acl.allows("Replace", by):
            raise TreeError(425, f"{by} may not Replace {_show(uri)}?prop={name}", uri=path)
        if name == "Title":
            if len(value.encode("utf-8")) > 255:
                raise TreeError(413, "Title is limited to 255 bytes", uri=path)
            target = self._writable(segs)[-1]
            old = target.meta.title if target.meta else ""
            self._touch(target).title = value
            self._emit(TreeEvent("prop", path, old, value, by, "Title"))
            return 200
        if name == "Name":
            if not segs or node.flags & PERMANENT:
                raise TreeError(405, f"{_show(uri)} is permanent and cannot be renamed", uri=path)
            _check_name(value, uri)
            parent = self._writable(segs[:-1])[-1]
            siblings = parent.kids
            if value in siblings:
                raise TreeError(418, f"a sibling named {value!r} exists", uri=path)
            parent.children = {  # keep sibling order, new name in place
                (value if k == segs[-1] else k): v for k, v in siblings.items()
            }
            self._touch(parent)
            self._emit(TreeEvent("rename", path, segs[-1], uris.join(segs[:-1] + (value,)), by, "Name"))
            return 200
        raise TreeError(405, f"property {name} cannot be replaced", uri=path)

    # ------------------------------------------------------------------ device-side building

    def set_node(
        self,
        uri: str | Path,
        value: Value = None,
        *,
        format: str = "chr",
        type: str | None = None,
        acl: str | None = None,
        permanent: bool = False,
        access: frozenset[str] | set[str] | None = None,
        title: str = "",
        tstamp: float | None = None,
        verno: int | None = None,
    ) -> None:
        """Create or overwrite a node as the device itself (MO builders, profiles, bearers): no ACL check.

        With ``verno`` the node's Title, TStamp and VerNo become exactly ``title``, ``tstamp`` and
        ``verno`` (a workspace reload or a device-local TNDS import: a restored node must not look
        changed to a server that compares VerNo).
        """
        segs = self._segments(uri)
        flags = (access_flags(access) if access is not None else ACCESS_ALL) | (PERMANENT if permanent else 0)
        interior = format == "node"
        if type is None:  # a leaf's MIME type, an interior node's MO identifier (none by default)
            type = "" if interior else "text/plain"
        node, depth = self._claim(segs, uri)
        existing = depth == len(segs)
        if not existing:
            parent = self._add_missing(node, segs, depth)
            target = Node(None, "node", type if interior else "", EMPTY, {} if interior else None, flags, None, self._token)
            parent.kids[segs[-1]] = target
        else:
            target = node
            target.flags = flags
            if interior and target.children is None:
                target.children = {}
            elif not interior:
                target.children = None
        old = target.value
        target.value = None if interior else value
        target.format = format
        target.type = type
        if acl is not None:
            target.acl = Acl.parse(acl)
        if verno is not None:
            target.meta = NodeMeta(title, tstamp, verno) if (title or tstamp is not None or verno) else None
        elif title:
            target.meta = NodeMeta(title, None, 0)
        kind = "replace" if existing else "add"
        self._emit(TreeEvent(kind, uris.join(segs), old, target.value, None))

    def snapshot(self, uri: str | Path) -> Node:
        """A detached deep copy of the subtree at ``uri`` (404 if missing): fresh nodes with every value,
        Format, Type, ACL, Scope, AccessType, Title, TStamp and VerNo, ready for :meth:`graft`. What an
        undo of a local Delete puts back; the copy shares nothing, so later changes leave it as it was."""
        segs = self._segments(uri)
        top, _, _ = self._locate(segs, uri)

        def fresh(n: Node) -> Node:
            return Node(n.value, n.format, n.type, n.acl, {} if n.children is not None else None, n.flags,
                        n.meta.copy() if n.meta is not None else None, None)

        root = fresh(top)
        stack = [(top, root)]  # no recursion: a tree may be deeper than Python's stack
        while stack:
            old, new = stack.pop()
            if old.children:
                for name, child in old.children.items():
                    twin = new.kids[name] = fresh(child)
                    stack.append((child, twin))
        return root

    def graft(self, uri: str | Path, node: Node, *, position: int | None = None) -> list[str]:
        """Attach a whole new subtree of prepared nodes at ``uri`` (which must not exist: 418).

        A device-local TNDS import of a big tree: :meth:`set_node` per node walks from the root each
        time, this walks once. Missing ancestors are created as :meth:`set_node` creates them, and
        every node gets the add event :meth:`set_node` would give it, in pre-order. The nodes become
        this tree's (its ownership token, see :meth:`_writable`), so they must be fresh ones never
        handed to a tree before (``owner`` None): a node shared with another tree would be changed
        under it. ``position``: the node's place among its siblings (default: last). Returns the URIs of
        the grafted nodes (pre-order; created ancestors not included).
        """
        segs = self._segments(uri)
        if not segs:
            raise TreeError(418, "the root always exists", uri=".")
        found, depth = self._claim(segs, uri)
        if depth == len(segs):
            raise TreeError(418, f"node {_show(uri)} already exists", uri=_show(uri))
        token = self._token
        join = uris.join
        added: list[str] = []
        events: list[TreeEvent] = []
        stack: list[tuple[Path, Node]] = [(segs, node)]
        while stack:  # before anything is added: a node that is not fresh changes nothing
            path, n = stack.pop()
            if n.owner is not None:
                raise ValueError(f"graft needs fresh nodes; {join(path)} already belongs to a tree")
            n.owner = token
            text = join(path)
            added.append(text)
            events.append(TreeEvent("add", text, None, n.value, None))
            if n.children:
                stack.extend((path + (name,), child) for name, child in reversed(n.children.items()))
        parent = self._add_missing(found, segs, depth)
        kids = parent.kids
        kids[segs[-1]] = node
        if position is not None and 0 <= position < len(kids) - 1:  # back among its siblings (an undo)
            order = list(kids.items())
            order.insert(position, order.pop())
            kids.clear()
            kids.update(order)
        if self._tx:
            self.version += 1  # as _emit would: readers that cache by version must see the graft
            self._pending.extend(events)
        else:
            for ev in events:
                self._emit(ev)
        return added

    def _claim(self, segs: Path, uri: str | Path) -> tuple[Node, int]:
        """The deepest existing node on ``segs`` and how many segments lead to it, the nodes on the
        way owned by this tree (copied if shared, as :meth:`_writable`); 405 past a leaf."""
        token = self._token
        node = self.root
        if node.owner is not token:
            node = self.root = node.copy(token)
        depth = 0
        for seg in segs:
            children = node.children
            if children is None:
                raise TreeError(405, f"{uris.join(segs[:depth])} is a leaf", uri=_show(uri))
            child = children.get(seg)
            if child is None:
                break
            if child.owner is not token:
                child = children[seg] = child.copy(token)
            node = child
            depth += 1
        return node, depth

    def _add_missing(self, node: Node, segs: Path, depth: int) -> Node:
        """Plain interior nodes for ``segs[depth:-1]`` under ``node`` (an implicit add by the device,
        one event each); returns the parent the last segment goes into."""
        for i in range(depth, len(segs) - 1):
            mid = Node(None, "node", "", EMPTY, {}, ACCESS_ALL, None, self._token)
            node.kids[segs[i]] = mid
            self._emit(TreeEvent("add", uris.join(segs[: i + 1]), None, None, None))
            node = mid
        return node


_TYPED: dict[tuple[int, str], tuple[Node, tuple[Path, ...]]] = {}
"""(node id, Type) -> (the node, the relative paths of the interior nodes of that Type in its subtree),
for subtrees no tree changes any more (see :meth:`Tree.interiors_of_type`). The node is kept with its
answer so that its id cannot be reused; bounded by :data:`TYPED_MAX` (emptied when full)."""
TYPED_MAX = 8192


def _typed_below(top: Node, type: str) -> tuple[Path, ...]:
    key = (id(top), type)
    known = _TYPED.get(key)
    if known is not None and known[0] is top:
        return known[1]
    found: list[Path] = []
    stack: list[tuple[Path, Node]] = [((), top)]
    while stack:
        path, node = stack.pop()
        if node.type == type:
            found.append(path)
        stack.extend([(path + (name,), kid) for name, kid in reversed(node.kids.items()) if kid.children is not None])
    if len(_TYPED) >= TYPED_MAX:
        _TYPED.clear()
    answer = _TYPED[key] = (top, tuple(found))
    return answer[1]


class _Transaction:
    __slots__ = ("tree",)

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    def __enter__(self) -> Tree:
        self.tree.begin()
        return self.tree

    def __exit__(self, exc_type: object, exc: object, tb: object) -> Literal[False]:
        if exc_type is None:
            self.tree.commit()
        else:
            self.tree.rollback()
        return False


def _show(uri: str | Path) -> str:
    return uris.join(uri) if isinstance(uri, tuple) else uri


def _check_name(name: str, uri: str | Path) -> None:
    if not name or name == "*" or "/" in name or "?" in name:
        raise TreeError(400, f"invalid node name {name!r} in {_show(uri)}", uri=_show(uri))
